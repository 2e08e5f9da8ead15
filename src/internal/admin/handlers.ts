/**
 * The JSON endpoints of `api.ts`, implemented on the public `Supervisor` API: the tree group reads, the control
 * group starts, stops, restarts, reloads and scales, the work group calls agents and publishes to topics (the token
 * is checked before, by `guard.ts`); the cluster group lists where a cluster's agents run.
 *
 * @internal
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Supervisor from "../../Supervisor.js"
import {
  AdminHttpApi,
  ClusterUnavailable,
  NotClustered,
  type PlacementView,
  type StderrLineView,
  Unauthorized
} from "./api.js"
import * as Auth from "./auth.js"
import * as Control from "./control.js"
import * as Guard from "./guard.js"
import { locate, locateAgent } from "./locate.js"
import { childView, history, treeView } from "./views.js"
import * as Work from "./work.js"
import { topicView } from "./workApi.js"

/** An agent's last stderr lines (the last `lines` of them when given); a supervisor or a pool has none. */
const stderr = (root: Supervisor.Supervisor, path: string, lines: number | undefined) =>
  Effect.gen(function*() {
    const { info, parent } = yield* locateAgent(root, path)
    const recent: ReadonlyArray<StderrLineView> = yield* parent.child(info.id).pipe(
      Effect.flatMap((agent) => agent.recentStderr),
      // Stopped: no agent runs for it, and its lines went with the last one.
      Effect.orElseSucceed(() => [])
    )
    return lines === undefined ? recent : recent.slice(Math.max(0, recent.length - lines))
  })

/** The tree group: the tree, one child, the restart history, an agent's recent stderr. */
const treeGroup = (root: Supervisor.Supervisor) =>
  HttpApiBuilder.group(AdminHttpApi, "tree", (handlers) =>
    handlers
      .handle("tree", () => treeView(root))
      .handle("child", ({ path }) => Effect.flatMap(locate(root, path.id), childView))
      .handle("history", ({ urlParams }) =>
        urlParams.child === undefined
          ? history(root)
          : Effect.zipRight(locate(root, urlParams.child), history(root, urlParams.child)))
      .handle("stderr", ({ path, urlParams }) => stderr(root, path.id, urlParams.lines)))

/** The control group: each answers with the child once the operation is done (a reload's body holds nothing). */
const controlGroup = (root: Supervisor.Supervisor) =>
  HttpApiBuilder.group(AdminHttpApi, "control", (handlers) =>
    handlers
      .handle("restart", ({ path }) => Control.run(root, "restart", path.id))
      .handle("stop", ({ path }) => Control.run(root, "stop", path.id))
      .handle("start", ({ path }) => Control.run(root, "start", path.id))
      .handle("reload", ({ path }) => Control.run(root, "reload", path.id))
      .handle("scale", ({ path, payload }) => Control.run(root, { scale: payload.size }, path.id)))

/**
 * The work group: a call to an agent or a pool, a task published to a topic, a task's outcome (the token is checked
 * by `guard.ts`).
 */
const workGroup = (
  root: Supervisor.Supervisor,
  token: Redacted.Redacted<string>,
  stopping: Deferred.Deferred<void>
) =>
  HttpApiBuilder.group(AdminHttpApi, "work", (handlers) =>
    handlers
      .handle("call", ({ path, payload }) => Work.call(root, path.id, payload, stopping))
      .handle("publish", ({ path, payload }) => Work.publish(root, path.name, payload))
      // A GET, but what it reads is an agent's answer, as a call's: the token, checked on the route the router
      // matched (a check of the URL's text before routing missed /API/TASKS/ID, //api/tasks/ID, %74asks)
      .handle("task", ({ path, urlParams }) =>
        Effect.flatMap(
          HttpServerRequest.HttpServerRequest,
          (request): Effect.Effect<Work.TaskView, Work.TaskError | Unauthorized> => {
            const refusal = Auth.refusal(token, request.headers.authorization)
            return refusal === undefined
              ? Work.task(root, path.id, urlParams.wait)
              : Effect.zipRight(
                Guard.logRefused(token, request, 401, refusal),
                Effect.fail(new Unauthorized({ message: refusal }))
              )
          }
        ))
      // Subscribers by their paths below the root, as every other route takes a child
      .handle("topics", () => Effect.map(root.topics, (topics) => topics.map((info) => topicView(root.name, info)))))

/** What the API shows of a cluster: `AdminApi.ClusterPlacements`, when this process is in one. */
export interface Placements {
  readonly list: Effect.Effect<ReadonlyArray<PlacementView>, { readonly message: string }>
}

const notClustered = new NotClustered({
  message: "This agent-supervisor is not in a cluster: its tree file has no cluster section (GET /api/tree lists " +
    "its agents)"
})

/**
 * The cluster group: where each started agent runs, read from the placements (never by asking an agent). While the
 * tree stops (`stopping`), the runner's database closes with it: a read that fails then says so.
 */
const clusterGroup = (placements: Option.Option<Placements>, stopping: Deferred.Deferred<void>) =>
  HttpApiBuilder.group(
    AdminHttpApi,
    "cluster",
    (handlers) =>
      handlers.handle("placements", () =>
        Option.match(placements, {
          onNone: () => Effect.fail(notClustered),
          onSome: (cluster) =>
            cluster.list.pipe(
              Effect.catchAll((error) =>
                Effect.flatMap(Deferred.isDone(stopping), (stops) =>
                  Effect.fail(
                    new ClusterUnavailable({
                      message: `The cluster's placements could not be read: ${
                        stops
                          ? "this process is stopping (its host is shutting down), and its cluster's database " +
                            "closes with it; ask another runner or a client of the cluster: "
                          : ""
                      }${error.message}`
                    })
                  ))
              )
            )
        }))
  )

/** Every group, for `HttpApiBuilder.api(AdminHttpApi)`. */
export const layer = (
  root: Supervisor.Supervisor,
  placements: Option.Option<Placements>,
  token: Redacted.Redacted<string>,
  /** Done when the tree begins to stop while the API serves: a call the stop cuts says so. */
  stopping: Deferred.Deferred<void>
) =>
  Layer.mergeAll(
    treeGroup(root),
    controlGroup(root),
    workGroup(root, token, stopping),
    clusterGroup(placements, stopping)
  )

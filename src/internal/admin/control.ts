/**
 * Start, stop and restart a child by its path, as the tree's own manual operations (OTP's `terminate_child` and
 * `restart_child` on the child's supervisor, never counted as failures); reload an agent or a pool (`reload`, rolling)
 * and scale a pool (`scale`), on its supervisor too. Each is answered with the child as it is once it is done.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as AgentSupervisor from "../../Agent/AgentSupervisor.js"
import type * as Supervisor from "../../Supervisor.js"
import { BadRequest, ChildNotFound, type ChildView, OperationFailed } from "./api.js"
import { locate, type Located } from "./locate.js"
import { agentView, bareView, childView } from "./views.js"

/** An operation of the control group. */
export type Operation = "start" | "stop" | "restart" | "reload" | { readonly scale: number }

const nameOf = (operation: Operation): string => typeof operation === "string" ? operation : "scale"

/** Errors of the tree's operations, as the API answers them (the library's message in each). */
const answer = (operation: Operation, path: string) => (error: { readonly _tag: string; readonly message: string }) =>
  error._tag === "SupervisorChildError" && (error as { readonly reason?: string }).reason === "not_found"
    ? new ChildNotFound({ message: `No child "${path}" in the tree any more: ${error.message}` })
    : error._tag === "ConfigError"
    ? new BadRequest({ message: `Could not ${nameOf(operation)} "${path}": ${error.message}` })
    : new OperationFailed({ message: `Could not ${nameOf(operation)} "${path}": ${error.message}` })

/** The agent of an agent child that runs one now. */
const agentOf = (located: Located): Effect.Effect<Option.Option<AgentSupervisor.AgentSupervisor>> =>
  located.info.kind === "worker" ? Effect.option(located.parent.child(located.info.id)) : Effect.succeedNone

/**
 * The child after an operation. One that is gone (a temporary child is removed when it stops) is shown stopped,
 * from its agent's last metadata when there was one.
 */
const after = (
  root: Supervisor.Supervisor,
  located: Located,
  agent: Option.Option<AgentSupervisor.AgentSupervisor>
): Effect.Effect<ChildView> =>
  locate(root, located.path).pipe(
    Effect.flatMap(childView),
    Effect.catchTag("ChildNotFound", () => {
      const info: Supervisor.ChildInfo = { ...located.info, status: "stopped", state: "STOPPED", pid: Option.none() }
      return Option.match(agent, {
        onNone: () => Effect.succeed(bareView(located.path, info)),
        onSome: (a) => Effect.map(a.metadata, (metadata) => agentView(located.path, info, metadata))
      })
    })
  )

const terminate = (located: Located) => located.parent.terminateChild(located.info.id)
const restartStopped = (located: Located) => located.parent.restartChild(located.info.id)

/** What each operation does, by the supervisor's view of the child. */
const perform = (
  operation: Operation,
  located: Located,
  agent: Option.Option<AgentSupervisor.AgentSupervisor>
): Effect.Effect<void, { readonly _tag: string; readonly message: string }> => {
  const { status } = located.info
  if (typeof operation !== "string") return located.parent.scale(located.info.id, operation.scale)
  switch (operation) {
    case "stop":
      return terminate(located)
    case "start":
      // A running child is left as it is; one waiting for its restart starts now.
      return status === "running"
        ? Effect.void
        : status === "restarting"
        ? Effect.zipRight(terminate(located), restartStopped(located))
        : restartStopped(located)
    case "reload":
      return located.parent.reload(located.info.id)
    case "restart": {
      // A temporary agent would be removed by `terminateChild`: it restarts itself instead.
      if (status === "running" && Option.isSome(agent) && agent.value.config.restart === "temporary") {
        return agent.value.restart
      }
      return status === "stopped"
        ? restartStopped(located)
        : Effect.zipRight(terminate(located), restartStopped(located))
    }
  }
}

const DONE: Record<string, string> = {
  start: "started",
  stop: "stopped",
  restart: "restarted",
  reload: "reloaded",
  scale: "scaled"
}

/** The log line of an operation done: what was done, to which child, and the child after it. */
const done = (operation: Operation, view: ChildView): string =>
  `admin API: ${DONE[nameOf(operation)]} "${view.id}"${typeof operation === "string" ? "" : ` to ${operation.scale}`}` +
  `: ${view.state}${view.pid === null ? "" : ` (pid ${view.pid})`}`

/**
 * Runs `operation` on the child at `path` and answers with its view. It runs to its end even when the caller goes
 * away (a restart left half-done would leave the child stopped); each step is bounded by the child's own timeouts.
 * Each operation is logged once done (Info: `admin API: stopped "workers/classifier": STOPPED`), and each refused
 * (Warning: `admin API: refused to restart "nope": No child ...`, or the failed operation's own message), annotated with the operation and the child's path: the process's log says
 * what was done to its tree from outside, as systemd's journal says who stopped a unit.
 */
export const run = (
  root: Supervisor.Supervisor,
  operation: Operation,
  path: string
): Effect.Effect<ChildView, BadRequest | ChildNotFound | OperationFailed> =>
  Effect.uninterruptible(
    Effect.gen(function*() {
      // Refused before anything was done: the log says what was asked; a failed operation says so itself
      const located = yield* Effect.tapError(
        locate(root, path),
        (error) => Effect.logWarning(`admin API: refused to ${nameOf(operation)} "${path}": ${error.message}`)
      )
      const agent = yield* agentOf(located)
      yield* perform(operation, located, agent).pipe(
        Effect.mapError(answer(operation, path)),
        Effect.tapError((error) => Effect.logWarning(`admin API: ${error.message}`))
      )
      const view = yield* after(root, located, agent)
      yield* Effect.logInfo(done(operation, view))
      return view
    }).pipe(
      Effect.annotateLogs({ operation: nameOf(operation), child: path })
    )
  )

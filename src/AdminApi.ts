/**
 * The admin API: a tree's state and controls over HTTP, for the CLI, the dashboard, scrapers and scripts. Add
 * {@link layer} beside the tree's `Supervisor.layer`; it serves until the application stops.
 *
 * | route | what |
 * |---|---|
 * | `GET /api/tree` | the whole tree (`TreeView`): every child with its state, pid, restarts, last exit, health |
 * | `GET /api/children/:id` | one child (`ChildView`); 404 `ChildNotFound` |
 * | `GET /api/history?child=ID` | restart decisions of the tree, newest first (`RestartView[]`) |
 * | `GET /api/children/:id/stderr?lines=N` | an agent's last stderr lines (`StderrLine[]`); 400 for a supervisor |
 * | `POST /api/children/:id/{start,stop,restart}` | the operation, then the child (`ChildView`); 409 `OperationFailed` |
 * | `POST /api/children/:id/reload` | a rolling reload of an agent or a pool (no body, or `{}`), then the child |
 * | `POST /api/children/:id/scale` | a pool's new size, `{ "size": n }`, then the pool (its `pool: { size, maxSize, routing }`) |
 * | `POST /api/children/:id/call` | a call to an agent or a pool, `{ "payload", "timeout"? }`: `{ "result" }` once it answers |
 * | `POST /api/topics/:name/publish` | a task for a topic's subscribers, `{ "payload", "fanout"? }`: `{ "taskId" }` at once |
 * | `GET /api/cluster` | where each started agent of the cluster runs (`PlacementView[]`); 404 `NotClustered` outside one |
 * | `GET /api/events` | the tree's events as Server-Sent Events (`event: <_tag>`, `data: <JSON>`) |
 * | `GET /api/children/:id/stderr/follow` | an agent's stderr lines as Server-Sent Events (`data: <StderrLine>`) |
 * | `GET /metrics` | every Effect metric of the process, Prometheus text format 0.0.4 |
 * | `GET /api/openapi.json` | the OpenAPI 3.1 document of every route above (the event streams and `/metrics` included) |
 * | `GET /` | the dashboard |
 *
 * A child is addressed by its path below the root (`workers/echo`), one URL segment (`workers%2Fecho`). Reads are
 * open to whoever reaches the address; every other call needs `Authorization: Bearer <token>` (401 otherwise), and
 * takes no body or a JSON one (`Content-Type: application/json` or a `+json` type; none is read as JSON): another
 * media type is a 415, JSON that does not parse or a body over 64 KiB (16 MiB for `call` and `publish`) a 400, as are
 * a bad `scale`, `call` or `publish` body and a `reload` body with settings (a reload from the API runs the child's
 * configuration as it is). A known path asked
 * with a method it does not take is a 405 with an `Allow` header (RFC 9110). On a loopback address (the default), a
 * request whose `Host` names another machine is a 403 (a web page cannot reach the API by DNS rebinding). Every
 * error is a JSON body `{ "_tag", "message" }`, never a stack: 400 `BadRequest` (bad parameters too), 401
 * `Unauthorized`, 403 `Forbidden`, 404 `ChildNotFound`, `NotClustered` or `NotFound` (no such route), 405
 * `MethodNotAllowed`, 409 `OperationFailed`, 415 `UnsupportedMediaType`, 500 `InternalError` (its details in the
 * log), 502 `CallFailed` (the agent answered a call with its own error, or crashed on it), 503 `ClusterUnavailable`
 * (the cluster's database did not answer) or `TopicFull`, 504 `CallTimedOut`. Each operation is logged once done
 * (Info, annotated with `operation` and `child` or `topic`), and each refused by the tree (Warning); a call's or a
 * publish's payload never is.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { ConfigError, StoreError } from "./Errors.js"
import type { PlacementView } from "./internal/admin/api.js"
import * as Auth from "./internal/admin/auth.js"
import { AdminApiError } from "./internal/admin/errors.js"
import * as Guard from "./internal/admin/guard.js"
import * as AdminOptions from "./internal/admin/options.js"
import * as Server from "./internal/admin/server.js"
import * as StateFile from "./internal/admin/stateFile.js"
import type { DurationInput } from "./internal/durationText.js"
import { RootSupervisor } from "./Supervisor.js"

export {
  /**
   * The contract: the JSON endpoints as an `HttpApi`, for `HttpApiClient.make(AdminApi.AdminHttpApi, { baseUrl })`
   * (give a child's path encoded: `{ path: { id: encodeURIComponent("workers/echo") } }`).
   *
   * @since 0.1.0
   */
  AdminHttpApi,
  /**
   * A request the API refuses: malformed, or asking a supervisor for what only an agent has (400).
   *
   * @since 0.1.0
   */
  BadRequest,
  /**
   * No child has this path (404).
   *
   * @since 0.1.0
   */
  ChildNotFound,
  /**
   * One child of the tree, as the API answers it.
   *
   * @since 0.1.0
   */
  ChildView,
  /**
   * The cluster's database did not answer `GET /api/cluster` (503).
   *
   * @since 0.1.0
   */
  ClusterUnavailable,
  /**
   * `GET /api/cluster` of a process in no cluster (404).
   *
   * @since 0.1.0
   */
  NotClustered,
  /**
   * The tree refused the operation: a start that failed, a supervisor that stopped (409).
   *
   * @since 0.1.0
   */
  OperationFailed,
  /**
   * Where one started agent of a cluster runs (`agent`, `runner`, `shard`, `since`, `state`), as the API answers it.
   *
   * @since 0.1.0
   */
  PlacementView,
  /**
   * One restart decision, as the API answers it.
   *
   * @since 0.1.0
   */
  RestartView,
  /**
   * The paths of the routes that are not JSON: events, stderr follow, metrics, OpenAPI, dashboard.
   *
   * @since 0.1.0
   */
  Routes,
  /**
   * One stderr line of an agent, as the API answers it.
   *
   * @since 0.1.0
   */
  StderrLineView,
  /**
   * The whole tree, as the API answers it.
   *
   * @since 0.1.0
   */
  TreeView,
  /**
   * A state-changing call without the right bearer token (401).
   *
   * @since 0.1.0
   */
  Unauthorized,
  /**
   * A state-changing call whose body is of another media type than JSON (415).
   *
   * @since 0.1.0
   */
  UnsupportedMediaType
} from "./internal/admin/api.js"

export {
  /**
   * The body of `POST /api/children/:id/call`: `{ "payload": <any JSON>, "timeout"?: "30 seconds" | milliseconds }`.
   *
   * @since 0.1.0
   */
  CallBody,
  /**
   * The agent answered a call with an error of its own (`errorType`), or crashed or broke the protocol on it (502).
   *
   * @since 0.1.0
   */
  CallFailed,
  /**
   * What a call answers: `{ "result": <the agent's answer> }`.
   *
   * @since 0.1.0
   */
  CallResult,
  /**
   * A call got no answer within its timeout (504); the agent was sent a `cancel`.
   *
   * @since 0.1.0
   */
  CallTimedOut,
  /**
   * The body of `POST /api/topics/:name/publish`: `{ "payload": <any JSON>, "fanout"?: boolean }`.
   *
   * @since 0.1.0
   */
  PublishBody,
  /**
   * What a publish answers: `{ "taskId" }`, the task's id (its outcome is the tree's).
   *
   * @since 0.1.0
   */
  Published,
  /**
   * The topic holds its `maxQueued` tasks not yet ended: nothing was published (503).
   *
   * @since 0.1.0
   */
  TopicFull
} from "./internal/admin/workApi.js"

export {
  /**
   * The admin API could not start: `reason` `"listen_failed"` (the address: `code` `EADDRINUSE`, `EACCES`...) or
   * `"state_file_failed"` (`path`); with a `message` and a `remediation`.
   *
   * @since 0.1.0
   * @category errors
   */
  AdminApiError,
  /**
   * True for an `AdminApiError`.
   *
   * @since 0.1.0
   * @category errors
   */
  isAdminApiError
} from "./internal/admin/errors.js"

/**
 * The address the API listens on unless told otherwise: only this machine reaches it.
 *
 * @since 0.1.0
 */
export const DEFAULT_HOST: string = AdminOptions.DEFAULT_HOST

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The TCP port; `0` (the default) takes any free one: read it from {@link AdminServer}. */
  readonly port?: number | undefined
  /**
   * The address to listen on. `"127.0.0.1"` by default: only this machine reaches it. Any other address is logged
   * as a warning at start: reads (the tree, stderr lines, events) are open to whoever reaches it.
   */
  readonly host?: string | undefined
  /**
   * The bearer token of state-changing calls: at least 16 visible ASCII characters. Generated at start when left
   * out (32 random bytes, base64url: 43 characters); read it from {@link AdminServer} or the state file.
   */
  readonly token?: string | Redacted.Redacted<string> | undefined
  /**
   * A file to write `{ "url", "token", "pid" }` to (JSON, mode 0600, replaced whole if it exists), removed when the
   * layer closes, or when the process exits first (`process.exit`): how the CLI finds a running API. None by default.
   */
  readonly stateFile?: string | undefined
  /** How often an idle Server-Sent Events stream sends a comment (`: keep-alive`). 15 seconds by default. */
  readonly keepAlive?: DurationInput | undefined
}

/**
 * The admin API, serving.
 *
 * @since 0.1.0
 * @category tags
 */
export class AdminServer extends Context.Tag("effect-agent-supervisor/AdminServer")<AdminServer, {
  /** The base URL for a client on this machine, without a trailing slash: `http://127.0.0.1:43127`. */
  readonly url: string
  /** The address listened on, as given. */
  readonly host: string
  /** The port listened on (the one picked when `0` was given). */
  readonly port: number
  /** The bearer token of state-changing calls (given, or generated at start). */
  readonly token: Redacted.Redacted<string>
  /** The state file written (an absolute path), if one was asked for. */
  readonly stateFile: string | undefined
  /** Server-Sent Events streams open now (clients of `/api/events` and of stderr follows). */
  readonly streams: Effect.Effect<number>
  /**
   * Says the tree is about to stop while the API goes on serving (as `agent-supervisor up` stops its tree before
   * its API, so that `status` answers during the stop): each event stream then ends after the stop's own events,
   * with `closing`, and a call the stop cuts says the tree is stopping (not to start the child, nor to call again).
   */
  readonly treeStopping: Effect.Effect<void>
}>() {}

/**
 * What the API shows of the cluster this process is a runner or a client of (`GET /api/cluster`): where each started
 * agent runs, read from the cluster's placements without waking an agent. `agent-supervisor up` provides it for a
 * tree file with a `cluster` section; without it, `/api/cluster` answers 404 `NotClustered`.
 *
 * @since 0.1.0
 * @category tags
 */
export class ClusterPlacements extends Context.Tag("effect-agent-supervisor/AdminApi/ClusterPlacements")<
  ClusterPlacements,
  {
    /** Each started agent, by name, with its runner's state; a database that does not answer is a `StoreError`. */
    readonly list: Effect.Effect<ReadonlyArray<PlacementView>, StoreError>
  }
>() {}

/**
 * Serves the admin API of the tree in {@link RootSupervisor} (and of the cluster in {@link ClusterPlacements}, if
 * one is provided) until the scope closes. Closing ends every event stream and waits at most 2 seconds for requests
 * under way, then cuts their connections; the state file goes first. Fails with a `ConfigError` for bad options (every problem, the token never shown) and an `AdminApiError`
 * when the address cannot be listened on or the state file cannot be written.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: Options
) => Effect.Effect<AdminServer["Type"], AdminApiError | ConfigError, Scope.Scope | RootSupervisor> = Effect.fn(
  "AdminApi.make"
)(function*(options?: Options) {
  const settings = yield* AdminOptions.decode(options)
  const root = yield* RootSupervisor
  const token = settings.token ?? Auth.generate()
  const running = yield* Server.make(root, settings, token, yield* Effect.serviceOption(ClusterPlacements))
  if (settings.stateFile !== undefined) {
    yield* StateFile.make(settings.stateFile, { url: running.url, token, pid: process.pid }, running)
  }
  if (!Guard.isLoopback(settings.host)) {
    yield* Effect.logWarning(
      `The admin API listens on ${settings.host}:${running.port}: whoever reaches it can read the tree, its ` +
        `events and stderr lines (state-changing calls need the token)`
    )
  }
  yield* Effect.annotateCurrentSpan("url", running.url)
  return {
    url: running.url,
    host: settings.host,
    port: running.port,
    token,
    stateFile: settings.stateFile,
    streams: running.streams,
    treeStopping: running.stopping
  }
})

/**
 * {@link make} as a Layer providing {@link AdminServer}: add it beside the tree's layer.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const App = AdminApi.layer({ port: 8080 }).pipe(
 *   Layer.provideMerge(Supervisor.layer({ children })),
 *   Layer.provide(Store.layerMemory)
 * )
 * ```
 */
export const layer = (options?: Options): Layer.Layer<AdminServer, AdminApiError | ConfigError, RootSupervisor> =>
  Layer.scoped(AdminServer, make(options))

/**
 * The admin API's contract: its JSON endpoints as an `HttpApi` (served by `AdminApi.layer`, called by the CLI
 * through `HttpApiClient`, described by the OpenAPI document), and the paths of the routes that are not JSON
 * (Server-Sent Events, Prometheus text, the dashboard).
 *
 * A child is addressed by its path below the root: its id, or the ids from the root's child down joined by "/"
 * (`workers/echo` for the agent `echo` of the nested supervisor `workers`). In a URL the path is one segment,
 * encoded with `encodeURIComponent` (`/api/children/workers%2Fecho`).
 *
 * Reads are open to whoever reaches the address (127.0.0.1 by default); every call that changes state needs the
 * bearer token (`Authorization: Bearer TOKEN`).
 *
 * @internal
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as Schema from "effect/Schema"
import {
  CallBody,
  CallFailed,
  CallResult,
  CallTimedOut,
  PublishBody,
  Published,
  TaskNotFound,
  TaskParams,
  TaskView,
  TopicFull,
  TopicNotFound,
  TopicView
} from "./workApi.js"

// ---- views ----

/** The last heartbeat's reading of an agent. */
export const HealthView = Schema.Struct({
  /** The ping's round trip, in milliseconds. */
  latencyMillis: Schema.Number,
  /** CPU% of the agent's whole process group since the beat before (null on the first). */
  cpuPercent: Schema.NullOr(Schema.Number),
  /** RSS of the whole process group, in MiB (null where /proc is missing). */
  memoryMb: Schema.NullOr(Schema.Number),
  /** Live processes in the group. */
  processes: Schema.Number,
  /** When it was taken, epoch milliseconds. */
  timestamp: Schema.Number
})
export type HealthView = typeof HealthView.Type

/**
 * What an agent's process group uses now, from the shared scan of /proc (at most 5 s old when read), whatever its
 * heartbeat: a heartbeat of 30 s reports its first memory up to 30 s after the start, this at the first scan after
 * it (`null` until then).
 */
export const ResourcesView = Schema.Struct({
  /** RSS of the whole process group, in MiB. */
  memoryMb: Schema.Number,
  /** Live processes in the group. */
  processes: Schema.Number,
  /** When the scan it comes from was taken, epoch milliseconds. */
  timestamp: Schema.Number
})
export type ResourcesView = typeof ResourcesView.Type

/** How an agent's last incarnation ended. */
export const ExitView = Schema.Struct({
  pid: Schema.Number,
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  /** The supervisor asked for it (a stop or a restart), as opposed to the agent exiting by itself. */
  requested: Schema.Boolean,
  /** Epoch milliseconds. */
  at: Schema.Number,
  /** The limit it was killed for (`memory_limit`, `cpu_limit`, `pids_limit`), or null. */
  limit: Schema.NullOr(Schema.Literal("memory_limit", "cpu_limit", "pids_limit")),
  /** It outlived SIGKILL by 5 s and was given up on (`ExitInfo.leftBehind`); sent only when true. */
  leftBehind: Schema.optional(Schema.Literal(true))
})
export type ExitView = typeof ExitView.Type

/** How an agent's limits are enforced (`AgentProcess.LimitsInForce`): sizes in bytes, CPU in cores. */
export const LimitsView = Schema.Struct({
  mode: Schema.Literal("cgroup-v2", "cgroup-v1", "polling", "none"),
  why: Schema.String,
  memory: Schema.NullOr(Schema.Number),
  cpu: Schema.NullOr(Schema.Number),
  pids: Schema.NullOr(Schema.Number)
})
export type LimitsView = typeof LimitsView.Type

/** What a pool child has beside a nested supervisor's view (`Supervisor.poolInfo`): its members are its children. */
export const PoolView = Schema.Struct({
  /** The size asked for (`scale`): its members, agent children `"<pool>/<i>"`, once a scale has run its course. */
  size: Schema.Number,
  /** The most members a scale may ask for (the pool's `maxSize`); optional to read: an earlier server sends none. */
  maxSize: Schema.optional(Schema.Number),
  /** How a call picks a member. */
  routing: Schema.Literal("least-in-flight", "round-robin")
}).annotations({ identifier: "PoolView" })
export type PoolView = typeof PoolView.Type

/** One child of the tree: an agent (`"worker"`) or a nested supervisor with its own children. */
export interface ChildView {
  /** The child's path below the root (see the module's doc): what the other endpoints take. */
  readonly id: string
  /** An agent's name (as in its logs and store records), or a nested supervisor's path from the root's name. */
  readonly name: string
  readonly kind: "worker" | "supervisor"
  /** An agent's lifecycle state (`RUNNING`, `CRASHED`, ...), a supervisor's `RUNNING`, `RESTARTING`, `STOPPED`. */
  readonly state: string
  /** The supervisor's view: `"running"`, `"restarting"` (waiting for its restart) or `"stopped"`. */
  readonly status: "running" | "restarting" | "stopped"
  /** Its circuit breaker is open: it stays down until it is started or restarted by hand. */
  readonly parked: boolean
  /** An agent's process's pid from its spawn to its exit (`Metadata.pid`): null when none runs, and for a supervisor. */
  readonly pid: number | null
  /** When its process started, epoch milliseconds (null when none runs, as `pid`; always null for a supervisor). */
  readonly startedAt: number | null
  /** Restarts over the child's life (an agent's own count; 0 for a supervisor). */
  readonly restarts: number
  /** Requests waiting for their answer (0 for a supervisor). */
  readonly inFlight: number
  readonly lastExit: ExitView | null
  /** How its limits are enforced (null for a supervisor, and before an agent's first start). */
  readonly limits: LimitsView | null
  readonly health: HealthView | null
  /** The running agent's group as /proc reads it now (null for a supervisor, when none runs, without /proc). */
  readonly resources: ResourcesView | null
  /**
   * A pool (`Supervisor.pool`, a `"supervisor"` whose children are its members): its size and routing, running or
   * not (a stopped pool has no children to show). `null` for an agent and a plain nested supervisor.
   */
  readonly pool: PoolView | null
  /** A supervisor's children, in the order it started them; empty for an agent. */
  readonly children: ReadonlyArray<ChildView>
}

export const ChildView: Schema.Schema<ChildView> = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  kind: Schema.Literal("worker", "supervisor"),
  state: Schema.String,
  status: Schema.Literal("running", "restarting", "stopped"),
  parked: Schema.Boolean,
  pid: Schema.NullOr(Schema.Number),
  startedAt: Schema.NullOr(Schema.Number),
  restarts: Schema.Number,
  inFlight: Schema.Number,
  lastExit: Schema.NullOr(ExitView),
  limits: Schema.NullOr(LimitsView),
  health: Schema.NullOr(HealthView),
  resources: Schema.NullOr(ResourcesView),
  pool: Schema.NullOr(PoolView),
  children: Schema.Array(Schema.suspend((): Schema.Schema<ChildView> => ChildView))
}).annotations({ identifier: "ChildView" })

/** The whole tree, read at one moment. */
export const TreeView = Schema.Struct({
  /** The root supervisor's name. */
  name: Schema.String,
  /** When the tree was read, epoch milliseconds: uptimes are `now - startedAt`. */
  now: Schema.Number,
  children: Schema.Array(ChildView)
}).annotations({ identifier: "TreeView" })
export type TreeView = typeof TreeView.Type

/** One restart decision (`Supervisor.restartHistory`), newest first. `child` is the child's path below the root. */
export const RestartView = Schema.Struct({
  child: Schema.String,
  timestamp: Schema.Number,
  reason: Schema.String,
  attempt: Schema.Number,
  delayMillis: Schema.Number,
  affected: Schema.Array(Schema.String),
  /** The agent's exit code, `null` when a signal ended it; absent when no process ended (a nested supervisor's end). */
  exitCode: Schema.optional(Schema.NullOr(Schema.Number)),
  /** The signal that ended the agent (`"SIGKILL"`), `null` when it exited with a code; absent as `exitCode`. */
  signal: Schema.optional(Schema.NullOr(Schema.String)),
  /** The agent's process outlived SIGKILL by 5 s and was given up on (`ExitView.leftBehind`); sent only when true. */
  leftBehind: Schema.optional(Schema.Literal(true))
}).annotations({ identifier: "RestartView" })
export type RestartView = typeof RestartView.Type

/** One stderr line of an agent (`AgentSupervisor.StderrLine`). */
export const StderrLineView = Schema.Struct({
  pid: Schema.Number,
  line: Schema.String,
  /** When it was read, epoch milliseconds. */
  timestamp: Schema.Number,
  /** Its number, above every line's read before it (not consecutive): a line read both ways has one. */
  seq: Schema.Number
}).annotations({ identifier: "StderrLine" })
export type StderrLineView = typeof StderrLineView.Type

/**
 * Where one agent of a cluster runs (`Cluster.Placement`): an agent is listed while it is started (from its first
 * message until it is passivated, its shard moves or its runner stops).
 */
export const PlacementView = Schema.Struct({
  /** The agent's name: its entity id. */
  agent: Schema.String,
  /** The runner that holds it, `host:port`. */
  runner: Schema.String,
  /** Its shard, `group:id`. */
  shard: Schema.String,
  /** When it started there, epoch milliseconds. */
  since: Schema.Number,
  /**
   * `"running"`: its runner is live (registered, healthy, heartbeat within the shard-lock expiration); `"lost"`: it
   * is not (it died: the agent starts on another runner at its next message). Absent when the runners could not be
   * read.
   */
  state: Schema.optional(Schema.Literal("running", "lost"))
}).annotations({ identifier: "PlacementView" })
export type PlacementView = typeof PlacementView.Type

// ---- errors: a JSON body `{ "_tag": ..., "message": ... }`, never a stack ----

/** No child has this path (404). */
export class ChildNotFound extends Schema.TaggedError<ChildNotFound>()(
  "ChildNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** The request is malformed, or asks a supervisor for what only an agent has (400). */
export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

/** A state-changing call without the right bearer token (401). */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

/**
 * A state-changing call whose body is not JSON (415): its `Content-Type` names another media type (a form, text). A
 * body that says it is JSON and does not parse is a `BadRequest`.
 */
export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 415 })
) {}

/** The operation was refused by the tree: a start that failed, a supervisor that escalated (409). */
export class OperationFailed extends Schema.TaggedError<OperationFailed>()(
  "OperationFailed",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 409 })
) {}

/** This process is no runner or client of a cluster: its tree file has no `cluster` section (404). */
export class NotClustered extends Schema.TaggedError<NotClustered>()(
  "NotClustered",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** The cluster's database did not answer (503). */
export class ClusterUnavailable extends Schema.TaggedError<ClusterUnavailable>()(
  "ClusterUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

// ---- endpoints ----

const childId = HttpApiSchema.param("id", Schema.String)

/** `?lines=N`: how many of the last stderr lines (all that are kept by default). */
export const StderrParams = Schema.Struct({
  lines: Schema.optional(
    Schema.NumberFromString.annotations({ message: () => "must be a whole number of 1 or more" }).pipe(
      Schema.int({ message: () => "must be a whole number of 1 or more" }),
      Schema.positive({ message: () => "must be a whole number of 1 or more" })
    )
  )
})

/**
 * The body of `POST .../reload`: none, or `{}`. No settings: a reload from the API runs the child's configuration
 * as it is (a new one is for the library's `Supervisor.reload`).
 */
export const ReloadBody = Schema.NullOr(
  Schema.Record({ key: Schema.String, value: Schema.Never }).annotations({
    jsonSchema: { type: "object", additionalProperties: false }
  })
).annotations({
  identifier: "ReloadBody",
  message: () => ({
    message: "reload takes no settings: send no body or {} (it reloads the child's configuration as it is)",
    override: true
  })
})

/** What a `scale` body's size that is no whole number >= 0 is told, with the value given (clipped: the client's). */
const wholeSize = (actual: unknown): string => {
  // (a number as it reads: JSON says `null` for Infinity, which `1e400` parses to)
  const given = typeof actual === "number" ? String(actual) : JSON.stringify(actual) ?? String(actual)
  return `must be a whole number of 0 or more (got ${given.length <= 40 ? given : `${given.slice(0, 40)}...`})`
}

/** The body of `POST .../scale`: the pool's new size. */
export const ScaleBody = Schema.Struct({
  // (one message for a size of another type too: not "Expected number, actual \"x\"")
  size: Schema.Number.annotations({ message: (issue) => wholeSize(issue.actual) }).pipe(
    Schema.filter((n) => Number.isSafeInteger(n) && n >= 0, {
      message: (issue) => wholeSize(issue.actual),
      jsonSchema: { type: "integer", minimum: 0 }
    })
  )
}).annotations({
  identifier: "ScaleBody",
  message: () => ({ message: `scale takes a JSON body { "size": N }, N a whole number of 0 or more`, override: false }),
  // `{ "size": 2, "sise": 3 }` is a 400, as an unknown key is everywhere else
  parseOptions: { onExcessProperty: "error" }
})

/** `?child=ID`: one child's restarts only. */
export const HistoryParams = Schema.Struct({
  child: Schema.optional(Schema.String)
})

/** Reading the tree. */
export class TreeGroup extends HttpApiGroup.make("tree")
  .add(HttpApiEndpoint.get("tree", "/api/tree").addSuccess(TreeView))
  .add(
    HttpApiEndpoint.get("child")`/api/children/${childId}`
      .addSuccess(ChildView)
      .addError(ChildNotFound)
  )
  .add(
    HttpApiEndpoint.get("history", "/api/history")
      .setUrlParams(HistoryParams)
      .addSuccess(Schema.Array(RestartView))
      .addError(ChildNotFound)
  )
  .add(
    HttpApiEndpoint.get("stderr")`/api/children/${childId}/stderr`
      .setUrlParams(StderrParams)
      .addSuccess(Schema.Array(StderrLineView))
      .addError(ChildNotFound)
      .addError(BadRequest)
  )
{}

/**
 * Changing the tree: each needs the bearer token, takes no body or a JSON one (`Content-Type: application/json` or a
 * `+json` type), and answers with the child as it is once the operation is done:
 * start, stop, restart; reload (rolling: the new incarnation up before the old one goes; a pool member by member);
 * scale (a pool's size).
 */
export class ControlGroup extends HttpApiGroup.make("control")
  .add(
    HttpApiEndpoint.post("restart")`/api/children/${childId}/restart`
      .addSuccess(ChildView)
      .addError(ChildNotFound)
      .addError(OperationFailed)
  )
  .add(
    HttpApiEndpoint.post("stop")`/api/children/${childId}/stop`
      .addSuccess(ChildView)
      .addError(ChildNotFound)
      .addError(OperationFailed)
  )
  .add(
    HttpApiEndpoint.post("start")`/api/children/${childId}/start`
      .addSuccess(ChildView)
      .addError(ChildNotFound)
      .addError(OperationFailed)
  )
  .add(
    HttpApiEndpoint.post("reload")`/api/children/${childId}/reload`
      .setPayload(ReloadBody)
      .addSuccess(ChildView)
      .addError(ChildNotFound)
      .addError(OperationFailed)
  )
  .add(
    HttpApiEndpoint.post("scale")`/api/children/${childId}/scale`
      .setPayload(ScaleBody)
      .addSuccess(ChildView)
      .addError(ChildNotFound)
      .addError(OperationFailed)
  )
  .addError(Unauthorized)
  .addError(UnsupportedMediaType)
{}

const topicName = HttpApiSchema.param("name", Schema.String)
const taskId = HttpApiSchema.param("id", Schema.String)

/**
 * Sending work to the tree: a call to an agent or a pool (answered with the agent's result once it answers, within
 * the call's timeout), a task published to a topic (answered with its id at once). Each needs the bearer token and a
 * JSON body with the `payload`, given to the agent as it is. A published task's outcome is read by its id, with the
 * token too (a GET, but what it reads is an agent's answer, as a call's is).
 */
export class WorkGroup extends HttpApiGroup.make("work")
  .add(
    HttpApiEndpoint.post("call")`/api/children/${childId}/call`
      .setPayload(CallBody)
      .addSuccess(CallResult)
      .addError(ChildNotFound)
      .addError(OperationFailed)
      .addError(CallFailed)
      .addError(CallTimedOut)
  )
  .add(
    HttpApiEndpoint.post("publish")`/api/topics/${topicName}/publish`
      .setPayload(PublishBody)
      .addSuccess(Published)
      .addError(OperationFailed)
      .addError(TopicFull)
      .addError(TopicNotFound)
  )
  .add(HttpApiEndpoint.get("topics", "/api/topics").addSuccess(Schema.Array(TopicView)))
  .add(
    HttpApiEndpoint.get("task")`/api/tasks/${taskId}`
      .setUrlParams(TaskParams)
      .addSuccess(TaskView)
      .addError(TaskNotFound)
      .addError(OperationFailed)
  )
  .addError(Unauthorized)
  .addError(UnsupportedMediaType)
{}

/** The cluster this process is a runner or a client of: where each started agent runs. Never wakes an agent. */
export class ClusterGroup extends HttpApiGroup.make("cluster")
  .add(
    HttpApiEndpoint.get("placements", "/api/cluster")
      .addSuccess(Schema.Array(PlacementView))
      .addError(NotClustered)
      .addError(ClusterUnavailable)
  )
{}

/** The admin API's JSON endpoints. */
export class AdminHttpApi extends HttpApi.make("agent-supervisor")
  .add(TreeGroup)
  .add(ControlGroup)
  .add(WorkGroup)
  .add(ClusterGroup)
  .addError(BadRequest)
{}

// ---- routes outside the HttpApi ----

/**
 * The event that ends every event stream the server ends (`event: end`, `data: { "reason": ... }`): `closing` when
 * the admin API closes (the tree is stopping), `ended` when what it followed ended. A client that sees the
 * connection close without it lost the server (killed, or the network went away).
 */
export const STREAM_END = "end"

/** Why a stream ended, as its `end` event's `reason` says. */
export type StreamEndReason = "closing" | "ended"

export const Routes = {
  /** The tree's lifecycle events (`SupervisorEvent`) as Server-Sent Events: `event: <_tag>`, `data: <JSON>`. */
  events: "/api/events",
  /** One agent's stderr lines as Server-Sent Events (`data: <StderrLine JSON>`), from now on. */
  stderrFollow: (id: string) => `/api/children/${encodeURIComponent(id)}/stderr/follow`,
  /** Prometheus text exposition format 0.0.4 of every Effect metric in the process. */
  metrics: "/metrics",
  /** The OpenAPI 3.1 document of every route (the event streams and `/metrics` included). */
  openapi: "/api/openapi.json",
  /** The dashboard, one HTML page. */
  dashboard: "/"
} as const

/**
 * The records a store keeps (states, metrics, restart records, child records, checkpoints, task outcomes) and the
 * queries that read them back: their schemas and types. `Store.ts` re-exports each of them under the same name,
 * which is how they are meant to be reached (`Store.StateRecord`, `Store.TaskRecord`).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The latest known state of one agent (one record per agent: a new one replaces the old).
 *
 * @since 0.1.0
 * @category schemas
 */
export const StateRecord = Schema.Struct({
  agent_name: Schema.String,
  /** A lifecycle state: `"RUNNING"`, `"CRASHED"`... */
  state: Schema.String,
  /** The pid of the current incarnation, when there is one. */
  pid: Schema.optionalWith(Schema.Number, { exact: true }),
  restart_count: Schema.Number,
  /** Epoch milliseconds. */
  updated_at: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type StateRecord = typeof StateRecord.Type

/**
 * A metric event: `event`, `agent_name` and `timestamp` (epoch milliseconds) plus any other JSON fields, which a
 * backend keeps as they are.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MetricEvent = Schema.Struct(
  {
    event: Schema.String,
    agent_name: Schema.String,
    timestamp: Schema.Number
  },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/**
 * @since 0.1.0
 * @category models
 */
export type MetricEvent = typeof MetricEvent.Type

/**
 * The metric written on every lifecycle transition.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StateChange = Schema.Struct({
  event: Schema.Literal("agent_state_change"),
  agent_name: Schema.String,
  old_state: Schema.String,
  new_state: Schema.String,
  timestamp: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type StateChange = typeof StateChange.Type

/**
 * The metric written on every heartbeat.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HealthCheck = Schema.Struct({
  event: Schema.Literal("supervisor_health_check"),
  agent_name: Schema.String,
  state: Schema.String,
  cpu_percent: Schema.Number,
  memory_mb: Schema.Number,
  latency_ms: Schema.Number,
  restart_count: Schema.Number,
  timestamp: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type HealthCheck = typeof HealthCheck.Type

/**
 * Builds an `agent_state_change` metric.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stateChange = (fields: Omit<StateChange, "event">): StateChange => ({
  event: "agent_state_change",
  ...fields
})

/**
 * Builds a `supervisor_health_check` metric.
 *
 * @since 0.1.0
 * @category constructors
 */
export const healthCheck = (fields: Omit<HealthCheck, "event">): HealthCheck => ({
  event: "supervisor_health_check",
  ...fields
})

/**
 * One restart decision: why, which attempt, after which delay, and how the previous incarnation ended.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RestartRecord = Schema.Struct({
  agent_name: Schema.String,
  /** Epoch milliseconds. */
  timestamp: Schema.Number,
  /** `"crash"`, `"heartbeat"`, `"manual"`, `"start_failed"`... */
  reason: Schema.String,
  attempt: Schema.Number,
  delay_ms: Schema.Number,
  exit_code: Schema.optionalWith(Schema.NullOr(Schema.Number), { exact: true }),
  signal: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true }),
  /**
   * The process outlived SIGKILL by 5 s and was given up on (`AgentProcess.ExitInfo.leftBehind`); absent otherwise
   * (and in the records of versions before it).
   */
  left_behind: Schema.optionalWith(Schema.Literal(true), { exact: true })
})

/**
 * @since 0.1.0
 * @category models
 */
export type RestartRecord = typeof RestartRecord.Type

/**
 * A metrics query: every field narrows the result.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MetricQuery = Schema.Struct({
  agent: Schema.optional(Schema.String),
  event: Schema.optional(Schema.String),
  /** Epoch milliseconds, inclusive. */
  since: Schema.optional(Schema.Number),
  /** At most this many events; {@link defaultMetricLimit} when absent. */
  limit: Schema.optional(Schema.Int.pipe(Schema.nonNegative()))
})

/**
 * @since 0.1.0
 * @category models
 */
export type MetricQuery = typeof MetricQuery.Type

/**
 * What a tree keeps of one of its children across runs, under its `restore` option: the spec of a child added by
 * `startChild` (a static child's is in the code), and whether its circuit is open. One record per supervisor path
 * and child id: a new one replaces the old.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChildRecord = Schema.Struct({
  /** The supervisor's path in the tree: `"root"`, `"root/workers"`. */
  supervisor: Schema.String,
  child_id: Schema.String,
  /** A dynamic child's spec, as JSON text the tree wrote (every default applied); absent for a static child. */
  spec: Schema.optionalWith(Schema.String, { exact: true }),
  /** Its circuit is open: it stays down until restarted by hand. */
  parked: Schema.Boolean,
  /** Epoch milliseconds. */
  updated_at: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type ChildRecord = typeof ChildRecord.Type

/**
 * An agent's latest checkpoint (protocol 1.1 `checkpoint`, sent without a request id): kept so that its next
 * incarnation, and its first one in the next run of the application over a persistent store, are sent it in
 * `restore`. One record per agent: a new one replaces the old.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CheckpointRecord = Schema.Struct({
  agent_name: Schema.String,
  /** Any JSON value, as the agent sent it. */
  data: Schema.Unknown,
  /** Epoch milliseconds. */
  updated_at: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type CheckpointRecord = typeof CheckpointRecord.Type

/**
 * How many metrics `listMetrics` returns when the query sets no `limit`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMetricLimit = 1000

/**
 * One failed attempt at a task published on a topic: which attempt, when, the subscriber that failed it, and how.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskError = Schema.Struct({
  /** 1-based. */
  attempt: Schema.Number,
  /** Epoch milliseconds. */
  at: Schema.Number,
  /** The subscriber's path in the tree: `"root/workers/summarizer"`. */
  child: Schema.String,
  /** The error's `_tag`: `"AgentTaskError"`, `"AgentTimeoutError"`... */
  tag: Schema.String,
  message: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export type TaskError = typeof TaskError.Type

/**
 * The outcome of a task published on a topic: `"succeeded"` with its `result`, or `"dead"` (a dead letter: it failed
 * every attempt it was allowed) with the error of each. One record per task: a new one replaces the old.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskRecord = Schema.Struct({
  task_id: Schema.String,
  topic: Schema.String,
  /** Any JSON value, as published. */
  payload: Schema.Unknown,
  status: Schema.Literal("succeeded", "dead"),
  /** Any JSON value: what the subscriber answered, when the task succeeded. */
  result: Schema.optionalWith(Schema.Unknown, { exact: true }),
  attempts: Schema.Number,
  /** Oldest first. */
  errors: Schema.Array(TaskError),
  /** Epoch milliseconds: when the task was published. */
  created_at: Schema.Number,
  /** Epoch milliseconds: when its outcome was known. */
  updated_at: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type TaskRecord = typeof TaskRecord.Type

/**
 * A task records query: every field narrows the result.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskQuery {
  readonly topic?: string | undefined
  readonly status?: TaskRecord["status"] | undefined
  /** At most this many records; {@link defaultTaskLimit} when absent. */
  readonly limit?: number | undefined
}

/**
 * How many records `listTasks` returns when the query sets no `limit`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTaskLimit = 1000

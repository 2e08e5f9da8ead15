/**
 * The store: where agents' states, metrics and restart history are kept (and checkpoints, the child records of
 * trees that restore, and the outcomes of the tasks of topics). A service beside the supervisor,
 * always best effort: the supervisor reaches it only through {@link resilient} (and a `Writer` for writes),
 * so a slow or broken backend never delays or fails supervision.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigErrorEffect from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { ConfigError, StoreError } from "../Errors.js"
import type { DurationInput } from "../internal/durationText.js"
import * as Edge from "../internal/schema.js"
import * as backends from "./internal/backends.js"
import * as memory from "./internal/memory.js"
import type { PgOptions, SqliteOptions } from "./internal/options.js"
import * as Resilient from "./internal/resilient.js"
import * as resilientStore from "./internal/resilientStore.js"
import type {
  CheckpointRecord,
  ChildRecord,
  MetricEvent,
  MetricQuery,
  RestartRecord,
  StateRecord,
  TaskQuery,
  TaskRecord
} from "./Records.js"
import { defaultMetricLimit } from "./Records.js"

// The records live in `Records.ts`: this module is the service, its layers and its wrapper.
export {
  /** An agent's latest checkpoint (protocol 1.1), kept for its next incarnation. @since 0.1.0 */
  CheckpointRecord,
  /** What a tree keeps of one of its children across runs (its `restore` option). @since 0.1.0 */
  ChildRecord,
  /** How many metrics `listMetrics` returns when the query sets no `limit`. @since 0.1.0 */
  defaultMetricLimit,
  /** How many records `listTasks` returns when the query sets no `limit`. @since 0.1.0 */
  defaultTaskLimit,
  /** The metric written on every heartbeat. @since 0.1.0 */
  HealthCheck,
  /** Builds a `supervisor_health_check` metric. @since 0.1.0 */
  healthCheck,
  /** A metric event: `event`, `agent_name`, `timestamp` and any other JSON fields. @since 0.1.0 */
  MetricEvent,
  /** A metrics query: every field narrows the result. @since 0.1.0 */
  MetricQuery,
  /** One restart decision. @since 0.1.0 */
  RestartRecord,
  /** The metric written on every lifecycle transition. @since 0.1.0 */
  StateChange,
  /** Builds an `agent_state_change` metric. @since 0.1.0 */
  stateChange,
  /** The latest known state of one agent. @since 0.1.0 */
  StateRecord,
  /** One failed attempt at a task published on a topic. @since 0.1.0 */
  TaskError,
  /** A task records query: every field narrows the result. @since 0.1.0 */
  type TaskQuery,
  /** The outcome of a task published on a topic: succeeded, or dead (a dead letter). @since 0.1.0 */
  TaskRecord
} from "./Records.js"

/**
 * The store service. "Newest first" means by `timestamp`, descending, and among equal timestamps the later
 * write first.
 *
 * @since 0.1.0
 * @category tags
 */
export class Store extends Context.Tag("effect-agent-supervisor/Store")<Store, {
  /** Keeps the latest state of an agent, replacing the previous one. */
  readonly saveState: (record: StateRecord) => Effect.Effect<void, StoreError>
  readonly saveMetric: (event: MetricEvent) => Effect.Effect<void, StoreError>
  /**
   * Keeps several metrics, in order, in one operation: the supervisor's writer hands over the metrics waiting
   * together (a thousand agents beating every second write a thousand a second). Optional: a store without it
   * gets one `saveMetric` each.
   */
  readonly saveMetrics?: (events: ReadonlyArray<MetricEvent>) => Effect.Effect<void, StoreError>
  readonly recordRestart: (record: RestartRecord) => Effect.Effect<void, StoreError>
  readonly getState: (agent: string) => Effect.Effect<Option.Option<StateRecord>, StoreError>
  /** Newest first; `since` is inclusive; at most `limit` (default {@link defaultMetricLimit}) events. */
  readonly listMetrics: (query?: MetricQuery) => Effect.Effect<ReadonlyArray<MetricEvent>, StoreError>
  /** Newest first; every agent's when `agent` is absent. */
  readonly restartHistory: (agent?: string) => Effect.Effect<ReadonlyArray<RestartRecord>, StoreError>
  /**
   * Keeps a child's record (a tree's `restore` option), replacing the one of the same supervisor and id, which keeps
   * its place in the list. The three child operations are optional (a store written for 0.1.0 still compiles), and
   * a tree asked to restore over a store without them fails to start with a `ConfigError`.
   */
  readonly saveChild?: (record: ChildRecord) => Effect.Effect<void, StoreError>
  /** Forgets a child, and the records of every supervisor below it (path `supervisor/childId` and under). */
  readonly deleteChild?: (supervisor: string, childId: string) => Effect.Effect<void, StoreError>
  /** In the order first saved; every supervisor's when `supervisor` is absent. */
  readonly listChildren?: (supervisor?: string) => Effect.Effect<ReadonlyArray<ChildRecord>, StoreError>
  /**
   * Keeps an agent's latest checkpoint, replacing the previous one. The two checkpoint operations are optional (a
   * store written for 0.1.0 still compiles); over a store without them, checkpoints live as long as the supervisor.
   */
  readonly saveCheckpoint?: (record: CheckpointRecord) => Effect.Effect<void, StoreError>
  readonly loadCheckpoint?: (agent: string) => Effect.Effect<Option.Option<CheckpointRecord>, StoreError>
  /**
   * Keeps a task's outcome (topics: its result, or its dead letter), replacing the record of the same `task_id`.
   * The four task operations are optional (a store written for 0.1.0 still compiles); a store keeps a bounded
   * number of records (`maxTasks`, and `maxTaskAge` in the SQL stores), the least recently written going first.
   */
  readonly saveTask?: (record: TaskRecord) => Effect.Effect<void, StoreError>
  readonly getTask?: (taskId: string) => Effect.Effect<Option.Option<TaskRecord>, StoreError>
  /** Newest `updated_at` first, then the later write; at most `limit` (default {@link defaultTaskLimit}). */
  readonly listTasks?: (query?: TaskQuery) => Effect.Effect<ReadonlyArray<TaskRecord>, StoreError>
  /** Forgets a task's record; nothing happens when there is none. */
  readonly deleteTask?: (taskId: string) => Effect.Effect<void, StoreError>
  /**
   * Forgets an agent's last state and checkpoint (its metrics and restart records stay, within their own bounds);
   * nothing happens when there are none. A tree calls it when an agent child leaves it for good (`deleteChild`, a
   * `temporary` child's exit, a pool member scaled away, a nested supervisor or pool deleted whole: each agent it
   * had) and no agent of that name is left in the tree. The SQL
   * stores make a deletion that failed once the database answers again. Optional (a store written for 0.1.0 still
   * compiles): a store without it keeps every agent's last state. Since 0.3.0.
   */
  readonly deleteAgent?: (agent: string) => Effect.Effect<void, StoreError>
}>() {}

/**
 * Options of the in-memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /** How many metrics to keep; past it the oldest are dropped. 10 000 by default. */
  readonly maxMetrics?: number | undefined
  /** How many restart records to keep; past it the oldest are dropped. 1 000 by default. */
  readonly maxRestarts?: number | undefined
  /** How many task records to keep; past it the least recently written are dropped. 10 000 by default. */
  readonly maxTasks?: number | undefined
  /**
   * Of how many agents (by name) to keep the last state and checkpoint; past it those written least recently are
   * dropped. An agent that leaves its tree for good is forgotten at once (`deleteAgent`); this bound is for those
   * that do not (a tree that stops, the dynamic children of a nested supervisor that restarts, without `restore`).
   * 10 000 by default, above the agents a process runs (an agent's state is written at each change of its
   * lifecycle).
   */
  readonly maxAgents?: number | undefined
}

/** Every key of {@link MemoryOptions}: any other is refused, with the one meant when one is close. */
const MEMORY_KEYS = Edge.allKeysOf<MemoryOptions>()(["maxMetrics", "maxRestarts", "maxTasks", "maxAgents"])

/**
 * Makes an in-memory store: bounded, lost when the process ends. An options key it does not know (`maxMetrix`)
 * fails with a `ConfigError` naming it, and the option meant when one is close.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: MemoryOptions): Effect.Effect<Store["Type"], ConfigError> =>
  Effect.suspend(() => {
    const unknown = Edge.unknownKeysError(options, MEMORY_KEYS, undefined)
    return unknown === undefined ? Effect.map(memory.make(options, defaultMetricLimit), Store.of) : Effect.fail(unknown)
  })

/**
 * The in-memory store with its default bounds (`Store/Memory.ts`'s `layer` takes others).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Store> = Layer.effect(
  Store,
  Effect.map(memory.make(undefined, defaultMetricLimit), Store.of)
)

/**
 * A store that cannot fail: every operation is bounded by a timeout, and every failure, defect or timeout is
 * counted in `failures` and replaced by nothing (writes) or an empty answer (reads). Failures are logged per
 * outage, not per operation: see {@link resilient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResilientStore {
  readonly saveState: (record: StateRecord) => Effect.Effect<void>
  readonly saveMetric: (event: MetricEvent) => Effect.Effect<void>
  /** Several metrics in one operation (`saveMetric` for each where the store has no `saveMetrics`). */
  readonly saveMetrics: (events: ReadonlyArray<MetricEvent>) => Effect.Effect<void>
  readonly recordRestart: (record: RestartRecord) => Effect.Effect<void>
  readonly getState: (agent: string) => Effect.Effect<Option.Option<StateRecord>>
  readonly listMetrics: (query?: MetricQuery) => Effect.Effect<ReadonlyArray<MetricEvent>>
  readonly restartHistory: (agent?: string) => Effect.Effect<ReadonlyArray<RestartRecord>>
  /** `true` once the store has the record, `false` when it failed (a tree tries again) or has no child records. */
  readonly saveChild: (record: ChildRecord) => Effect.Effect<boolean>
  /** As `saveChild`. */
  readonly deleteChild: (supervisor: string, childId: string) => Effect.Effect<boolean>
  /** `None` when the store failed (or keeps no child records): a tree must not take that for "no children". */
  readonly listChildren: (supervisor?: string) => Effect.Effect<Option.Option<ReadonlyArray<ChildRecord>>>
  /** Dropped when the store fails or keeps no checkpoints. */
  readonly saveCheckpoint: (record: CheckpointRecord) => Effect.Effect<void>
  /** `None` when there is none, the store failed, or it keeps no checkpoints. */
  readonly loadCheckpoint: (agent: string) => Effect.Effect<Option.Option<CheckpointRecord>>
  /** Dropped when the store fails or keeps no task records (as is `deleteTask`). */
  readonly saveTask: (record: TaskRecord) => Effect.Effect<void>
  readonly deleteTask: (taskId: string) => Effect.Effect<void>
  /** Dropped when the store fails or has no `deleteAgent`. */
  readonly deleteAgent: (agent: string) => Effect.Effect<void>
  /** `None` when there is none, the store failed, or it keeps no task records. */
  readonly getTask: (taskId: string) => Effect.Effect<Option.Option<TaskRecord>>
  /** `[]` when there are none, the store failed, or it keeps no task records. */
  readonly listTasks: (query?: TaskQuery) => Effect.Effect<ReadonlyArray<TaskRecord>>
  /** How many operations of this wrapper failed, died or timed out so far. */
  readonly failures: Effect.Effect<number>
}

const ResilientSettings = Schema.Struct({
  timeout: Schema.optionalWith(Edge.DurationInput, { default: () => Resilient.DEFAULTS.timeout, exact: true }),
  summaryInterval: Schema.optionalWith(Edge.DurationInput, {
    default: () => Duration.millis(Resilient.DEFAULTS.summaryIntervalMillis),
    exact: true
  })
})

/**
 * Options of {@link resilient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResilientOptions {
  /** The bound of each operation; 5 seconds by default. */
  readonly timeout?: DurationInput | undefined
  /** While the store fails, how often at most a summary of the outage is logged; 10 seconds by default. */
  readonly summaryInterval?: DurationInput | undefined
}

/**
 * Wraps a store so that it can neither fail, nor hang longer than `timeout`, nor take its caller down: see
 * {@link ResilientStore}. A failed write is dropped, a failed read answers empty, and `failures` counts both.
 *
 * Failures are logged per outage of the underlying store, shared by every wrapper over it: one warning when the
 * outage starts (with its first error), then at most one summary every `summaryInterval` while operations keep
 * failing (how many failed since the last line, writes dropped and reads answered empty), and one line when it
 * ends, at the first success of an operation begun after it started (its duration and totals). While writes
 * fail, a successful read does not end the outage (a read-only database is still an outage). The timeout and the
 * summaries use Effect's `Clock`, so `TestClock` drives them. Fails with `ConfigError` only for options it cannot
 * read: a duration that is none, or negative, or a key that is no option (a misspelt `timout`).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const store = yield* Store.resilient(yield* Store.Store, { timeout: "2 seconds" })
 * yield* store.saveMetric(Store.stateChange({ agent_name: "echo", old_state: "IDLE", new_state: "STARTING", timestamp }))
 * ```
 */
export const resilient = (
  store: Store["Type"],
  options?: ResilientOptions
): Effect.Effect<ResilientStore, ConfigError> =>
  Effect.map(
    Edge.decodeOptions(ResilientSettings, options ?? {}, { whole: "(resilient options)", undefinedIsAbsent: true }),
    ({ summaryInterval, timeout }) =>
      resilientStore.make(store, { timeout, summaryIntervalMillis: Duration.toMillis(summaryInterval) })
  )

/**
 * The SQLite store on `filename` (see `Store/Sqlite.ts`): survives restarts of the application, needs no server.
 * Building it loads the driver, creates the file's missing directories and opens the file: a broken install or an
 * unusable path fails it with a `StoreError` whose remediation says what to run or change.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerSqlite({ filename: "agents.sqlite", maxMetrics: 50_000, maxMetricAge: "3 days" })
 * ```
 */
export const layerSqlite = (options: SqliteOptions): Layer.Layer<Store, ConfigError | StoreError> =>
  Layer.unwrapEffect(Effect.map(backends.sqlite, (sqlite) => sqlite.layer(options)))

/**
 * The SQLite store with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqliteConfig = (
  config: Config.Config.Wrap<SqliteOptions>
): Layer.Layer<Store, ConfigError | StoreError | ConfigErrorEffect.ConfigError> =>
  Layer.unwrapEffect(Effect.map(backends.sqlite, (sqlite) => sqlite.layerConfig(config)))

/**
 * The PostgreSQL store (see `Store/Pg.ts`): connects on first use, so the application starts while the server is
 * down, and records again once it is back. The driver is loaded when the layer is built: a missing one fails it
 * with a `StoreError` saying what to install.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerPg({ url: Redacted.make("postgres://app@db:5432/agents") })
 * ```
 */
export const layerPg = (options: PgOptions): Layer.Layer<Store, ConfigError | StoreError> =>
  Layer.unwrapEffect(Effect.map(backends.pg, (pg) => pg.layer(options)))

/**
 * The PostgreSQL store with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerPgConfig({ url: Config.redacted("DATABASE_URL") })
 * ```
 */
export const layerPgConfig = (
  config: Config.Config.Wrap<PgOptions>
): Layer.Layer<Store, ConfigError | StoreError | ConfigErrorEffect.ConfigError> =>
  Layer.unwrapEffect(Effect.map(backends.pg, (pg) => pg.layerConfig(config)))

/**
 * What a store remembers of one agent from earlier runs of the application.
 *
 * @since 0.1.0
 * @category models
 */
export interface Restored {
  readonly agent: string
  /** The last state written, with its pid and time (`updated_at`). */
  readonly state: Option.Option<StateRecord>
  /** The restart count of the last state written: restarts in the run that wrote it. */
  readonly restartCount: number
  /** Restart decisions, newest first, as far back as the store's retention keeps them. */
  readonly history: ReadonlyArray<RestartRecord>
}

/**
 * Reads back what the store holds about `agent`: its last state, restart count and restart history. Read it
 * before the agent starts again, since starting writes new states. An unreachable store gives nothing (and a
 * warning), as {@link resilient} does: it fails only with `ConfigError`, for `options` it cannot read.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const previous = yield* Store.restore("echo")
 * if (Option.isSome(previous.state)) yield* Console.log(`echo was ${previous.state.value.state}`)
 * ```
 */
export const restore = (agent: string, options?: ResilientOptions): Effect.Effect<Restored, ConfigError, Store> =>
  Effect.flatMap(Store, (store) => Effect.flatMap(resilient(store, options), (reads) => memory.restore(reads, agent)))

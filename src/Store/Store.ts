/**
 * The store: where agents' states, metrics and restart history are kept. A service beside the supervisor,
 * always best effort: the supervisor reaches it only through {@link resilient} (and a `Writer` for writes),
 * so a slow or broken backend never delays or fails supervision.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import type * as Config from "effect/Config"
import type * as ConfigErrorEffect from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type { ConfigError, StoreError } from "../Errors.js"
import * as driver from "./internal/driver.js"
import * as memory from "./internal/memory.js"
import type { PgOptions, SqliteOptions } from "./internal/options.js"
import * as internalResilient from "./internal/resilient.js"

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
  signal: Schema.optionalWith(Schema.NullOr(Schema.String), { exact: true })
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
 * How many metrics `listMetrics` returns when the query sets no `limit`.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMetricLimit = 1000

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
  readonly recordRestart: (record: RestartRecord) => Effect.Effect<void, StoreError>
  readonly getState: (agent: string) => Effect.Effect<Option.Option<StateRecord>, StoreError>
  /** Newest first; `since` is inclusive; at most `limit` (default {@link defaultMetricLimit}) events. */
  readonly listMetrics: (query?: MetricQuery) => Effect.Effect<ReadonlyArray<MetricEvent>, StoreError>
  /** Newest first; every agent's when `agent` is absent. */
  readonly restartHistory: (agent?: string) => Effect.Effect<ReadonlyArray<RestartRecord>, StoreError>
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
}

/** What the in-memory store holds. */
interface MemoryContents {
  readonly states: HashMap.HashMap<string, StateRecord>
  /** Oldest first, in write order. */
  readonly metrics: Chunk.Chunk<MetricEvent>
  /** Oldest first, in write order. */
  readonly restarts: Chunk.Chunk<RestartRecord>
}

/**
 * Makes an in-memory store: bounded, lost when the process ends. The default when no `Store` is provided.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: MemoryOptions): Effect.Effect<Store["Type"]> =>
  Effect.gen(function*() {
    const maxMetrics = memory.bound(options?.maxMetrics, 10_000)
    const maxRestarts = memory.bound(options?.maxRestarts, 1_000)
    const contents = yield* Ref.make<MemoryContents>({
      states: HashMap.empty(),
      metrics: Chunk.empty(),
      restarts: Chunk.empty()
    })

    return Store.of({
      saveState: (record) =>
        Ref.update(contents, (c) => ({ ...c, states: HashMap.set(c.states, record.agent_name, record) })),
      saveMetric: (event) =>
        Ref.update(contents, (c) => ({ ...c, metrics: memory.append(c.metrics, event, maxMetrics) })),
      recordRestart: (record) =>
        Ref.update(contents, (c) => ({ ...c, restarts: memory.append(c.restarts, record, maxRestarts) })),
      getState: (agent) => Effect.map(Ref.get(contents), (c) => HashMap.get(c.states, agent)),
      listMetrics: (query) =>
        Effect.map(Ref.get(contents), (c) => {
          const limit = memory.bound(query?.limit, defaultMetricLimit)
          const selected = memory.newestFirst(c.metrics, (event) =>
            (query?.agent === undefined || event.agent_name === query.agent) &&
            (query?.event === undefined || event.event === query.event) &&
            (query?.since === undefined || event.timestamp >= query.since))
          return selected.length > limit ? selected.slice(0, limit) : selected
        }),
      restartHistory: (agent) =>
        Effect.map(
          Ref.get(contents),
          (c) => memory.newestFirst(c.restarts, (record) => agent === undefined || record.agent_name === agent)
        )
    })
  })

/**
 * The in-memory store with its default bounds (`Store/Memory.ts`'s `layer` takes others).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Store> = Layer.effect(Store, makeMemory())

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
  readonly recordRestart: (record: RestartRecord) => Effect.Effect<void>
  readonly getState: (agent: string) => Effect.Effect<Option.Option<StateRecord>>
  readonly listMetrics: (query?: MetricQuery) => Effect.Effect<ReadonlyArray<MetricEvent>>
  readonly restartHistory: (agent?: string) => Effect.Effect<ReadonlyArray<RestartRecord>>
  /** How many operations of this wrapper failed, died or timed out so far. */
  readonly failures: Effect.Effect<number>
}

/**
 * Options of {@link resilient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResilientOptions {
  /** The bound of each operation; 5 seconds by default. */
  readonly timeout?: Duration.DurationInput | undefined
  /** While the store fails, how often at most a summary of the outage is logged; 10 seconds by default. */
  readonly summaryInterval?: Duration.DurationInput | undefined
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
 * summaries use Effect's `Clock`, so `TestClock` drives them.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const store = Store.resilient(yield* Store.Store, { timeout: "2 seconds" })
 * yield* store.saveMetric(Store.stateChange({ agent_name: "echo", old_state: "IDLE", new_state: "STARTING", timestamp }))
 * ```
 */
export const resilient = (store: Store["Type"], options?: ResilientOptions): ResilientStore => {
  const { failures, guard } = internalResilient.make(store, {
    timeout: Duration.decode(options?.timeout ?? Duration.seconds(5)),
    summaryIntervalMillis: Duration.toMillis(options?.summaryInterval ?? Duration.seconds(10))
  })
  return {
    saveState: (record) => guard("saveState", "write", () => store.saveState(record), () => undefined),
    saveMetric: (event) => guard("saveMetric", "write", () => store.saveMetric(event), () => undefined),
    recordRestart: (record) => guard("recordRestart", "write", () => store.recordRestart(record), () => undefined),
    getState: (agent) => guard("getState", "read", () => store.getState(agent), Option.none),
    listMetrics: (query) =>
      guard(
        "listMetrics",
        "read",
        () => query === undefined ? store.listMetrics() : store.listMetrics(query),
        (): ReadonlyArray<MetricEvent> => []
      ),
    restartHistory: (agent) =>
      guard(
        "restartHistory",
        "read",
        () => agent === undefined ? store.restartHistory() : store.restartHistory(agent),
        (): ReadonlyArray<RestartRecord> => []
      ),
    failures
  }
}

// The SQL backends are loaded when their layer is built: an application on the memory store never loads a
// database driver (they add a native module and about 60 ms to the start-up). These are the core's only edges to a
// backend, and no load-time cycle: this module is evaluated before either runs (`dpdm` lists them unless told
// `--skip-dynamic-imports circular`). A driver that does not load is a broken install: it fails the layer.
const loadSqlite = Effect.tryPromise({
  try: () => import("./Sqlite.js"),
  catch: (error) => driver.unavailable("load", driver.sqlite, error)
})
const loadPg = Effect.tryPromise({
  try: () => import("./Pg.js"),
  catch: (error) => driver.unavailable("load", driver.pg, error)
})

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
  Layer.unwrapEffect(Effect.map(loadSqlite, (sqlite) => sqlite.layer(options)))

/**
 * The SQLite store with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqliteConfig = (
  config: Config.Config.Wrap<SqliteOptions>
): Layer.Layer<Store, ConfigError | StoreError | ConfigErrorEffect.ConfigError> =>
  Layer.unwrapEffect(Effect.map(loadSqlite, (sqlite) => sqlite.layerConfig(config)))

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
  Layer.unwrapEffect(Effect.map(loadPg, (pg) => pg.layer(options)))

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
  Layer.unwrapEffect(Effect.map(loadPg, (pg) => pg.layerConfig(config)))

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
 * before the agent starts again, since starting writes new states. Never fails: an unreachable store gives
 * nothing (and a warning), as {@link resilient} does.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const previous = yield* Store.restore("echo")
 * if (Option.isSome(previous.state)) yield* Console.log(`echo was ${previous.state.value.state}`)
 * ```
 */
export const restore = (agent: string, options?: ResilientOptions): Effect.Effect<Restored, never, Store> =>
  Effect.gen(function*() {
    const store = resilient(yield* Store, options)
    const [state, history] = yield* Effect.all([store.getState(agent), store.restartHistory(agent)], {
      concurrency: 2
    })
    return {
      agent,
      state,
      restartCount: Option.match(state, { onNone: () => 0, onSome: (s) => s.restart_count }),
      history
    }
  })

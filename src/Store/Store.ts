/**
 * The store: where agents' states, metrics and restart history are kept. A service beside the supervisor,
 * always best effort: the supervisor reaches it only through {@link resilient} (and a `Writer` for writes),
 * so a slow or broken backend never delays or fails supervision.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import type * as Config from "effect/Config"
import type * as ConfigErrorEffect from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { type ConfigError, StoreError } from "../Errors.js"
import * as Memory from "./Memory.js"
import type * as Pg from "./Pg.js"
import type * as Sqlite from "./Sqlite.js"

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

// Suspended: Memory.ts imports this module, so its bindings may not exist yet while this one is evaluated.
/**
 * The in-memory store with its default bounds (see `Memory.layer` for others).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Store> = Layer.suspend(() => Memory.layer())

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

/** The failures of one outage, or of one stretch of it between two log lines. */
interface Tally {
  failed: number
  writes: number
  reads: number
}

/** One outage of one store: from its first failure to the first success of an operation begun after it. */
interface Outage {
  /** `Clock` millis of the first failure. */
  readonly since: number
  /** How many operations had begun when it started: their successes were already on their way, not a recovery. */
  readonly begunBefore: number
  readonly total: Tally
  /** Since the last line logged about it. */
  readonly recent: Tally
  /** `Clock` millis of the last line logged about it. */
  reportedAt: number
}

/** What every `resilient` wrapper over one store shares. */
interface Health {
  begun: number
  outage: Outage | undefined
}

// Per underlying store, not per wrapper: every agent wraps the one store of its supervisor, and an outage is to be
// logged once, not once per agent.
const healthOf = new WeakMap<object, Health>()

const healthFor = (store: Store["Type"]): Health => {
  let health = healthOf.get(store)
  if (health === undefined) {
    health = { begun: 0, outage: undefined }
    healthOf.set(store, health)
  }
  return health
}

const describeCause = (operation: string, cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => `${operation} failed: ${Cause.pretty(cause)}`,
    onSome: (error) =>
      error instanceof StoreError
        ? `${error.operation} ${error.reason === "timeout" ? "timed out" : "failed"}: ${error.detail}`
        : `${operation} failed: ${String(error)}`
  })

const formatMillis = (millis: number): string => Duration.format(Duration.millis(Math.max(0, Math.round(millis))))

const describeTally = (tally: Tally): string =>
  `${tally.failed} operation(s) failed (${tally.writes} write(s) dropped, ${tally.reads} read(s) answered empty)`

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
  const timeout = Duration.decode(options?.timeout ?? Duration.seconds(5))
  const summaryInterval = Duration.toMillis(options?.summaryInterval ?? Duration.seconds(10))
  const failures = Ref.unsafeMake(0)
  const health = healthFor(store)

  // Each runs in one synchronous step (no other fiber between reading the state and updating it), then logs.
  const failed = (operation: string, kind: "write" | "read", cause: Cause.Cause<unknown>) =>
    Effect.clockWith((clock) =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        const error = describeCause(operation, cause)
        const count = (tally: Tally) => {
          tally.failed++
          if (kind === "write") tally.writes++
          else tally.reads++
        }
        const outage = health.outage
        if (outage === undefined) {
          const started: Outage = {
            since: now,
            begunBefore: health.begun,
            total: { failed: 0, writes: 0, reads: 0 },
            recent: { failed: 0, writes: 0, reads: 0 },
            reportedAt: now
          }
          count(started.total)
          health.outage = started
          return Effect.logWarning(
            `Store outage started, going on without the store: ${error} ` +
              `(a summary follows every ${formatMillis(summaryInterval)} at most while it lasts)`
          ).pipe(Effect.annotateLogs({ store_operation: operation }))
        }
        count(outage.total)
        count(outage.recent)
        if (now - outage.reportedAt < summaryInterval) return Effect.void
        const message = `Store outage going on for ${formatMillis(now - outage.since)}; ` +
          `in the last ${formatMillis(now - outage.reportedAt)}, ${describeTally(outage.recent)}, ` +
          `${outage.total.failed} since it started; latest: ${error}`
        outage.reportedAt = now
        outage.recent.failed = outage.recent.writes = outage.recent.reads = 0
        return Effect.logWarning(message)
      })
    )

  const succeeded = (kind: "write" | "read", begun: number) =>
    Effect.clockWith((clock) =>
      Effect.suspend(() => {
        const outage = health.outage
        // Begun before the outage, or a read while writes fail: not a sign that the store is back.
        if (outage === undefined || begun <= outage.begunBefore || (kind === "read" && outage.total.writes > 0)) {
          return Effect.void
        }
        health.outage = undefined
        return Effect.logInfo(
          `Store outage ended after ${formatMillis(clock.unsafeCurrentTimeMillis() - outage.since)}: ` +
            describeTally(outage.total)
        )
      })
    )

  const guard = <A>(
    operation: string,
    kind: "write" | "read",
    run: () => Effect.Effect<A, StoreError>,
    fallback: () => A
  ): Effect.Effect<A> =>
    Effect.suspend(() => {
      const begun = ++health.begun
      // A backend may throw instead of returning an Effect: `suspend` turns that into a defect, caught below.
      return Effect.suspend(() => {
        const effect: unknown = run()
        return Effect.isEffect(effect)
          ? effect as Effect.Effect<A, StoreError>
          : Effect.dieMessage(`Store ${operation} did not return an Effect`)
      }).pipe(
        // Disconnected: a backend that ignores interruption cannot hold the caller past the timeout.
        Effect.disconnect,
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new StoreError({ operation, reason: "timeout", detail: `no answer within ${Duration.format(timeout)}` })
        }),
        Effect.matchCauseEffect({
          onFailure: (cause) =>
            Ref.update(failures, (n) => n + 1).pipe(
              Effect.zipRight(failed(operation, kind, cause)),
              Effect.as(fallback())
            ),
          onSuccess: (value) =>
            health.outage === undefined ? Effect.succeed(value) : Effect.as(succeeded(kind, begun), value)
        })
      )
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
    failures: Ref.get(failures)
  }
}

// The SQL backends are loaded when their layer is built: an application on the memory store never loads a
// database driver (they add a native module and about 60 ms to the start-up).
const loadSqlite = Effect.promise(() => import("./Sqlite.js"))
const loadPg = Effect.promise(() => import("./Pg.js"))

/**
 * The SQLite store on `filename` (see `Store/Sqlite.ts`): survives restarts of the application, needs no server.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerSqlite({ filename: "agents.sqlite", maxMetrics: 50_000, maxMetricAge: "3 days" })
 * ```
 */
export const layerSqlite = (options: Sqlite.SqliteOptions): Layer.Layer<Store, ConfigError> =>
  Layer.unwrapEffect(Effect.map(loadSqlite, (sqlite) => sqlite.layer(options)))

/**
 * The SQLite store with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqliteConfig = (
  config: Config.Config.Wrap<Sqlite.SqliteOptions>
): Layer.Layer<Store, ConfigError | ConfigErrorEffect.ConfigError> =>
  Layer.unwrapEffect(Effect.map(loadSqlite, (sqlite) => sqlite.layerConfig(config)))

/**
 * The PostgreSQL store (see `Store/Pg.ts`): connects on first use, so the application starts while the server is
 * down, and records again once it is back.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerPg({ url: Redacted.make("postgres://app@db:5432/agents") })
 * ```
 */
export const layerPg = (options: Pg.PgOptions): Layer.Layer<Store, ConfigError> =>
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
  config: Config.Config.Wrap<Pg.PgOptions>
): Layer.Layer<Store, ConfigError | ConfigErrorEffect.ConfigError> =>
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

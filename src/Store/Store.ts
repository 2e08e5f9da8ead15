/**
 * The store: where agents' states, metrics and restart history are kept. A service beside the supervisor,
 * always best effort: the supervisor reaches it only through {@link resilient} (and a `Writer` for writes),
 * so a slow or broken backend never delays or fails supervision.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { StoreError } from "../Errors.js"
import * as Memory from "./Memory.js"

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
 * logged as a warning, counted in `failures`, and replaced by nothing (writes) or an empty answer (reads).
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
  /** How many operations failed, died or timed out so far. */
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
}

const describeCause = (cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => Cause.pretty(cause),
    onSome: (error) => error instanceof StoreError ? error.message : String(error)
  })

/**
 * Wraps a store so that it can neither fail, nor hang longer than `timeout`, nor take its caller down: see
 * {@link ResilientStore}. The timeout uses Effect's `Clock`, so `TestClock` drives it.
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
  const failures = Ref.unsafeMake(0)

  const guard = <A>(
    operation: string,
    run: () => Effect.Effect<A, StoreError>,
    fallback: () => A
  ): Effect.Effect<A> =>
    Effect.suspend(() => {
      // A backend may throw instead of returning an Effect: `suspend` turns that into a defect, caught below.
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
      Effect.catchAllCause((cause) =>
        Ref.update(failures, (n) => n + 1).pipe(
          Effect.zipRight(Effect.logWarning(`Store ${operation} failed, going on without it: ${describeCause(cause)}`)),
          Effect.annotateLogs({ store_operation: operation }),
          Effect.as(fallback())
        )
      )
    )

  return {
    saveState: (record) => guard("saveState", () => store.saveState(record), () => undefined),
    saveMetric: (event) => guard("saveMetric", () => store.saveMetric(event), () => undefined),
    recordRestart: (record) => guard("recordRestart", () => store.recordRestart(record), () => undefined),
    getState: (agent) => guard("getState", () => store.getState(agent), Option.none),
    listMetrics: (query) =>
      guard(
        "listMetrics",
        () => query === undefined ? store.listMetrics() : store.listMetrics(query),
        (): ReadonlyArray<MetricEvent> => []
      ),
    restartHistory: (agent) =>
      guard(
        "restartHistory",
        () => agent === undefined ? store.restartHistory() : store.restartHistory(agent),
        (): ReadonlyArray<RestartRecord> => []
      ),
    failures: Ref.get(failures)
  }
}

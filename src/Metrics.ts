/**
 * The supervisor's metrics: Effect `Metric`s in Effect's global registry, named in the Prometheus style
 * (`agent_supervisor_...`), each series of an agent tagged `agent` with the agent's name. Read them with
 * `Metric.value` (a series: {@link forAgent}, then the metric's other tags in the order listed) or all at once with
 * `Metric.snapshot`; export them with {@link layerOtel} or by rendering the registry (the admin API's Prometheus
 * endpoint does).
 *
 * The supervisor updates them itself, without a step on the request path that a request did not take before: a
 * request costs a few calls on hooks resolved once per agent. A series is made when it first moves; an agent's
 * series outlive its incarnations (their gauges at 0 while it is stopped) and leave the registry a minute after the
 * agent itself is gone (deleted from its tree, a temporary child ended, its tree closed: Prometheus's way for a
 * target that is gone), unless an agent of that name is made again meanwhile (a nested tree restarted). Agents of
 * one name in two trees share their series, which go with the last of them.
 *
 * Spans: public operations are traced (`AgentSupervisor.make`, `.start`, `.stop`, `.restart`, `.health`,
 * `Supervisor.make`, `.startChild`, ...). A request (`handleEvent`) has a span, `AgentSupervisor.handleEvent` with
 * the attributes `agent` and `request.id`, only when a tracer other than Effect's default one is installed (such
 * as {@link layerOtel}'s): under the default tracer a span would cost a request about as much as its whole path in
 * the supervisor, and go nowhere.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type { ConfigError } from "./Errors.js"
import * as internal from "./internal/metrics/definitions.js"
import * as load from "./internal/metrics/load.js"
import type * as otelOptions from "./internal/metrics/otelOptions.js"

/**
 * How a request (`handleEvent`) ended, the `outcome` tag of {@link requests}: `ok`; `task_error` (the agent's
 * callback failed); `timeout` (sent, no answer in time); `start_timeout` (the agent did not come up in time, the
 * request was never sent); `start_failed` (the start it waited for failed, or the agent has not run since its start
 * failed: never sent); `crash` (the process exited with it); `circuit_open` (the agent is parked); `stopped`;
 * `protocol_error` (the payload cannot be sent); `stream_overflow` (a streaming call's consumer fell more than
 * `maxBufferedChunks` behind); `config_error` (a bad per-call option); `interrupted` (its caller was interrupted, or
 * stopped reading its stream early).
 *
 * @since 0.1.0
 * @category models
 */
export type RequestOutcome = internal.RequestOutcome

/**
 * Every {@link RequestOutcome}.
 *
 * @since 0.1.0
 * @category models
 */
export const requestOutcomes: ReadonlyArray<RequestOutcome> = internal.requestOutcomes

/**
 * `agent_supervisor_requests_total`, a counter: requests by how they ended. Tags `agent`, `outcome` (a
 * {@link RequestOutcome}).
 *
 * @since 0.1.0
 * @category metrics
 */
export const requests: Metric.Metric.Counter<number> = internal.metrics.requests

/**
 * `agent_supervisor_request_duration_seconds`, a histogram: from the call to its outcome, waiting for a (re)start
 * included, in seconds; every outcome but `interrupted`. Tag `agent`. Buckets (upper bounds, seconds): 0.0005,
 * 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requestDuration: Metric.Metric.Histogram<number> = internal.metrics.requestDuration

/**
 * `agent_supervisor_requests_in_flight`, a gauge: tasks sent to the agent's process and not answered yet (those
 * waiting for a slot under `maxInFlight`, or for a restart, are not). Tag `agent`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requestsInFlight: Metric.Metric.Gauge<number> = internal.metrics.requestsInFlight

/**
 * `agent_supervisor_restarts_total`, a counter: restarts decided after an exit the supervisor did not ask for, one
 * per restart record (by the agent's own policy, or by the tree it is in). Tags `agent` (for a nested supervisor
 * restarted by its parent, its path in the tree), `exit_class` (`normal`, `abnormal`), `reason` (`exit`,
 * `start_failed`, `heartbeat`; for a nested supervisor `escalation`, `auto_shutdown`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const restarts: Metric.Metric.Counter<number> = internal.metrics.restarts

/**
 * `agent_supervisor_time_to_ready_seconds`, a histogram: from an incarnation's spawn to its `ready`, in seconds
 * (failed starts are not observed). Tag `agent`. Buckets (seconds): 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
 * 10, 30, 60, 120.
 *
 * @since 0.1.0
 * @category metrics
 */
export const timeToReady: Metric.Metric.Histogram<number> = internal.metrics.timeToReady

/**
 * `agent_supervisor_heartbeat_latency_seconds`, a histogram: the round trip of each heartbeat ping answered, in
 * seconds. Tag `agent`. Buckets (seconds): 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
 * 2.5, 5, 10.
 *
 * @since 0.1.0
 * @category metrics
 */
export const heartbeatLatency: Metric.Metric.Histogram<number> = internal.metrics.heartbeatLatency

/**
 * `agent_supervisor_heartbeat_misses_total`, a counter: heartbeat pings that failed or timed out. Tag `agent`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const heartbeatMisses: Metric.Metric.Counter<number> = internal.metrics.heartbeatMisses

/**
 * `agent_supervisor_left_behind_total`, a counter: agent processes that outlived SIGKILL by 5 s (in uninterruptible
 * sleep: a hung filesystem or device) and were given up on (`AgentProcess.ExitInfo.leftBehind`), whether in a stop,
 * a kill for missed heartbeats or a limit; worth an alert, as each may hold memory and a cgroup until it ends. Tag
 * `agent`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const leftBehind: Metric.Metric.Counter<number> = internal.metrics.leftBehind

/**
 * `agent_supervisor_cpu_percent`, a gauge: CPU of the agent's process group at its last heartbeat, in percent of
 * one core (the supervisor's reading of /proc, else the agent's own report); 0 once the incarnation stops
 * running. Tag `agent`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const cpuPercent: Metric.Metric.Gauge<number> = internal.metrics.cpuPercent

/**
 * `agent_supervisor_memory_rss_bytes`, a gauge: resident memory of the agent's process group at its last
 * heartbeat, in bytes (as {@link cpuPercent}); 0 once the incarnation stops running. Tag `agent`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const memoryRss: Metric.Metric.Gauge<number> = internal.metrics.memoryRss

/**
 * `agent_supervisor_store_failures_total`, a counter: store operations that failed or did not answer in time
 * (`Store.resilient`: a write lost, a read answered empty). Not per agent (a tree's agents share a store). Tags
 * `operation` (`saveState`, `saveMetrics`, `recordRestart`, `getState`, ...), `reason` (`timeout`, `failure`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const storeFailures: Metric.Metric.Counter<number> = internal.metrics.storeFailures

/**
 * `agent_supervisor_store_writes_dropped_total`, a counter: writes the store writer gave up on before the store
 * had them. Not per agent. Tag `reason`: `buffer_full` (the oldest metric, the buffer being full), `flush_timeout`
 * (still buffered when closing gave up waiting for the store), `closed` (written after the writer closed).
 *
 * @since 0.1.0
 * @category metrics
 */
export const storeDrops: Metric.Metric.Counter<number> = internal.metrics.storeDrops

/**
 * `agent_supervisor_topic_tasks_total`, a counter: tasks of a topic (`Supervisor.publish`). Tags `topic` and
 * `event`: `published`, `delivered` (succeeded), `retried` (each attempt after the first), `dead_lettered`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const topicTasks: Metric.Metric.Counter<number> = internal.metrics.topicTasks

/**
 * `agent_supervisor_topic_queued`, a gauge: tasks of a topic published and not yet ended (delivering, retrying or
 * waiting for a subscriber), the number `maxQueued` bounds. Tag `topic`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const topicQueued: Metric.Metric.Gauge<number> = internal.metrics.topicQueued

/**
 * `agent_supervisor_pool_size`, a gauge: the members a pool is to have (its size, as `scale` set it). Tag `pool`
 * (its path, `"root/inference"`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const poolSize: Metric.Metric.Gauge<number> = internal.metrics.poolSize

/**
 * `agent_supervisor_pool_in_flight`, a gauge: calls in flight through a pool to its members (calls made to a member
 * directly are not counted). Tag `pool`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const poolInFlight: Metric.Metric.Gauge<number> = internal.metrics.poolInFlight

/**
 * One agent's series of a per-agent metric; add the metric's other tags after it, in the order its docs list them.
 *
 * @since 0.1.0
 * @category combinators
 * @example
 * ```ts
 * const ok = yield* Metric.value(Metrics.forAgent(Metrics.requests, "echo").pipe(Metric.tagged("outcome", "ok")))
 * const inFlight = yield* Metric.value(Metrics.forAgent(Metrics.requestsInFlight, "echo"))
 * ```
 */
export const forAgent = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, agent: string): Metric.Metric<
  Type,
  In,
  Out
> => Metric.tagged(metric, "agent", agent)

/**
 * Options of {@link layerOtel}: the collector's OTLP/HTTP endpoint (`url`: metrics go to `<url>/v1/metrics`, spans
 * to `<url>/v1/traces`, as JSON), the `serviceName` (and `serviceVersion`) they are reported under,
 * `exportInterval` (10 seconds by default) and `headers` sent with every export.
 *
 * @since 0.1.0
 * @category models
 */
export type OtelOptions = otelOptions.OtelOptions

/**
 * Exports the metrics and spans over OTLP/HTTP (JSON) through `@effect/opentelemetry`, an optional peer
 * dependency loaded when the layer is built (see `Metrics/Otel.ts`'s `layer`): every metric of Effect's global
 * registry, and every span of the program it is provided to (it installs a tracer), every `exportInterval` and
 * once more when its scope closes. Needs nothing else (its HTTP client is `fetch`'s). The layer fails with a
 * `ConfigError` when the package is missing or an option is bad; a collector that is down never fails the program.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const program = Supervisor.make(options).pipe(
 *   Effect.provide(Metrics.layerOtel({ url: "http://localhost:4318", serviceName: "agents" }))
 * )
 * ```
 */
export const layerOtel = (options: OtelOptions): Layer.Layer<never, ConfigError> =>
  Layer.unwrapEffect(Effect.map(load.otel, (otel) => otel.layer(options)))

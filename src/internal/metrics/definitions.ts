/**
 * The supervisor's metrics: their keys (name, type, description, buckets) and the `Metric`s over them that
 * `Metrics.ts` makes public. The instrumentation resolves the keys' hooks in Effect's global registry itself (see
 * `agent.ts`), so both read and write the same series.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"

/** How a request ended. @internal */
export type RequestOutcome =
  | "ok"
  | "task_error"
  | "timeout"
  | "start_timeout"
  | "start_failed"
  | "crash"
  | "circuit_open"
  | "stopped"
  | "protocol_error"
  | "stream_overflow"
  | "config_error"
  | "interrupted"

/** Every request outcome, in the order the docs list them. @internal */
export const requestOutcomes: ReadonlyArray<RequestOutcome> = [
  "ok",
  "task_error",
  "timeout",
  "start_timeout",
  "start_failed",
  "crash",
  "circuit_open",
  "stopped",
  "protocol_error",
  "stream_overflow",
  "config_error",
  "interrupted"
]

/** Why the store writer gave up on a write. @internal */
export type DropReason = "buffer_full" | "flush_timeout" | "closed"

/** Request latency buckets, in seconds: an echo answers in tens of microseconds, a model call in minutes. @internal */
export const requestDurationBuckets: ReadonlyArray<number> = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  120,
  300
]

/** Spawn-to-ready buckets, in seconds: a Node agent is ready in tens of milliseconds, a heavy Python one in seconds. @internal */
export const timeToReadyBuckets: ReadonlyArray<number> = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

/** Ping round-trip buckets, in seconds: up to the longest `pingTimeout` worth telling apart. @internal */
export const heartbeatLatencyBuckets: ReadonlyArray<number> = requestDurationBuckets.filter((bound) => bound <= 10)

const counter = (name: string, description: string): MetricKey.MetricKey.Counter<number> =>
  MetricKey.counter(name, { description, incremental: true })

const gauge = (name: string, description: string): MetricKey.MetricKey.Gauge<number> =>
  MetricKey.gauge(name, { description })

const histogram = (name: string, buckets: ReadonlyArray<number>, description: string): MetricKey.MetricKey.Histogram =>
  MetricKey.histogram(name, MetricBoundaries.fromIterable(buckets), description)

/** The metric keys, untagged. @internal */
export const keys = {
  requests: counter("agent_supervisor_requests_total", "Requests to agents (handleEvent calls), by how they ended"),
  requestDuration: histogram(
    "agent_supervisor_request_duration_seconds",
    requestDurationBuckets,
    "Time from a handleEvent call to its outcome, waiting for a (re)start included, in seconds"
  ),
  requestsInFlight: gauge(
    "agent_supervisor_requests_in_flight",
    "Tasks sent to an agent's process and not answered yet"
  ),
  restarts: counter(
    "agent_supervisor_restarts_total",
    "Restarts decided after an exit the supervisor did not ask for, by exit class and reason"
  ),
  timeToReady: histogram(
    "agent_supervisor_time_to_ready_seconds",
    timeToReadyBuckets,
    "Time from an agent's spawn to its ready message, in seconds"
  ),
  heartbeatLatency: histogram(
    "agent_supervisor_heartbeat_latency_seconds",
    heartbeatLatencyBuckets,
    "Round trip of a heartbeat ping, in seconds"
  ),
  heartbeatMisses: counter("agent_supervisor_heartbeat_misses_total", "Heartbeat pings that failed or timed out"),
  leftBehind: counter(
    "agent_supervisor_left_behind_total",
    "Agent processes that outlived SIGKILL by 5 s (uninterruptible sleep) and were given up on"
  ),
  cpuPercent: gauge(
    "agent_supervisor_cpu_percent",
    "CPU of an agent's process group at its last heartbeat, in percent of one core (0 once it is not running)"
  ),
  memoryRss: gauge(
    "agent_supervisor_memory_rss_bytes",
    "Resident memory of an agent's process group at its last heartbeat, in bytes (0 once it is not running)"
  ),
  storeFailures: counter(
    "agent_supervisor_store_failures_total",
    "Store operations that failed or timed out (writes lost, reads answered empty), by operation and reason"
  ),
  storeDrops: counter(
    "agent_supervisor_store_writes_dropped_total",
    "Writes the store writer gave up on before the store had them, by reason"
  ),
  topicTasks: counter(
    "agent_supervisor_topic_tasks_total",
    "Tasks of a topic by event: published, delivered (succeeded), retried (attempts after the first), dead_lettered"
  ),
  poolSize: gauge("agent_supervisor_pool_size", "The members a pool is to have (its size, as scale set it)"),
  poolInFlight: gauge(
    "agent_supervisor_pool_in_flight",
    "Calls in flight through a pool to its members (calls made to a member directly are not counted)"
  ),
  topicQueued: gauge(
    "agent_supervisor_topic_queued",
    "Tasks of a topic published and not yet ended (delivering, retrying, or waiting for a subscriber)"
  )
} as const

type Counter = Metric.Metric.Counter<number>
type Gauge = Metric.Metric.Gauge<number>
type Histogram = Metric.Metric.Histogram<number>

/** The public metrics, one per key. @internal */
export const metrics: {
  readonly requests: Counter
  readonly requestDuration: Histogram
  readonly requestsInFlight: Gauge
  readonly restarts: Counter
  readonly timeToReady: Histogram
  readonly heartbeatLatency: Histogram
  readonly heartbeatMisses: Counter
  readonly leftBehind: Counter
  readonly cpuPercent: Gauge
  readonly memoryRss: Gauge
  readonly storeFailures: Counter
  readonly storeDrops: Counter
  readonly topicTasks: Counter
  readonly topicQueued: Gauge
  readonly poolSize: Gauge
  readonly poolInFlight: Gauge
} = {
  requests: Metric.fromMetricKey(keys.requests),
  requestDuration: Metric.fromMetricKey(keys.requestDuration),
  requestsInFlight: Metric.fromMetricKey(keys.requestsInFlight),
  restarts: Metric.fromMetricKey(keys.restarts),
  timeToReady: Metric.fromMetricKey(keys.timeToReady),
  heartbeatLatency: Metric.fromMetricKey(keys.heartbeatLatency),
  heartbeatMisses: Metric.fromMetricKey(keys.heartbeatMisses),
  leftBehind: Metric.fromMetricKey(keys.leftBehind),
  cpuPercent: Metric.fromMetricKey(keys.cpuPercent),
  memoryRss: Metric.fromMetricKey(keys.memoryRss),
  storeFailures: Metric.fromMetricKey(keys.storeFailures),
  storeDrops: Metric.fromMetricKey(keys.storeDrops),
  topicTasks: Metric.fromMetricKey(keys.topicTasks),
  topicQueued: Metric.fromMetricKey(keys.topicQueued),
  poolSize: Metric.fromMetricKey(keys.poolSize),
  poolInFlight: Metric.fromMetricKey(keys.poolInFlight)
}

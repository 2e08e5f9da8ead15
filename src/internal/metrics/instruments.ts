/**
 * One agent's instruments, made once when the agent is made: the hooks of its series in Effect's global metric
 * registry, each resolved on first use and kept, so that an update is a plain call on a hook.
 *
 * Why not `Metric.tagged(...)` and `Metric.update` on the hot paths: a tagged metric unions its tags into a new
 * array at every update, and the registry then builds and hashes a new `MetricKey` to find the series (the
 * untagged metric's cache is keyed by that array, new each time); `Metric.update` adds an Effect step. Here a
 * request costs two hook calls (its outcome's counter and the latency histogram's binary search), and the
 * in-flight gauge two more, in the request table's synchronous code.
 *
 * Series are made on first use, not with the agent: an agent that never saw a timeout has no `timeout` series
 * (1,000 idle agents would otherwise each register a dozen series they never move). They outlive the agent's
 * incarnations, with their last values (its gauges are set to 0 when it stops running), and leave the registry
 * a delay after the agent itself ({@link acquire}: a tree's child deleted, a temporary child ended, the tree closed).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as MetricHook from "effect/MetricHook"
import type * as Scope from "effect/Scope"
import { keys, type RequestOutcome } from "./definitions.js"
import * as Hooks from "./hooks.js"

type Counter = MetricHook.MetricHook.Counter<number>
type Gauge = MetricHook.MetricHook.Gauge<number>
type Histogram = MetricHook.MetricHook.Histogram

/** One MiB, the unit of a `HealthSample`'s memory. */
const MIB = 1024 * 1024

/**
 * What a request table reports about the tasks of one incarnation (see `Requests.makeTable`). @internal
 */
export interface Meter {
  /** A task was written to the process (+1), or its slot was freed (-1). */
  readonly inFlight: (delta: number) => void
  /** The caller of a task in the table ended (was interrupted) before its answer. */
  readonly interrupted: () => void
}

/** A meter that counts nothing, for processes that belong to no supervised agent. @internal */
export const noMeter: Meter = { inFlight: () => {}, interrupted: () => {} }

/**
 * How a request's error reads as an outcome (the fields of `Errors.RequestError` it needs). @internal
 */
export const outcomeOf = (
  error: { readonly _tag: string; readonly operation?: string; readonly reason?: string }
): RequestOutcome => {
  switch (error._tag) {
    case "AgentTaskError":
      return "task_error"
    case "AgentTimeoutError":
      return error.operation === "start" ? "start_timeout" : "timeout"
    case "AgentCrashError":
      return error.reason === "circuit_open"
        ? "circuit_open"
        : error.reason === "start_failed"
        ? "start_failed"
        : "crash"
    case "AgentStoppedError":
      return "stopped"
    case "ProtocolError":
      return "protocol_error"
    case "AgentStreamError":
      return "stream_overflow"
    default:
      return "config_error"
  }
}

/**
 * Counts a restart decision of `agent` (a tree's decisions are made with no agent's instruments at hand; they are
 * rare, so the series is found by its labels each time, in `hooks.ts`'s cache). @internal
 */
export const restarted = (agent: string, exitClass: string, reason: string): void =>
  Hooks.counter(keys.restarts, [["agent", agent], ["exit_class", exitClass], ["reason", reason]]).update(1)

/** The instruments of one agent; every method is a synchronous call, safe anywhere. @internal */
export class AgentMetrics implements Meter {
  // Resolved through `hooks.ts`, whose cache is keyed by a string: an agent made again under the same name (each
  // start of a tree's dynamic child is a new agent) finds its series without building and hashing a `MetricKey`.
  private readonly labels: ReadonlyArray<readonly [string, string]>
  private readonly outcomes: Partial<Record<RequestOutcome, Counter>> = {}
  private duration: Histogram | undefined
  private inFlightGauge: Gauge | undefined
  private readyHistogram: Histogram | undefined
  private heartbeat: Histogram | undefined
  private misses: Counter | undefined
  private cpu: Gauge | undefined
  private rss: Gauge | undefined

  constructor(readonly agent: string) {
    this.labels = [["agent", agent]]
  }

  private outcome(outcome: RequestOutcome): Counter {
    return this.outcomes[outcome] ??= Hooks.counter(keys.requests, [...this.labels, ["outcome", outcome]])
  }

  /** A request ended with `outcome` after `seconds`. */
  requestEnded(outcome: RequestOutcome, seconds: number): void {
    this.outcome(outcome).update(1)
    ;(this.duration ??= Hooks.histogram(keys.requestDuration, this.labels)).update(seconds)
  }

  /** A request's caller was interrupted: no outcome of the agent's, no latency. */
  interrupted(): void {
    this.outcome("interrupted").update(1)
  }

  inFlight(delta: number): void {
    ;(this.inFlightGauge ??= Hooks.gauge(keys.requestsInFlight, this.labels)).modify(delta)
  }

  /** An incarnation became ready `seconds` after its spawn. */
  ready(seconds: number): void {
    ;(this.readyHistogram ??= Hooks.histogram(keys.timeToReady, this.labels)).update(seconds)
  }

  /**
   * A heartbeat's sample: its ping's round trip, and the CPU% and RSS (MiB) of the process group when known. Only
   * what is known moves its gauge.
   */
  sampled(latencyMillis: number, cpuPercent: number | undefined, memoryMb: number | undefined): void {
    ;(this.heartbeat ??= Hooks.histogram(keys.heartbeatLatency, this.labels)).update(latencyMillis / 1000)
    if (cpuPercent !== undefined) {
      ;(this.cpu ??= Hooks.gauge(keys.cpuPercent, this.labels)).update(cpuPercent)
    }
    if (memoryMb !== undefined) {
      ;(this.rss ??= Hooks.gauge(keys.memoryRss, this.labels)).update(Math.round(memoryMb * MIB))
    }
  }

  /** A heartbeat ping failed. */
  missedBeat(): void {
    ;(this.misses ??= Hooks.counter(keys.heartbeatMisses, this.labels)).update(1)
  }

  /** An incarnation's process outlived SIGKILL and was left behind (rare: the series is found each time). */
  leftBehind(): void {
    Hooks.counter(keys.leftBehind, this.labels).update(1)
  }

  /** The incarnation stopped running: no CPU, no memory (gauges that never moved stay unmade). */
  notRunning(): void {
    this.cpu?.update(0)
    this.rss?.update(0)
  }

  /** A restart was decided after an exit of this class, for this reason. */
  restarted(exitClass: string, reason: string): void {
    restarted(this.agent, exitClass, reason)
  }
}

/**
 * The instruments of the agent named `agent`, for the life of the scope: its name is held meanwhile, and when the
 * scope closes its series leave the registry after `Hooks.REMOVAL_DELAY_MILLIS`, unless an agent of the same name
 * lives by then. @internal
 */
export const acquire = (agent: string): Effect.Effect<AgentMetrics, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      Hooks.retainAgent(agent)
      return new AgentMetrics(agent)
    }),
    () => Effect.sync(() => Hooks.releaseAgent(agent))
  )

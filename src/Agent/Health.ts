/**
 * Health of a running agent: a heartbeat ping with its latency and the agent's own report, plus the supervisor's
 * own reading of the agent's process tree. Missed pings in a row mark the agent hung.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { RequestError } from "../Errors.js"
import type { AgentProcess } from "./Process.js"
import * as ProcessTree from "./ProcessTree.js"

/**
 * One health check of an agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface HealthSample {
  readonly agent: string
  readonly pid: number
  readonly latencyMillis: number
  /** What the agent reported about itself (none when its report was malformed). */
  readonly report: Option.Option<{
    readonly uptime_seconds: number
    readonly total_requests: number
    readonly memory_mb: number
    readonly cpu_percent: number
  }>
  /** RSS of the whole process group, from /proc (none where /proc is missing). */
  readonly memoryMb: Option.Option<number>
  /** CPU% of the whole process group since the previous check (none on the first). */
  readonly cpuPercent: Option.Option<number>
  /** Live processes in the group. */
  readonly processes: number
  /** Epoch milliseconds. */
  readonly timestamp: number
}

/**
 * Pings the agent and reads its process tree. `previous` is the tree sample of the check before, for CPU%.
 *
 * @since 0.1.0
 * @category checks
 */
export const check = (
  agent: AgentProcess,
  previous: ProcessTree.Sample | undefined,
  timeout?: Duration.DurationInput
): Effect.Effect<readonly [HealthSample, ProcessTree.Sample | undefined], RequestError> =>
  Effect.gen(function*() {
    const pong = yield* agent.ping(timeout === undefined ? undefined : { timeout })
    const tree = yield* ProcessTree.sample(agent.pid)
    const timestamp = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const sample: HealthSample = {
      agent: agent.name,
      pid: agent.pid,
      latencyMillis: pong.latencyMillis,
      report: pong.report,
      memoryMb: tree === undefined ? Option.none() : Option.some(tree.rssBytes / (1024 * 1024)),
      cpuPercent: tree !== undefined && previous !== undefined
        ? Option.some(ProcessTree.cpuPercent(previous, tree))
        : Option.none(),
      processes: tree?.processes ?? 0,
      timestamp
    }
    return [sample, tree] as const
  })

/**
 * What the heartbeat reports to its owner.
 *
 * @since 0.1.0
 * @category models
 */
export interface Callbacks {
  readonly onSample: (sample: HealthSample) => Effect.Effect<void>
  /** A ping failed; `missed` counts the failures in a row. */
  readonly onMissed: (missed: number, error: RequestError) => Effect.Effect<void>
  /** `unhealthyAfter` pings in a row failed: the agent is hung. The heartbeat stops after calling this. */
  readonly onUnhealthy: (missed: number) => Effect.Effect<void>
}

/**
 * Runs the heartbeat of one incarnation until it is interrupted (with the incarnation's scope) or finds the
 * agent hung. Pings are not limited by `maxInFlight`, so a busy agent that still answers stays healthy; one that
 * answers nothing is hung however many requests it has pending. Driven by Effect's `Clock`.
 *
 * @since 0.1.0
 * @category heartbeat
 */
export const heartbeat = (
  agent: AgentProcess,
  callbacks: Callbacks
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { heartbeatInterval, pingTimeout, unhealthyAfter } = agent.config
    // The CPU baseline comes from the first beat, not from start-up: a /proc scan per start would make starting
    // N agents cost N scans of N processes.
    let previous: ProcessTree.Sample | undefined = undefined
    let missed = 0
    const beat = Effect.gen(function*() {
      const result = yield* Effect.either(check(agent, previous, pingTimeout))
      if (result._tag === "Right") {
        const [sample, tree] = result.right
        previous = tree
        missed = 0
        yield* callbacks.onSample(sample)
        return true
      }
      // An exit is the exit watcher's business, not a missed beat.
      if (result.left._tag === "AgentCrashError" || result.left._tag === "AgentStoppedError") return false
      missed++
      yield* callbacks.onMissed(missed, result.left)
      if (missed >= unhealthyAfter) {
        yield* callbacks.onUnhealthy(missed)
        return false
      }
      return true
    })
    yield* Effect.sleep(heartbeatInterval)
    yield* beat.pipe(Effect.repeat({ schedule: Schedule.spaced(heartbeatInterval), while: (goOn) => goOn }))
  })

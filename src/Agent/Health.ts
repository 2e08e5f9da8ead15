/**
 * Health of a running agent: a heartbeat ping with its latency and the agent's own report, plus the supervisor's
 * own reading of the agent's process tree. Missed pings in a row mark the agent hung.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { RequestError } from "../Errors.js"
import * as ProcessTable from "./internal/processTable.js"
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

/** The check, reading a scan of /proc at most `maxAge` old (`ProcessTree.sample`'s default when undefined). */
const checkWithin = (
  agent: AgentProcess,
  previous: ProcessTree.Sample | undefined,
  timeout: Duration.DurationInput | undefined,
  maxAge: Duration.DurationInput | undefined
): Effect.Effect<readonly [HealthSample, ProcessTree.Sample | undefined], RequestError> =>
  Effect.gen(function*() {
    const pong = yield* agent.ping(timeout === undefined ? undefined : { timeout })
    const tree = yield* ProcessTree.sample(agent.pid, { maxAge })
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
 * Pings the agent and reads its process tree. `previous` is the tree sample of the check before, for CPU%. The
 * tree comes from the scan of /proc that every agent of this process shares (see `ProcessTree.sample`).
 *
 * @since 0.1.0
 * @category checks
 */
export const check = (
  agent: AgentProcess,
  previous: ProcessTree.Sample | undefined,
  timeout?: Duration.DurationInput
): Effect.Effect<readonly [HealthSample, ProcessTree.Sample | undefined], RequestError> =>
  checkWithin(agent, previous, timeout, undefined)

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
 * Where in its interval an incarnation's beats fall, in [0, 1): a hash of the agent's name and pid, so agents
 * started together (a tree's children, a group restart) ping at spread moments instead of all at once, and one
 * incarnation's phase is the same from run to run (no `Random` to seed in tests).
 */
const phaseOf = (name: string, pid: number): number => {
  const key = `${name}\u0000${pid}`
  let hash = 0x811c9dc5 // FNV-1a, then murmur3's finalizer: names that differ in one digit land far apart
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b)
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35)
  return ((hash ^ (hash >>> 16)) >>> 0) / 2 ** 32
}

/**
 * Runs the heartbeat of one incarnation until it is interrupted (with the incarnation's scope) or finds the
 * agent hung. Pings are not limited by `maxInFlight`, so a busy agent that still answers stays healthy; one that
 * answers nothing is hung however many requests it has pending. Driven by Effect's `Clock`.
 *
 * The first beat comes after `heartbeatInterval * (1 - phase)`, with a phase in [0, 1) hashed from the agent's
 * name and pid: never later than one interval after the start, as before, but N agents started at once spread
 * their pings over the interval. Beats then repeat `heartbeatInterval` apart; missed beats count as before.
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
    const intervalMillis = Duration.toMillis(heartbeatInterval)
    // One scan of /proc per tick for all the agents beating meanwhile: a beat reads a scan younger than 0.9
    // intervals (and than 1 s, for long intervals). Beats of one agent are at least an interval apart, so two of
    // them never read the same scan (their CPU% would be 0).
    const maxAge = Math.min(ProcessTable.HEARTBEAT_MAX_AGE_MILLIS, intervalMillis * 0.9)
    // The CPU baseline comes from the first beat, not from start-up.
    let previous: ProcessTree.Sample | undefined = undefined
    let missed = 0
    const beat = Effect.gen(function*() {
      const result = yield* Effect.either(checkWithin(agent, previous, pingTimeout, maxAge))
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
    // A loop of sleeps rather than `Effect.repeat` with `Schedule.spaced` (the same timing: an interval from the
    // end of one beat to the next): with 500 agents beating every second, the schedule's driver cost about 3% of
    // a core more than this loop.
    yield* Effect.sleep(Duration.millis(intervalMillis * (1 - phaseOf(agent.name, agent.pid))))
    while (yield* beat) yield* Effect.sleep(heartbeatInterval)
  })

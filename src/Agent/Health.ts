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
import * as Ticker from "../internal/ticker.js"
import * as ProcessTable from "./internal/processTable.js"
import type { AgentProcess, PingResult } from "./Process.js"
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

/** One MiB. */
const MIB = 1024 * 1024

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
  Effect.gen(function*() {
    const pong = yield* agent.ping(timeout === undefined ? undefined : { timeout })
    const tree = yield* ProcessTree.sample(agent.pid)
    const timestamp = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const sample: HealthSample = {
      agent: agent.name,
      pid: agent.pid,
      latencyMillis: pong.latencyMillis,
      report: pong.report,
      memoryMb: tree === undefined ? Option.none() : Option.some(tree.rssBytes / MIB),
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
 * their pings over the interval. Beats then repeat `heartbeatInterval` after the end of the previous one; missed
 * beats count as before.
 *
 * Every heartbeat of the process waits on one timer (a ticker per `Clock`), and its moments are rounded to a grid
 * of a few milliseconds (`heartbeatInterval / 20`, at most 20 ms, dividing the interval: see
 * `internal/ticker.ts`), so beats due within one step are woken together: a beat may come up to half a step
 * early or late (the first up to one step later, never past one interval after the start), and beats are still
 * exactly one interval apart when a beat takes no time.
 *
 * The memory and CPU% of a sample come from a scan of /proc shared by every agent of the process, about
 * `ProcessTable.HEARTBEAT_MAX_AGE_MILLIS` (5 s) old: the sampling period. A beat never waits for a scan: it reads the
 * last one, and one older than the period starts the next in the background, read over several turns of the event
 * loop (a host with thousands of processes takes tens of milliseconds to scan). Only an agent's first beat may
 * wait, when its process is younger than the last scan: the scans for such beats start at most every
 * `ProcessTable.MISS_RESCAN_GAP_MILLIS` (500 ms), however many agents start. Beats that read the same scan report
 * its memory, and the CPU% measured between the last two scans this heartbeat read (the scans' own times, not the
 * beats'); the first sample has no CPU%, and the second, if it read the same scan as the first, reads 0.
 *
 * @since 0.1.0
 * @category heartbeat
 */
export const heartbeat = (
  agent: AgentProcess,
  callbacks: Callbacks
): Effect.Effect<void> =>
  Effect.clockWith((clock) =>
    Effect.suspend(() => {
      const { heartbeatInterval, unhealthyAfter } = agent.config
      const intervalMillis = Duration.toMillis(heartbeatInterval)
      const grid = Ticker.gridOf(intervalMillis)
      const ticker = Ticker.forClock(clock)
      const sampling = { maxAge: ProcessTable.HEARTBEAT_MAX_AGE, stale: "serve" } as const
      // The last scan read (the CPU baseline comes from the first beat, not from start-up), and the CPU% measured
      // when it was read: it holds for the beats that read the same scan.
      let previous: ProcessTree.Sample | undefined = undefined
      let cpuPercent: Option.Option<number> = Option.none()
      let missed = 0
      let waiter: Ticker.Waiter | undefined = undefined

      const sample = (pong: PingResult, tree: ProcessTree.Sample | undefined): HealthSample => {
        if (tree === undefined) cpuPercent = Option.none()
        else if (previous === undefined) cpuPercent = Option.none()
        else if (tree.takenAt !== previous.takenAt) cpuPercent = Option.some(ProcessTree.cpuPercent(previous, tree))
        else if (Option.isNone(cpuPercent)) cpuPercent = Option.some(0)
        previous = tree
        return {
          agent: agent.name,
          pid: agent.pid,
          latencyMillis: pong.latencyMillis,
          report: pong.report,
          memoryMb: tree === undefined ? Option.none() : Option.some(tree.rssBytes / MIB),
          cpuPercent,
          processes: tree?.processes ?? 0,
          timestamp: clock.unsafeCurrentTimeMillis()
        }
      }

      // Plain combinators rather than a generator: this runs 500 times a second in the benchmark. `ping` is called
      // for each beat (a ping need not be lazy).
      const beat: Effect.Effect<boolean> = Effect.matchEffect(Effect.suspend(() => agent.ping()), {
        onFailure: (error) => {
          // An exit is the exit watcher's business, not a missed beat.
          if (error._tag === "AgentCrashError" || error._tag === "AgentStoppedError") return Effect.succeed(false)
          missed++
          return Effect.zipRight(
            callbacks.onMissed(missed, error),
            missed >= unhealthyAfter ? Effect.as(callbacks.onUnhealthy(missed), false) : Effect.succeed(true)
          )
        },
        onSuccess: (pong) =>
          Effect.flatMap(ProcessTree.sample(agent.pid, sampling), (tree) => {
            missed = 0
            return Effect.as(callbacks.onSample(sample(pong, tree)), true)
          })
      })
      const wait = (due: number, notAfter?: number) => {
        waiter = ticker.waiter(due, grid, notAfter)
        return ticker.wait(waiter)
      }
      // The next beat an interval after the end of this one.
      const next = Effect.suspend(() => wait(clock.unsafeCurrentTimeMillis() + intervalMillis))
      const loop: Effect.Effect<void> = Effect.flatMap(beat, (goOn) => goOn ? Effect.zipRight(next, loop) : Effect.void)
      const start = clock.unsafeCurrentTimeMillis()
      return wait(start + intervalMillis * (1 - phaseOf(agent.name, agent.pid)), start + intervalMillis).pipe(
        Effect.zipRight(loop),
        // The one wait that may be pending when the heartbeat is interrupted: the ticker forgets it.
        Effect.ensuring(Effect.sync(() => waiter !== undefined && ticker.cancel(waiter)))
      )
    })
  )

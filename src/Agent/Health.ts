/**
 * Health of a running agent: a heartbeat ping with its latency and the agent's own report, plus the supervisor's
 * own reading of the agent's process tree. Missed pings in a row mark the agent hung.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type { RequestError } from "../Errors.js"
import type { DurationInput } from "../internal/durationText.js"
import * as Heartbeat from "./internal/heartbeat.js"
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
  /**
   * CPU% of the whole process group since the previous sample (100 = one core busy). A heartbeat's first is the
   * agent's average since its spawn (as `ps` reports %CPU); a `check` with no `previous` has none (an average over
   * the agent's whole life is no reading of now).
   */
  readonly cpuPercent: Option.Option<number>
  /** Live processes in the group. */
  readonly processes: number
  /** Epoch milliseconds. */
  readonly timestamp: number
}

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
  timeout?: DurationInput
): Effect.Effect<readonly [HealthSample, ProcessTree.Sample | undefined], RequestError> =>
  Effect.gen(function*() {
    const pong = yield* agent.ping(timeout === undefined ? undefined : { timeout })
    const tree = yield* ProcessTree.sample(agent.pid)
    const timestamp = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
    const cpuPercent = tree !== undefined && previous !== undefined
      ? Option.some(ProcessTree.cpuPercent(previous, tree))
      : Option.none()
    return [Heartbeat.healthSampleOf(agent, pong, tree, cpuPercent, timestamp), tree] as const
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
 * The first beat comes after `heartbeatInterval * (1 - phase)`, with a phase in [0, 1) hashed from the agent's
 * name and pid: never later than one interval after the start, as before, but N agents started at once spread
 * their pings over the interval. Each next beat is due `heartbeatInterval` after the previous ping's outcome (its
 * answer, its failure), and waits for the callbacks of that outcome if they take longer; missed beats count as
 * before. Each ping and each callback runs in a fiber of its own, forked from this effect's context (the
 * library's own agents ping with no fiber at all). A ping or a callback that dies ends the heartbeat with its
 * defect.
 *
 * Every heartbeat of the process waits on one timer (a ticker per `Clock`), and its moments are rounded to a grid
 * of steps (`heartbeatInterval / 10`, at most 100 ms, dividing the interval: see `internal/ticker.ts`), so beats
 * due within one step are woken together: a beat may come up to half a step early or late (the first up to one
 * step later, never past one interval after the start), and beats are still exactly one interval apart when a beat
 * takes no time. On the live clock, the beats of one step run at most 2 ms of real time at a time, the event loop
 * turning between: a ping's write can cost the supervisor its CPU while the woken agent runs, and a thousand
 * agents' step of 20 pings (steps were 20 ms then) held the loop 30-50 ms in one go on a slow VM.
 *
 * The memory and CPU% of a sample come from a scan of /proc shared by every agent of the process, about
 * `ProcessTable.HEARTBEAT_MAX_AGE_MILLIS` (5 s) old: the sampling period. A beat never waits for a scan: it reads the
 * last one, and one older than the period starts the next in the background, read over several turns of the event
 * loop (a host with thousands of processes takes tens of milliseconds to scan). Only an agent's first beat may
 * wait, when its process is younger than the last scan: the scans for such beats start at most every
 * `ProcessTable.MISS_RESCAN_GAP_MILLIS` (500 ms), however many agents start. Beats that read the same scan report
 * its memory, and the CPU% measured between the last two scans this heartbeat read (the scans' own times, not the
 * beats'); the first sample's CPU% is the group's average since its spawn (as `ps` reports %CPU).
 *
 * @since 0.1.0
 * @category heartbeat
 */
export const heartbeat = (
  agent: AgentProcess,
  callbacks: Callbacks
): Effect.Effect<void> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) =>
    Effect.clockWith((clock) =>
      Effect.async<void>((resume) => {
        // Each ping and each report in a fiber of its own, in this fiber's context; the owner of an agent of the
        // library's own runs them with no fiber per ping (`AgentSupervisor`).
        const fork = Runtime.runFork(runtime)
        let running: Fiber.RuntimeFiber<unknown, unknown> | undefined
        const stop = Heartbeat.start(
          {
            name: agent.name,
            pid: agent.pid,
            config: agent.config,
            pingWith: (done) => {
              const ping = fork(agent.ping())
              running = ping
              ping.addObserver((exit) => {
                if (running === ping) running = undefined
                done(exit)
              })
            }
          },
          clock,
          {
            report: (report, handled) => {
              const reporting = fork(
                report._tag === "Sample"
                  ? callbacks.onSample(report.sample)
                  : report.unhealthy
                  ? Effect.zipRight(
                    callbacks.onMissed(report.missed, report.error),
                    callbacks.onUnhealthy(report.missed)
                  )
                  : callbacks.onMissed(report.missed, report.error)
              )
              running = reporting
              reporting.addObserver((exit) => {
                if (running === reporting) running = undefined
                if (Exit.isSuccess(exit)) return handled()
                // A callback that died ends the heartbeat with its defect.
                stop()
                resume(Effect.failCause(exit.cause as Cause.Cause<never>))
              })
            },
            end: (cause) => resume(cause === undefined ? Effect.void : Effect.failCause(cause as Cause.Cause<never>))
          }
        )
        // Interrupted: the ticker forgets the next beat, and a ping or a report under way is interrupted.
        return Effect.suspend(() => {
          stop()
          return running === undefined ? Effect.void : Fiber.interrupt(running)
        })
      })
    ))

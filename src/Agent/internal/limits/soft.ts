/**
 * Soft enforcement of an agent's limits, where no cgroup can hold it (PM2's `max_memory_restart`, polled): the
 * resident memory of the agent's process group above `limits.memory` for `memoryGrace` kills it with reason
 * `memory_limit`; its CPU use, averaged over `cpuWindow`, above `limits.cpu` is reported (a log line and an
 * event) and, with `onCpuLimit: "restart"`, kills it with reason `cpu_limit`.
 *
 * Readings come from the process table shared by every agent (`processTable.ts`): one scan of `/proc` serves all
 * the agents polled in the same interval. What the process group holds is what is measured: a descendant that
 * left the group (`setsid`) is not, the limit of this mode (README "Limits and containment").
 *
 * The watch samples every {@link sampleMillis} on the `Clock` (so `TestClock` drives it in tests, with a reader
 * of its own); the grace and the window are counted on the same clock, the CPU rate on the table's own time
 * (`takenAt`: the kernel's counters run in real time). An agent is reported in the stated bound: above the limit
 * for `memoryGrace`, seen within one sample interval, plus one scan.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Config from "../../Config.js"
import { CLOCK_TICKS_PER_SECOND, type GroupReading } from "../processTable.js"

/** What a watch reports: the limit, what was measured (bytes, or cores) and the limit's value. @internal */
export interface Exceeded {
  readonly limit: "memory" | "cpu"
  readonly observed: number
  readonly max: number
  /** The agent is being killed for it (memory; CPU with `onCpuLimit: "restart"`). */
  readonly killing: boolean
}

/** @internal */
export interface Options {
  readonly limits: Config.Limits
  /** The group's reading now, at most `maxAgeMillis` old. */
  readonly read: (maxAgeMillis: number) => Effect.Effect<GroupReading | undefined>
  /** Told of each limit passed (before the kill, if any). */
  readonly onExceeded: (exceeded: Exceeded) => Effect.Effect<void>
  /** Kills the agent for `reason`; the watch ends after. */
  readonly kill: (reason: "memory_limit" | "cpu_limit") => Effect.Effect<void>
}

/** The longest and shortest sample intervals, in milliseconds. @internal */
export const MAX_SAMPLE_MILLIS = 1000
const MIN_SAMPLE_MILLIS = 100

/**
 * How often a watch samples: a quarter of the memory grace or a fifth of the CPU window, whichever is shorter,
 * between 100 ms and 1 s. @internal
 */
export const sampleMillis = (limits: Config.Limits): number => {
  const candidates = [MAX_SAMPLE_MILLIS]
  if (limits.memory !== undefined) candidates.push(Duration.toMillis(limits.memoryGrace) / 4)
  if (limits.cpu !== undefined) candidates.push(Duration.toMillis(limits.cpuWindow) / 5)
  return Math.max(MIN_SAMPLE_MILLIS, Math.min(...candidates))
}

/** True when the limits ask for anything polling can watch. @internal */
export const watches = (limits: Config.Limits): boolean => limits.memory !== undefined || limits.cpu !== undefined

/** Watches one agent until it is killed for a limit, or the fiber is interrupted (the incarnation ends). @internal */
export const watch = (options: Options): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { limits } = options
    const interval = sampleMillis(limits)
    const graceMillis = Duration.toMillis(limits.memoryGrace)
    const windowMillis = Duration.toMillis(limits.cpuWindow)
    let overSince: number | undefined
    // CPU samples within the window: the clock's millis, and the table's (ticks, takenAt).
    let cpuSamples: Array<{ readonly at: number; readonly ticks: number; readonly takenAt: number }> = []
    while (true) {
      yield* Effect.sleep(Duration.millis(interval))
      const reading = yield* options.read(interval / 2)
      const usage = reading?.usage
      if (reading === undefined || usage === undefined) continue
      const now = yield* Clock.currentTimeMillis
      if (limits.memory !== undefined) {
        if (usage.rssBytes <= limits.memory) overSince = undefined
        else {
          overSince ??= now
          if (now - overSince >= graceMillis) {
            yield* options.onExceeded({ limit: "memory", observed: usage.rssBytes, max: limits.memory, killing: true })
            return yield* options.kill("memory_limit")
          }
        }
      }
      if (limits.cpu !== undefined) {
        cpuSamples.push({ at: now, ticks: usage.cpuTicks, takenAt: reading.takenAt })
        const first = cpuSamples[0]
        if (now - first.at >= windowMillis) {
          const last = cpuSamples[cpuSamples.length - 1]
          const seconds = (last.takenAt - first.takenAt) / 1000
          const cores = seconds > 0 ? (last.ticks - first.ticks) / CLOCK_TICKS_PER_SECOND / seconds : 0
          if (cores > limits.cpu) {
            const killing = limits.onCpuLimit === "restart"
            yield* options.onExceeded({ limit: "cpu", observed: cores, max: limits.cpu, killing })
            if (killing) return yield* options.kill("cpu_limit")
            // Reported once per window: the next report needs a whole window of its own.
            cpuSamples = [last]
          } else {
            // A sliding window: drop what is older than one window before the last sample.
            cpuSamples = cpuSamples.filter((sample) => now - sample.at <= windowMillis)
          }
        }
      }
    }
  })

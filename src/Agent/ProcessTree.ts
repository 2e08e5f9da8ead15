/**
 * Reads the resource use of an agent's whole process group from /proc: no native dependency. One scan of /proc
 * groups by process group the processes of the groups sampled (and of agents' groups, from their spawn), and all
 * the samples taken within its age share it, so sampling N agents costs one scan, not N. CPU% is computed between two samples, so the first one reports none
 * (rather than a wrong 0).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { ConfigError } from "../Errors.js"
import type { DurationInput } from "../internal/durationText.js"
import * as Edge from "../internal/schema.js"
import * as ProcessTable from "./internal/processTable.js"

/**
 * Resource use of a process group at one moment.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sample {
  /** Live (non-zombie) processes in the group. */
  readonly processes: number
  /** Resident memory of the group, in bytes. */
  readonly rssBytes: number
  /** CPU time (user + system) the live processes of the group have used, in seconds. */
  readonly cpuSeconds: number
  /** `performance.now()` when the scan of /proc the sample comes from ended. */
  readonly takenAt: number
}

/**
 * Options of {@link sample}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SampleOptions {
  /**
   * How old the shared scan of /proc may be (default 500 millis): a sample reads a scan at most this old,
   * scanning again if there is none. Two samples meant for a CPU% should be further apart than this.
   */
  readonly maxAge?: DurationInput | undefined
  /**
   * What a scan older than `maxAge` does: `"rescan"` (the default) waits for a new one; `"serve"` reads it as it is
   * while a new one is made in the background, so that the caller never waits for a scan but the first of its group
   * (the heartbeat's choice: a scan of a host with thousands of processes takes tens of milliseconds). Either way,
   * the first sample of a group (unless it is an agent's, watched from its spawn) waits for a scan.
   */
  readonly stale?: "rescan" | "serve" | undefined
}

const SampleSettings = Schema.Struct({
  maxAge: Schema.optionalWith(Edge.DurationInput, { exact: true }),
  stale: Schema.optionalWith(
    Schema.Literal("rescan", "serve").annotations({
      message: () => ({ message: `must be "rescan" or "serve"`, override: true })
    }),
    { exact: true }
  )
})

/**
 * Samples every live process whose process group is `pgid`, from a scan of /proc shared by all callers (at most
 * `maxAge` old). Returns `undefined` where /proc is missing, and `processes: 0` with zeros for a group with no live
 * process (a pid that leads no group: an agent's pid leads its own). Fails with `ConfigError` for options it cannot read
 * (a `maxAge` that is no duration or is negative, an unknown `stale`).
 *
 * @since 0.1.0
 * @category sampling
 */
export const sample = (pgid: number, options?: SampleOptions): Effect.Effect<Sample | undefined, ConfigError> =>
  Effect.flatMap(
    options === undefined
      ? Effect.succeed<typeof SampleSettings.Type>({})
      : Edge.decodeOptions(SampleSettings, options, { whole: "(sample options)", undefinedIsAbsent: true }),
    ({ maxAge, stale }) =>
      Effect.map(
        ProcessTable.shared.group(
          pgid,
          maxAge === undefined ? ProcessTable.DEFAULT_MAX_AGE_MILLIS : Duration.toMillis(maxAge),
          stale
        ),
        ProcessTable.sampleOf
      )
  )

/**
 * CPU% of the group between two samples (100 = one core busy). Processes that ended in between take their
 * ticks with them, so a drop reads as 0, never negative; so do two samples of the same scan.
 *
 * @since 0.1.0
 * @category sampling
 */
export const cpuPercent = (previous: Sample, current: Sample): number => {
  const wallSeconds = (current.takenAt - previous.takenAt) / 1000
  if (wallSeconds <= 0) return 0
  return Math.max(0, ((current.cpuSeconds - previous.cpuSeconds) / wallSeconds) * 100)
}

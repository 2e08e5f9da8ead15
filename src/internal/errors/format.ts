/**
 * Pieces of text that several errors' messages share: how a process ended, its last stderr lines, a byte count.
 *
 * Plain fields in, strings out (and the schema of a process's end): this module knows nothing of the error classes
 * (`Errors.ts` imports it, never the other way round).
 *
 * @internal
 */
import * as Schema from "effect/Schema"

/**
 * The fields of a process's end, shared by the errors that report one (`Errors.AgentStartupError`,
 * `Errors.AgentCrashError`).
 *
 * @internal
 */
export const exitFields = {
  pid: Schema.optional(Schema.Number),
  exitCode: Schema.optional(Schema.NullOr(Schema.Number)),
  signal: Schema.optional(Schema.NullOr(Schema.String)),
  stderr: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
}

/** The facts of a process's end that a message describes. */
export interface ExitFacts {
  readonly exitCode?: number | null | undefined
  readonly signal?: string | null | undefined
}

/**
 * How a process ended: `killed by SIGKILL`, `exited with code 1`, or `exited` when neither is known.
 *
 * @internal
 */
export const describeExit = (facts: ExitFacts): string =>
  facts.signal ? `killed by ${facts.signal}` : facts.exitCode !== undefined && facts.exitCode !== null
    ? `exited with code ${facts.exitCode}`
    : "exited"

/** A line of a JavaScript stack trace (`    at f (file.js:1:2)`). */
const FRAME = /^\s+at /

/** Frames of one stack kept in a message: the rest are counted. */
const FRAMES_SHOWN = 3

/**
 * The lines with each run of stack frames cut to its first {@link FRAMES_SHOWN} and a count of the rest: Node
 * prints an error's message above its frames (ten and more for an import that failed), so a tail of raw lines
 * showed frames alone and not the error they belong to.
 */
const withShortStacks = (lines: ReadonlyArray<string>): Array<string> => {
  const shown: Array<string> = []
  let run = 0
  const endRun = () => {
    if (run > FRAMES_SHOWN) shown.push(`    ... ${run - FRAMES_SHOWN} more frame(s)`)
    run = 0
  }
  for (const line of lines) {
    if (FRAME.test(line)) {
      if (++run <= FRAMES_SHOWN) shown.push(line)
      continue
    }
    endRun()
    shown.push(line)
  }
  endRun()
  return shown
}

/**
 * The last ten stderr lines, as a paragraph to append to a message (nothing when there are none); a stack trace's
 * frames beyond its first three are counted rather than shown, so that the error they follow stays in view.
 *
 * @internal
 */
export const stderrTail = (lines: ReadonlyArray<string>): string =>
  lines.length === 0 ? "" : `\nLast stderr lines:\n  ${withShortStacks(lines).slice(-10).join("\n  ")}`

/** @internal */
export const KiB = 1024

/** @internal */
export const MiB = 1024 * KiB

/**
 * A byte count as people read it: `812 bytes`, `200 KiB`, `3.1 MiB`.
 *
 * @internal
 */
export const formatBytes = (bytes: number): string =>
  bytes < KiB
    ? `${bytes} bytes`
    : bytes < MiB
    ? `${Math.round(bytes / KiB)} KiB`
    : `${(bytes / MiB).toFixed(1).replace(/\.0$/, "")} MiB`

/**
 * A count with its noun: `1 argument`, `3 arguments`.
 *
 * @internal
 */
export const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`

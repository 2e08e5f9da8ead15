/**
 * An agent's output (its stderr lines, and stdout lines that are not protocol messages) into the supervisor's
 * log, bounded end to end so that a chatty agent cannot slow the supervisor down or grow its memory.
 *
 * Measured without these bounds (issue 16): an agent writing 50 MB of stderr while requests arrived every 20 ms
 * pushed the worst request latency to 1.3-4.2 s and blocked the agent's own stderr writes for up to 3 s, because
 * every line became a log entry formatted and written by the default logger; with the host's stdout a pipe
 * read slowly, Node queued those writes in memory without limit (1.4 GB). So:
 *
 * - `push` is synchronous and cheap: the reader calls it per line and never waits. A line that is not logged
 *   costs a clock read and a counter; only logged lines are formatted, and they wait in a batch of at most
 *   `burst` plus a second's rate of lines until the reader's next `flush`.
 * - A token bucket (`linesPerSecond`, `burst`) decides which lines are logged; the rest are dropped and counted.
 * - Before each logged line, the host's output backlog is read (`backlog`, by default the bytes that
 *   `process.stdout` and `process.stderr` hold in memory because their reader is behind: Effect's default
 *   logger writes with `console.log`, and Node queues writes to a pipe that is not read fast enough). While it is
 *   above `maxBacklogBytes` lines are dropped and counted: whatever the host's stdout does, this module adds at
 *   most about `maxBacklogBytes` plus one batch to it. Reading `writableLength` is a property read, not a
 *   system call, and it happens for logged lines only. It cannot see a custom logger's own sink: a logger that
 *   buffers elsewhere is bounded by the rate alone.
 * - Dropped lines are reported by one summary entry, "N lines of agent output dropped (rate limit)", at most once
 *   a second (summaries have their own budget, so a sustained flood still gets one a second). `flush` logs a
 *   summary that is due; `run`, forked beside the reader, logs one after a flood that ended with no line after it
 *   (and, when interrupted, whatever is still unreported).
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import type * as Config from "../Config.js"

/** @internal */
export type OutputStream = "stderr" | "stdout"

/** @internal */
export interface OutputLog {
  /** Offers one line of output; never blocks, never fails. Lines beyond the budget are dropped and counted. */
  readonly push: (text: string, stream: OutputStream) => void
  /** Logs the lines accepted since the last flush, and a summary of dropped lines when one is due. */
  readonly flush: Effect.Effect<void>
  /**
   * Logs the summary of dropped lines when no line comes to trigger it; fork it beside the reader (from the first
   * drop: see `onFirstDrop`). Interrupted, it logs what is still unreported.
   */
  readonly run: Effect.Effect<never>
  /** Lines dropped so far (rate limit and backlog). */
  readonly dropped: () => number
  /** Lines logged so far. */
  readonly logged: () => number
}

/** @internal */
export interface Options {
  /** The level of the entries; `LogLevel.None` logs nothing (and counts nothing as dropped). */
  readonly level: LogLevel.LogLevel
  readonly linesPerSecond: number
  /** Lines that may be logged at once after a quiet spell (the bucket's size). */
  readonly burst: number
  readonly clock: Clock.Clock
  /** Added to every entry (agent name, pid); lines also get `stream`. */
  readonly annotations?: Readonly<Record<string, unknown>> | undefined
  /** Bytes the host's log sink holds unwritten; defaults to {@link hostBacklog}. */
  readonly backlog?: (() => number) | undefined
  /** While `backlog()` is above this, lines are dropped. Defaults to {@link MAX_BACKLOG_BYTES}. */
  readonly maxBacklogBytes?: number | undefined
  /**
   * Called with `flush` when a line is accepted into an empty batch: run it soon. For a reader outside any fiber
   * (Node's event handlers) that hands effects to a logging fiber; a reader that flushes after every chunk
   * needs none.
   */
  readonly schedule?: ((flush: Effect.Effect<void>) => void) | undefined
  /** Called when the first line is dropped: `run` has work from then on (fork it then, not before). */
  readonly onFirstDrop?: (() => void) | undefined
}

/** @internal */
export const MAX_BACKLOG_BYTES = 1024 * 1024

/** @internal */
export const SUMMARY_INTERVAL_MILLIS = 1000

/** A stray stdout line is a bug report, not a log: its start is enough. */
const STDOUT_LINE_CHARS = 500

/**
 * Bytes queued in memory for the host's stdout and stderr (0 for a terminal or a file, which Node writes
 * synchronously; it grows when a pipe's reader is behind).
 *
 * @internal
 */
export const hostBacklog = (): number =>
  Math.max(process.stdout?.writableLength ?? 0, process.stderr?.writableLength ?? 0)

const plural = (n: number) => n === 1 ? "1 line" : `${n} lines`

/** @internal */
export const make = (options: Options): OutputLog => {
  const { burst, clock, level, linesPerSecond } = options
  const backlog = options.backlog ?? hostBacklog
  const maxBacklog = options.maxBacklogBytes ?? MAX_BACKLOG_BYTES
  const annotations = options.annotations ?? {}
  const stderrAnnotations = { ...annotations, stream: "stderr" }
  const stdoutAnnotations = { ...annotations, stream: "stdout" }

  let logged = 0
  let droppedTotal = 0
  if (level._tag === "None") {
    return {
      push: () => {},
      flush: Effect.void,
      run: Effect.never,
      dropped: () => 0,
      logged: () => 0
    }
  }

  // The bucket counts thousandths of a line, so that an integer rate refills exactly (no 0.1 drift).
  const capacity = burst * 1000
  let credit = capacity
  let refilledAt = clock.unsafeCurrentTimeMillis()
  // What the bucket lets through in a second; the reader flushes after every chunk, far more often.
  const maxBatch = burst + Math.ceil(linesPerSecond)
  let batch: Array<string> = []
  let streams: Array<OutputStream> = []
  // Dropped since the last summary, by reason.
  let byRate = 0
  let byBacklog = 0
  let summaryAt = -Infinity
  const wake = Effect.unsafeMakeLatch(false)
  const schedule = options.schedule
  let scheduled = false

  let droppedOnce = false
  const drop = (reason: "rate" | "backlog") => {
    if (!droppedOnce) {
      droppedOnce = true
      options.onFirstDrop?.()
    }
    if (byRate + byBacklog === 0) wake.unsafeOpen()
    if (reason === "rate") byRate++
    else byBacklog++
    droppedTotal++
  }

  const push = (text: string, stream: OutputStream): void => {
    const now = clock.unsafeCurrentTimeMillis()
    if (now > refilledAt) {
      credit = Math.min(capacity, credit + (now - refilledAt) * linesPerSecond)
      refilledAt = now
    }
    if (credit < 1000) return drop("rate")
    // Nobody flushed for a second or more: the batch is the memory bound.
    if (batch.length >= maxBatch) return drop("backlog")
    credit -= 1000
    batch.push(text)
    streams.push(stream)
    if (schedule !== undefined && !scheduled) {
      scheduled = true
      schedule(flush)
    }
  }

  const overBacklog = () => backlog() > maxBacklog

  const logLine = (text: string, stream: OutputStream): Effect.Effect<void> => {
    if (overBacklog()) {
      drop("backlog")
      return Effect.void
    }
    logged++
    return stream === "stderr"
      ? Effect.annotateLogs(Effect.logWithLevel(level, text), stderrAnnotations)
      : Effect.annotateLogs(
        Effect.logWithLevel(level, `agent stdout (not a protocol message): ${text.slice(0, STDOUT_LINE_CHARS)}`),
        stdoutAnnotations
      )
  }

  /** The summary of what was dropped since the last one, or nothing when none is due (or `force`). */
  const summary = (force: boolean): Effect.Effect<void> => {
    const count = byRate + byBacklog
    if (count === 0) return Effect.void
    const now = clock.unsafeCurrentTimeMillis()
    if (!force && (now - summaryAt < SUMMARY_INTERVAL_MILLIS || overBacklog())) return Effect.void
    const reason = byBacklog === 0
      ? `rate limit: ${linesPerSecond} lines/s`
      : byRate === 0
      ? "log output backlog"
      : `rate limit: ${byRate}, log output backlog: ${byBacklog}`
    byRate = 0
    byBacklog = 0
    summaryAt = now
    return Effect.annotateLogs(
      Effect.logWithLevel(level, `${plural(count)} of agent output dropped (${reason})`),
      { ...annotations, dropped: count }
    )
  }

  const flush: Effect.Effect<void> = Effect.suspend(() => {
    scheduled = false
    if (batch.length === 0) return summary(false)
    const texts = batch
    const from = streams
    batch = []
    streams = []
    let i = 0
    // One line at a time, the backlog read just before each: the previous line's write is already counted in it.
    const next: Effect.Effect<void> = Effect.suspend(() =>
      i < texts.length ? Effect.zipRight(logLine(texts[i], from[i++]), next) : summary(false)
    )
    return next
  })

  const run = Effect.gen(function*() {
    while (true) {
      if (byRate + byBacklog === 0) {
        wake.unsafeClose()
        yield* wake.await
        continue
      }
      const wait = summaryAt + SUMMARY_INTERVAL_MILLIS - clock.unsafeCurrentTimeMillis()
      if (wait > 0) {
        yield* clock.sleep(Duration.millis(wait))
        continue
      }
      yield* summary(false)
      // Still unreported: the host's output is backed up; look again in a while.
      if (byRate + byBacklog > 0) yield* clock.sleep(Duration.millis(SUMMARY_INTERVAL_MILLIS))
    }
  }).pipe(
    // The incarnation is over: report what is left, due or not.
    Effect.ensuring(Effect.suspend(() => summary(true)))
  ) as Effect.Effect<never>

  return { push, flush, run, dropped: () => droppedTotal, logged: () => logged }
}

/**
 * An {@link OutputLog} with an agent's configured level and rate.
 *
 * @internal
 */
export const fromConfig = (
  config: Config.AgentConfig,
  options: Omit<Options, "level" | "linesPerSecond" | "burst">
): OutputLog =>
  make({
    ...options,
    level: LogLevel.fromLiteral(config.outputLogLevel),
    linesPerSecond: config.outputRateLimit,
    burst: config.outputBurst
  })

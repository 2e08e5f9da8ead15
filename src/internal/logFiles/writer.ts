/**
 * A rotated log file written off the caller's path. `offer` puts a line in a queue bounded in bytes (`queue.ts`)
 * and returns at once, without I/O; one fiber writes what waits, in order, in batches of at most `BATCH_BYTES`,
 * and rotates the file (`rotation.ts`) before a line would make it pass `maxBytes`, as PM2's pm2-logrotate and
 * logrotate's `size` rule do, but at the line rather than at the next check: no file ever passes `maxBytes`.
 *
 * The file is opened for each batch (`appendFile`), so a file or directory removed while the writer runs is
 * created again at the next write instead of swallowing lines into an unlinked file. A write that fails (disk
 * full, permission, a path that is not a directory) never fails the caller: a warning is logged once until a
 * write succeeds again, and writing is tried again after `RETRY_AFTER`. Lines whose append failed are given up on
 * (a part of them may be in the file: writing them again could repeat it), counted, and the first line that
 * reaches the file after that is `<ISO time> [N lines dropped: the log file could not be written (<code>)]`; when
 * making the directory or rotating failed, nothing was written and the lines wait in the queue, within its bound.
 * Closing writes what is left (within `CLOSE_TIMEOUT`; a write that fails then gives up on the rest), then stops
 * the fiber.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as path from "node:path"
import { withoutParentSpan } from "../forker.js"
import { isolate } from "../wait.js"
import * as Disk from "./disk.js"
import { cost, dropLine, type Entry, LineQueue } from "./queue.js"
import * as Rotation from "./rotation.js"
import { lineBytes, queueBytes, type Settings } from "./settings.js"

/** What a writer did so far, and what it holds now. */
export interface Stats {
  /** Lines offered that reached the file. */
  readonly written: number
  /** Lines offered while the queue was full (each gap reported by a drop line). */
  readonly dropped: number
  /** Lines offered and given up on because the file could not be written, or because closing gave up. */
  readonly lost: number
  /** Lines offered after `close`. */
  readonly refused: number
  readonly rotations: number
  /** Bytes held now (lines waiting or being written, each with its overhead). */
  readonly held: number
  /** The most bytes held at any moment: never above `capacity`. */
  readonly peakHeld: number
  /** The bound on bytes held: `queueBytes(settings)`. */
  readonly capacity: number
}

/** One rotated log file. */
export interface Writer {
  /** The current file's absolute path. */
  readonly file: string
  /** Enqueues one line (without its newline); returns at once, never fails, never does I/O. */
  readonly offer: (text: string) => void
  /** Waits until every line offered before it is in the file or given up on. */
  readonly flush: Effect.Effect<void>
  /** Writes what is left (at most `CLOSE_TIMEOUT`), then stops; lines offered from now on are refused. */
  readonly close: Effect.Effect<void>
  readonly stats: () => Stats
}

/** The most bytes one write appends: while it is written, its batch is also held joined, and as UTF-8 bytes. */
export const BATCH_BYTES = 256 * 1024

/** How long a writer waits after a failed write before it tries again, on the `Clock`. */
export const RETRY_AFTER: Duration.Duration = Duration.seconds(1)

/** How long closing waits for the last lines to be written before giving up on them. */
export const CLOSE_TIMEOUT: Duration.Duration = Duration.seconds(5)

const missing = (error: Disk.DiskError) => error.code === "ENOENT"

/**
 * The next entries of `queue` that fit in a file of `current` bytes (none: it must rotate first), at most
 * `BATCH_BYTES` together.
 */
const takeBatch = (queue: LineQueue, current: number, maxBytes: number): Array<Entry> => {
  const batch: Array<Entry> = []
  let bytes = 0
  for (let entry = queue.peek(); entry !== undefined; entry = queue.peek()) {
    const next = bytes + entry.bytes
    // No line passes `maxBytes` (a longer one was cut), so a file with nothing in it takes at least one.
    if (current + next > maxBytes && current + bytes > 0) break
    if (next > BATCH_BYTES && batch.length > 0) break
    batch.push(queue.shift()!)
    bytes = next
  }
  return batch
}

/** What a batch weighs: bytes in the file, bytes held, lines offered, lines it stands for (drop lines' included). */
const weigh = (batch: ReadonlyArray<Entry>) => {
  let bytes = 0
  let weight = 0
  let offered = 0
  let lines = 0
  for (const entry of batch) {
    bytes += entry.bytes
    weight += cost(entry)
    lines += entry.lines
    if (entry.offered) offered++
  }
  return { bytes, weight, offered, lines }
}

/**
 * Starts a writer of `file` (an absolute path; its directory is created when missing). Not scoped: whoever makes
 * it calls `close` (the registry does, when the last holder lets it go).
 */
export const make = (file: string, settings: Settings): Effect.Effect<Writer> =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const dir = path.dirname(file)
    const queue = new LineQueue(queueBytes(settings), lineBytes(settings))
    const wake = yield* Effect.makeLatch(false)
    const closed = yield* Effect.makeLatch(false)
    const counts = { written: 0, lost: 0, refused: 0, rotations: 0 }
    // Bytes in the current file: read before the first write, and again after a failure (a part may have gone in).
    let size: number | undefined
    let pruned = false
    // The code of the failure being reported, until a write succeeds.
    let failing: string | undefined
    // The code of a failure since the gap began, if any: the gap's drop line says why it dropped.
    let failedInGap: string | undefined
    let closing = false
    let stopped = false
    // Every line numbered up to `settled` is in the file or given up on.
    let settled = 0
    let waiters: Array<{ readonly target: number; readonly done: Deferred.Deferred<void> }> = []

    const settle = (all: boolean) => {
      const head = queue.peek()
      // Lines of a gap are settled once its drop line is written.
      settled = all ? Infinity : head === undefined ? queue.offered - queue.gap : head.seq - 1
      if (waiters.length === 0 || waiters[0].target > settled) return
      const ready = waiters.filter((w) => w.target <= settled)
      waiters = waiters.filter((w) => w.target > settled)
      for (const w of ready) Deferred.unsafeDone(w.done, Effect.void)
    }

    const prepare = Effect.gen(function*() {
      yield* Disk.makeDir(dir)
      if (!pruned) {
        pruned = true
        // Best effort: files left by a run that kept more only delay the bound until they rotate out.
        yield* Effect.ignore(Rotation.prune(file, settings.keep))
      }
      return yield* Disk.sizeOf(file)
    })

    /** Appends; a directory removed meanwhile is made again. Returns whether the file was made anew. */
    const append = (text: string) =>
      Disk.append(file, text).pipe(
        Effect.as(false),
        Effect.catchIf(missing, () => Disk.makeDir(dir).pipe(Effect.zipRight(Disk.append(file, text)), Effect.as(true)))
      )

    const giveUp = () => {
      const left = queue.clear()
      counts.lost += left.filter((entry) => entry.offered).length
      queue.gap = 0
    }

    /** A failed write of `batch` (empty: making the directory or rotating failed): counted, reported, retried. */
    const failed = (error: Disk.DiskError, batch: ReadonlyArray<Entry>) =>
      Effect.gen(function*() {
        const { lines, offered, weight } = weigh(batch)
        queue.release(weight)
        counts.lost += offered
        if (lines > 0) {
          const text = dropLine(now(), lines, `the log file could not be written (${error.code})`)
          const seq = batch[batch.length - 1].seq
          queue.unshift({ text, bytes: Buffer.byteLength(text, "utf8") + 1, lines, offered: false, seq })
        }
        size = undefined
        failedInGap = error.code
        if (failing === undefined) {
          failing = error.code
          yield* Effect.logWarning(
            `Log file ${file} cannot be written (${error.message}): its lines are dropped and counted, and ` +
              `writing is tried again every ${Duration.format(RETRY_AFTER)}`
          )
        }
        if (closing) return giveUp()
        yield* Effect.raceFirst(clock.sleep(RETRY_AFTER), closed.await)
      })

    /** One batch written, or the file rotated, or a failure handled. */
    const step = Effect.gen(function*() {
      if (size === undefined) {
        const prepared = yield* Effect.either(prepare)
        if (Either.isLeft(prepared)) return yield* failed(prepared.left, [])
        size = prepared.right
      }
      const batch = takeBatch(queue, size, settings.maxBytes)
      if (batch.length === 0) {
        const rotated = yield* Effect.either(Rotation.rotate(file, settings.keep))
        if (Either.isLeft(rotated)) return yield* failed(rotated.left, [])
        size = 0
        counts.rotations++
        return
      }
      const appended = yield* Effect.either(append(batch.map((entry) => entry.text).join("\n") + "\n"))
      if (Either.isLeft(appended)) return yield* failed(appended.left, batch)
      const { bytes, offered, weight } = weigh(batch)
      size = appended.right ? bytes : size + bytes
      queue.release(weight)
      counts.written += offered
      if (queue.gap === 0) failedInGap = undefined
      if (failing !== undefined) {
        failing = undefined
        yield* Effect.logInfo(`Log file ${file} is written again`)
      }
    })

    const drain = Effect.gen(function*() {
      while (true) {
        if (queue.size === 0) {
          // Nothing waits and nothing is being written: a gap, if any, is over.
          const why = failedInGap === undefined
            ? "the log file could not keep up"
            : `the log file could not be written (${failedInGap})`
          if (queue.endGap(now(), why)) failedInGap = undefined
          if (queue.size === 0) {
            settle(false)
            if (closing) return
            wake.unsafeClose()
            if (queue.size === 0) yield* wake.await
            continue
          }
        }
        yield* step
        settle(false)
      }
    })

    const stop = Effect.sync(() => {
      stopped = true
      settle(true)
    })
    // The writer's own log lines name its file, whatever fiber made it (a shared writer outlives its first holder).
    const fiber = yield* Effect.forkDaemon(
      Effect.interruptible(withoutParentSpan(drain)).pipe(
        Effect.ensuring(stop),
        Effect.locally(FiberRef.currentLogAnnotations, HashMap.make(["module", "LogFiles"], ["logFile", file]))
      )
    )

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      if (stopped || settled >= queue.offered) return Effect.void
      return Effect.flatMap(Deferred.make<void>(), (done) => {
        waiters.push({ target: queue.offered, done })
        wake.unsafeOpen()
        return Deferred.await(done)
      })
    })

    const close: Effect.Effect<void> = Effect.suspend(() => {
      closing = true
      wake.unsafeOpen()
      closed.unsafeOpen()
      // Isolated: the timeout works in a finalizer, and an interrupted caller still waits for the last lines.
      return isolate(Effect.timeoutOption(Fiber.await(fiber), CLOSE_TIMEOUT)).pipe(
        Effect.flatMap(Option.match({
          onSome: () => Effect.void,
          onNone: () => {
            const before = counts.lost
            giveUp()
            fiber.unsafeInterruptAsFork(FiberId.none)
            return Effect.logWarning(
              `Log file ${file}: the last lines were not written within ${Duration.format(CLOSE_TIMEOUT)}; ` +
                `giving up on ${counts.lost - before}`
            )
          }
        }))
      )
    })

    return {
      file,
      offer: (text) => {
        if (closing) {
          counts.refused++
          return
        }
        queue.offer(text)
        wake.unsafeOpen()
      },
      flush,
      close,
      stats: () => ({
        ...counts,
        dropped: queue.dropped,
        held: queue.held,
        peakHeld: queue.peak,
        capacity: queue.capacity
      })
    }
  })

/**
 * Lines waiting for an agent's stdin, written straight to the pipe.
 *
 * The first line of a turn of the event loop is written at once; the lines sent after it in the same turn are
 * joined and written at the next microtask, in writes of
 * about `BATCH_CHARS` (one write per line costs a system call each; one write of everything waiting makes the
 * agent wait for the whole batch before it can start: measured, about 30% more throughput with 4 KiB writes
 * than with unbounded ones at 256 requests in flight). When the pipe's buffer is full, lines wait for `drain`.
 * A write to a pipe that has failed (the agent is gone) is dropped: the target has an error listener for its
 * whole life, and the agent's exit is reported by the exit watcher.
 *
 * @internal
 */

/** Where the lines go: an agent's stdin. @internal */
export interface Target {
  /** Writes; false when the buffer is full. */
  readonly write: (data: string) => boolean
  /** Calls back once the buffer has drained (or the pipe closed). */
  readonly onDrain: (callback: () => void) => void
  /** Closes the pipe once what is buffered is written. */
  readonly end: () => void
  readonly stdinClosed: () => boolean
}

// The flushes due at the end of this turn, of every outbox: one microtask runs them all. A microtask per line
// written at once (every heartbeat ping of every agent) cost one of Node's `queueMicrotask`s each, which makes an
// `AsyncResource` and a bound function: a few microseconds a beat, for a flush that finds nothing to write.
let dueAtTurnEnd: Array<() => void> = []

const endTurn = () => {
  const due = dueAtTurnEnd
  dueAtTurnEnd = []
  for (const flush of due) {
    try {
      flush()
    } catch (error) {
      // Each outbox's flush runs whatever another's did; a throw is raised in a microtask of its own, as it was
      // when each flush had one.
      queueMicrotask(() => {
        throw error
      })
    }
  }
}

// `then` on a settled promise rather than `queueMicrotask`, which makes an `AsyncResource` and a bound function
// each time: about 0.1 µs more a turn, and a sequential caller's every request starts a turn (`endTurn` never
// throws, so the promise never rejects).
const settled = Promise.resolve()

/** Runs `flush` at the end of this turn (a microtask shared by every outbox). */
const atTurnEnd = (flush: () => void) => {
  if (dueAtTurnEnd.length === 0) void settled.then(endTurn)
  dueAtTurnEnd.push(flush)
}

/** @internal */
export interface Outbox {
  /** Queues a line (ignored once `end` was called or the pipe closed). */
  readonly send: (line: string) => void
  /** Closes stdin once the lines already queued are written. */
  readonly end: () => void
  /** Lines waiting to be written. */
  readonly size: () => number
}

/** Lines are joined into one write until it holds at least this many characters (a line is never split). */
const BATCH_CHARS = 4096

/** @internal */
export const make = (target: Target): Outbox => {
  let lines: Array<string> = []
  let ended = false
  let closed = false
  let blocked = false
  let scheduled = false

  const flush = (): void => {
    scheduled = false
    if (closed || blocked) return
    while (lines.length > 0) {
      if (target.stdinClosed()) {
        lines = []
        break
      }
      let count = 1
      let chars = lines[0].length
      while (count < lines.length && chars < BATCH_CHARS) chars += lines[count++].length
      const batch = count === lines.length ? lines : lines.splice(0, count)
      if (batch === lines) lines = []
      if (!target.write(batch.length === 1 ? batch[0] : batch.join(""))) {
        blocked = true
        target.onDrain(() => {
          blocked = false
          flush()
        })
        return
      }
    }
    if (ended) {
      closed = true
      target.end()
    }
  }

  const schedule = () => {
    if (scheduled || blocked) return
    scheduled = true
    atTurnEnd(flush)
  }

  return {
    send: (line) => {
      if (ended) return
      if (!scheduled && !blocked && lines.length === 0 && !target.stdinClosed()) {
        // The first line of a turn goes out at once (a sequential caller waits on it); the lines sent after it in
        // the same turn are batched at the next microtask.
        scheduled = true
        atTurnEnd(flush)
        if (!target.write(line)) {
          blocked = true
          target.onDrain(() => {
            blocked = false
            flush()
          })
        }
        return
      }
      lines.push(line)
      schedule()
    },
    end: () => {
      if (ended) return
      ended = true
      schedule()
    },
    size: () => lines.length
  }
}

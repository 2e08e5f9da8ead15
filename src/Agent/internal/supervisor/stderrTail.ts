/**
 * An agent's stderr over all its incarnations, for those who watch it from outside (the admin API, log files):
 * the last lines kept in a ring, and listeners called with each new line.
 *
 * A tree's child keeps one tail over its agents too: a rolling reload's new agent is made with the tail of the
 * one it replaces, so the lines kept and the listeners go on over both processes, in the order they are read, as
 * over a restart. Each agent that shares it holds it with its own `stderrLines` (`hold`), and the tail keeps as
 * many lines as the most any of them wants: the old agent's lines are not pushed out by a new one's start, and
 * once the old one is gone the new one's setting rules.
 *
 * A line reaches the tail synchronously from the pipe's reader, so the tail does only a push and a loop over its
 * listeners: a listener that must do I/O queues the line and writes elsewhere (off the agent's pipe). The line
 * object kept in the ring is the one handed to the listeners: a reader that takes both the kept lines and the
 * live ones (`follow.ts`) tells one line read twice by its identity, and one out of this process by its `seq`.
 *
 * @internal
 */
import type { StderrLine } from "../../AgentSupervisor.js"

/** Listeners of lines, each called in turn with each line. */
export interface Listeners {
  /** Calls `listener` with each line from now on, until the function returned is called. */
  readonly listen: (listener: (line: StderrLine) => void) => () => void
  /** Calls every listener with `line`; one that throws harms neither the others nor the caller. */
  readonly emit: (line: StderrLine) => void
}

/** An empty set of listeners. */
export const listeners = (): Listeners => {
  const all = new Set<(line: StderrLine) => void>()
  return {
    listen: (listener) => {
      // One function per call, so that the same listener given twice is two listeners, each removed by its own.
      const own = (line: StderrLine) => listener(line)
      all.add(own)
      return () => {
        all.delete(own)
      }
    },
    emit: (line) => {
      for (const listener of all) {
        try {
          listener(line)
        } catch {
          // A listener's failure is its own: the pipe's reader goes on, and so do the other listeners.
        }
      }
    }
  }
}

export interface StderrTail {
  /** Called by the pipe's reader with each line, in order; the line as kept and as the listeners got it. */
  readonly push: (pid: number, text: string, timestamp: number) => StderrLine
  /** The last lines, oldest first (at most the capacity). */
  readonly recent: () => ReadonlyArray<StderrLine>
  /** Calls `listener` with each line from now on, until the function returned is called. */
  readonly listen: (listener: (line: StderrLine) => void) => () => void
  /**
   * Holds the tail for an agent that keeps `capacity` lines, until the function returned is called. While held,
   * the tail keeps as many lines as the most its holders want; held by none, it keeps its last capacity.
   */
  readonly hold: (capacity: number) => () => void
}

/**
 * The last line's number (`StderrLine.seq`), of every tail of this process: a line is numbered above every line read
 * before it by any agent, so that a tail started over (a nested supervisor's restart makes its agents anew) never
 * numbers a line as one already shown.
 */
let lastSeq = 0

/** A tail that keeps the last `capacity` lines (until held: see `hold`). */
export const make = (capacity: number): StderrTail => {
  // A circular buffer: `start` is the oldest line once the ring is full.
  let ring: Array<StderrLine> = []
  let start = 0
  let size = capacity
  const holds = new Set<{ readonly capacity: number }>()
  const live = listeners()
  const recent = () => start === 0 ? ring.slice() : [...ring.slice(start), ...ring.slice(0, start)]
  const resize = () => {
    if (holds.size === 0) return
    const wanted = Math.max(...Array.from(holds, (h) => h.capacity))
    if (wanted === size) return
    const lines = recent()
    ring = lines.slice(Math.max(0, lines.length - wanted))
    start = 0
    size = wanted
  }
  return {
    push: (pid, text, timestamp) => {
      const line: StderrLine = { pid, line: text, timestamp, seq: ++lastSeq }
      if (ring.length < size) ring.push(line)
      else {
        ring[start] = line
        start = (start + 1) % size
      }
      live.emit(line)
      return line
    },
    recent,
    listen: live.listen,
    hold: (wanted) => {
      const held = { capacity: wanted }
      holds.add(held)
      resize()
      return () => {
        if (holds.delete(held)) resize()
      }
    }
  }
}

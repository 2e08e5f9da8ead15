/**
 * An agent's stderr over all its incarnations, for those who watch it from outside (the admin API, log files):
 * the last lines kept in a ring, and listeners called with each new line.
 *
 * A line reaches the tail synchronously from the pipe's reader, so the tail does only a push and a loop over its
 * listeners: a listener that must do I/O queues the line and writes elsewhere (off the agent's pipe).
 *
 * @internal
 */
import type { StderrLine } from "../../AgentSupervisor.js"

export interface StderrTail {
  /** Called by the pipe's reader with each line, in order. */
  readonly push: (pid: number, text: string, timestamp: number) => void
  /** The last lines, oldest first (at most the capacity). */
  readonly recent: () => ReadonlyArray<StderrLine>
  /** Calls `listener` with each line from now on, until the function returned is called. */
  readonly listen: (listener: (line: StderrLine) => void) => () => void
}

/** A tail that keeps the last `capacity` lines. */
export const make = (capacity: number): StderrTail => {
  // A circular buffer: `start` is the oldest line once the ring is full.
  const ring: Array<StderrLine> = []
  let start = 0
  const listeners = new Set<(line: StderrLine) => void>()
  return {
    push: (pid, text, timestamp) => {
      const line: StderrLine = { pid, line: text, timestamp }
      if (ring.length < capacity) ring.push(line)
      else {
        ring[start] = line
        start = (start + 1) % capacity
      }
      for (const listener of listeners) {
        try {
          listener(line)
        } catch {
          // A listener's failure is its own: the pipe's reader goes on, and so do the other listeners.
        }
      }
    },
    recent: () => start === 0 ? ring.slice() : [...ring.slice(start), ...ring.slice(0, start)],
    listen: (listener) => {
      // One function per call, so that the same listener given twice is two listeners, each removed by its own.
      const own = (line: StderrLine) => listener(line)
      listeners.add(own)
      return () => {
        listeners.delete(own)
      }
    }
  }
}

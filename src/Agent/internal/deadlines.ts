/**
 * Request timeouts without a fiber or a timer per request, nor a fiber per process: each process keeps its
 * deadlines in buckets and one waiter for the earliest on the ticker of its `Clock` (`ticker.ts`, the one timer the
 * heartbeats share), so `TestClock` drives them like any other timeout.
 *
 * Deadlines are grouped into buckets of `resolution` milliseconds (rounded up, so a timeout never fires early).
 * Adding and removing a deadline are O(1) map operations plus a heap push when a new bucket appears; the ticker is
 * asked again only when a bucket comes before the one it waits for. An answered request leaves its bucket empty;
 * empty buckets are dropped when their moment comes (or when they reach the top of the heap), without a wake-up of
 * their own.
 *
 * Before, each process had a sweeper fiber and an alarm fiber sleeping on the `Clock` towards its earliest
 * deadline: with a heartbeat ping's deadline each beat, 1,000 agents cost 2,000 fibers and 1,000 timers a second.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Heap from "../../internal/heap.js"
import * as Ticker from "../../internal/ticker.js"

/** @internal */
export interface Deadlines {
  /** Expires `key` once `deadline` (Clock milliseconds) has passed, unless removed first. Returns the bucket. */
  readonly add: (key: string, deadline: number) => number
  readonly remove: (key: string, bucket: number) => void
  /** Forgets every deadline and the ticker's waiter (the process is gone); call it when the owner's scope closes. */
  readonly close: () => void
}

/** @internal */
export const make = (clock: Clock.Clock, onExpire: (key: string) => void, resolution = 5): Deadlines => {
  const ticker = Ticker.forClock(clock)
  // One expiry function for all keys: no closure allocated per request.
  const buckets = new Map<number, Set<string>>()
  const heap = Heap.make<number>()
  const keys = heap.keys
  // The ticker's waiter for the earliest bucket, if one is armed, and its moment.
  let armed: Ticker.Waiter | undefined
  let closed = false

  /** Drops the empty buckets at the top; the earliest bucket left, or Infinity. */
  const earliest = (): number => {
    while (keys.length > 0 && (buckets.get(keys[0])?.size ?? 0) === 0) {
      buckets.delete(keys[0])
      Heap.pop(heap)
    }
    return keys.length > 0 ? keys[0] : Infinity
  }

  const arm = (at: number) => {
    if (armed !== undefined) ticker.cancel(armed)
    armed = undefined
    if (at === Infinity || closed) return
    armed = ticker.waiter(at, 0)
    ticker.schedule(armed, sweep)
  }

  // In the ticker's fiber: expires everything due, in deadline order, then waits for the next bucket.
  const sweep = () => {
    armed = undefined
    const now = clock.unsafeCurrentTimeMillis()
    let next = earliest()
    while (next <= now) {
      Heap.pop(heap)
      const due = buckets.get(next)!
      buckets.delete(next)
      for (const key of due) onExpire(key)
      next = earliest()
    }
    arm(next)
  }

  const add = (key: string, deadline: number): number => {
    const bucket = Math.ceil(deadline / resolution) * resolution
    let entries = buckets.get(bucket)
    if (entries === undefined) {
      entries = new Set()
      buckets.set(bucket, entries)
      Heap.push(heap, bucket, bucket)
      if (armed === undefined || bucket < armed.due) arm(bucket)
    }
    entries.add(key)
    return bucket
  }

  const remove = (key: string, bucket: number) => {
    buckets.get(bucket)?.delete(key)
  }

  const close = () => {
    closed = true
    arm(Infinity)
    buckets.clear()
    Heap.clear(heap)
  }

  return { add, remove, close }
}

/**
 * Request timeouts without a fiber per request: one sweeper fiber per process sleeps on Effect's `Clock` until
 * the earliest deadline, so `TestClock` drives it like any other timeout.
 *
 * Deadlines are grouped into buckets of `resolution` milliseconds (rounded up, so a timeout never fires early).
 * Adding and removing a deadline are O(1) map operations plus a heap push when a new bucket appears; with the
 * usual single timeout per agent, buckets arrive in order and the sweeper never needs waking.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Heap from "../../internal/heap.js"

/** @internal */
export interface Deadlines {
  /** Expires `key` once `deadline` (Clock milliseconds) has passed, unless removed first. Returns the bucket. */
  readonly add: (key: string, deadline: number) => number
  readonly remove: (key: string, bucket: number) => void
  /** The sweeper; fork it in the owner's scope. */
  readonly run: Effect.Effect<never>
}

const bucketOf = (bucket: number): number => bucket

/** Adds `value` to the binary min-heap `heap` of buckets. @internal */
export const push = (heap: Array<number>, value: number): void => Heap.push(heap, value, bucketOf)

/** Removes the least value of the non-empty binary min-heap `heap` (it is `heap[0]`). @internal */
export const pop = (heap: Array<number>): void => Heap.pop(heap, bucketOf)

/** @internal */
export const make = (clock: Clock.Clock, onExpire: (key: string) => void, resolution = 5): Deadlines => {
  // One expiry function for all keys: no closure allocated per request.
  const buckets = new Map<number, Set<string>>()
  const heap: Array<number> = []
  // The sweeper waits on `wake`; an alarm fiber (its child) sleeps on the Clock until `alarmAt`, then opens it.
  // A sleep raced against a latch cost two fibers and an interruption per sleep (each agent's heartbeat ping made
  // its sweeper sleep anew about once per ping timeout: 3% of a core for 500 agents); the alarm costs a wake-up.
  const wake = Effect.unsafeMakeLatch(false)
  const arm = Effect.unsafeMakeLatch(false)
  // When the sweeper is to be woken (Infinity: when a bucket comes), whether the alarm sleeps towards it, and the
  // alarm fiber's generation (a replaced one ends without touching them).
  let alarmAt = Infinity
  let alarmAsleep = false
  let alarms = 0

  const add = (key: string, deadline: number): number => {
    const bucket = Math.ceil(deadline / resolution) * resolution
    let entries = buckets.get(bucket)
    if (entries === undefined) {
      entries = new Set()
      buckets.set(bucket, entries)
      push(heap, bucket)
      if (bucket < alarmAt) {
        // Due before the alarm: one asleep is replaced by the sweeper; one that is not reads the new moment.
        if (alarmAsleep) {
          wake.unsafeOpen()
        } else {
          alarmAt = bucket
          arm.unsafeOpen()
        }
      }
    }
    entries.add(key)
    return bucket
  }

  const remove = (key: string, bucket: number) => {
    buckets.get(bucket)?.delete(key)
  }

  const alarm = (own: number) =>
    Effect.gen(function*() {
      while (own === alarms) {
        yield* arm.await
        arm.unsafeClose()
        const target = alarmAt
        if (target === Infinity) continue // an extra `arm`: nothing to wake for
        const wait = target - clock.unsafeCurrentTimeMillis()
        if (wait > 0) {
          alarmAsleep = true
          yield* clock.sleep(Duration.millis(wait))
          if (own !== alarms) return
          alarmAsleep = false
        }
        // Moved meanwhile: the sweeper armed it again (and `arm` is open).
        if (alarmAt !== target) continue
        alarmAt = Infinity
        wake.unsafeOpen()
      }
    })

  const run = Effect.gen(function*() {
    // Interruptible, so that a replaced alarm stops sleeping (whatever region the sweeper was forked in).
    let alarmFiber = yield* Effect.fork(Effect.interruptible(alarm(alarms)))
    while (true) {
      // Buckets emptied by answered requests are dropped without waiting for their time.
      while (heap.length > 0 && (buckets.get(heap[0])?.size ?? 0) === 0) {
        buckets.delete(heap[0])
        pop(heap)
      }
      const next = heap.length > 0 ? heap[0] : Infinity
      if (next - clock.unsafeCurrentTimeMillis() > 0) {
        wake.unsafeClose()
        if (next < alarmAt) {
          // Rare: an alarm asleep until later is replaced (a sleeping fiber cannot be woken early but by an
          // interruption); one that is not asleep reads the new moment when it comes round.
          if (alarmAsleep) {
            alarms++
            alarmAsleep = false
            alarmFiber.unsafeInterruptAsFork(FiberId.none)
            alarmFiber = yield* Effect.fork(Effect.interruptible(alarm(alarms)))
          }
          alarmAt = next
          arm.unsafeOpen()
        }
        yield* wake.await
        continue
      }
      pop(heap)
      const due = buckets.get(next)!
      buckets.delete(next)
      for (const key of due) onExpire(key)
    }
  }) as Effect.Effect<never>

  return { add, remove, run }
}

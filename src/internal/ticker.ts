/**
 * One timer for every heartbeat of the process: a beat waits in a heap ordered by the moment it is due, and one
 * fiber per `Clock` sleeps until the earliest and wakes every beat due by then.
 *
 * A fiber per agent sleeping on a timer of its own cost 500 timers, 500 event-loop wake-ups and 500 timer
 * registrations (an `Effect.async` with a canceler) per second for 500 agents beating every second. Due moments
 * are rounded to a grid of a few milliseconds (see {@link gridOf}), so beats due within one step are woken at
 * once: 500 agents on a 1 s interval wake the process about 50 times a second. Waiting here is an `Effect.async`
 * without a canceler, resumed by the ticker; the heartbeat cancels its pending wait once, when it ends.
 *
 * The ticker sleeps on the `Clock` it was made for (one ticker per `Clock`), so `TestClock` drives it as it drove
 * the sleeps it replaces. It runs only while a beat waits: it ends when none does (a process with no heartbeat
 * has no timer pending), and the first wait after that starts it again.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import { withoutParentSpan } from "./forker.js"
import * as Heap from "./heap.js"

/** The widest grid step, in milliseconds: how far a beat may move from the moment it was due. @internal */
export const MAX_GRID_MILLIS = 20

/**
 * The grid step for beats `intervalMillis` apart: the largest whole number of milliseconds that divides the
 * interval and is at most `MAX_GRID_MILLIS` and a twentieth of it (a 1 s interval: 20 ms; 100 ms: 5 ms; an
 * interval under 20 ms, or not a whole number of milliseconds: 0, no grid). Dividing the interval keeps beats
 * exactly one interval apart when a beat takes no time (as under `TestClock`).
 *
 * @internal
 */
export const gridOf = (intervalMillis: number): number => {
  if (!Number.isInteger(intervalMillis)) return 0
  for (let step = Math.min(MAX_GRID_MILLIS, Math.floor(intervalMillis / 20)); step > 1; step--) {
    if (intervalMillis % step === 0) return step
  }
  return 0
}

/** A moment on the grid of `grid` millis (any moment when there is none), rounded by `round`. */
const onGrid = (due: number, grid: number, round: (x: number) => number): number =>
  grid === 0 ? due : round(due / grid) * grid

/** One beat (or callback) waiting for its moment. @internal */
export interface Waiter {
  /** `Clock` millis when it is woken. */
  readonly due: number
  /** Set when the waiting fiber has suspended, or by `schedule`; the ticker calls it once. */
  resume: ((effect: Effect.Effect<void>) => void) | undefined
  /** Woken, or cancelled: no longer in the count of live waiters. */
  done: boolean
}

/** @internal */
export interface Ticker {
  /**
   * A waiter due at `due` (`Clock` millis) on the grid of `grid` millis, rounded to the nearest step; with
   * `notAfter`, rounded up but never past `notAfter` (then down: a first beat must come within its first interval).
   */
  readonly waiter: (due: number, grid: number, notAfter?: number) => Waiter
  /** Waits until the ticker wakes `waiter` (at once if it already did). */
  readonly wait: (waiter: Waiter) => Effect.Effect<void>
  /**
   * Calls `callback` in the ticker's fiber once `waiter` is due, with no fiber of the caller's waiting (the
   * request timeouts of every agent: see `deadlines.ts`). It must not throw. `cancel` forgets it.
   */
  readonly schedule: (waiter: Waiter, callback: () => void) => void
  /** Forgets a waiter that will not be waited for (its fiber is ending); stops the ticker if no one else waits. */
  readonly cancel: (waiter: Waiter) => void
  /** How many waiters are pending (for tests). */
  readonly pending: () => number
  /** Whether the ticker's fiber is running (for tests). */
  readonly running: () => boolean
}

/** A ticker sleeping on `clock`. @internal */
export const make = (clock: Clock.Clock): Ticker => {
  const heap = Heap.make<Waiter>()
  const waiters = heap.items
  let live = 0
  let fiber: Fiber.RuntimeFiber<void> | undefined
  // When the running fiber will next look at the heap (Infinity: no fiber runs). A waiter due earlier needs a
  // fiber that sleeps less: the running one is interrupted and another started.
  let sleepingUntil = Infinity
  let generation = 0

  const stop = () => {
    generation++
    sleepingUntil = Infinity
    const running = fiber
    fiber = undefined
    // Interrupted where it sleeps: the timer is cleared, so a process whose heartbeats ended has none pending.
    running?.unsafeInterruptAsFork(FiberId.none)
  }

  const run = (own: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (own !== generation) return Effect.void
      const now = clock.unsafeCurrentTimeMillis()
      // A callback that throws is logged; it must not end the ticker (every heartbeat and timeout waits on it).
      let thrown: Array<unknown> | undefined
      while (waiters.length > 0 && (waiters[0].done || heap.keys[0] <= now)) {
        const waiter = waiters[0]
        Heap.pop(heap)
        if (waiter.done) continue
        waiter.done = true
        live--
        try {
          waiter.resume?.(Effect.void)
        } catch (error) {
          ;(thrown ??= []).push(error)
        }
      }
      if (thrown !== undefined) {
        const errors = thrown
        return Effect.zipRight(
          Effect.forEach(errors, (error) => Effect.logError("a ticker callback threw", error), { discard: true }),
          run(own)
        )
      }
      if (live === 0) {
        Heap.clear(heap)
        fiber = undefined
        sleepingUntil = Infinity
        return Effect.void
      }
      sleepingUntil = heap.keys[0]
      return Effect.zipRight(clock.sleep(Duration.millis(sleepingUntil - now)), run(own))
    })

  const start = Effect.suspend(() => {
    if (fiber !== undefined && waiters.length > 0 && heap.keys[0] >= sleepingUntil) return Effect.void
    stop()
    const own = generation
    // Until the new fiber first looks at the heap, nothing needs another.
    sleepingUntil = -Infinity
    // Interruptible even when the wait runs in an uninterruptible region: `stop` must be able to end it.
    return Effect.map(Effect.forkDaemon(Effect.interruptible(withoutParentSpan(run(own)))), (started) => {
      if (own === generation) fiber = started
      else started.unsafeInterruptAsFork(FiberId.none)
    })
  })

  /** Puts a waiter in the heap; whether the ticker must be started again to wake it in time. */
  const enqueue = (waiter: Waiter): boolean => {
    Heap.push(heap, waiter, waiter.due)
    live++
    return waiter.due < sleepingUntil
  }

  return {
    waiter: (due, grid, notAfter) => {
      let at = onGrid(due, grid, notAfter === undefined ? Math.round : Math.ceil)
      if (notAfter !== undefined && at > notAfter) at = onGrid(due, grid, Math.floor)
      return { due: at, resume: undefined, done: false }
    },
    wait: (waiter) =>
      Effect.suspend(() => {
        if (waiter.done) return Effect.void
        return Effect.zipRight(
          enqueue(waiter) ? start : Effect.void,
          Effect.async<void>((resume) => {
            if (waiter.done) resume(Effect.void)
            else waiter.resume = resume
          })
        )
      }),
    schedule: (waiter, callback) => {
      if (waiter.done) return
      waiter.resume = callback
      if (enqueue(waiter)) Effect.runFork(start)
    },
    cancel: (waiter) => {
      if (waiter.done) return
      waiter.done = true
      waiter.resume = undefined
      live--
      if (live === 0) {
        Heap.clear(heap)
        stop()
      }
    },
    pending: () => live,
    running: () => fiber !== undefined
  }
}

const tickers = new WeakMap<Clock.Clock, Ticker>()

/** The ticker of `clock`, shared by every heartbeat that runs on it. @internal */
export const forClock = (clock: Clock.Clock): Ticker => {
  let ticker = tickers.get(clock)
  if (ticker === undefined) {
    ticker = make(clock)
    tickers.set(clock, ticker)
  }
  return ticker
}

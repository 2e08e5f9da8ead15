/**
 * One timer for every heartbeat of the process: a beat waits in a heap ordered by the moment it is due, and one
 * fiber per `Clock` sleeps until the earliest and wakes every beat due by then.
 *
 * A fiber per agent sleeping on a timer of its own cost 500 timers, 500 event-loop wake-ups and 500 timer
 * registrations (an `Effect.async` with a canceler) per second for 500 agents beating every second. Due moments are
 * rounded to a grid of steps (a tenth of the interval, at most 100 ms: see {@link gridOf}), so beats due within one
 * step are woken at once: 500 agents on a 1 s interval wake the process about 10 times a second. Waiting here is an
 * `Effect.async` without a canceler, resumed by the ticker; the heartbeat cancels its pending wait once, when it
 * ends.
 *
 * On the live clock a turn of the ticker runs due callbacks for at most {@link TURN_BUDGET_MILLIS} of real time;
 * past it, the callbacks still due run after the event loop has turned (a `setImmediate`), so that the answers
 * that came in meanwhile are read and the loop is never held for a whole step's beats.
 *
 * The ticker sleeps on the `Clock` it was made for (one ticker per `Clock`), so `TestClock` drives it as it drove
 * the sleeps it replaces. It runs only while a beat waits: it ends when none does (a process with no heartbeat
 * has no timer pending), and the first wait after that starts it again.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import { withoutParentSpan } from "./forker.js"
import * as Heap from "./heap.js"

/**
 * The widest grid step, in milliseconds (a beat moves by half a step at most, a first beat by one). A step holds
 * every beat due within it, woken in one turn of the ticker: each turn costs the process a wake-up whatever it holds
 * (the ticker's timer and fiber, the event loop's poll, the caches refilled), so the wider the step, the fewer turns
 * a second. Measured (issue 10, 1,000 agents beating every second, two trees side by side over the same 5 s windows):
 * 50 ms steps cost 13% less of the supervisor's CPU than 20 ms steps, 100 ms steps 14% less again. @internal
 */
export const MAX_GRID_MILLIS = 100

/**
 * The grid step for beats `intervalMillis` apart: the largest whole number of milliseconds that divides the interval
 * and is at most `MAX_GRID_MILLIS` and a tenth of it (1 s, or a multiple of 100 ms above it: 100 ms; 1234 ms: 2 ms;
 * 200 ms: 20 ms; 100 ms: 10 ms; an interval under 20 ms, or not a whole number of milliseconds: 0, no grid), so that
 * a beat moves by 5% of its interval at most (a first beat, rounded up, by 10%). Dividing the interval keeps beats
 * exactly one interval apart when a beat takes no time (as under `TestClock`).
 *
 * @internal
 */
export const gridOf = (intervalMillis: number): number => {
  if (!Number.isInteger(intervalMillis)) return 0
  for (let step = Math.min(MAX_GRID_MILLIS, Math.floor(intervalMillis / 10)); step > 1; step--) {
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

/**
 * How long one turn of the ticker may run due callbacks before it lets the event loop turn, in real milliseconds
 * (`performance.now()`): the rest run after a `setImmediate`, once Node has read what came in meanwhile.
 *
 * A beat's ping is written at once, and a write that wakes an agent can cost the supervisor its CPU for a while (the
 * kernel may run the woken reader on the writer's CPU first): on a slow 2-core VM, the 20 beats of one 20 ms step of
 * a thousand agents (steps were 20 ms then) held the loop for 30-50 ms in one go, the p99 of every ping latency and
 * event-loop delay. On a machine where writes are cheap, a step's beats still run in one turn.
 *
 * @internal
 */
export const TURN_BUDGET_MILLIS = 2

/** A turn of the event loop: resumed by a `setImmediate`, after the I/O callbacks of this turn. */
const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** The live `Clock`, the one Effect provides by default. */
const liveClock = Context.get(DefaultServices.liveServices, Clock.Clock)

/**
 * A ticker sleeping on `clock`. Its turns are bounded by `turnBudgetMillis` (by default
 * {@link TURN_BUDGET_MILLIS} on the live clock; unbounded on any other, such as `TestClock`, whose tests expect the
 * callbacks due at a moment to have run once the clock is past it).
 *
 * @internal
 */
export const make = (
  clock: Clock.Clock,
  turnBudgetMillis: number = clock === liveClock ? TURN_BUDGET_MILLIS : Infinity
): Ticker => {
  const heap = Heap.make<Waiter>()
  const waiters = heap.items
  let live = 0
  let fiber: Fiber.RuntimeFiber<void> | undefined
  // When the running fiber will next look at the heap (Infinity: no fiber runs). A waiter due earlier needs a
  // fiber that sleeps less: the running one is interrupted and another started.
  let sleepingUntil = Infinity
  let generation = 0
  // Whether the running fiber is in a turn, calling back: a stop from a callback is then this fiber's own.
  let inTurn = false

  const stop = () => {
    generation++
    sleepingUntil = Infinity
    const running = fiber
    fiber = undefined
    // Interrupted where it sleeps: the timer is cleared, so a process whose heartbeats ended has none pending. Not
    // in its turn: it ends by itself once the callback returns (it sees the generation), and logs what threw first.
    if (!inTurn) running?.unsafeInterruptAsFork(FiberId.none)
  }

  const run = (own: number): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (own !== generation) return Effect.void
      const now = clock.unsafeCurrentTimeMillis()
      const turnEnds = performance.now() + turnBudgetMillis
      // A callback that throws is logged; it must not end the ticker (every heartbeat and timeout waits on it).
      let thrown: Array<unknown> | undefined
      let yielding = false
      inTurn = true
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
        // A callback stopped this fiber (it cancelled the last waiter) or started another (a waiter due before this
        // one's next look): the heap and the ticker's state are no longer this fiber's to touch.
        if (own !== generation) break
        if (turnBudgetMillis !== Infinity && performance.now() > turnEnds) {
          yielding = true
          break
        }
      }
      inTurn = false
      const logged = thrown === undefined ? undefined : Effect.forEach(
        thrown,
        (error) => Effect.logError("a ticker callback threw", error),
        { discard: true }
      )
      if (own !== generation) return logged ?? Effect.void
      if (yielding) {
        // Past its budget: the rest after a turn of the event loop (nothing sleeps; the heap is looked at then).
        sleepingUntil = -Infinity
        const rest = Effect.zipRight(nextTurn, run(own))
        return logged === undefined ? rest : Effect.zipRight(logged, rest)
      }
      if (logged !== undefined) return Effect.zipRight(logged, run(own))
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

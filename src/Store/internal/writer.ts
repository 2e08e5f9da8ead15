/**
 * The store writer: the supervisor's writes go into a bounded buffer and return at once; one background fiber
 * hands them to the (resilient) store in order. A slow or hung store therefore never delays a transition or a
 * request; when the buffer is full the oldest metric is dropped and counted, never a state or a restart.
 *
 * The draining fiber is the resilient store's `Runner`: each write runs in it, in place, and one watchdog fiber
 * bounds them all (sleeping on the `Clock` until the deadline of the write in flight) instead of a fiber pair and
 * a timer per write. A write that outlives the store's timeout is counted as the store counts a timeout, and the
 * draining fiber is abandoned (interrupted in the background, never waited for) for a new one that goes on with
 * the next write, as a timed-out write went on before.
 *
 * States and restart records wake the draining fiber at once. Metrics (a health check per agent per beat: 1,000 a
 * second for 1,000 agents beating every second) wake it at most every `METRIC_DELAY_MILLIS` of the `Clock`, through
 * the process's one ticker: the fiber then writes every metric waiting, in order, instead of being woken for each
 * (a wake-up per metric cost about a fifth of the supervisor's heartbeat CPU). A state or restart record, a
 * `flush` and closing the scope write the metrics waiting at once, in order with the rest.
 *
 * Checkpoints (protocol 1.1) wait as metrics do, and are never dropped: an agent has at most one in the buffer, which
 * a newer one replaces (an agent that checkpoints at every step writes about ten a second, whatever its pace).
 * `loadCheckpoint` reads an agent's own checkpoint back before the store has it (read your writes).
 *
 * `forgetAgent` (an agent gone from its tree for good) is a write in the same order: the agent's writes enqueued
 * before it reach the store first, and it deletes them there.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { toDuration } from "../../internal/durationText.js"
import type { DurationInput } from "../../internal/durationText.js"
import { Fifo } from "../../internal/fifo.js"
import { forkIn } from "../../internal/fork.js"
import { withoutParentSpan } from "../../internal/forker.js"
import * as StoreMetrics from "../../internal/metrics/store.js"
import * as Ticker from "../../internal/ticker.js"
import { isolate } from "../../internal/wait.js"
import type * as Store from "../Store.js"
import * as Checkpoints from "./checkpoints.js"
import * as Resilient from "./resilient.js"

/**
 * Buffered, non-blocking writes to a store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Writer {
  /** Enqueues a state; returns at once, never fails. */
  readonly saveState: (record: Store.StateRecord) => Effect.Effect<void>
  /** Enqueues a metric; returns at once, never fails. The first to be dropped when the buffer is full. */
  readonly saveMetric: (event: Store.MetricEvent) => Effect.Effect<void>
  /** {@link Writer.saveMetric} as a plain call (a heartbeat's report, outside the run loop). */
  readonly offerMetric: (event: Store.MetricEvent) => void
  /** Enqueues a restart record; returns at once, never fails. */
  readonly recordRestart: (record: Store.RestartRecord) => Effect.Effect<void>
  /** Enqueues an agent's checkpoint, replacing the one of that agent still waiting; returns at once, never fails. */
  readonly saveCheckpoint: (record: Store.CheckpointRecord) => Effect.Effect<void>
  /** {@link Writer.saveCheckpoint} as a plain call, for Node's handlers (the stdout reader). */
  readonly offerCheckpoint: (record: Store.CheckpointRecord) => void
  /**
   * An agent's latest checkpoint: the one it gave this writer, until the store has it, else the store's (`None`
   * when there is none or the store fails). Never fails.
   */
  readonly loadCheckpoint: (agent: string) => Effect.Effect<Option.Option<Store.CheckpointRecord>>
  /**
   * How many writes never reached the store: metrics dropped from a full buffer, writes still buffered when the
   * closing flush gave up, and writes made after the scope closed.
   */
  readonly dropped: Effect.Effect<number>
  /**
   * Enqueues forgetting an agent's last state and checkpoint (`Store.deleteAgent`), after every write of it
   * enqueued before; a checkpoint given after it is kept. Returns at once, never fails.
   */
  readonly forgetAgent: (agent: string) => Effect.Effect<void>
  /** Waits until every write enqueued before it has been handed to the store (and the store answered). */
  readonly flush: Effect.Effect<void>
}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How many writes the buffer holds before metrics are dropped. 10 000 by default. */
  readonly capacity?: number | undefined
  /** How long closing the scope waits for the buffer to drain before giving up. 1 second by default. */
  readonly flushTimeout?: DurationInput | undefined
}

/**
 * How long closing a writer's scope waits for the store by default: short, because a hung store must not hold up
 * an application's exit (its writes are best effort anyway).
 *
 * @since 0.1.0
 * @category defaults
 */
export const DEFAULT_FLUSH_TIMEOUT: Duration.Duration = Duration.seconds(1)

/**
 * The longest a metric waits in the buffer before the draining fiber is woken for it, in `Clock` milliseconds (a
 * state, a restart record or a flush wakes it at once).
 *
 * @since 0.1.0
 * @category defaults
 */
export const METRIC_DELAY_MILLIS = 100

/** The grid of the metrics' wake-up (see `Ticker.waiter`): wakes due within 20 ms of each other are one. */
const METRIC_WAKE_GRID_MILLIS = 20

/**
 * The most metrics handed to the store in one write (`saveMetrics`): consecutive metrics in write order, none of
 * another kind between them.
 *
 * @since 0.1.0
 * @category defaults
 */
export const METRIC_BATCH = 200

type Entry =
  | { readonly _tag: "State"; readonly seq: number; readonly record: Store.StateRecord }
  | { readonly _tag: "Metric"; readonly seq: number; readonly event: Store.MetricEvent }
  | { readonly _tag: "Restart"; readonly seq: number; readonly record: Store.RestartRecord }
  | Checkpoints.ForgetEntry
  | Checkpoints.Entry

/** The write in flight in the draining fiber, and when it times out. */
interface Watched {
  readonly token: number
  /** `Clock` millis. */
  readonly deadline: number
  readonly onTimeout: Effect.Effect<void>
}

/**
 * The draining fiber's runner and its watchdog. `abandon` is called (in the watchdog's fiber) with a write that
 * timed out, after its accounting: it must stop the draining fiber and start another.
 */
const makeRunner = (clock: Clock.Clock, drainer: () => Fiber.RuntimeFiber<unknown, unknown> | undefined) => {
  let watched: Watched | undefined
  let tokens = 0
  // The deadline of the last write begun, ended or not: the watchdog, once woken, sleeps until it.
  let lastDeadline = -Infinity
  // When the watchdog next looks (Infinity: it waits for a write to begin); a write due earlier wakes it.
  let sleepingUntil = Infinity
  const alarm = Effect.unsafeMakeLatch(false)

  const runner: Resilient.Runner = {
    runs: (fiber) => fiber === drainer(),
    begin: (timeoutMillis, onTimeout) => {
      const deadline = clock.unsafeCurrentTimeMillis() + timeoutMillis
      watched = { token: ++tokens, deadline, onTimeout }
      lastDeadline = deadline
      if (deadline < sleepingUntil) alarm.unsafeOpen()
      return tokens
    },
    end: (token) => {
      if (watched?.token !== token) return false
      watched = undefined
      return true
    }
  }

  // Woken by the first write after a quiet spell, it sleeps until that write's deadline whether the write ended or
  // not (most end long before), then until the deadline of the write in flight or of the last one begun: about one
  // sleep per timeout while writes go on, none while none does, and no wake-up per write.
  const watchdog = (abandon: Effect.Effect<void>) =>
    Effect.gen(function*() {
      while (true) {
        const write = watched
        const now = clock.unsafeCurrentTimeMillis()
        if (write !== undefined && write.deadline <= now) {
          watched = undefined
          yield* write.onTimeout
          yield* abandon
          continue
        }
        const until = write !== undefined ? write.deadline : lastDeadline > now ? lastDeadline : Infinity
        alarm.unsafeClose()
        sleepingUntil = until
        yield* until === Infinity
          ? alarm.await
          : Effect.raceFirst(clock.sleep(Duration.millis(until - now)), alarm.await)
      }
    })

  return { runner, watchdog }
}

/**
 * The draining fiber's wake-ups: `now` (a state, a restart record, a flush), or `soon`, within the metric delay,
 * through the ticker's waiter (one armed at most); `forget` disarms it.
 */
const makeWakeUps = (clock: Clock.Clock, wake: Effect.Latch) => {
  const ticker = Ticker.forClock(clock)
  let metricWake: Ticker.Waiter | undefined
  const forget = () => {
    if (metricWake !== undefined) ticker.cancel(metricWake)
    metricWake = undefined
  }
  return {
    forget,
    now: () => {
      forget()
      wake.unsafeOpen()
    },
    soon: () => {
      if (metricWake !== undefined) return
      metricWake = ticker.waiter(clock.unsafeCurrentTimeMillis() + METRIC_DELAY_MILLIS, METRIC_WAKE_GRID_MILLIS)
      ticker.schedule(metricWake, () => {
        metricWake = undefined
        wake.unsafeOpen()
      })
    }
  }
}

/**
 * Makes a writer over a resilient store. Scoped: the draining fiber lives in the scope, and closing the scope
 * first drains what is left, for at most `flushTimeout`, then gives up on the rest with a warning.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const writer = yield* Writer.make(yield* Store.resilient(yield* Store.Store))
 * yield* writer.saveState({ agent_name: "echo", state: "RUNNING", restart_count: 0, updated_at: now })
 * ```
 */
export const make = (store: Store.ResilientStore, options?: Options): Effect.Effect<Writer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const capacity = Math.max(1, Math.floor(options?.capacity ?? 10_000))
    const flushTimeout = toDuration(options?.flushTimeout ?? DEFAULT_FLUSH_TIMEOUT)

    // Metrics apart from the rest, so that the oldest metric is found in O(1); `seq` restores the write order.
    const metrics = new Fifo<Entry>()
    const others = new Fifo<Entry>()
    let lastSeq = 0
    // Every write up to `settled` has been handed to the store (and answered) or dropped.
    let settled = 0
    let dropped = 0
    let closed = false
    let waiters: Array<{ readonly target: number; readonly done: Deferred.Deferred<void> }> = []
    const wake = yield* Effect.makeLatch(false)
    const clock = yield* Effect.clock
    const { forget: forgetMetricWake, now: wakeNow, soon: wakeSoon } = makeWakeUps(clock, wake)

    const size = () => metrics.size + others.size
    /** Gives up on `count` writes: counted here (`dropped`) and in the metrics. */
    const drop = (reason: "buffer_full" | "flush_timeout" | "closed", count: number) => {
      dropped += count
      StoreMetrics.dropped(reason, count)
    }

    const checkpoints = Checkpoints.make(store)
    const offerCheckpoint = (record: Store.CheckpointRecord) => {
      if (closed) return drop("closed", 1)
      if (checkpoints.replace(record)) return
      // Never dropped, as states are; at most one per agent, so the buffer grows past capacity by few.
      others.push(checkpoints.add({ _tag: "Checkpoint", seq: ++lastSeq, record }))
      wakeSoon()
    }

    const offer = (isMetric: boolean, entry: (seq: number) => Entry): void => {
      if (closed) return drop("closed", 1)
      if (size() >= capacity) {
        if (metrics.size > 0) {
          metrics.shift()
          drop("buffer_full", 1)
        } else if (isMetric) {
          // The buffer holds only states and restarts: the new metric is the oldest one there is.
          return drop("buffer_full", 1)
        }
        // Otherwise a state or restart record goes in anyway, past capacity: those are never dropped, and the
        // buffer only grows beyond `capacity` by them.
      }
      const item = entry(++lastSeq)
      ;(isMetric ? metrics : others).push(item)
      if (isMetric) wakeSoon()
      else wakeNow()
    }
    const enqueue = (isMetric: boolean, entry: (seq: number) => Entry) => Effect.sync(() => offer(isMetric, entry))
    const offerMetric = (event: Store.MetricEvent) => offer(true, (seq) => ({ _tag: "Metric", seq, event }))

    const next = (): Entry | undefined => {
      const metric = metrics.peek()
      const other = others.peek()
      if (metric === undefined) return others.shift()
      if (other === undefined) return metrics.shift()
      return metric.seq < other.seq ? metrics.shift() : others.shift()
    }

    /** Moves `settled` on; the flushes it releases, if any (a plain call: it runs after every write). */
    const settle = (): Effect.Effect<void> | undefined => {
      const head = Math.min(metrics.peek()?.seq ?? Infinity, others.peek()?.seq ?? Infinity)
      settled = head === Infinity ? lastSeq : head - 1
      if (waiters.length === 0 || waiters[0].target > settled) return undefined
      const ready = waiters.filter((w) => w.target <= settled)
      waiters = waiters.filter((w) => w.target > settled)
      return Effect.forEach(ready, (w) => Deferred.succeed(w.done, undefined), { discard: true })
    }
    const writeFailed = (cause: Cause.Cause<unknown>) => Effect.logWarning("Store writer: a write failed", cause)

    /** A metric, with the metrics right after it in write order (none of another kind between), as one write. */
    const metricBatch = (first: Store.MetricEvent): Effect.Effect<void> => {
      const events = [first]
      const before = others.peek()?.seq ?? Infinity
      while (events.length < METRIC_BATCH && (metrics.peek()?.seq ?? Infinity) < before) {
        events.push((metrics.shift() as Extract<Entry, { _tag: "Metric" }>).event)
      }
      return events.length === 1 ? store.saveMetric(first) : store.saveMetrics(events)
    }

    const write = (entry: Entry): Effect.Effect<void> => {
      switch (entry._tag) {
        case "State":
          return store.saveState(entry.record)
        case "Metric":
          return metricBatch(entry.event)
        case "Restart":
          return store.recordRestart(entry.record)
        case "Checkpoint":
          return checkpoints.write(entry)
        case "Forget":
          return checkpoints.writeForget(entry)
      }
    }

    // The draining fiber of generation `own`: a new one takes over when a write times out.
    let drainFiber: Fiber.RuntimeFiber<void> | undefined
    let generation = 0
    const { runner, watchdog } = makeRunner(clock, () => drainFiber)

    const drain = (own: number) =>
      Effect.gen(function*() {
        while (own === generation) {
          let entry = next()
          while (entry !== undefined) {
            // A resilient store never fails; this guards the fiber against one that does anyway.
            yield* write(entry).pipe(Effect.catchAllCause(writeFailed))
            if (own !== generation) return // abandoned: the write timed out, and another fiber goes on
            const released = settle()
            if (released !== undefined) yield* released
            entry = next()
          }
          wake.unsafeClose()
          // Closed before this last look: an entry enqueued from here on opens it again.
          if (metrics.size + others.size === 0) {
            // The last write may have been abandoned at its timeout (this fiber took over with nothing to write):
            // the flushes waiting for it go now.
            yield* settle() ?? Effect.void
            yield* wake.await
          }
        }
      })

    // A daemon, not a fiber of the scope: an abandoned one may be stuck in a write that ignores interruption, and
    // closing the scope must not wait for it (the finalizer interrupts the current one in the background).
    const startDrain = Effect.suspend(() => {
      const own = ++generation
      if (closed) return Effect.void
      return Effect.map(
        Effect.forkDaemon(
          Effect.interruptible(withoutParentSpan(Effect.locally(drain(own), Resilient.currentRunner, runner)))
        ),
        (fiber) => {
          drainFiber = fiber
        }
      )
    })
    const stopDrain = () => {
      generation++
      const stuck = drainFiber
      drainFiber = undefined
      stuck?.unsafeInterruptAsFork(FiberId.none)
    }

    const flush: Effect.Effect<void> = Effect.flatMap(Deferred.make<void>(), (done) => {
      if (closed || settled >= lastSeq) return Effect.void
      waiters.push({ target: lastSeq, done })
      // Metrics waiting for their delay go now.
      wakeNow()
      return Deferred.await(done)
    })

    yield* startDrain
    // Forked before the finalizer below is added, so that the finalizer runs first: drain, then stop the watchdog.
    yield* forkIn(yield* Effect.scope)(withoutParentSpan(watchdog(Effect.suspend(() => {
      stopDrain()
      return startDrain
    }))))
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        // Isolated: the timeout works in a finalizer, and a fiber being interrupted (Ctrl-C) still flushes.
        const drained = yield* isolate(flush.pipe(Effect.timeoutOption(flushTimeout)))
        closed = true
        const pending = size()
        if (Option.isNone(drained)) {
          drop("flush_timeout", pending)
          yield* Effect.logWarning(
            `Store writer: the store did not take the last writes within ${Duration.format(flushTimeout)}; ` +
              `giving up on ${pending} buffered write(s)`
          )
        }
        metrics.clear()
        others.clear()
        forgetMetricWake()
        stopDrain()
        const left = waiters
        waiters = []
        yield* Effect.forEach(left, (w) => Deferred.succeed(w.done, undefined), { discard: true })
      })
    )

    return {
      saveState: (record) => enqueue(false, (seq) => ({ _tag: "State", seq, record })),
      saveMetric: (event) => Effect.sync(() => offerMetric(event)),
      offerMetric,
      recordRestart: (record) => enqueue(false, (seq) => ({ _tag: "Restart", seq, record })),
      saveCheckpoint: (record) => Effect.sync(() => offerCheckpoint(record)),
      offerCheckpoint,
      loadCheckpoint: checkpoints.load,
      forgetAgent: (agent) => enqueue(false, (seq) => checkpoints.forget(agent, seq)),
      dropped: Effect.sync(() => dropped),
      flush
    }
  })

/**
 * Effects handed over outside any fiber (in Node's event handlers, in the ticker's callbacks), run in order by a
 * fiber that exists only while some wait: an idle agent has none. An incarnation's log entries go through one
 * (a fiber per incarnation waiting on a mailbox, before, for the whole life of the process), its heartbeat's
 * reports through another.
 *
 * A tree's heartbeat reports run here, a thousand a second for a thousand agents: the loop costs two steps of the
 * run loop per effect (one `matchCauseEffect`, and the step to the next), and an effect's end is told to a plain
 * callback (`run`'s `done`) rather than an `Effect.ensuring` of the caller's, which cost as many steps again.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Fiber from "effect/Fiber"
import type * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"

/** A queue of effects and the fiber that runs them while there are some. @internal */
export interface Serial {
  /**
   * Hands over an effect; never blocks. `done`, if given, is called once the effect has run: with `true` when it
   * succeeded, `false` when it failed, died or was interrupted (by `interrupt` too). It is not called for an effect
   * dropped before it ran (by `interrupt`, or handed over after it). It must not throw.
   */
  readonly run: (effect: Effect.Effect<void>, done?: (succeeded: boolean) => void) => void
  /**
   * Waits until the effects handed over so far have run. Effects handed over later (the pipes may still deliver
   * lines: written just before an exit that was reported first, or by a descendant that holds them) each run in
   * a fiber of their own, in the same context.
   */
  readonly end: Effect.Effect<void>
  /** Drops what waits and interrupts what runs; effects handed over later are dropped too. */
  readonly interrupt: Effect.Effect<void>
  /**
   * Whether `fiber` is the one running the runner's effects now (an effect that stops what it reports on must not
   * wait for itself to end).
   */
  readonly runsIn: (fiber: FiberId.FiberId) => boolean
}

/** Options of {@link make}. @internal */
export interface Options {
  /** Added to every effect's log entries (an incarnation's: the agent's name and pid). */
  readonly annotations?: Record<string, unknown> | undefined
  /**
   * How long an effect handed over to an idle runner waits for others to join it, in real milliseconds: 0 (the
   * default) runs it at once. A tree's heartbeat reports wait a few milliseconds, so that one fiber runs the
   * reports of many agents (a fiber per report cost as much as the rest of the beat).
   */
  readonly batchMillis?: number | undefined
}

/** An effect handed over, and who is told of its end. */
interface Item {
  readonly effect: Effect.Effect<void>
  readonly done: ((succeeded: boolean) => void) | undefined
}

/** A serial runner in the caller's context. @internal */
export const make = (options?: Options): Effect.Effect<Serial> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    const annotations = options?.annotations
    const batchMillis = options?.batchMillis ?? 0
    const runFork = Runtime.runFork(runtime)
    // Interruptible even when the runtime was captured in an uninterruptible region (a commit under a lock).
    const fork = <A>(effect: Effect.Effect<A>) =>
      runFork(Effect.interruptible(annotations === undefined ? effect : Effect.annotateLogs(effect, annotations)))
    let queue: Array<Item> = []
    // The fiber that runs what waits, while it runs, and its id (known from its first step: a fork runs at once
    // and may end before it returns, every effect synchronous). `draining` says whether one runs, set before the
    // fork and cleared when it ends.
    let drainer: Fiber.RuntimeFiber<void> | undefined
    let drainerId: FiberId.FiberId | undefined
    let draining = false
    // The item running now: told of its end by `interrupt` when its fiber is interrupted under it.
    let current: Item | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    let ended = false
    let interrupted = false

    // Tells `item` of its end; what its `done` threw (it must not: a bug), to be logged. It runs outside any handler
    // of the run loop, and a throw there would end the runner with every effect that waits.
    const finish = (item: Item, succeeded: boolean): unknown => {
      if (current === item) current = undefined
      try {
        item.done?.(succeeded)
      } catch (error) {
        return error
      }
      return undefined
    }
    const thenNext = (thrown: unknown, next: () => Effect.Effect<void>): Effect.Effect<void> =>
      thrown === undefined
        ? next()
        : Effect.zipRight(Effect.logError("a callback told of an effect's end threw", thrown), Effect.suspend(next))
    // One effect that fails, dies or interrupts itself is logged and the next ones run: it must not end the
    // runner (a tree's heartbeat reports: one user `onEvent` that dies would stop every agent's heartbeat).
    const failed = (item: Item, cause: Cause.Cause<unknown>, next: () => Effect.Effect<void>): Effect.Effect<void> => {
      const thrown = finish(item, false)
      return Cause.isInterruptedOnly(cause)
        ? thenNext(thrown, next)
        : Effect.zipRight(Effect.logError("an effect handed over failed", cause), thenNext(thrown, next))
    }
    // The batch the drainer runs, the next of its items, and the one it runs now (`current` is cleared when the
    // item is told of its end; this one is not). One drainer runs at a time: one set of handlers serves every item,
    // with nothing made per item but its `matchCauseEffect`.
    let batch: Array<Item> = []
    let index = 0
    let running: Item | undefined
    const next = (): Effect.Effect<void> => step()
    const handlers = {
      onFailure: (cause: Cause.Cause<unknown>) => failed(running!, cause, next),
      onSuccess: () => thenNext(finish(running!, true), next)
    }
    // Runs the batch's next item, then the rest, then what waits by then.
    const step = (): Effect.Effect<void> => {
      if (index === batch.length) return drain
      const item = batch[index++]
      current = running = item
      return Effect.matchCauseEffect(item.effect, handlers)
    }
    // Runs what waits, batch by batch, until nothing does; then the fiber ends.
    const drain: Effect.Effect<void> = Effect.suspend(() => {
      running = undefined
      if (queue.length === 0) {
        batch = []
        draining = false
        drainer = undefined
        drainerId = undefined
        return Effect.void
      }
      batch = queue
      index = 0
      queue = []
      return step()
    })
    const startDrain = () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      const fiber = fork(Effect.withFiberRuntime<void>((self) => {
        drainerId = self.id()
        return drain
      }))
      if (draining) drainer = fiber
    }
    // An effect handed over after `end`, in a fiber of its own.
    const runAlone = (item: Item) => {
      fork(Effect.matchCauseEffect(item.effect, {
        onFailure: (cause) => failed(item, cause, () => Effect.void),
        onSuccess: () => thenNext(finish(item, true), () => Effect.void)
      }))
    }
    return {
      run: (effect, done) => {
        if (interrupted) return
        const item: Item = { effect, done }
        if (ended) return runAlone(item)
        queue.push(item)
        if (draining) return
        draining = true
        if (batchMillis > 0) timer = setTimeout(startDrain, batchMillis)
        else startDrain()
      },
      end: Effect.suspend(() => {
        ended = true
        if (timer !== undefined) startDrain()
        return drainer === undefined ? Effect.void : Fiber.await(drainer).pipe(Effect.asVoid)
      }),
      interrupt: Effect.suspend(() => {
        interrupted = true
        queue = []
        if (timer !== undefined) clearTimeout(timer)
        timer = undefined
        if (drainer === undefined) return Effect.void
        return Effect.zipRight(
          Fiber.interrupt(drainer),
          Effect.suspend(() => {
            const item = current
            return item === undefined ? Effect.void : thenNext(finish(item, false), () => Effect.void)
          })
        )
      }),
      runsIn: (fiber) => drainerId !== undefined && Equal.equals(drainerId, fiber)
    }
  })

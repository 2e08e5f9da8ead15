/**
 * Effects handed over outside any fiber (in Node's event handlers, in the ticker's callbacks), run in order by a
 * fiber that exists only while some wait: an idle agent has none. An incarnation's log entries go through one
 * (a fiber per incarnation waiting on a mailbox, before, for the whole life of the process), its heartbeat's
 * reports through another.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"

/** A queue of effects and the fiber that runs them while there are some. @internal */
export interface Serial {
  /** Hands over an effect; never blocks. */
  readonly run: (effect: Effect.Effect<void>) => void
  /**
   * Waits until the effects handed over so far have run. Effects handed over later (the pipes may still deliver
   * lines: written just before an exit that was reported first, or by a descendant that holds them) each run in
   * a fiber of their own, in the same context.
   */
  readonly end: Effect.Effect<void>
  /** Drops what waits and interrupts what runs; effects handed over later are dropped too. */
  readonly interrupt: Effect.Effect<void>
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

/** A serial runner in the caller's context. @internal */
export const make = (options?: Options): Effect.Effect<Serial> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    const annotations = options?.annotations
    const batchMillis = options?.batchMillis ?? 0
    const runFork = Runtime.runFork(runtime)
    // Interruptible even when the runtime was captured in an uninterruptible region (a commit under a lock).
    const fork = <A>(effect: Effect.Effect<A>) => runFork(Effect.interruptible(effect))
    // One effect that fails, dies or interrupts itself is logged and the next ones run: it must not end the
    // runner (a tree's heartbeat reports: one user `onEvent` that dies would stop every agent's heartbeat).
    const guard = (effect: Effect.Effect<void>): Effect.Effect<void> =>
      Effect.catchAllCause(
        effect,
        (cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("an effect handed over failed", cause)
      )
    const wrap: (effect: Effect.Effect<void>) => Effect.Effect<void> = annotations === undefined
      ? guard
      : (effect) => Effect.annotateLogs(guard(effect), annotations)
    let queue: Array<Effect.Effect<void>> = []
    // The fiber that runs what waits, while it runs. A fork runs at once and may end before it returns (every
    // effect synchronous): `draining` says whether one runs, set before the fork and cleared when it ends.
    let drainer: Fiber.RuntimeFiber<void> | undefined
    let draining = false
    let timer: ReturnType<typeof setTimeout> | undefined
    let ended = false
    let interrupted = false
    const startDrain = () => {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      const fiber = fork(drain)
      if (draining) drainer = fiber
    }
    // Runs what waits, batch by batch, until nothing does; then the fiber ends.
    const drain: Effect.Effect<void> = Effect.suspend(() => {
      if (queue.length === 0) {
        draining = false
        drainer = undefined
        return Effect.void
      }
      const batch = queue
      queue = []
      return Effect.zipRight(Effect.forEach(batch, wrap, { discard: true }), drain)
    })
    return {
      run: (effect) => {
        if (interrupted) return
        if (ended) {
          fork(wrap(effect))
          return
        }
        queue.push(effect)
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
        return drainer === undefined ? Effect.void : Fiber.interrupt(drainer)
      })
    }
  })

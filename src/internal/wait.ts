/**
 * Waits that hold inside finalizers, whatever happened to the fiber running them.
 *
 * `Effect.timeout` inside a finalizer never fires unless the wait is made interruptible, and an interruptible
 * wait in a fiber that is itself being interrupted (Ctrl-C under `runMain`, an interrupted owner fiber) is cut
 * at once: shutdown phases were skipped, the last store writes lost, and a stop aborted half-way. An isolated
 * wait runs in a fiber of its own, interruptible (so its own timeout works) and untouched by the caller's
 * interruption.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

/**
 * Runs `self` in a fiber of its own and waits for it. In an uninterruptible region (a finalizer) the caller
 * waits for it to end by itself, so `self` must be bounded (a timeout inside it works); elsewhere interrupting
 * the caller interrupts it.
 *
 * @internal
 */
export const isolate = <A, E>(self: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.flatMap(
    Effect.forkDaemon(Effect.interruptible(self)),
    (fiber) => Effect.onInterrupt(Fiber.join(fiber), () => Fiber.interrupt(fiber))
  )

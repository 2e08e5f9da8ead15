/**
 * Background fibers that a scope can always stop.
 *
 * A fiber forked inside an uninterruptible region (a finalizer, a `Layer` being built, a commit step under a
 * lock) inherits that region and can never be interrupted: closing its scope would then wait for it forever.
 * Every long-lived fiber of this library is forked through here.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"

/** @internal */
export const forkIn = (scope: Scope.Scope) =>
<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<
  Fiber.RuntimeFiber<A, E>,
  never,
  R
> => Effect.forkIn(Effect.interruptible(self), scope)

/**
 * Runs `step` round after round, for as long as `stopped()` is false (read before each round): the loop of a
 * long-lived fiber whose owner stops it by interruption, after setting the flag that `stopped` reads.
 *
 * Why a flag as well: with Effect 3.22, an interruption that reaches a fiber while it runs a finalizer added with
 * `Effect.addFinalizer` or `acquireRelease` (a round closing a scope: a reload or a scale-down stopping an agent,
 * a store write returning its connection) can be lost. The finalizer's wrapper restores the fiber's refs when it
 * ends, and with them the fiber's interruption state from before the finalizer ran. The loop would then go on for
 * ever, and its owner, waiting for it to end, would hang.
 *
 * @internal
 */
export const repeatUntilStopped = <E, R>(
  stopped: () => boolean,
  step: Effect.Effect<unknown, E, R>
): Effect.Effect<void, E, R> => Effect.whileLoop({ while: () => !stopped(), body: () => step, step: () => undefined })

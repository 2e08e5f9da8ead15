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

/**
 * The fiber evaluating the code that calls this, read where Effect's run loop has set it: inside an `Effect.async`
 * register, an `Effect.suspend` or `Effect.sync` thunk. The request path's way to know its caller: an
 * `Effect.withFiberRuntime` per request makes a primitive, a status object and a call wrapper more, and cost about
 * a tenth of the supervisor's CPU per request at 256 in flight (measured side by side, 2026-12-01).
 *
 * @internal
 */
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"

/** The running fiber; `undefined` outside one (a plain callback, a Node event handler). @internal */
export const unsafeCurrentFiber = (): Fiber.RuntimeFiber<unknown, unknown> | undefined =>
  Option.getOrUndefined(Fiber.getCurrentFiber())

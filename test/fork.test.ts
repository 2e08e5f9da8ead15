/**
 * `repeatUntilStopped` (src/internal/fork.ts): a loop that its owner stops by interruption, which must end even when
 * the interruption is lost. Effect 3.22 loses an interruption that reaches a fiber while it runs a finalizer added
 * with `acquireRelease`/`addFinalizer`, when the fiber's refs held no interruption state at the acquire and do at
 * the close (it ran another such finalizer in between): the finalizer's wrapper restores the refs from before, and
 * the cause with them. The first test pins that behaviour of Effect (if it fails, Effect has fixed it); the second
 * shows the loop ends anyway. Reproduction found by tracing a tree's stop that hung during a watched reload.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { repeatUntilStopped } from "../src/internal/fork.js"

/**
 * A loop whose first round closes a scope as the lost interruption needs: a resource acquired before the round ran
 * any finalizer, a finalizer run, then the close, whose slow release (100 ms) is under way when `inRelease` is done.
 */
const loopLosingItsInterruption = (inRelease: Deferred.Deferred<void>, stopped: () => boolean) => {
  let round = 0
  return repeatUntilStopped(
    stopped,
    Effect.suspend(() =>
      round++ > 0 ? Effect.sleep("5 millis") : Effect.scoped(Effect.gen(function*() {
        yield* Effect.acquireRelease(
          Effect.void,
          () => Effect.zipRight(Deferred.succeed(inRelease, undefined), Effect.sleep("100 millis"))
        )
        yield* Effect.scoped(Effect.addFinalizer(() => Effect.void))
      }))
    )
  )
}

describe("repeatUntilStopped", () => {
  it.live("Effect 3.22 loses an interruption that reaches a fiber in an addFinalizer finalizer", () =>
    Effect.gen(function*() {
      const inRelease = yield* Deferred.make<void>()
      // Stopped only by interruption; `cleanup` ends it once the test has seen the interruption lost.
      let cleanup = false
      const fiber = yield* Effect.fork(loopLosingItsInterruption(inRelease, () => cleanup))
      yield* Deferred.await(inRelease)
      const interrupting = yield* Effect.fork(Fiber.interrupt(fiber))
      const ended = yield* Fiber.join(interrupting).pipe(Effect.timeoutOption("2 seconds"))
      assert.isTrue(Option.isNone(ended), "the loop was interrupted: has Effect fixed the lost interruption?")
      cleanup = true
      yield* Fiber.join(interrupting)
    }))

  it.live("a loop whose owner sets the flag before it interrupts ends, even if the interruption was lost", () =>
    Effect.gen(function*() {
      const inRelease = yield* Deferred.make<void>()
      let stopped = false
      const fiber = yield* Effect.fork(loopLosingItsInterruption(inRelease, () => stopped))
      yield* Deferred.await(inRelease)
      stopped = true
      const ended = yield* Fiber.interrupt(fiber).pipe(Effect.timeoutOption("10 seconds"))
      assert.isTrue(Option.isSome(ended), "the loop went on after its owner stopped it")
    }))
})

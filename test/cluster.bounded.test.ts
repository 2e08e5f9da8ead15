/**
 * A call through the cluster that the runner's side interrupts (its entity moved to another runner in a rebalance,
 * or stopped with its runner) is sent again: it never reaches the caller as the caller's own interruption. The
 * two-runner test's fiber ended "All fibers interrupted without errors" when a runner joined under a status call.
 * The caller's own interruption still ends the call at once.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { bounded } from "../src/internal/cluster/client.js"

describe("Cluster client: a send the runner's side interrupts", () => {
  it.live("is sent again (keyed or not) until it is answered", () =>
    Effect.gen(function*() {
      for (const keyed of [false, true]) {
        let sends = 0
        const once = Effect.suspend(() => ++sends < 3 ? Effect.interrupt : Effect.succeed("answer"))
        assert.strictEqual(yield* bounded("agent-0", 5_000, once, { keyed }), "answer")
        assert.strictEqual(sends, 3)
      }
    }))

  it.live("still interrupted within its time: a typed timeout, not an interruption", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(bounded("agent-0", 300, Effect.interrupt))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        assert.isFalse(exit.cause._tag === "Interrupt", "no interruption reaches the caller")
        const error = exit.cause._tag === "Fail" ? exit.cause.error as { _tag: string; reason: string } : undefined
        assert.deepStrictEqual([error?._tag, error?.reason], ["AgentUnavailableError", "timeout"])
      }
    }))

  it.live("the caller's own interruption ends the call, with no send after it", () =>
    Effect.gen(function*() {
      let sends = 0
      const started = yield* Deferred.make<void>()
      const once = Effect.zipRight(
        Effect.sync(() => sends++),
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)
      )
      const fiber = yield* Effect.fork(bounded("agent-0", 60_000, once))
      yield* Deferred.await(started)
      const exit = yield* Fiber.interrupt(fiber)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.strictEqual(sends, 1)
    }))
})

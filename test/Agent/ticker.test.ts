import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as Config from "../../src/Agent/Config.js"
import * as Health from "../../src/Agent/Health.js"
import type * as AgentProcess from "../../src/Agent/Process.js"
import * as Ticker from "../../src/internal/ticker.js"
import { agentConfig } from "../support.js"

/** Waits on `ticker` for a waiter due at `due`, recording the `Clock` time it was woken at. */
const waitAt = (ticker: Ticker.Ticker, due: number, grid: number, woken: Array<number>, notAfter?: number) =>
  Effect.gen(function*() {
    yield* ticker.wait(ticker.waiter(due, grid, notAfter))
    woken.push(yield* Effect.clockWith((clock) => clock.currentTimeMillis))
  })

describe("Ticker", () => {
  it("gridOf: the largest whole divisor of the interval up to 20 ms and a twentieth of it", () => {
    assert.strictEqual(Ticker.gridOf(1000), 20)
    assert.strictEqual(Ticker.gridOf(30_000), 20)
    assert.strictEqual(Ticker.gridOf(100), 5)
    assert.strictEqual(Ticker.gridOf(1234), 2) // 2 x 617
    assert.strictEqual(Ticker.gridOf(997), 0) // a prime: no grid, exact moments
    assert.strictEqual(Ticker.gridOf(19), 0)
    assert.strictEqual(Ticker.gridOf(1000.5), 0)
  })

  it.effect("a callback that throws is logged; the others due with it and later ones are still called", () =>
    Effect.gen(function*() {
      const ticker = Ticker.make(yield* Effect.clock)
      const called: Array<string> = []
      ticker.schedule(ticker.waiter(100, 0), () => {
        throw new Error("a bug")
      })
      ticker.schedule(ticker.waiter(100, 0), () => called.push("same moment"))
      ticker.schedule(ticker.waiter(200, 0), () => called.push("later"))
      yield* TestClock.adjust(100)
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(called, ["same moment", "later"])
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))

  it.effect("waiters due within one step are woken together, at the nearest step; one sleep for all", () =>
    Effect.gen(function*() {
      const ticker = Ticker.make(yield* Effect.clock)
      const woken: Array<number> = []
      const fibers = []
      for (const due of [991, 1000, 1009.9, 1011, 1030]) fibers.push(yield* Effect.fork(waitAt(ticker, due, 20, woken)))
      yield* TestClock.adjust(1)
      assert.strictEqual(ticker.pending(), 5)
      assert.deepStrictEqual([...(yield* TestClock.sleeps())], [1000])
      yield* TestClock.adjust(999)
      assert.deepStrictEqual(woken, [1000, 1000, 1000])
      yield* TestClock.adjust(40)
      assert.deepStrictEqual(woken, [1000, 1000, 1000, 1020, 1040])
      yield* Fiber.joinAll(fibers)
      // nobody waits: the ticker's fiber ended, no timer is left
      assert.strictEqual(ticker.pending(), 0)
      assert.isFalse(ticker.running())
    }))

  it.effect("a first beat rounds up, but never past its last moment; without a grid, moments are exact", () =>
    Effect.gen(function*() {
      const ticker = Ticker.make(yield* Effect.clock)
      assert.strictEqual(ticker.waiter(981, 20, 1000).due, 1000)
      assert.strictEqual(ticker.waiter(1001, 20, 1010).due, 1000)
      assert.strictEqual(ticker.waiter(1001, 20).due, 1000)
      assert.strictEqual(ticker.waiter(1011, 20).due, 1020)
      assert.strictEqual(ticker.waiter(1001.5, 0).due, 1001.5)
    }))

  it.effect("a waiter due before the moment the ticker sleeps to wakes it in time", () =>
    Effect.gen(function*() {
      const ticker = Ticker.make(yield* Effect.clock)
      const woken: Array<number> = []
      const late = yield* Effect.fork(waitAt(ticker, 30_000, 20, woken))
      yield* TestClock.adjust(1000)
      const early = yield* Effect.fork(waitAt(ticker, 2000, 20, woken))
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(woken, [2000])
      yield* Fiber.join(early)
      yield* TestClock.adjust(28_000)
      yield* Fiber.join(late)
      assert.deepStrictEqual(woken, [2000, 30_000])
      assert.isFalse(ticker.running())
    }))

  it.effect("cancelling the last waiter stops the ticker (no timer left); the others are still woken", () =>
    Effect.gen(function*() {
      const ticker = Ticker.make(yield* Effect.clock)
      const woken: Array<number> = []
      const kept = ticker.waiter(500, 20)
      const cancelled = ticker.waiter(1000, 20)
      const first = yield* Effect.fork(Effect.zipRight(ticker.wait(kept), Effect.sync(() => woken.push(1))))
      const second = yield* Effect.fork(ticker.wait(cancelled))
      yield* TestClock.adjust(1)
      ticker.cancel(cancelled)
      yield* Fiber.interrupt(second)
      assert.isTrue(ticker.running())
      yield* TestClock.adjust(499)
      yield* Fiber.join(first)
      assert.deepStrictEqual(woken, [1])
      assert.isFalse(ticker.running())
      const alone = ticker.waiter(2000, 20)
      yield* Effect.fork(ticker.wait(alone))
      yield* TestClock.adjust(1)
      assert.isTrue(ticker.running())
      ticker.cancel(alone)
      assert.isFalse(ticker.running())
      assert.strictEqual(ticker.pending(), 0)
    }))

  it.scoped("a heartbeat that ends (its scope closed) leaves nothing waiting on its Clock's ticker", () =>
    Effect.gen(function*() {
      const config = yield* Config.make(agentConfig("echo", { name: "beating", heartbeatInterval: "1 second" }))
      const agent = {
        name: "beating",
        pid: 4242,
        config,
        ping: () => Effect.succeed({ latencyMillis: 1, report: Option.none() })
      } as unknown as AgentProcess.AgentProcess
      const samples: Array<number> = []
      const ticker = Ticker.forClock(yield* Effect.clock)
      const fiber = yield* Effect.fork(Health.heartbeat(agent, {
        onSample: (sample) => Effect.sync(() => samples.push(sample.timestamp)),
        onMissed: () => Effect.void,
        onUnhealthy: () => Effect.void
      }))
      // The forked heartbeat reads the time when its fiber first runs: the clock moves once it waits on the ticker.
      for (let turns = 0; ticker.pending() < 1; turns++) {
        if (turns > 10_000) return assert.fail("the heartbeat never waited on the ticker")
        yield* Effect.yieldNow()
      }
      for (let i = 0; i < 3; i++) {
        yield* TestClock.adjust("1 second")
        // Each beat's callback runs in a fiber of its own: the next beat waits on the ticker once it is done.
        for (let turns = 0; samples.length < i + 1 || ticker.pending() < 1; turns++) {
          if (turns > 10_000) return assert.fail(`beat ${i + 1}: ${samples.length} samples`)
          yield* Effect.yieldNow()
        }
      }
      assert.strictEqual(samples.length, 3)
      assert.strictEqual(ticker.pending(), 1)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(ticker.pending(), 0)
      assert.isFalse(ticker.running())
    }))
})

import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { vi } from "vitest"
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
  it("gridOf: the largest whole divisor of the interval up to 100 ms and a tenth of it", () => {
    assert.strictEqual(Ticker.gridOf(1000), 100)
    assert.strictEqual(Ticker.gridOf(30_000), 100)
    assert.strictEqual(Ticker.gridOf(200), 20)
    assert.strictEqual(Ticker.gridOf(100), 10)
    assert.strictEqual(Ticker.gridOf(20), 2)
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

  /**
   * Four callbacks due at one moment, of which the first to run takes longer than a turn's budget and asks for a
   * `setImmediate` (Node's turn after I/O): whether each, in the order they ran, saw that turn come.
   */
  const slowFirstCallback = (ticker: Ticker.Ticker, due: number, spinMillis: number) =>
    Effect.async<Array<boolean>>((resume) => {
      let turned = false
      const sawTurn: Array<boolean> = []
      for (let i = 0; i < 4; i++) {
        ticker.schedule(ticker.waiter(due, 0), () => {
          sawTurn.push(turned)
          if (sawTurn.length === 1) {
            setImmediate(() => (turned = true))
            for (const until = performance.now() + spinMillis; performance.now() < until;);
          }
          if (sawTurn.length === 4) resume(Effect.succeed(sawTurn))
        })
      }
    })

  it.live("on the live clock, a turn past its budget lets the event loop turn before the callbacks still due", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const ticker = Ticker.make(clock)
      const sawTurn = yield* slowFirstCallback(
        ticker,
        clock.unsafeCurrentTimeMillis() + 5,
        2 * Ticker.TURN_BUDGET_MILLIS
      )
      // The immediate asked for by the first ran before the second: the rest waited for a turn of the loop.
      assert.deepStrictEqual(sawTurn, [false, true, true, true])
      assert.strictEqual(ticker.pending(), 0)
    }))

  it.live("a callback that stops the ticker (it cancels the last waiter) in a turn past its budget: later waiters still wake", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      // A budget of 0: every turn is past it, as a slow callback's is.
      const ticker = Ticker.make(clock, 0)
      const now = clock.unsafeCurrentTimeMillis()
      const other = ticker.waiter(now + 1000, 0)
      ticker.schedule(other, () => {})
      yield* Effect.async<void>((resume) => {
        ticker.schedule(ticker.waiter(now + 5, 0), () => {
          ticker.cancel(other) // the last waiter: the ticker stops, in this turn
          resume(Effect.void)
        })
      })
      const woken = yield* Effect.async<boolean>((resume) => {
        ticker.schedule(ticker.waiter(clock.unsafeCurrentTimeMillis() + 5, 0), () => resume(Effect.succeed(true)))
      }).pipe(Effect.timeoutTo({ duration: "5 seconds", onTimeout: () => false, onSuccess: (woken) => woken }))
      assert.isTrue(woken, "a waiter scheduled after the stop was never woken")
      assert.strictEqual(ticker.pending(), 0)
    }))

  it.effect("a callback that stops the ticker and then throws: its error is still logged", () =>
    Effect.gen(function*() {
      // The ticker's fiber runs in the default runtime (`Effect.runFork`): its logs go to the console.
      const logged = vi.spyOn(console, "log").mockImplementation(() => {})
      try {
        const ticker = Ticker.make(yield* Effect.clock)
        const other = ticker.waiter(1000, 0)
        ticker.schedule(other, () => {})
        ticker.schedule(ticker.waiter(100, 0), () => {
          ticker.cancel(other) // the last waiter: the ticker stops, in this turn
          throw new Error("a bug after the stop")
        })
        yield* TestClock.adjust(100)
        const found = () => logged.mock.calls.some((call) => String(call[0]).includes("a ticker callback threw"))
        for (let turns = 0; !found() && turns < 100; turns++) {
          yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
        }
        assert.isTrue(found(), "the callback's error was not logged")
        assert.isFalse(ticker.running())
      } finally {
        logged.mockRestore()
      }
    }))

  it.effect("on any other clock (TestClock) the callbacks due at a moment all run in one turn, however long", () =>
    Effect.gen(function*() {
      const ticker = Ticker.make(yield* Effect.clock)
      const fiber = yield* Effect.fork(slowFirstCallback(ticker, 100, 2 * Ticker.TURN_BUDGET_MILLIS))
      yield* TestClock.adjust(100)
      const sawTurn = yield* Fiber.join(fiber)
      assert.deepStrictEqual(sawTurn, [false, false, false, false])
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

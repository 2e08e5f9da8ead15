import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { StoreError } from "../../src/Errors.js"
import * as Memory from "../../src/Store/Memory.js"
import * as Store from "../../src/Store/Store.js"

const state: Store.StateRecord = { agent_name: "a", state: "RUNNING", restart_count: 0, updated_at: 1 }
const metric: Store.MetricEvent = { event: "tick", agent_name: "a", timestamp: 1 }
const restart: Store.RestartRecord = { agent_name: "a", timestamp: 1, reason: "crash", attempt: 1, delay_ms: 0 }

/** A backend whose every operation behaves as `run` says. */
const backend = (run: (operation: string) => Effect.Effect<never, StoreError>): Store.Store["Type"] => ({
  saveState: () => run("saveState"),
  saveMetric: () => run("saveMetric"),
  recordRestart: () => run("recordRestart"),
  getState: () => run("getState"),
  listMetrics: () => run("listMetrics"),
  restartHistory: () => run("restartHistory")
})

/** Every operation once: writes must give void, reads the fallback. */
const everyOperation = (store: Store.ResilientStore) =>
  Effect.gen(function*() {
    assert.strictEqual(yield* store.saveState(state), undefined)
    assert.strictEqual(yield* store.saveMetric(metric), undefined)
    assert.strictEqual(yield* store.recordRestart(restart), undefined)
    assert.deepStrictEqual(yield* store.getState("a"), Option.none())
    assert.deepStrictEqual(yield* store.listMetrics({ agent: "a" }), [])
    assert.deepStrictEqual(yield* store.restartHistory(), [])
  })

/** Runs `effect` with a logger that keeps the messages of warnings. */
const withWarnings = <A, E, R>(effect: (warnings: Array<string>) => Effect.Effect<A, E, R>) => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
  })
  return effect(warnings).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
}

describe("Store.resilient", () => {
  it.effect("passes a healthy store's answers through and counts nothing", () =>
    Effect.gen(function*() {
      const store = Store.resilient(yield* Memory.make())
      yield* store.saveState(state)
      yield* store.saveMetric(metric)
      yield* store.recordRestart(restart)
      assert.deepStrictEqual(yield* store.getState("a"), Option.some(state))
      assert.deepStrictEqual(yield* store.listMetrics(), [metric])
      assert.deepStrictEqual(yield* store.listMetrics({ event: "tock" }), [])
      assert.deepStrictEqual(yield* store.restartHistory("a"), [restart])
      assert.strictEqual(yield* store.failures, 0)
    }))

  it.effect("a store that hangs: a write completes when the clock passes 5 s, counted, never before", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const store = Store.resilient(backend(() => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)))
      const write = yield* Effect.fork(store.saveMetric(metric))
      yield* Deferred.await(started)
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(write)))
      assert.strictEqual(yield* store.failures, 0)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(write), undefined)
      assert.strictEqual(yield* store.failures, 1)
    }))

  it.effect("a store that hangs: reads give the fallback after the timeout", () =>
    Effect.gen(function*() {
      const store = Store.resilient(backend(() => Effect.never))
      const reads = yield* Effect.fork(
        Effect.all([store.getState("a"), store.listMetrics(), store.restartHistory()], { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(reads)))
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* Fiber.join(reads), [Option.none(), [], []])
      assert.strictEqual(yield* store.failures, 3)
    }))

  it.effect("the timeout is an option", () =>
    Effect.gen(function*() {
      const store = Store.resilient(backend(() => Effect.never), { timeout: "1 second" })
      const write = yield* Effect.fork(store.saveState(state))
      yield* TestClock.adjust("999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(write)))
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(write)
      assert.strictEqual(yield* store.failures, 1)
    }))

  it.effect("a store that ignores interruption cannot hold the caller past the timeout", () =>
    Effect.gen(function*() {
      const store = Store.resilient(backend(() => Effect.uninterruptible(Effect.never)), { timeout: "1 second" })
      const write = yield* Effect.fork(store.saveMetric(metric))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(write)
      assert.strictEqual(yield* store.failures, 1)
    }))

  it.effect("a store that fails: writes succeed, reads give the fallback, failures are counted and logged", () =>
    withWarnings((warnings) =>
      Effect.gen(function*() {
        const store = Store.resilient(
          backend((operation) => Effect.fail(new StoreError({ operation, reason: "failure", detail: "disk full" })))
        )
        yield* everyOperation(store)
        assert.strictEqual(yield* store.failures, 6)
        assert.strictEqual(warnings.length, 6)
        assert.include(warnings[0], "saveState")
        assert.include(warnings[0], "disk full")
      })
    ))

  it.effect("a store that dies: the same", () =>
    Effect.gen(function*() {
      const store = Store.resilient(backend(() => Effect.die(new Error("bug in the backend"))))
      yield* everyOperation(store)
      assert.strictEqual(yield* store.failures, 6)
    }))

  it.effect("a store whose methods throw: the same", () =>
    Effect.gen(function*() {
      const store = Store.resilient(backend(() => {
        throw new Error("thrown, not failed")
      }))
      yield* everyOperation(store)
      assert.strictEqual(yield* store.failures, 6)
    }))

  it.effect("a store whose methods return no Effect: the same", () =>
    Effect.gen(function*() {
      const store = Store.resilient(backend(() => undefined as any))
      yield* everyOperation(store)
      assert.strictEqual(yield* store.failures, 6)
    }))

  it.effect("a store that interrupts itself: the same", () =>
    Effect.gen(function*() {
      const store = Store.resilient(backend(() => Effect.interrupt))
      yield* everyOperation(store)
      assert.strictEqual(yield* store.failures, 6)
    }))

  it.effect("recovers when the store does", () =>
    Effect.gen(function*() {
      let broken = true
      const memory = yield* Memory.make()
      const store = Store.resilient({
        ...memory,
        saveMetric: (event) =>
          broken ?
            Effect.fail(new StoreError({ operation: "saveMetric", reason: "failure", detail: "down" })) :
            memory.saveMetric(event)
      })
      yield* store.saveMetric(metric)
      broken = false
      yield* store.saveMetric({ ...metric, timestamp: 2 })
      assert.deepStrictEqual(yield* store.listMetrics(), [{ ...metric, timestamp: 2 }])
      assert.strictEqual(yield* store.failures, 1)
    }))
})

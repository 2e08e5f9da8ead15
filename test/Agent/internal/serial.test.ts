import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Serial from "../../../src/Agent/internal/serial.js"

describe("serial runner", () => {
  it.effect("effects handed over after a batch ran at once (synchronously) still run, in order", () =>
    Effect.gen(function*() {
      const serial = yield* Serial.make()
      const seen: Array<number> = []
      // Each batch here runs to its end inside `run`: the drainer is done before `run` returns.
      serial.run(Effect.sync(() => seen.push(1)))
      serial.run(Effect.sync(() => seen.push(2)))
      yield* Effect.yieldNow()
      serial.run(Effect.sync(() => seen.push(3)))
      yield* serial.end
      assert.deepStrictEqual(seen, [1, 2, 3])
    }))

  it.effect("an effect that suspends holds the next ones back until it is done", () =>
    Effect.gen(function*() {
      const serial = yield* Serial.make()
      const gate = yield* Deferred.make<void>()
      const seen: Array<string> = []
      serial.run(Effect.zipRight(Deferred.await(gate), Effect.sync(() => seen.push("first"))))
      serial.run(Effect.sync(() => seen.push("second")))
      yield* Effect.yieldNow()
      assert.deepStrictEqual(seen, [])
      yield* Deferred.succeed(gate, undefined)
      yield* serial.end
      assert.deepStrictEqual(seen, ["first", "second"])
    }))

  it.effect("annotations reach every effect's log entries", () =>
    Effect.gen(function*() {
      const serial = yield* Serial.make({ annotations: { agent: "a1" } })
      const logged: Array<unknown> = []
      const record = Effect.flatMap(
        Effect.logAnnotations,
        (a) => Effect.sync(() => logged.push(HashMap.get(a, "agent")))
      )
      serial.run(record)
      serial.run(record)
      yield* serial.end
      assert.deepStrictEqual(logged, [Option.some("a1"), Option.some("a1")])
    }))

  it.effect("interrupt: what runs is interrupted, what waits and what comes later is dropped", () =>
    Effect.gen(function*() {
      const serial = yield* Serial.make()
      const seen: Array<string> = []
      serial.run(Effect.zipRight(Effect.never, Effect.sync(() => seen.push("never"))))
      serial.run(Effect.sync(() => seen.push("waiting")))
      yield* serial.interrupt
      serial.run(Effect.sync(() => seen.push("later")))
      yield* Effect.yieldNow()
      assert.deepStrictEqual(seen, [])
    }))

  it.effect("after end, each effect runs in a fiber of its own", () =>
    Effect.gen(function*() {
      const serial = yield* Serial.make()
      yield* serial.end
      const done = yield* Deferred.make<void>()
      serial.run(Deferred.succeed(done, undefined))
      yield* Deferred.await(done)
      assert.isTrue(Fiber.isFiber(yield* Effect.fork(Effect.void)))
    }))

  it.live("batchMillis: what is handed over within the window runs in one fiber, after it", () =>
    Effect.gen(function*() {
      const serial = yield* Serial.make({ batchMillis: 5 })
      const fibers: Array<string> = []
      const record = Effect.flatMap(Effect.fiberId, (id) => Effect.sync(() => fibers.push(FiberId.threadName(id))))
      serial.run(record)
      serial.run(record)
      assert.deepStrictEqual(fibers, []) // not yet: the window is open
      yield* serial.end // runs what waits now
      assert.strictEqual(fibers.length, 2)
      assert.strictEqual(fibers[0], fibers[1])
      const done = yield* Deferred.make<void>()
      const later = yield* Serial.make({ batchMillis: 5 })
      later.run(record)
      later.run(Deferred.succeed(done, undefined))
      yield* Deferred.await(done)
      assert.strictEqual(fibers.length, 3)
    }))

  it.effect("an effect that dies or interrupts itself is logged; the runner goes on, now and later", () =>
    Effect.gen(function*() {
      for (const batchMillis of [0, 5]) {
        const serial = yield* Serial.make({ batchMillis })
        const seen: Array<string> = []
        serial.run(Effect.sync(() => seen.push("a")))
        serial.run(Effect.die("boom"))
        serial.run(Effect.interrupt)
        serial.run(Effect.sync(() => seen.push("b")))
        yield* serial.end.pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))
        const more = yield* Serial.make({ batchMillis })
        more.run(Effect.die("boom"))
        yield* more.end.pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))
        const done = yield* Deferred.make<void>()
        more.run(Deferred.succeed(done, undefined))
        yield* Deferred.await(done)
        assert.deepStrictEqual(seen, ["a", "b"])
      }
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))

  it.effect("done: told once when each effect ends, whether it succeeded; at interrupt, the running one; never a dropped one", () =>
    Effect.gen(function*() {
      const serial = yield* Serial.make()
      const told: Array<string> = []
      const gate = yield* Deferred.make<void>()
      serial.run(Effect.void, (ok) => told.push(`a ${ok}`))
      serial.run(Effect.die("boom"), (ok) => told.push(`b ${ok}`))
      serial.run(Effect.interrupt, (ok) => told.push(`c ${ok}`))
      serial.run(Deferred.await(gate), (ok) => told.push(`d ${ok}`))
      serial.run(Effect.void, (ok) => told.push(`e ${ok}`))
      yield* Effect.yieldNow()
      assert.deepStrictEqual(told, ["a true", "b false", "c false"])
      yield* serial.interrupt
      serial.run(Effect.void, (ok) => told.push(`f ${ok}`))
      yield* Effect.yieldNow()
      assert.deepStrictEqual(told, ["a true", "b false", "c false", "d false"])
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger))))

  it.effect("runsIn: true only in the fiber running the effects, while it runs them", () =>
    Effect.gen(function*() {
      const serial = yield* Serial.make()
      const inside: Array<boolean> = []
      serial.run(Effect.flatMap(Effect.fiberId, (id) => Effect.sync(() => inside.push(serial.runsIn(id)))))
      const gate = yield* Deferred.make<void>()
      serial.run(Effect.zipRight(
        Deferred.await(gate),
        Effect.flatMap(Effect.fiberId, (id) => Effect.sync(() => inside.push(serial.runsIn(id))))
      ))
      yield* Effect.yieldNow()
      inside.push(serial.runsIn(yield* Effect.fiberId))
      yield* Deferred.succeed(gate, undefined)
      yield* serial.end
      assert.deepStrictEqual(inside, [true, false, true])
      assert.isFalse(serial.runsIn(yield* Effect.fiberId))
    }))

  it.effect("a done that throws is logged; the runner goes on with what waits and what comes later", () =>
    Effect.gen(function*() {
      const logged: Array<string> = []
      const logger = Logger.make(({ message }) => logged.push(String(message)))
      const serial = yield* Serial.make().pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
      const seen: Array<string> = []
      serial.run(Effect.sync(() => seen.push("a")), () => {
        throw new Error("bug in done")
      })
      serial.run(Effect.die("boom"), () => {
        throw new Error("bug in done, after a failure")
      })
      serial.run(Effect.sync(() => seen.push("b")), (ok) => seen.push(`b told ${ok}`))
      yield* Effect.yieldNow()
      serial.run(Effect.sync(() => seen.push("c")))
      yield* serial.end
      assert.deepStrictEqual(seen, ["a", "b", "b told true", "c"])
      assert.strictEqual(logged.filter((m) => m.includes("a callback told of an effect's end threw")).length, 2)
    }))
})

import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import { StoreError } from "../../src/Errors.js"
import * as Memory from "../../src/Store/Memory.js"
import * as Store from "../../src/Store/Store.js"
import { captureLog, outageLines, tallyOf } from "./services.js"

const state: Store.StateRecord = { agent_name: "a", state: "RUNNING", restart_count: 0, updated_at: 1 }
const metric: Store.MetricEvent = { event: "tick", agent_name: "a", timestamp: 1 }
const restart: Store.RestartRecord = { agent_name: "a", timestamp: 1, reason: "crash", attempt: 1, delay_ms: 0 }
const taskRecord: Store.TaskRecord = {
  task_id: "t",
  topic: "jobs",
  payload: null,
  status: "succeeded",
  result: 1,
  attempts: 1,
  errors: [],
  created_at: 1,
  updated_at: 1
}

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

describe("Store.resilient", () => {
  it.effect("saveMetrics over a store without it: one saveMetric each, in order, as one guarded operation", () =>
    Effect.gen(function*() {
      const { saveMetrics: _, ...memory } = yield* Memory.make()
      const seen: Array<number> = []
      const store = yield* Store.resilient({
        ...memory,
        saveMetric: (event) => Effect.zipRight(Effect.sync(() => seen.push(event.timestamp)), memory.saveMetric(event))
      })
      yield* store.saveMetrics([1, 2, 3].map((timestamp) => ({ ...metric, timestamp })))
      assert.deepStrictEqual(seen, [1, 2, 3])
      assert.deepStrictEqual((yield* store.listMetrics()).map((e) => e.timestamp), [3, 2, 1])
      assert.strictEqual(yield* store.failures, 0)
    }))

  it.effect("passes a healthy store's answers through and counts nothing", () =>
    Effect.gen(function*() {
      const store = yield* Store.resilient(yield* Memory.make())
      yield* store.saveState(state)
      yield* store.saveMetric(metric)
      yield* store.recordRestart(restart)
      assert.deepStrictEqual(yield* store.getState("a"), Option.some(state))
      assert.deepStrictEqual(yield* store.listMetrics(), [metric])
      assert.deepStrictEqual(yield* store.listMetrics({ event: "tock" }), [])
      assert.deepStrictEqual(yield* store.restartHistory("a"), [restart])
      assert.strictEqual(yield* store.failures, 0)
    }))

  it.effect("child records: true or Some when the store answers, false or None when it fails or has none", () =>
    Effect.gen(function*() {
      const record: Store.ChildRecord = { supervisor: "root", child_id: "x", parked: true, updated_at: 1 }
      const healthy = yield* Store.resilient(yield* Memory.make())
      assert.isTrue(yield* healthy.saveChild(record))
      assert.deepStrictEqual(yield* healthy.listChildren("root"), Option.some([record]))
      assert.isTrue(yield* healthy.deleteChild("root", "x"))
      assert.deepStrictEqual(yield* healthy.listChildren(), Option.some([]))
      const down = (operation: string) =>
        Effect.fail(new StoreError({ operation, reason: "failure", detail: "connection refused" }))
      const broken = yield* Store.resilient({
        ...backend(down),
        saveChild: () => down("saveChild"),
        deleteChild: () => down("deleteChild"),
        listChildren: () => down("listChildren")
      })
      assert.isFalse(yield* broken.saveChild(record))
      assert.isFalse(yield* broken.deleteChild("root", "x"))
      assert.deepStrictEqual(yield* broken.listChildren("root"), Option.none())
      assert.strictEqual(yield* broken.failures, 3)
      // A store written without them: nothing to call, nothing counted.
      const old = yield* Store.resilient(backend(down))
      assert.isFalse(yield* old.saveChild(record))
      assert.deepStrictEqual(yield* old.listChildren(), Option.none())
      assert.strictEqual(yield* old.failures, 0)
    }))

  it.effect("checkpoints and deleteAgent: passed through; a failure or a store without them gives nothing", () =>
    Effect.gen(function*() {
      const record: Store.CheckpointRecord = { agent_name: "a", data: { count: 3 }, updated_at: 1 }
      const healthy = yield* Store.resilient(yield* Memory.make())
      yield* healthy.saveCheckpoint(record)
      assert.deepStrictEqual(yield* healthy.loadCheckpoint("a"), Option.some(record))
      yield* healthy.deleteAgent("a")
      assert.deepStrictEqual(yield* healthy.loadCheckpoint("a"), Option.none())
      const down = (operation: string) =>
        Effect.fail(new StoreError({ operation, reason: "failure", detail: "connection refused" }))
      const broken = yield* Store.resilient({
        ...backend(down),
        saveCheckpoint: () => down("saveCheckpoint"),
        loadCheckpoint: () => down("loadCheckpoint"),
        deleteAgent: () => down("deleteAgent")
      })
      assert.strictEqual(yield* broken.saveCheckpoint(record), undefined)
      assert.deepStrictEqual(yield* broken.loadCheckpoint("a"), Option.none())
      assert.strictEqual(yield* broken.deleteAgent("a"), undefined)
      assert.strictEqual(yield* broken.failures, 3)
      const old = yield* Store.resilient(backend(down))
      yield* old.saveCheckpoint(record)
      yield* old.deleteAgent("a")
      assert.deepStrictEqual(yield* old.loadCheckpoint("a"), Option.none())
      assert.strictEqual(yield* old.failures, 0)
    }))

  it.effect("task records: passed through; a failure or a store without them gives nothing, failures counted", () => {
    const log = captureLog()
    return Effect.gen(function*() {
      const record: Store.TaskRecord = {
        task_id: "t1",
        topic: "jobs",
        payload: { text: "héllo" },
        status: "dead",
        attempts: 2,
        errors: [{ attempt: 1, at: 1, child: "root/w", tag: "AgentTimeoutError", message: "slow" }],
        created_at: 1,
        updated_at: 2
      }
      const healthy = yield* Store.resilient(yield* Memory.make())
      yield* healthy.saveTask(record)
      assert.deepStrictEqual(yield* healthy.getTask("t1"), Option.some(record))
      assert.deepStrictEqual(yield* healthy.listTasks({ status: "dead" }), [record])
      assert.deepStrictEqual(yield* healthy.listTasks({ topic: "other" }), [])
      yield* healthy.deleteTask("t1")
      assert.deepStrictEqual(yield* healthy.listTasks(), [])
      assert.strictEqual(yield* healthy.failures, 0)

      const down = (operation: string) =>
        Effect.fail(new StoreError({ operation, reason: "failure", detail: "connection refused" }))
      const called: Array<string> = []
      const broken = yield* Store.resilient({
        ...backend(down),
        saveTask: () => Effect.zipRight(Effect.sync(() => called.push("saveTask")), down("saveTask")),
        getTask: () => Effect.zipRight(Effect.sync(() => called.push("getTask")), down("getTask")),
        listTasks: () => Effect.zipRight(Effect.sync(() => called.push("listTasks")), down("listTasks")),
        deleteTask: () => Effect.zipRight(Effect.sync(() => called.push("deleteTask")), down("deleteTask"))
      })
      assert.strictEqual(yield* broken.saveTask(record), undefined)
      assert.deepStrictEqual(yield* broken.getTask("t1"), Option.none())
      assert.deepStrictEqual(yield* broken.listTasks({ topic: "jobs" }), [])
      assert.strictEqual(yield* broken.deleteTask("t1"), undefined)
      assert.deepStrictEqual(called, ["saveTask", "getTask", "listTasks", "deleteTask"])
      assert.strictEqual(yield* broken.failures, 4)
      const { started, summaries } = outageLines(log.lines)
      assert.strictEqual(started.length, 1)
      assert.include(started[0], "saveTask failed: connection refused")
      assert.strictEqual(summaries.length, 0)

      // A store written without them: nothing to call, nothing counted.
      const old = yield* Store.resilient(backend(down))
      yield* old.saveTask(record)
      yield* old.deleteTask("t1")
      assert.deepStrictEqual(yield* old.getTask("t1"), Option.none())
      assert.deepStrictEqual(yield* old.listTasks(), [])
      assert.strictEqual(yield* old.failures, 0)
    }).pipe(log.provide)
  })

  it.effect("task records: a store that hangs gives the fallback after the timeout, counted", () =>
    Effect.gen(function*() {
      const never = () => Effect.never
      const store = yield* Store.resilient({
        ...backend(never),
        saveTask: never,
        getTask: never,
        listTasks: never,
        deleteTask: never
      })
      const all = yield* Effect.fork(
        Effect.all([
          store.getTask("t"),
          store.listTasks(),
          store.saveTask({ ...taskRecord }),
          store.deleteTask("t")
        ], { concurrency: "unbounded" })
      )
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(all)))
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* Fiber.join(all), [Option.none(), [], undefined, undefined])
      assert.strictEqual(yield* store.failures, 4)
    }))

  it.effect("a store that hangs: a write completes when the clock passes 5 s, counted, never before", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const store = yield* Store.resilient(
        backend(() => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never))
      )
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
      const store = yield* Store.resilient(backend(() => Effect.never))
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
      const store = yield* Store.resilient(backend(() => Effect.never), { timeout: "1 second" })
      const write = yield* Effect.fork(store.saveState(state))
      yield* TestClock.adjust("999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(write)))
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(write)
      assert.strictEqual(yield* store.failures, 1)
    }))

  it.effect("a store that ignores interruption cannot hold the caller past the timeout", () =>
    Effect.gen(function*() {
      const store = yield* Store.resilient(backend(() => Effect.uninterruptible(Effect.never)), { timeout: "1 second" })
      const write = yield* Effect.fork(store.saveMetric(metric))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(write)
      assert.strictEqual(yield* store.failures, 1)
    }))

  it.effect("a store that fails: writes succeed, reads give the fallback, failures are counted and logged", () => {
    const log = captureLog()
    return Effect.gen(function*() {
      const store = yield* Store.resilient(
        backend((operation) => Effect.fail(new StoreError({ operation, reason: "failure", detail: "disk full" })))
      )
      yield* everyOperation(store)
      assert.strictEqual(yield* store.failures, 6)
      assert.strictEqual(log.lines.length, 1)
      assert.strictEqual(log.lines[0].level, "WARN")
      assert.include(log.lines[0].message, "saveState failed: disk full")
    }).pipe(log.provide)
  })

  it.effect("a value a store cannot keep (unencodable) is refused and logged, but is no outage", () => {
    const log = captureLog()
    return Effect.gen(function*() {
      let down = false
      const store = yield* Store.resilient(backend((operation) =>
        Effect.fail(
          down
            ? new StoreError({ operation, reason: "failure", detail: "disk full" })
            : new StoreError({ operation, reason: "unencodable", detail: "result.big is Infinity" })
        )
      ))
      yield* store.saveMetric(metric)
      yield* store.saveMetric(metric)
      assert.strictEqual(yield* store.failures, 2)
      // Said each time, for what was refused: no "outage started", no summary to wait for
      assert.deepStrictEqual(log.lines.map((line) => line.level), ["WARN", "WARN"])
      for (const line of log.lines) {
        assert.include(line.message, "refused what it was given, not kept (no outage)")
        assert.include(line.message, "result.big is Infinity")
      }
      // A real failure afterwards starts the outage, as the first failure would have
      down = true
      yield* store.saveMetric(metric)
      assert.include(log.lines[2].message, "Store outage started")
    }).pipe(log.provide)
  })

  it.effect("a store that dies: the same", () =>
    Effect.gen(function*() {
      const store = yield* Store.resilient(backend(() => Effect.die(new Error("bug in the backend"))))
      yield* everyOperation(store)
      assert.strictEqual(yield* store.failures, 6)
    }))

  it.effect("a store whose methods throw: the same", () =>
    Effect.gen(function*() {
      const store = yield* Store.resilient(backend(() => {
        throw new Error("thrown, not failed")
      }))
      yield* everyOperation(store)
      assert.strictEqual(yield* store.failures, 6)
    }))

  it.effect("a store whose methods return no Effect: the same", () =>
    Effect.gen(function*() {
      const store = yield* Store.resilient(backend(() => undefined as any))
      yield* everyOperation(store)
      assert.strictEqual(yield* store.failures, 6)
    }))

  it.effect("a store that interrupts itself: the same", () =>
    Effect.gen(function*() {
      const store = yield* Store.resilient(backend(() => Effect.interrupt))
      yield* everyOperation(store)
      assert.strictEqual(yield* store.failures, 6)
    }))

  it.effect("recovers when the store does", () =>
    Effect.gen(function*() {
      let broken = true
      const memory = yield* Memory.make()
      const store = yield* Store.resilient({
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

/** A backend that fails while `broken()` says so, and is a memory store otherwise. */
const switchable = (broken: () => boolean) =>
  Effect.map(Memory.make(), (memory): Store.Store["Type"] => {
    const down = (operation: string) =>
      Effect.fail(new StoreError({ operation, reason: "failure", detail: "connection refused" }))
    return {
      saveState: (record) => broken() ? down("saveState") : memory.saveState(record),
      saveMetric: (event) => broken() ? down("saveMetric") : memory.saveMetric(event),
      recordRestart: (record) => broken() ? down("recordRestart") : memory.recordRestart(record),
      getState: (agent) => broken() ? down("getState") : memory.getState(agent),
      listMetrics: (query) => broken() ? down("listMetrics") : memory.listMetrics(query),
      restartHistory: (agent) => broken() ? down("restartHistory") : memory.restartHistory(agent)
    }
  })

describe("Store.resilient: an outage in the log", () => {
  it.effect("once when it starts, a summary at most every 10 s while it lasts, once when it ends, with totals", () => {
    const log = captureLog()
    return Effect.gen(function*() {
      let broken = true
      const store = yield* Store.resilient(yield* switchable(() => broken))
      // 30 s of outage: 290 writes and 10 reads, ten every second.
      for (let i = 0; i < 300; i++) {
        if (i % 30 === 29) yield* store.listMetrics({ agent: "a" })
        else yield* store.saveMetric({ ...metric, timestamp: i })
        if (i % 10 === 9) yield* TestClock.adjust("1 second")
      }
      const during = outageLines(log.lines)
      assert.strictEqual(during.started.length, 1)
      assert.include(during.started[0], "saveMetric failed: connection refused")
      // Failures from 0 to 29 s: summaries at 10 and 20 s, each of the 100 failures since the line before.
      assert.isAtMost(during.summaries.length, Math.floor(30 / 10))
      assert.strictEqual(during.summaries.length, 2)
      for (const summary of during.summaries) {
        assert.deepStrictEqual(tallyOf(summary), { failed: 100, writes: 97, reads: 3 }, summary)
        assert.include(summary, "in the last 10s")
      }
      assert.include(during.summaries[1], "going on for 20s")
      assert.strictEqual(during.ended.length, 0)

      broken = false
      yield* store.saveMetric({ ...metric, timestamp: 1000 })
      yield* store.saveMetric({ ...metric, timestamp: 1001 })
      yield* store.getState("a")
      const after = outageLines(log.lines)
      assert.strictEqual(after.started.length, 1)
      assert.strictEqual(after.summaries.length, 2)
      assert.strictEqual(after.ended.length, 1)
      assert.include(after.ended[0], "after 30s")
      assert.deepStrictEqual(tallyOf(after.ended[0]), { failed: 300, writes: 290, reads: 10 })
      assert.strictEqual(log.lines.find((line) => line.message === after.ended[0])?.level, "INFO")
      assert.strictEqual(log.lines.length, 4)
      assert.strictEqual(yield* store.failures, 300)
      assert.strictEqual((yield* store.listMetrics()).length, 2)
    }).pipe(log.provide)
  })

  it.effect("a second outage is logged as a new one", () => {
    const log = captureLog()
    return Effect.gen(function*() {
      let broken = true
      const store = yield* Store.resilient(yield* switchable(() => broken))
      for (const down of [true, false, true, false]) {
        broken = down
        for (let i = 0; i < 50; i++) yield* store.saveState(state)
        yield* TestClock.adjust("1 second")
      }
      const { ended, started, summaries } = outageLines(log.lines)
      assert.strictEqual(started.length, 2)
      assert.strictEqual(summaries.length, 0)
      assert.deepStrictEqual(ended.map(tallyOf), [{ failed: 50, writes: 50, reads: 0 }, {
        failed: 50,
        writes: 50,
        reads: 0
      }])
      assert.strictEqual(yield* store.failures, 100)
    }).pipe(log.provide)
  })

  it.effect("every wrapper over one store shares its outage: one line each, not one per wrapper", () => {
    const log = captureLog()
    return Effect.gen(function*() {
      let broken = true
      const backend = yield* switchable(() => broken)
      const agents = yield* Effect.all(Array.from({ length: 10 }, () => Store.resilient(backend)))
      for (let round = 0; round < 20; round++) {
        yield* Effect.forEach(agents, (store) => store.saveMetric(metric), { concurrency: "unbounded" })
        yield* TestClock.adjust("1 second")
      }
      broken = false
      yield* Effect.forEach(agents, (store) => store.saveMetric(metric), { concurrency: "unbounded" })
      const { ended, started, summaries } = outageLines(log.lines)
      assert.strictEqual(started.length, 1)
      assert.strictEqual(summaries.length, 1)
      assert.deepStrictEqual(tallyOf(summaries[0]), { failed: 100, writes: 100, reads: 0 })
      assert.strictEqual(ended.length, 1)
      assert.deepStrictEqual(tallyOf(ended[0]), { failed: 200, writes: 200, reads: 0 })
      // Each wrapper still counts its own failures.
      for (const store of agents) assert.strictEqual(yield* store.failures, 20)
    }).pipe(log.provide)
  })

  it.effect("the summary interval is an option; timeouts are failures of the outage too", () => {
    const log = captureLog()
    return Effect.gen(function*() {
      const store = yield* Store.resilient(backend(() => Effect.never), {
        timeout: "100 millis",
        summaryInterval: "1 second"
      })
      for (let i = 0; i < 50; i++) {
        const write = yield* Effect.fork(store.saveState(state))
        yield* TestClock.adjust("100 millis")
        yield* Fiber.join(write)
      }
      const { started, summaries } = outageLines(log.lines)
      assert.strictEqual(started.length, 1)
      assert.include(started[0], "saveState timed out: no answer within 100ms")
      // Failures at 0.1, 0.2, ... 5 s: a summary at 1.1, 2.1, 3.1, 4.1 s.
      assert.strictEqual(summaries.length, 4)
      assert.strictEqual(yield* store.failures, 50)
    }).pipe(log.provide)
  })

  it.effect("a read that succeeds while writes fail does not end it (a read-only database)", () => {
    const log = captureLog()
    return Effect.gen(function*() {
      const memory = yield* Memory.make()
      const store = yield* Store.resilient({
        ...memory,
        saveState: () => Effect.fail(new StoreError({ operation: "saveState", reason: "failure", detail: "readonly" }))
      })
      for (let i = 0; i < 100; i++) {
        yield* store.saveState(state)
        assert.deepStrictEqual(yield* store.getState("a"), Option.none())
      }
      const { ended, started } = outageLines(log.lines)
      assert.strictEqual(started.length, 1)
      assert.strictEqual(ended.length, 0)
      assert.strictEqual(yield* store.failures, 100)
    }).pipe(log.provide)
  })

  it.effect("an operation begun before it started, succeeding during it, does not end it", () => {
    const log = captureLog()
    return Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const memory = yield* Memory.make()
      let broken = false
      const store = yield* Store.resilient({
        ...memory,
        saveMetric: (event) =>
          broken
            ? Effect.fail(new StoreError({ operation: "saveMetric", reason: "failure", detail: "down" }))
            : Deferred.succeed(started, undefined).pipe(
              Effect.zipRight(Deferred.await(release)),
              Effect.zipRight(memory.saveMetric(event))
            ),
        saveState: () => Effect.fail(new StoreError({ operation: "saveState", reason: "failure", detail: "down" }))
      })
      const slow = yield* Effect.fork(store.saveMetric(metric))
      yield* Deferred.await(started)
      broken = true
      yield* store.saveState(state)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(slow)
      assert.strictEqual(outageLines(log.lines).ended.length, 0)
      broken = false
      yield* store.saveMetric(metric)
      assert.strictEqual(outageLines(log.lines).ended.length, 1)
      assert.deepStrictEqual(tallyOf(outageLines(log.lines).ended[0]), { failed: 1, writes: 1, reads: 0 })
    }).pipe(log.provide)
  })
})

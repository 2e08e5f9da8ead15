import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Memory from "../../src/Store/Memory.js"
import * as Store from "../../src/Store/Store.js"
import { storeConformance } from "./conformance.js"

storeConformance("Memory.layer()", Memory.layer(), (maxTasks) => Memory.layer({ maxTasks }))
storeConformance("Store.layerMemory", Store.layerMemory, (maxTasks) => Memory.layer({ maxTasks }))

describe("Memory", () => {
  const metric = (timestamp: number): Store.MetricEvent => ({ event: "tick", agent_name: "capped", timestamp })
  const restart = (attempt: number): Store.RestartRecord => ({
    agent_name: "capped",
    timestamp: attempt * 1000,
    reason: "crash",
    attempt,
    delay_ms: 0
  })

  it.effect("drops the oldest metrics past maxMetrics", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make({ maxMetrics: 3 })
      yield* Effect.forEach([1, 2, 3, 4, 5], (t) => store.saveMetric(metric(t)), { discard: true })
      const listed = yield* store.listMetrics()
      assert.deepStrictEqual(listed.map((e) => e.timestamp), [5, 4, 3])
    }))

  it.effect("drops the oldest restart records past maxRestarts", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make({ maxRestarts: 2 })
      yield* Effect.forEach([1, 2, 3, 4], (n) => store.recordRestart(restart(n)), { discard: true })
      const listed = yield* store.restartHistory()
      assert.deepStrictEqual(listed.map((r) => r.attempt), [4, 3])
    }))

  it.effect("drops by write order, not by timestamp", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make({ maxMetrics: 2 })
      yield* Effect.forEach([5, 1, 3], (t) => store.saveMetric(metric(t)), { discard: true })
      const listed = yield* store.listMetrics()
      assert.deepStrictEqual(listed.map((e) => e.timestamp), [3, 1])
    }))

  it.effect("keeps 10 000 metrics and 1 000 restarts by default", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make()
      yield* Effect.forEach(Array.from({ length: 10_005 }, (_, i) => i + 1), (t) => store.saveMetric(metric(t)), {
        discard: true
      })
      yield* Effect.forEach(Array.from({ length: 1_005 }, (_, i) => i + 1), (n) => store.recordRestart(restart(n)), {
        discard: true
      })
      const metrics = yield* store.listMetrics({ limit: 20_000 })
      assert.strictEqual(metrics.length, 10_000)
      assert.strictEqual(metrics[metrics.length - 1].timestamp, 6)
      const restarts = yield* store.restartHistory()
      assert.strictEqual(restarts.length, 1_000)
      assert.strictEqual(restarts[restarts.length - 1].attempt, 6)
    }))

  it.effect("keeps 10 000 task records by default, the least recently written dropped first", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make()
      const task = (n: number): Store.TaskRecord => ({
        task_id: `t${n}`,
        topic: "jobs",
        payload: n,
        status: "succeeded",
        result: n,
        attempts: 1,
        errors: [],
        created_at: n,
        updated_at: n
      })
      yield* Effect.forEach(Array.from({ length: 10_005 }, (_, i) => i + 1), (n) => store.saveTask!(task(n)), {
        discard: true
      })
      const tasks = yield* store.listTasks!({ limit: 20_000 })
      assert.strictEqual(tasks.length, 10_000)
      assert.strictEqual(tasks[tasks.length - 1].task_id, "t6")
      assert.isTrue(Option.isNone(yield* store.getTask!("t5")))
      assert.strictEqual((yield* store.listTasks!()).length, Store.defaultTaskLimit)
    }))

  it.effect("maxTasks: 0 keeps no task record", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make({ maxTasks: 0 })
      yield* store.saveTask!({
        task_id: "t",
        topic: "jobs",
        payload: null,
        status: "dead",
        attempts: 1,
        errors: [],
        created_at: 1,
        updated_at: 1
      })
      assert.deepStrictEqual(yield* store.listTasks!(), [])
    }))

  it.effect("past maxAgents, drops the state and checkpoint of the agent written least recently", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make({ maxAgents: 2 })
      const state = (name: string, n: number) =>
        store.saveState({ agent_name: name, state: "RUNNING", restart_count: n, updated_at: n })
      const checkpoint = (name: string, n: number) =>
        store.saveCheckpoint!({ agent_name: name, data: n, updated_at: n })
      yield* state("a", 1)
      yield* state("b", 2)
      yield* checkpoint("a", 1)
      yield* checkpoint("b", 2)
      // a written again: b is now the least recently written, and goes when c comes
      yield* state("a", 3)
      yield* checkpoint("a", 3)
      yield* state("c", 4)
      yield* checkpoint("c", 4)
      const counts = yield* Effect.forEach(
        ["a", "b", "c"],
        (name) =>
          Effect.map(store.getState(name), (found) => Option.getOrNull(Option.map(found, (s) => s.restart_count)))
      )
      assert.deepStrictEqual(counts, [3, null, 4])
      const data = yield* Effect.forEach(
        ["a", "b", "c"],
        (name) => Effect.map(store.loadCheckpoint!(name), (found) => Option.getOrNull(Option.map(found, (c) => c.data)))
      )
      assert.deepStrictEqual(data, [3, null, 4])
    }))

  it.effect("keeps 10 000 agents' states by default (a host of new dynamic children keeps a bounded store)", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make()
      for (let i = 0; i < 10_005; i++) {
        yield* store.saveState({ agent_name: `agent-${i}`, state: "RUNNING", restart_count: i, updated_at: i })
      }
      assert.isTrue(Option.isNone(yield* store.getState("agent-4")))
      assert.isTrue(Option.isSome(yield* store.getState("agent-5")))
      assert.isTrue(Option.isSome(yield* store.getState("agent-10004")))
    }))

  it.effect("keeps every agent's state within maxAgents: maxMetrics and maxRestarts bound only the logs", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make({ maxMetrics: 1, maxRestarts: 1 })
      for (let i = 0; i < 5; i++) {
        yield* store.saveState({ agent_name: `agent-${i}`, state: "RUNNING", restart_count: i, updated_at: i })
      }
      for (let i = 0; i < 5; i++) {
        const state = yield* store.getState(`agent-${i}`)
        assert.strictEqual(Option.map(state, (s) => s.restart_count).pipe(Option.getOrThrow), i)
      }
    }))

  it.effect("each make is a separate store", () =>
    Effect.gen(function*() {
      const a = yield* Memory.make()
      const b = yield* Memory.make()
      yield* a.saveMetric(metric(1))
      assert.strictEqual((yield* a.listMetrics()).length, 1)
      assert.strictEqual((yield* b.listMetrics()).length, 0)
    }))
})

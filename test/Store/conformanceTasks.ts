/**
 * The task records part of the store conformance suite (`conformance.ts` runs it over every backend): the outcomes
 * of the tasks of topics, their dead letters, and the bound on how many a store keeps.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Store from "../../src/Store/Store.js"

const failure = (attempt: number, message = "boom"): Store.TaskError => ({
  attempt,
  at: 1_700_000_000_000 + attempt,
  child: "root/workers/summarizer",
  tag: "AgentTaskError",
  message
})

const task = (
  task_id: string,
  topic: string,
  status: Store.TaskRecord["status"],
  updated_at: number
): Store.TaskRecord => ({
  task_id,
  topic,
  payload: { n: task_id },
  status,
  ...(status === "succeeded" ? { result: { ok: task_id } } : {}),
  attempts: status === "succeeded" ? 1 : 3,
  errors: status === "succeeded" ? [] : [failure(1), failure(2), failure(3)],
  created_at: updated_at - 10,
  updated_at
})

const ids = (records: ReadonlyArray<Store.TaskRecord>) => records.map((r) => r.task_id)

/** The task conformance tests; `withMaxTasks` gives the backend keeping at most `max` records (pruned at once). */
export const taskConformance = (
  withStore: <A, E>(f: (store: Store.Store["Type"]) => Effect.Effect<A, E>) => Effect.Effect<A, unknown>,
  withMaxTasks: (max: number) => Layer.Layer<Store.Store, unknown>
) =>
  describe("task records", () => {
    const saveAll = (store: Store.Store["Type"], records: ReadonlyArray<Store.TaskRecord>) =>
      Effect.forEach(records, (r) => store.saveTask!(r), { discard: true })

    it.effect("an unknown task has none; a saved one reads back with every field, its JSON as it was", () =>
      withStore((store) =>
        Effect.gen(function*() {
          assert.isTrue(Option.isNone(yield* store.getTask!("tasks-none")))
          const succeeded: Store.TaskRecord = {
            task_id: "tâche-𝒳-1",
            topic: "topic/résumés",
            payload: { text: "héllo \"q\"\n𝒳", nested: { list: [1, "two", null, true, { deep: [0.5] }] }, empty: {} },
            status: "succeeded",
            result: { words: 2, tokens: ["héllo", "𝒳"], meta: { model: null } },
            attempts: 2,
            errors: [failure(1, "timed out after 5s: \"slow\"\n𝒴")],
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_123.5
          }
          const dead: Store.TaskRecord = {
            task_id: "tasks-dead",
            topic: "topic/résumés",
            payload: ["a", 1, null],
            status: "dead",
            attempts: 3,
            errors: [failure(1), { ...failure(2), tag: "AgentTimeoutError" }, { ...failure(3), child: "root/b" }],
            created_at: 1000,
            updated_at: 2000
          }
          yield* saveAll(store, [succeeded, dead])
          assert.deepStrictEqual(yield* store.getTask!("tâche-𝒳-1"), Option.some(succeeded))
          // A dead letter has no result, and reads back without one (not with `result: undefined`).
          const read = yield* store.getTask!("tasks-dead")
          assert.deepStrictEqual(read, Option.some(dead))
          assert.isFalse(Option.exists(read, (r) => "result" in r))
          assert.deepStrictEqual(yield* store.listTasks!(), [succeeded, dead])
        })
      ))

    it.effect("any JSON value is a payload or a result; a null result is kept as null", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const values: ReadonlyArray<unknown> = ["text", 0, null, false, [], { a: [{}] }]
          const records = values.map((value, i): Store.TaskRecord => ({
            ...task(`tasks-json-${i}`, "tasks-json", "succeeded", 1000 + i),
            payload: value,
            result: value
          }))
          yield* saveAll(store, records)
          for (const record of records) {
            assert.deepStrictEqual(yield* store.getTask!(record.task_id), Option.some(record))
          }
        })
      ))

    it.effect("saving a task again replaces its record, and makes it the later write", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* saveAll(store, [
            task("tasks-up-a", "tasks-up", "succeeded", 1000),
            task("tasks-up-b", "tasks-up", "succeeded", 1000)
          ])
          const replaced: Store.TaskRecord = { ...task("tasks-up-a", "tasks-up-other", "dead", 1000), attempts: 5 }
          yield* store.saveTask!(replaced)
          assert.deepStrictEqual(yield* store.getTask!("tasks-up-a"), Option.some(replaced))
          // One record per task; among equal `updated_at`, the later write first.
          assert.deepStrictEqual(ids(yield* store.listTasks!()), ["tasks-up-a", "tasks-up-b"])
          assert.deepStrictEqual(ids(yield* store.listTasks!({ topic: "tasks-up" })), ["tasks-up-b"])
        })
      ))

    it.effect("lists by topic and status, newest updated_at first, then the later write", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* saveAll(store, [
            task("t1", "tasks-x", "succeeded", 3000),
            task("t2", "tasks-x", "dead", 1000),
            task("t3", "tasks-y", "dead", 2000),
            task("t4", "tasks-x", "succeeded", 2000),
            task("t5", "tasks-x", "dead", 2000),
            task("t6", "tasks-y", "succeeded", 4000)
          ])
          assert.deepStrictEqual(ids(yield* store.listTasks!()), ["t6", "t1", "t5", "t4", "t3", "t2"])
          assert.deepStrictEqual(ids(yield* store.listTasks!({ topic: "tasks-x" })), ["t1", "t5", "t4", "t2"])
          assert.deepStrictEqual(ids(yield* store.listTasks!({ status: "dead" })), ["t5", "t3", "t2"])
          assert.deepStrictEqual(ids(yield* store.listTasks!({ topic: "tasks-x", status: "dead" })), ["t5", "t2"])
          assert.deepStrictEqual(ids(yield* store.listTasks!({ topic: "tasks-y", status: "succeeded" })), ["t6"])
          assert.deepStrictEqual(yield* store.listTasks!({ topic: "tasks-none" }), [])
        })
      ))

    it.effect("limits the list to the newest ones", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* saveAll(store, [1000, 5000, 3000, 2000, 4000].map((t) => task(`l${t}`, "tasks-l", "dead", t)))
          assert.deepStrictEqual(ids(yield* store.listTasks!({ limit: 2 })), ["l5000", "l4000"])
          assert.deepStrictEqual(ids(yield* store.listTasks!({ status: "dead", limit: 3 })), [
            "l5000",
            "l4000",
            "l3000"
          ])
          assert.deepStrictEqual(yield* store.listTasks!({ limit: 0 }), [])
          assert.strictEqual((yield* store.listTasks!({ topic: "tasks-l", limit: 10 })).length, 5)
        })
      ))

    it.effect("limits the list to 1000 by default", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const records = Array.from({ length: 1005 }, (_, i) => task(`d${i + 1}`, "tasks-d", "succeeded", i + 1))
          // Distinct times: the order of the writes does not matter, and 10 at a time spares a slow database.
          yield* Effect.forEach(records, (r) => store.saveTask!(r), { concurrency: 10, discard: true })
          const listed = yield* store.listTasks!()
          assert.strictEqual(listed.length, Store.defaultTaskLimit)
          assert.strictEqual(listed[0].task_id, "d1005")
          assert.strictEqual(listed[listed.length - 1].task_id, "d6")
        })
      ), 120_000)

    it.effect("deleting a task forgets its record and nothing else; deleting one that is not there does nothing", () =>
      withStore((store) =>
        Effect.gen(function*() {
          yield* saveAll(store, [task("del-a", "tasks-del", "dead", 1000), task("del-b", "tasks-del", "dead", 2000)])
          yield* store.deleteTask!("del-a")
          yield* store.deleteTask!("del-missing")
          assert.isTrue(Option.isNone(yield* store.getTask!("del-a")))
          assert.deepStrictEqual(ids(yield* store.listTasks!()), ["del-b"])
          // Saved again, it is back.
          yield* store.saveTask!(task("del-a", "tasks-del", "dead", 1000))
          assert.deepStrictEqual(ids(yield* store.listTasks!()), ["del-b", "del-a"])
        })
      ))

    it.effect("keeps at most maxTasks records: the least recently written go first, whatever their times", () =>
      Effect.gen(function*() {
        const store = yield* Store.Store
        yield* saveAll(store, [
          task("b1", "tasks-b", "dead", 4000),
          task("b2", "tasks-b", "dead", 1000),
          task("b3", "tasks-b", "succeeded", 3000),
          task("b4", "tasks-b", "dead", 2000)
        ])
        assert.isTrue(Option.isNone(yield* store.getTask!("b1")))
        assert.deepStrictEqual(ids(yield* store.listTasks!()), ["b3", "b4", "b2"])
        // Written again, b2 is the latest write: b3 goes when b5 comes.
        yield* store.saveTask!(task("b2", "tasks-b", "succeeded", 1500))
        yield* store.saveTask!(task("b5", "tasks-b", "dead", 500))
        assert.deepStrictEqual(ids(yield* store.listTasks!()), ["b4", "b2", "b5"])
        assert.isTrue(Option.isNone(yield* store.getTask!("b3")))
      }).pipe(Effect.provide(withMaxTasks(3))))
  })

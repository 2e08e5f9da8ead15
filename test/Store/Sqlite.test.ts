import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as path from "node:path"
import * as Sqlite from "../../src/Store/Sqlite.js"
import * as Store from "../../src/Store/Store.js"
import { storeConformance } from "./conformance.js"
import { sqliteLayer, tempDir } from "./services.js"

storeConformance(
  "Store.layerSqlite (a temporary file)",
  sqliteLayer(),
  (maxTasks) => sqliteLayer({ maxTasks, pruneEvery: 1 })
)
storeConformance(
  "Store.layerSqlite (:memory:)",
  Store.layerSqlite({ filename: ":memory:" }),
  (maxTasks) => Store.layerSqlite({ filename: ":memory:", maxTasks, pruneEvery: 1 })
)

const metric = (timestamp: number, n = 0): Store.MetricEvent => ({ event: "tick", agent_name: "a", timestamp, n })
const task = (task_id: string, updated_at = 1): Store.TaskRecord => ({
  task_id,
  topic: "jobs",
  payload: { id: task_id },
  status: "dead",
  attempts: 1,
  errors: [{ attempt: 1, at: updated_at, child: "root/w", tag: "AgentTaskError", message: "no" }],
  created_at: 0,
  updated_at
})
const restart = (attempt: number): Store.RestartRecord => ({
  agent_name: "a",
  timestamp: attempt * 1000,
  reason: "crash",
  attempt,
  delay_ms: 0
})

/** A plain client on the same file, to look behind the store's back. */
const inspect = <A, E>(filename: string, f: (sql: SqliteClient.SqliteClient) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.flatMap(
      SqliteClient.make({ filename }).pipe(Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)),
      f
    )
  )

describe("Store.layerSqlite", () => {
  it.scoped("what one run wrote, the next reads back with Store.restore", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.sqlite")
      const first = Effect.gen(function*() {
        const store = yield* Store.Store
        yield* store.saveState({ agent_name: "echo", state: "RUNNING", pid: 41, restart_count: 1, updated_at: 500 })
        yield* store.recordRestart({ ...restart(1), agent_name: "echo", exit_code: 1, signal: null })
        yield* store.recordRestart({ ...restart(2), agent_name: "echo", exit_code: null, signal: "SIGKILL" })
        yield* store.saveState({ agent_name: "echo", state: "STOPPED", restart_count: 2, updated_at: 3000 })
        yield* store.saveMetric(metric(3000))
      })
      yield* first.pipe(Effect.provide(Store.layerSqlite({ filename })))

      const [echo, other, metrics] = yield* Effect.all([
        Store.restore("echo"),
        Store.restore("never-ran"),
        Effect.flatMap(Store.Store, (store) => store.listMetrics())
      ]).pipe(Effect.provide(Store.layerSqlite({ filename })))
      assert.deepStrictEqual(echo, {
        agent: "echo",
        state: Option.some({ agent_name: "echo", state: "STOPPED", restart_count: 2, updated_at: 3000 }),
        restartCount: 2,
        history: [
          { ...restart(2), agent_name: "echo", exit_code: null, signal: "SIGKILL" },
          { ...restart(1), agent_name: "echo", exit_code: 1, signal: null }
        ]
      })
      assert.deepStrictEqual(other, { agent: "never-ran", state: Option.none(), restartCount: 0, history: [] })
      assert.deepStrictEqual(metrics, [metric(3000)])

      // The migration ran once, on the first run.
      const migrations = yield* inspect(filename, (sql) => sql`SELECT name FROM agent_supervisor_migrations`)
      assert.deepStrictEqual(migrations, [
        { name: "create_tables" },
        { name: "create_children" },
        { name: "create_checkpoints" },
        { name: "create_tasks" },
        { name: "restarts_left_behind" }
      ])
    }))

  it.scoped("a database of the previous version (no child records) gets them on first use, its rows kept", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.sqlite")
      const state: Store.StateRecord = { agent_name: "a", state: "RUNNING", restart_count: 1, updated_at: 5 }
      yield* Effect.flatMap(Store.Store, (store) => store.saveState(state)).pipe(
        Effect.provide(Store.layerSqlite({ filename }))
      )
      // Back to what the first migration alone made.
      yield* inspect(filename, (sql) =>
        Effect.all([
          sql`DROP TABLE agent_supervisor_children`,
          sql`DROP TABLE agent_supervisor_checkpoints`,
          sql`DROP TABLE agent_supervisor_tasks`,
          sql`ALTER TABLE agent_supervisor_restarts DROP COLUMN left_behind`,
          sql`DELETE FROM agent_supervisor_migrations WHERE name IN ('create_children', 'create_checkpoints', 'create_tasks', 'restarts_left_behind')`
        ]))
      const record: Store.ChildRecord = { supervisor: "root", child_id: "x", spec: "{}", parked: false, updated_at: 6 }
      const [restored, children] = yield* Effect.flatMap(
        Store.Store,
        (store) => Effect.all([Store.restore("a"), Effect.zipRight(store.saveChild!(record), store.listChildren!())])
      ).pipe(
        Effect.provide(Store.layerSqlite({ filename }))
      )
      assert.deepStrictEqual(restored.state, Option.some(state))
      assert.deepStrictEqual(children, [record])
    }))

  it.scoped("a database of the previous version (no checkpoints) gets them on first use, its rows kept", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.sqlite")
      const record: Store.ChildRecord = { supervisor: "root", child_id: "x", spec: "{}", parked: false, updated_at: 6 }
      yield* Effect.flatMap(Store.Store, (store) => store.saveChild!(record)).pipe(
        Effect.provide(Store.layerSqlite({ filename }))
      )
      yield* inspect(filename, (sql) =>
        Effect.all([
          sql`DROP TABLE agent_supervisor_checkpoints`,
          sql`DROP TABLE agent_supervisor_tasks`,
          sql`ALTER TABLE agent_supervisor_restarts DROP COLUMN left_behind`,
          sql`DELETE FROM agent_supervisor_migrations WHERE name IN ('create_checkpoints', 'create_tasks', 'restarts_left_behind')`
        ]))
      const checkpoint: Store.CheckpointRecord = { agent_name: "a", data: { count: 3 }, updated_at: 7 }
      const [children, loaded] = yield* Effect.flatMap(
        Store.Store,
        (store) =>
          Effect.all([
            store.listChildren!(),
            Effect.zipRight(store.saveCheckpoint!(checkpoint), store.loadCheckpoint!("a"))
          ])
      ).pipe(Effect.provide(Store.layerSqlite({ filename })))
      assert.deepStrictEqual(children, [record])
      assert.deepStrictEqual(loaded, Option.some(checkpoint))
    }))

  it.scoped("a database of the previous version (no task records) gets them on first use, its rows kept", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.sqlite")
      const checkpoint: Store.CheckpointRecord = { agent_name: "a", data: { count: 3 }, updated_at: 7 }
      yield* Effect.flatMap(Store.Store, (store) => store.saveCheckpoint!(checkpoint)).pipe(
        Effect.provide(Store.layerSqlite({ filename }))
      )
      yield* inspect(filename, (sql) =>
        Effect.all([
          sql`DROP TABLE agent_supervisor_tasks`,
          sql`ALTER TABLE agent_supervisor_restarts DROP COLUMN left_behind`,
          sql`DELETE FROM agent_supervisor_migrations WHERE name IN ('create_tasks', 'restarts_left_behind')`
        ]))
      const [loaded, got] = yield* Effect.flatMap(
        Store.Store,
        (store) =>
          Effect.all([store.loadCheckpoint!("a"), Effect.zipRight(store.saveTask!(task("t")), store.getTask!("t"))])
      ).pipe(Effect.provide(Store.layerSqlite({ filename })))
      assert.deepStrictEqual(loaded, Option.some(checkpoint))
      assert.deepStrictEqual(got, Option.some(task("t")))
    }))

  it.scoped("a database of the previous version (no left_behind) gets the column on first use, its rows kept", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.sqlite")
      const before: Store.RestartRecord = { ...restart(1), exit_code: null, signal: "SIGKILL" }
      yield* Effect.flatMap(Store.Store, (store) => store.recordRestart(before)).pipe(
        Effect.provide(Store.layerSqlite({ filename }))
      )
      yield* inspect(filename, (sql) =>
        Effect.all([
          sql`ALTER TABLE agent_supervisor_restarts DROP COLUMN left_behind`,
          sql`DELETE FROM agent_supervisor_migrations WHERE name = 'restarts_left_behind'`
        ]))
      const after: Store.RestartRecord = { ...restart(2), exit_code: null, signal: "SIGKILL", left_behind: true }
      const history = yield* Effect.flatMap(
        Store.Store,
        (store) => Effect.zipRight(store.recordRestart(after), store.restartHistory())
      ).pipe(Effect.provide(Store.layerSqlite({ filename })))
      assert.deepStrictEqual(history, [after, before])
    }))

  it.effect("task writes count toward pruneEvery, then the latest maxTasks are kept", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      yield* Effect.forEach([1, 2, 3, 4], (n) => store.saveTask!(task(`t${n}`, n)), { discard: true })
      assert.strictEqual((yield* store.listTasks!()).length, 4)
      yield* store.recordRestart(restart(1))
      assert.deepStrictEqual((yield* store.listTasks!()).map((r) => r.task_id), ["t4", "t3"])
    }).pipe(Effect.provide(sqliteLayer({ maxTasks: 2, pruneEvery: 5 }))))

  it.effect("prunes task records whose outcome is older than maxTaskAge, by the Clock", () =>
    Effect.gen(function*() {
      const hour = 3_600_000
      yield* TestClock.setTime(10 * hour)
      const store = yield* Store.Store
      yield* Effect.forEach(
        [8 * hour, 9.5 * hour, 9 * hour - 1, 10 * hour],
        (t, i) => store.saveTask!({ ...task(`t${i}`, t), created_at: 0 }),
        { discard: true }
      )
      assert.deepStrictEqual((yield* store.listTasks!()).map((r) => r.updated_at), [10 * hour, 9.5 * hour])
    }).pipe(Effect.provide(sqliteLayer({ maxTaskAge: "1 hour", pruneEvery: 4 }))))

  it.scoped("a task row that does not decode fails its read with a StoreError naming it; the store goes on", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "tasks.sqlite")
      const store = yield* Sqlite.make({ filename })
      yield* Effect.forEach(["json", "status", "errors", "good"], (id, i) => store.saveTask!(task(id, i)), {
        discard: true
      })
      yield* inspect(filename, (sql) =>
        Effect.all([
          sql`UPDATE agent_supervisor_tasks SET payload = '{"cut' WHERE task_id = 'json'`,
          sql`UPDATE agent_supervisor_tasks SET status = 'pending' WHERE task_id = 'status'`,
          sql`UPDATE agent_supervisor_tasks SET errors = '[{"attempt":"one"}]' WHERE task_id = 'errors'`
        ]))
      const json = yield* Effect.flip(store.getTask!("json"))
      assert.strictEqual(json._tag, "StoreError")
      assert.strictEqual(json.operation, "getTask")
      assert.match(json.detail, /the row of task json does not decode: its JSON is not valid/)
      assert.match((yield* Effect.flip(store.getTask!("status"))).detail, /task status does not decode: status: /)
      assert.match((yield* Effect.flip(store.getTask!("errors"))).detail, /task errors does not decode: errors\.0\./)
      const listed = yield* Effect.flip(store.listTasks!())
      assert.strictEqual(listed.operation, "listTasks")
      // No outage: the next operation reaches the database at once (an outage would hold it off for retryAfter).
      assert.deepStrictEqual(yield* store.getTask!("good"), Option.some(task("good", 3)))
      assert.deepStrictEqual(yield* store.listTasks!({ topic: "none" }), [])
    }))

  it.scoped("saveTask: a payload or result that is not JSON fails with a StoreError, and nothing is written", () =>
    Effect.gen(function*() {
      const store = yield* Sqlite.make({ filename: path.join(yield* tempDir(), "tasks.sqlite") })
      const error = yield* Effect.flip(store.saveTask!({ ...task("big"), payload: { n: 1n } }))
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.detail, /task big: .*not JSON/)
      yield* Effect.flip(store.saveTask!({ ...task("big"), status: "succeeded", result: 2n }))
      assert.isTrue(Option.isNone(yield* store.getTask!("big")))
      // What JSON would keep changed (a Set as {}, NaN as null) is refused alike, named by its path
      const changed = yield* Effect.flip(store.saveTask!({ ...task("set"), payload: { tags: new Set(["a"]) } }))
      // The value is what is wrong, not the store: no outage (`Store.resilient`)
      assert.strictEqual(changed.reason, "unencodable")
      assert.match(changed.detail, /task set: .*not JSON: payload\.tags is a Set, which JSON sends as \{\}/)
      const nan = yield* Effect.flip(store.saveTask!({ ...task("nan"), status: "succeeded", result: [NaN] }))
      assert.match(nan.detail, /result\[0\] is NaN, which JSON sends as null/)
      assert.isTrue(Option.isNone(yield* store.getTask!("set")))
      assert.isTrue(Option.isNone(yield* store.getTask!("nan")))
    }))

  it.scoped("saveCheckpoint: data JSON cannot keep as it is fails with a StoreError, the checkpoint before kept", () =>
    Effect.gen(function*() {
      const store = yield* Sqlite.make({ filename: path.join(yield* tempDir(), "checkpoints.sqlite") })
      const kept: Store.CheckpointRecord = { agent_name: "a", data: { count: 3 }, updated_at: 7 }
      yield* store.saveCheckpoint!(kept)
      const big = yield* Effect.flip(store.saveCheckpoint!({ ...kept, data: { count: 3n } }))
      assert.strictEqual(big.operation, "saveCheckpoint")
      assert.match(big.detail, /the data is not JSON: .*BigInt/)
      const map = yield* Effect.flip(store.saveCheckpoint!({ ...kept, data: { seen: new Map([["x", 1]]) } }))
      assert.match(map.detail, /the data is not JSON: data\.seen is a Map, which JSON sends as \{\}/)
      assert.deepStrictEqual(yield* store.loadCheckpoint!("a"), Option.some(kept))
    }))

  it.effect("keeps the latest maxMetrics metrics and maxRestarts restarts, in write order", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      yield* Effect.forEach([5, 1, 4, 2, 3], (t) => store.saveMetric(metric(t)), { discard: true })
      yield* Effect.forEach([1, 2, 3, 4], (n) => store.recordRestart(restart(n)), { discard: true })
      assert.deepStrictEqual((yield* store.listMetrics()).map((e) => e.timestamp), [4, 3, 2])
      assert.deepStrictEqual((yield* store.restartHistory()).map((r) => r.attempt), [4, 3])
    }).pipe(Effect.provide(sqliteLayer({ maxMetrics: 3, maxRestarts: 2, pruneEvery: 1 }))))

  it.effect("prunes only every pruneEvery writes", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      yield* Effect.forEach([1, 2, 3, 4], (t) => store.saveMetric(metric(t)), { discard: true })
      assert.strictEqual((yield* store.listMetrics()).length, 4)
      yield* store.saveMetric(metric(5))
      assert.deepStrictEqual((yield* store.listMetrics()).map((e) => e.timestamp), [5, 4])
    }).pipe(Effect.provide(sqliteLayer({ maxMetrics: 2, pruneEvery: 5 }))))

  it.effect("prunes metrics older than maxMetricAge, by the Clock", () =>
    Effect.gen(function*() {
      const hour = 3_600_000
      yield* TestClock.setTime(10 * hour)
      const store = yield* Store.Store
      yield* Effect.forEach([8 * hour, 9.5 * hour, 9 * hour - 1, 10 * hour], (t) => store.saveMetric(metric(t)), {
        discard: true
      })
      assert.deepStrictEqual((yield* store.listMetrics()).map((e) => e.timestamp), [10 * hour, 9.5 * hour])
    }).pipe(Effect.provide(sqliteLayer({ maxMetricAge: "1 hour", pruneEvery: 4 }))))

  it.scoped("prunes when it connects: a file reopened with a tighter retention shrinks at once", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.sqlite")
      yield* Effect.flatMap(
        Store.Store,
        (store) => Effect.forEach([1, 2, 3, 4, 5], (t) => store.saveMetric(metric(t)), { discard: true })
      ).pipe(
        Effect.provide(Store.layerSqlite({ filename }))
      )
      const listed = yield* Effect.flatMap(Store.Store, (store) => store.listMetrics()).pipe(
        Effect.provide(Store.layerSqlite({ filename, maxMetrics: 2 }))
      )
      assert.deepStrictEqual(listed.map((e) => e.timestamp), [5, 4])
    }))

  it.scoped("saveMetrics: an event whose fields are not JSON is left out and fails the batch; the others are kept", () =>
    Effect.gen(function*() {
      const store = yield* Sqlite.make({ filename: path.join(yield* tempDir(), "batch.sqlite") })
      const error = yield* Effect.flip(store.saveMetrics!([metric(1), { ...metric(2), big: 1n }, metric(3)]))
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.detail, /not JSON/)
      assert.deepStrictEqual((yield* store.listMetrics()).map((e) => e.timestamp), [3, 1])
    }))

  it.scoped("stores with different table prefixes share a file without seeing each other", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "shared.sqlite")
      const a = yield* Sqlite.make({ filename, tablePrefix: "app_a_" })
      const b = yield* Sqlite.make({ filename, tablePrefix: "app_b_" })
      yield* a.saveMetric(metric(1))
      yield* b.saveMetric(metric(2))
      assert.deepStrictEqual((yield* a.listMetrics()).map((e) => e.timestamp), [1])
      assert.deepStrictEqual((yield* b.listMetrics()).map((e) => e.timestamp), [2])
    }))

  // A missing directory is no outage any more: it is created when the store is made (see build.test.ts).
  it.scoped("a file locked at start: fails fast for retryAfter, then connects and writes the state it missed", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.sqlite")
      // Another connection holds an exclusive lock (rollback journal: not even a read gets through) until it commits.
      const locker = yield* SqliteClient.make({ filename, disableWAL: true }).pipe(
        Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
      )
      yield* locker.unsafe("BEGIN EXCLUSIVE")
      const store = yield* Sqlite.make({ filename, retryAfter: "1 second" })
      const state: Store.StateRecord = { agent_name: "a", state: "RUNNING", restart_count: 0, updated_at: 1 }

      const first = yield* Effect.flip(store.saveState(state))
      assert.strictEqual(first._tag, "StoreError")
      assert.match(first.message, /saveState failed: .*database is locked/)
      yield* locker.unsafe("COMMIT")
      // Within retryAfter it does not even try.
      const second = yield* Effect.flip(store.getState("a"))
      assert.match(second.detail, /database unavailable .*retrying soon/)

      yield* TestClock.adjust("1 second")
      // The state whose save failed is written by the first operation that reaches the database.
      assert.deepStrictEqual(yield* store.listMetrics(), [])
      assert.deepStrictEqual(yield* store.getState("a"), Option.some(state))
      // A newer state wins over one left over from an outage, even with an older one pending.
      const later = { ...state, state: "STOPPED", updated_at: 2 }
      yield* store.saveState(later)
      assert.deepStrictEqual(yield* store.getState("a"), Option.some(later))
    }))

  it.scoped("a deletion that failed (deleteAgent) is made by the first operation that reaches the database", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.sqlite")
      const store = yield* Sqlite.make({ filename, retryAfter: "1 second" })
      const state = (agent_name: string): Store.StateRecord => ({
        agent_name,
        state: "STOPPED",
        restart_count: 0,
        updated_at: 1
      })
      yield* store.saveState(state("gone"))
      yield* store.saveState(state("back"))
      yield* store.saveCheckpoint!({ agent_name: "gone", data: { n: 1 }, updated_at: 1 })
      const locker = yield* SqliteClient.make({ filename, disableWAL: true }).pipe(
        Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
      )
      yield* locker.unsafe("BEGIN EXCLUSIVE")
      assert.match((yield* Effect.flip(store.deleteAgent!("gone"))).message, /deleteAgent failed: .*database is locked/)
      // A state written after the failed deletion wins over it
      yield* Effect.flip(store.deleteAgent!("back"))
      yield* locker.unsafe("COMMIT")
      yield* TestClock.adjust("1 second")
      yield* store.saveState({ ...state("back"), state: "STARTING", updated_at: 2 })
      assert.isTrue(Option.isNone(yield* store.getState("gone")))
      assert.isTrue(Option.isNone(yield* store.loadCheckpoint!("gone")))
      assert.strictEqual(Option.getOrUndefined(yield* store.getState("back"))?.state, "STARTING")
    }))

  it.scoped("bad options fail with a ConfigError naming the field", () =>
    Effect.gen(function*() {
      const bad = [
        [{ tablePrefix: "Agents-" }, "tablePrefix"],
        [{ maxMetrics: -1 }, "maxMetrics"],
        [{ maxRestarts: 1.5 }, "maxRestarts"],
        [{ maxTasks: -1 }, "maxTasks"],
        [{ maxTaskAge: "a while" }, "maxTaskAge"],
        [{ pruneEvery: 0 }, "pruneEvery"],
        [{ maxMetricAge: "a while" }, "maxMetricAge"],
        [{ retryAfter: -5 }, "retryAfter"],
        [{ busyTimeout: "soon" }, "busyTimeout"],
        [{ busyTimeout: -1 }, "busyTimeout"]
      ] as const
      for (const [options, field] of bad) {
        const error = yield* Effect.flip(Sqlite.make({ filename: ":memory:", ...options } as Sqlite.SqliteOptions))
        if (error._tag !== "ConfigError") return assert.fail(`a ConfigError, not ${error.message}`)
        assert.strictEqual(error.field, field)
      }
    }))

  it.scoped("an empty or missing filename is a ConfigError: SQLite would keep a temporary database, deleted at close", () =>
    Effect.gen(function*() {
      for (const filename of ["", undefined, 42]) {
        const error = yield* Effect.flip(Sqlite.make({ filename, maxMetrics: -1 } as unknown as Sqlite.SqliteOptions))
        if (error._tag !== "ConfigError") return assert.fail(`a ConfigError, not ${error.message}`)
        // with the other problems of the same options
        assert.deepStrictEqual(error.problems.map((p) => p.field), ["filename", "maxMetrics"], String(filename))
        assert.include(error.rule, `or ":memory:" for one kept in memory`)
      }
      // ":memory:" is a choice, and is kept as it is
      const kept = yield* Sqlite.make({ filename: ":memory:" })
      assert.isTrue(Option.isNone(yield* kept.getState("nobody")))
    }))

  it.scoped("a bad option's ConfigError gives the rule in one line and the value given", () =>
    Effect.gen(function*() {
      const bad = [
        [{ busyTimeout: "soon" }, "must be a duration like", "\"soon\""],
        [{ busyTimeout: -1 }, "must be a duration of 0 or more", "-1"],
        [{ retryAfter: "later" }, "must be a duration like", "\"later\""],
        [{ maxMetrics: -1 }, "must be 0 or more metrics", "-1"],
        [{ tablePrefix: "Agents-" }, "must be lower-case letters", "\"Agents-\""]
      ] as const
      for (const [options, rule, value] of bad) {
        const error = yield* Effect.flip(Sqlite.make({ filename: ":memory:", ...options } as Sqlite.SqliteOptions))
        if (error._tag !== "ConfigError") return assert.fail(`a ConfigError, not ${error.message}`)
        assert.include(error.rule, rule)
        assert.notInclude(error.rule, "\n")
        assert.strictEqual(error.value, value)
      }
    }))
})

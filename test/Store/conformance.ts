/**
 * The store conformance suite: every backend runs it. It assumes nothing about a backend's internals; `layer` is
 * built afresh for each test and must give an empty store (a new in-memory database, a fresh schema...).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Store from "../../src/Store/Store.js"
import { taskConformance } from "./conformanceTasks.js"

const state = (agent_name: string, state: string, updated_at: number, pid?: number): Store.StateRecord => ({
  agent_name,
  state,
  restart_count: 0,
  updated_at,
  ...(pid !== undefined ? { pid } : {})
})

const metric = (agent_name: string, event: string, timestamp: number): Store.MetricEvent => ({
  event,
  agent_name,
  timestamp
})

const restart = (agent_name: string, timestamp: number, attempt: number): Store.RestartRecord => ({
  agent_name,
  timestamp,
  reason: "crash",
  attempt,
  delay_ms: 100 * attempt,
  exit_code: 1,
  signal: null
})

const child = (supervisor: string, child_id: string, parked = false, spec?: string): Store.ChildRecord => ({
  supervisor,
  child_id,
  parked,
  updated_at: 1000,
  ...(spec !== undefined ? { spec } : {})
})

const stamps = (events: ReadonlyArray<{ readonly timestamp: number }>) => events.map((e) => e.timestamp)

/**
 * Runs the store conformance suite over `layer`; `withMaxTasks(max)` gives the same backend keeping at most `max`
 * task records, pruned at every write (the SQL stores: `pruneEvery: 1`).
 */
export const storeConformance = (
  name: string,
  layer: Layer.Layer<Store.Store, unknown>,
  withMaxTasks: (max: number) => Layer.Layer<Store.Store, unknown>
) =>
  describe(`Store conformance: ${name}`, () => {
    const withStore = <A, E>(f: (store: Store.Store["Type"]) => Effect.Effect<A, E>) =>
      Effect.flatMap(Store.Store, f).pipe(Effect.provide(layer))

    const saveMetrics = (store: Store.Store["Type"], events: ReadonlyArray<Store.MetricEvent>) =>
      Effect.forEach(events, (e) => store.saveMetric(e), { discard: true })

    describe("states", () => {
      it.effect("an unknown agent has no state", () =>
        withStore((store) =>
          Effect.gen(function*() {
            assert.isTrue(Option.isNone(yield* store.getState("state-unknown")))
          })
        ))

      it.effect("a saved state reads back with all its fields", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const record: Store.StateRecord = {
              agent_name: "state-full",
              state: "RUNNING",
              pid: 4242,
              restart_count: 3,
              updated_at: 1_700_000_000_123
            }
            yield* store.saveState(record)
            assert.deepStrictEqual(yield* store.getState("state-full"), Option.some(record))
          })
        ))

      it.effect("a state without a pid reads back without one", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const record = state("state-nopid", "STOPPED", 1000)
            yield* store.saveState(record)
            assert.deepStrictEqual(yield* store.getState("state-nopid"), Option.some(record))
          })
        ))

      it.effect("the latest state wins, per agent", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* store.saveState(state("state-a", "STARTING", 1000, 10))
            yield* store.saveState(state("state-b", "RUNNING", 1001, 20))
            yield* store.saveState(state("state-a", "RUNNING", 1002, 10))
            yield* store.saveState(state("state-a", "CRASHED", 1003))
            assert.deepStrictEqual(yield* store.getState("state-a"), Option.some(state("state-a", "CRASHED", 1003)))
            assert.deepStrictEqual(
              yield* store.getState("state-b"),
              Option.some(state("state-b", "RUNNING", 1001, 20))
            )
          })
        ))
    })

    it.effect("deleteAgent forgets an agent's state and checkpoint, and nothing else; an unknown agent is no error", () =>
      withStore((store) =>
        Effect.gen(function*() {
          const checkpoint = (agent_name: string): Store.CheckpointRecord => ({
            agent_name,
            data: { n: 1 },
            updated_at: 1000
          })
          const restart: Store.RestartRecord = {
            agent_name: "delete-gone",
            timestamp: 1001,
            reason: "crash",
            attempt: 1,
            delay_ms: 0
          }
          for (const agent of ["delete-gone", "delete-kept"]) {
            yield* store.saveState(state(agent, "RUNNING", 1000, 10))
            yield* store.saveCheckpoint!(checkpoint(agent))
          }
          yield* store.recordRestart(restart)
          yield* store.deleteAgent!("delete-gone")
          yield* store.deleteAgent!("delete-never-there")
          assert.isTrue(Option.isNone(yield* store.getState("delete-gone")))
          assert.isTrue(Option.isNone(yield* store.loadCheckpoint!("delete-gone")))
          assert.deepStrictEqual(
            yield* store.getState("delete-kept"),
            Option.some(state("delete-kept", "RUNNING", 1000, 10))
          )
          assert.deepStrictEqual(yield* store.loadCheckpoint!("delete-kept"), Option.some(checkpoint("delete-kept")))
          // Its history stays, within its own bounds
          assert.deepStrictEqual(yield* store.restartHistory("delete-gone"), [restart])
          // Written again, it is there again
          yield* store.saveState(state("delete-gone", "STARTING", 1002, 11))
          assert.deepStrictEqual(
            yield* store.getState("delete-gone"),
            Option.some(state("delete-gone", "STARTING", 1002, 11))
          )
        })
      ))

    describe("metrics", () => {
      it.effect("an empty store lists no metrics", () =>
        withStore((store) =>
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* store.listMetrics(), [])
            assert.deepStrictEqual(yield* store.listMetrics({ agent: "metrics-none" }), [])
          })
        ))

      it.effect("lists newest first", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const events = [1000, 2000, 3000].map((t) => metric("metrics-order", "tick", t))
            yield* saveMetrics(store, events)
            assert.deepStrictEqual(yield* store.listMetrics(), [...events].reverse())
          })
        ))

      it.effect("saveMetrics keeps a batch as saveMetric keeps each of it, in order, with the others' fields", () =>
        withStore((store) =>
          Effect.gen(function*() {
            if (store.saveMetrics === undefined) return
            yield* store.saveMetric(metric("metrics-batch", "tick", 1000))
            yield* store.saveMetrics([
              { ...metric("metrics-batch", "tick", 2000), n: 1 },
              { ...metric("metrics-batch", "tock", 2000), n: 2, nested: { a: [1] } },
              metric("metrics-batch", "tick", 3000)
            ])
            yield* store.saveMetrics([])
            assert.deepStrictEqual(yield* store.listMetrics({ agent: "metrics-batch" }), [
              metric("metrics-batch", "tick", 3000),
              { ...metric("metrics-batch", "tock", 2000), n: 2, nested: { a: [1] } },
              { ...metric("metrics-batch", "tick", 2000), n: 1 },
              metric("metrics-batch", "tick", 1000)
            ])
          })
        ))

      it.effect("newest means the latest timestamp, then the latest write", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* saveMetrics(store, [
              { ...metric("metrics-time", "tick", 3000), n: 1 },
              { ...metric("metrics-time", "tick", 1000), n: 2 },
              { ...metric("metrics-time", "tick", 2000), n: 3 },
              { ...metric("metrics-time", "tick", 2000), n: 4 }
            ])
            const listed = yield* store.listMetrics()
            assert.deepStrictEqual(listed.map((e) => e.n), [1, 4, 3, 2])
          })
        ))

      it.effect("filters by agent", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* saveMetrics(store, [
              metric("metrics-a", "tick", 1000),
              metric("metrics-b", "tick", 2000),
              metric("metrics-a", "tock", 3000),
              metric("metrics-b", "tick", 4000)
            ])
            const listed = yield* store.listMetrics({ agent: "metrics-a" })
            assert.deepStrictEqual(listed, [metric("metrics-a", "tock", 3000), metric("metrics-a", "tick", 1000)])
            assert.deepStrictEqual(yield* store.listMetrics({ agent: "metrics-c" }), [])
          })
        ))

      it.effect("filters by event", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* saveMetrics(store, [
              metric("metrics-e1", "tick", 1000),
              metric("metrics-e2", "tock", 2000),
              metric("metrics-e2", "tick", 3000)
            ])
            const listed = yield* store.listMetrics({ event: "tick" })
            assert.deepStrictEqual(listed, [metric("metrics-e2", "tick", 3000), metric("metrics-e1", "tick", 1000)])
          })
        ))

      it.effect("filters by since, inclusive", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* saveMetrics(store, [1000, 1999, 2000, 2001, 3000].map((t) => metric("metrics-since", "tick", t)))
            assert.deepStrictEqual(stamps(yield* store.listMetrics({ since: 2000 })), [3000, 2001, 2000])
            assert.deepStrictEqual(stamps(yield* store.listMetrics({ since: 3001 })), [])
          })
        ))

      it.effect("limits to the newest ones", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* saveMetrics(store, [1000, 2000, 3000, 4000, 5000].map((t) => metric("metrics-limit", "tick", t)))
            assert.deepStrictEqual(stamps(yield* store.listMetrics({ limit: 2 })), [5000, 4000])
            assert.deepStrictEqual(stamps(yield* store.listMetrics({ limit: 0 })), [])
            assert.deepStrictEqual(stamps(yield* store.listMetrics({ limit: 10 })), [5000, 4000, 3000, 2000, 1000])
          })
        ))

      it.effect("limits to 1000 by default", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const events = Array.from({ length: 1005 }, (_, i) => metric("metrics-default", "tick", i + 1))
            // Distinct timestamps: the order of the writes does not matter, and 10 at a time spares a slow database
            // 1005 round trips in a row.
            yield* Effect.forEach(events, (e) => store.saveMetric(e), { concurrency: 10, discard: true })
            const listed = yield* store.listMetrics()
            assert.strictEqual(listed.length, Store.defaultMetricLimit)
            assert.strictEqual(listed[0].timestamp, 1005)
            assert.strictEqual(listed[listed.length - 1].timestamp, 6)
          })
        ), 120_000)

      it.effect("combines every filter", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* saveMetrics(store, [
              { ...metric("metrics-x", "tick", 1000), n: 1 },
              { ...metric("metrics-x", "tick", 2000), n: 2 },
              { ...metric("metrics-y", "tick", 3000), n: 3 },
              { ...metric("metrics-x", "tock", 4000), n: 4 },
              { ...metric("metrics-x", "tick", 5000), n: 5 },
              { ...metric("metrics-x", "tick", 6000), n: 6 },
              { ...metric("metrics-x", "tick", 7000), n: 7 }
            ])
            const listed = yield* store.listMetrics({ agent: "metrics-x", event: "tick", since: 2000, limit: 3 })
            assert.deepStrictEqual(listed.map((e) => e.n), [7, 6, 5])
            const rest = yield* store.listMetrics({ agent: "metrics-x", event: "tick", since: 2000, limit: 10 })
            assert.deepStrictEqual(rest.map((e) => e.n), [7, 6, 5, 2])
          })
        ))

      it.effect("a state change round-trips with all its fields", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const event = Store.stateChange({
              agent_name: "metrics-change",
              old_state: "STARTING",
              new_state: "RUNNING",
              timestamp: 1_700_000_000_001
            })
            yield* store.saveMetric(event)
            const listed = yield* store.listMetrics({ agent: "metrics-change" })
            assert.deepStrictEqual(listed, [{
              event: "agent_state_change",
              agent_name: "metrics-change",
              old_state: "STARTING",
              new_state: "RUNNING",
              timestamp: 1_700_000_000_001
            }])
          })
        ))

      it.effect("a health check round-trips with all its fields", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const event = Store.healthCheck({
              agent_name: "metrics-health",
              state: "RUNNING",
              cpu_percent: 12.5,
              memory_mb: 64.25,
              latency_ms: 1.75,
              restart_count: 2,
              timestamp: 1_700_000_000_002
            })
            yield* store.saveMetric(event)
            const listed = yield* store.listMetrics({ event: "supervisor_health_check" })
            assert.deepStrictEqual(listed, [{
              event: "supervisor_health_check",
              agent_name: "metrics-health",
              state: "RUNNING",
              cpu_percent: 12.5,
              memory_mb: 64.25,
              latency_ms: 1.75,
              restart_count: 2,
              timestamp: 1_700_000_000_002
            }])
          })
        ))

      it.effect("extra JSON fields survive", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const event: Store.MetricEvent = {
              event: "custom",
              agent_name: "metrics-extra",
              timestamp: 1000,
              text: "héllo \"quoted\"\n",
              count: 3,
              ratio: 0.5,
              ok: false,
              nothing: null,
              list: [1, "two", { three: 3 }],
              nested: { a: { b: [true, null] } }
            }
            yield* store.saveMetric(event)
            assert.deepStrictEqual(yield* store.listMetrics({ agent: "metrics-extra" }), [event])
          })
        ))
    })

    describe("restart history", () => {
      it.effect("an empty store has no restarts", () =>
        withStore((store) =>
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* store.restartHistory(), [])
            assert.deepStrictEqual(yield* store.restartHistory("restart-none"), [])
          })
        ))

      it.effect("lists newest first, for every agent or one", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const records = [
              restart("restart-a", 1000, 1),
              restart("restart-b", 2000, 1),
              restart("restart-a", 3000, 2),
              restart("restart-b", 4000, 2)
            ]
            yield* Effect.forEach(records, (r) => store.recordRestart(r), { discard: true })
            assert.deepStrictEqual(yield* store.restartHistory(), [...records].reverse())
            assert.deepStrictEqual(yield* store.restartHistory("restart-a"), [records[2], records[0]])
            assert.deepStrictEqual(yield* store.restartHistory("restart-c"), [])
          })
        ))

      it.effect("newest means the latest timestamp, then the latest write", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const records = [
              restart("restart-time", 3000, 1),
              restart("restart-time", 1000, 2),
              restart("restart-time", 2000, 3),
              restart("restart-time", 2000, 4)
            ]
            yield* Effect.forEach(records, (r) => store.recordRestart(r), { discard: true })
            const listed = yield* store.restartHistory("restart-time")
            assert.deepStrictEqual(listed.map((r) => r.attempt), [1, 4, 3, 2])
          })
        ))

      it.effect("records round-trip with every shape of exit", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const records: Array<Store.RestartRecord> = [
              { agent_name: "restart-exit", timestamp: 1000, reason: "crash", attempt: 1, delay_ms: 0, exit_code: 137 },
              {
                agent_name: "restart-exit",
                timestamp: 2000,
                reason: "heartbeat",
                attempt: 2,
                delay_ms: 250.5,
                exit_code: null,
                signal: "SIGKILL"
              },
              { agent_name: "restart-exit", timestamp: 3000, reason: "manual", attempt: 0, delay_ms: 0 },
              {
                agent_name: "restart-exit",
                timestamp: 4000,
                reason: "start_failed",
                attempt: 3,
                delay_ms: 1000,
                exit_code: null,
                signal: null
              },
              {
                agent_name: "restart-exit",
                timestamp: 5000,
                reason: "heartbeat",
                attempt: 4,
                delay_ms: 0,
                exit_code: null,
                signal: "SIGKILL",
                left_behind: true
              }
            ]
            yield* Effect.forEach(records, (r) => store.recordRestart(r), { discard: true })
            assert.deepStrictEqual(yield* store.restartHistory("restart-exit"), [...records].reverse())
          })
        ))
    })
    describe("child records", () => {
      const ids = (records: ReadonlyArray<Store.ChildRecord>) => records.map((r) => `${r.supervisor}:${r.child_id}`)
      const saveAll = (store: Store.Store["Type"], records: ReadonlyArray<Store.ChildRecord>) =>
        Effect.forEach(records, (r) => store.saveChild!(r), { discard: true })

      it.effect("an empty store lists no children", () =>
        withStore((store) =>
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* store.listChildren!(), [])
            assert.deepStrictEqual(yield* store.listChildren!("children-none"), [])
          })
        ))

      it.effect("records read back with every field, per supervisor, in the order first saved", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const spec = JSON.stringify({ version: 1, spec: { _tag: "Agent", id: "b", text: "héllo \"q\"\n" } })
            const records = [
              child("children-root", "b", false, spec),
              child("children-root", "a", true),
              child("children-root/sub", "c", true, "{}"),
              { ...child("children-root", "0", false, ""), updated_at: 1_700_000_000_123.5 }
            ]
            yield* saveAll(store, records)
            assert.deepStrictEqual(yield* store.listChildren!("children-root"), [records[0], records[1], records[3]])
            assert.deepStrictEqual(yield* store.listChildren!("children-root/sub"), [records[2]])
            assert.deepStrictEqual(yield* store.listChildren!(), records)
          })
        ))

      it.effect("a new record of a child replaces the old one in its place; one deleted and saved again goes last", () =>
        withStore((store) =>
          Effect.gen(function*() {
            yield* saveAll(store, [child("children-order", "a"), child("children-order", "b")])
            yield* store.saveChild!(child("children-order", "a", true, "{}"))
            assert.deepStrictEqual(yield* store.listChildren!("children-order"), [
              child("children-order", "a", true, "{}"),
              child("children-order", "b")
            ])
            yield* store.saveChild!(child("children-order", "a", false))
            assert.deepStrictEqual((yield* store.listChildren!("children-order"))[0], child("children-order", "a"))
            yield* store.deleteChild!("children-order", "a")
            yield* store.saveChild!(child("children-order", "a"))
            assert.deepStrictEqual(ids(yield* store.listChildren!("children-order")), [
              "children-order:b",
              "children-order:a"
            ])
          })
        ))

      it.effect("deleting a child forgets the records at and below its path, and nothing else", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const root = "children-del"
            yield* saveAll(store, [
              child(root, "sub"),
              child(root, "subway"),
              child(`${root}/sub`, "x"),
              child(`${root}/sub/deeper`, "y"),
              child(`${root}/subway`, "z"),
              child(`${root}/Sub`, "case"),
              child(`${root}/sub%`, "like"),
              child(`${root}/s_b/x`, "like2"),
              child(root, "𝒳"),
              child(`${root}/𝒳`, "w"),
              child(`${root}/𝒳/𝒴`, "v"),
              child(`${root}/𝒳𝒴`, "u")
            ])
            yield* store.deleteChild!(root, "sub")
            yield* store.deleteChild!(root, "𝒳")
            yield* store.deleteChild!(root, "not-there")
            assert.deepStrictEqual(ids(yield* store.listChildren!()).filter((id) => id.startsWith(root)), [
              `${root}:subway`,
              `${root}/subway:z`,
              `${root}/Sub:case`,
              `${root}/sub%:like`,
              `${root}/s_b/x:like2`,
              `${root}/𝒳𝒴:u`
            ])
          })
        ))
    })

    describe("checkpoints", () => {
      it.effect("an agent without one has none; a saved one reads back with every field", () =>
        withStore((store) =>
          Effect.gen(function*() {
            assert.isTrue(Option.isNone(yield* store.loadCheckpoint!("checkpoint-none")))
            const record: Store.CheckpointRecord = {
              agent_name: "checkpoint-full",
              data: { count: 1200, nested: { list: [1, "two", null, true] }, text: "héllo \"q\"\n𝒳" },
              updated_at: 1_700_000_000_123.5
            }
            yield* store.saveCheckpoint!(record)
            assert.deepStrictEqual(yield* store.loadCheckpoint!("checkpoint-full"), Option.some(record))
          })
        ))

      it.effect("the latest wins, per agent; any JSON value is data", () =>
        withStore((store) =>
          Effect.gen(function*() {
            const record = (agent_name: string, data: unknown, updated_at: number): Store.CheckpointRecord => ({
              agent_name,
              data,
              updated_at
            })
            yield* store.saveCheckpoint!(record("checkpoint-a", { n: 1 }, 1000))
            yield* store.saveCheckpoint!(record("checkpoint-b", "text", 1001))
            yield* store.saveCheckpoint!(record("checkpoint-a", [1, 2], 1002))
            yield* store.saveCheckpoint!(record("checkpoint-c", null, 1003))
            yield* store.saveCheckpoint!(record("checkpoint-d", 0, 1004))
            assert.deepStrictEqual(
              yield* store.loadCheckpoint!("checkpoint-a"),
              Option.some(record("checkpoint-a", [1, 2], 1002))
            )
            assert.deepStrictEqual(
              yield* store.loadCheckpoint!("checkpoint-b"),
              Option.some(record("checkpoint-b", "text", 1001))
            )
            assert.deepStrictEqual(
              yield* store.loadCheckpoint!("checkpoint-c"),
              Option.some(record("checkpoint-c", null, 1003))
            )
            assert.deepStrictEqual(
              yield* store.loadCheckpoint!("checkpoint-d"),
              Option.some(record("checkpoint-d", 0, 1004))
            )
          })
        ))
    })

    taskConformance(withStore, withMaxTasks)
  })

/**
 * Many agents writing at once lose no row: 200 agents, each with its own writer (as standalone agents have; a tree shares one), write
 * their transitions and health checks concurrently into one store.
 *
 * What is tested is that every row arrives, not how fast: the writers' resilient store has no timeout (a busy
 * machine may take longer than the supervisor's 5 s for a write, and that is not a lost row of the store's
 * making), and the rows are read back from the store itself, so that a failed read fails the test with its error
 * instead of reading as an empty answer.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Writer from "../../src/Store/internal/writer.js"
import * as Store from "../../src/Store/Store.js"
import { captureLog, describeWithService, pgLayer, pgUnavailable, sqliteLayer } from "./services.js"

const AGENTS = 200
const ROUNDS = 10
const STATES = ["STARTING", "RUNNING", "CRASHED", "RESTARTING"]

const writeAll = Effect.gen(function*() {
  const backend = yield* Store.Store
  const store = yield* Store.resilient(backend, { timeout: Duration.infinity })
  const log = captureLog()
  // Recent timestamps: the SQL stores prune metrics older than 7 days (by the live clock here).
  const base = Date.now()
  const names = Array.from({ length: AGENTS }, (_, i) => `agent-${String(i).padStart(3, "0")}`)
  const dropped = yield* Effect.forEach(names, (name) =>
    Effect.scoped(Effect.gen(function*() {
      const writer = yield* Writer.make(store)
      for (let round = 0; round < ROUNDS; round++) {
        const timestamp = base + round * 10
        const from = STATES[round % STATES.length]
        const to = STATES[(round + 1) % STATES.length]
        yield* writer.saveMetric(Store.stateChange({ agent_name: name, old_state: from, new_state: to, timestamp }))
        yield* writer.saveState({
          agent_name: name,
          state: to,
          pid: round,
          restart_count: round,
          updated_at: timestamp
        })
        yield* writer.saveMetric(Store.healthCheck({
          agent_name: name,
          state: to,
          cpu_percent: round,
          memory_mb: 10 + round,
          latency_ms: 0.5,
          restart_count: round,
          timestamp: timestamp + 1
        }))
        // Each writer hands its writes over in the background: wait a tick so that all 200 interleave. A timer, not
        // `yieldNow`: Effect's scheduler would keep the event loop in microtasks for the whole test (the memory and
        // SQLite stores do no I/O), and on a loaded machine vitest's worker then misses its RPC deadline (60 s).
        yield* Effect.sleep(0)
      }
      yield* writer.flush
      return yield* writer.dropped
    })), { concurrency: "unbounded" }).pipe(log.provide)

  assert.strictEqual(dropped.reduce((a, b) => a + b, 0), 0)
  assert.strictEqual(yield* store.failures, 0, log.lines.map((line) => line.message).join("\n"))
  const all = yield* backend.listMetrics({ limit: 10 * AGENTS * ROUNDS })
  assert.strictEqual(all.length, 2 * AGENTS * ROUNDS)
  assert.strictEqual(all.filter((e) => e.event === "supervisor_health_check").length, AGENTS * ROUNDS)
  const last = ROUNDS - 1
  const read = yield* Effect.forEach(
    names,
    (name) => Effect.all([backend.listMetrics({ agent: name }), backend.getState(name)]),
    { concurrency: 10 }
  )
  names.forEach((name, i) => {
    const [mine, state] = read[i]
    assert.strictEqual(mine.length, 2 * ROUNDS, name)
    assert.deepStrictEqual(
      state,
      Option.some({
        agent_name: name,
        state: STATES[(last + 1) % STATES.length],
        pid: last,
        restart_count: last,
        updated_at: base + last * 10
      })
    )
  })
})

const suite = (name: string, layer: Layer.Layer<Store.Store, unknown>) =>
  it.live(
    `${name}: ${AGENTS} agents' transitions and health checks, written at once, lose no row`,
    () => writeAll.pipe(Effect.provide(layer)),
    300_000
  )

describe("Concurrent writers", () => {
  suite("memory", Store.layerMemory)
  suite("SQLite", sqliteLayer())
})

const unavailable = await pgUnavailable()

describeWithService("Concurrent writers on PostgreSQL", unavailable, () => {
  suite("PostgreSQL", pgLayer())
})

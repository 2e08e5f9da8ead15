import { assert, describe, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Pg from "../../src/Store/Pg.js"
import * as Store from "../../src/Store/Store.js"
import { storeConformance } from "./conformance.js"
import {
  closedPort,
  describeWithService,
  dropTables,
  pgLayer,
  pgUnavailable,
  pgUrl,
  uniquePrefix,
  withHostAndPort,
  withPg
} from "./services.js"

const unavailable = await pgUnavailable()

const metric = (timestamp: number): Store.MetricEvent => ({ event: "tick", agent_name: "a", timestamp })
const state: Store.StateRecord = { agent_name: "a", state: "RUNNING", pid: 7, restart_count: 3, updated_at: 1000 }

/** A table prefix for the test, its tables dropped with the scope. */
const scopedPrefix = Effect.acquireRelease(Effect.sync(uniquePrefix), dropTables)

describeWithService("PostgreSQL", unavailable, () => {
  storeConformance("Store.layerPg", pgLayer(), (maxTasks) => pgLayer({ maxTasks, pruneEvery: 1 }))

  describe("Store.layerPg", () => {
    it.scoped("what one run wrote, the next reads back with Store.restore", () =>
      Effect.gen(function*() {
        const tablePrefix = yield* scopedPrefix
        const layer = Store.layerPg({ url: Redacted.make(pgUrl), tablePrefix })
        yield* Effect.flatMap(Store.Store, (store) =>
          Effect.all([
            store.saveState(state),
            store.recordRestart({ agent_name: "a", timestamp: 900, reason: "crash", attempt: 1, delay_ms: 12.5 })
          ])).pipe(Effect.provide(layer))
        const restored = yield* Store.restore("a").pipe(Effect.provide(layer))
        assert.deepStrictEqual(restored, {
          agent: "a",
          state: Option.some(state),
          restartCount: 3,
          history: [{ agent_name: "a", timestamp: 900, reason: "crash", attempt: 1, delay_ms: 12.5 }]
        })
        const migrations = yield* withPg((sql) => sql.unsafe(`SELECT name FROM "${tablePrefix}migrations"`))
        assert.deepStrictEqual(migrations, [
          { name: "create_tables" },
          { name: "create_children" },
          { name: "create_checkpoints" },
          { name: "create_tasks" },
          { name: "restarts_left_behind" }
        ])
      }))

    it.effect("keeps the latest maxMetrics metrics and maxRestarts restarts, in write order", () =>
      Effect.gen(function*() {
        const store = yield* Store.Store
        yield* Effect.forEach([5, 1, 4, 2, 3], (t) => store.saveMetric(metric(t)), { discard: true })
        yield* Effect.forEach(
          [1, 2, 3, 4],
          (n) => store.recordRestart({ agent_name: "a", timestamp: n, reason: "crash", attempt: n, delay_ms: 0 }),
          { discard: true }
        )
        assert.deepStrictEqual((yield* store.listMetrics()).map((e) => e.timestamp), [4, 3, 2])
        assert.deepStrictEqual((yield* store.restartHistory()).map((r) => r.attempt), [4, 3])
      }).pipe(Effect.provide(pgLayer({ maxMetrics: 3, maxRestarts: 2, pruneEvery: 1 }))))

    it.scopedLive(
      "when every connection is busy, operations wait their turn instead of failing",
      () =>
        Effect.gen(function*() {
          const tablePrefix = yield* scopedPrefix
          const layer = Store.layerPg({
            url: Redacted.make(pgUrl),
            tablePrefix,
            maxConnections: 2,
            connectTimeout: "2 seconds"
          })
          const store = Context.get(yield* Layer.build(layer), Store.Store)
          yield* store.saveMetric(metric(0))
          // Another session holds a lock that every insert waits for, longer than `connectTimeout`: `pg`'s pool would
          // fail the writes queued for one of its 2 connections after that long.
          const locked = yield* Deferred.make<void>()
          const holder = yield* Effect.fork(withPg((sql) =>
            sql.withTransaction(
              sql.unsafe(`LOCK TABLE "${tablePrefix}metrics" IN EXCLUSIVE MODE`).pipe(
                Effect.zipRight(Deferred.succeed(locked, undefined)),
                Effect.zipRight(Effect.sleep("4 seconds"))
              )
            )
          ))
          yield* Deferred.await(locked)
          const writes = yield* Effect.all(
            Array.from({ length: 20 }, (_, i) => Effect.either(store.saveMetric(metric(i + 1)))),
            { concurrency: "unbounded" }
          )
          yield* Fiber.join(holder)
          assert.deepStrictEqual(writes.filter(Either.isLeft).map((e) => e.left.message), [])
          assert.strictEqual((yield* store.listMetrics()).length, 21)
        }),
      60_000
    )

    it.scoped("layerPgConfig reads DATABASE_URL from the Config provider", () =>
      Effect.gen(function*() {
        const tablePrefix = yield* scopedPrefix
        const layer = Store.layerPgConfig({
          url: Config.redacted("DATABASE_URL"),
          tablePrefix: Config.succeed(tablePrefix)
        })
        const got = yield* Effect.flatMap(Store.Store, (store) =>
          store.saveState(state).pipe(Effect.zipRight(store.getState("a")))).pipe(
            Effect.provide(layer),
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", pgUrl]])))
          )
        assert.deepStrictEqual(got, Option.some(state))
      }))
  })
})

describe("Store.layerPg without a server", () => {
  it.scoped("builds, then fails each operation fast with a StoreError saying why", () =>
    Effect.gen(function*() {
      const url = withHostAndPort(pgUrl, "127.0.0.1", yield* closedPort())
      const store = Context.get(yield* Layer.build(Store.layerPg({ url: Redacted.make(url) })), Store.Store)
      const error = yield* Effect.flip(store.saveState(state))
      assert.strictEqual(error._tag, "StoreError")
      assert.match(error.message, /ECONNREFUSED/)
      const again = yield* Effect.flip(store.listMetrics())
      assert.match(again.detail, /database unavailable .*retrying soon/)
    }))

  it.effect("bad options fail with a ConfigError naming the field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Pg.make({ tablePrefix: "1st" })))
      assert.strictEqual(error.field, "tablePrefix")
    }))
})

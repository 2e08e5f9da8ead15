/**
 * Every store refuses an options key it does not know, as the rest of the library does: a `ConfigError` naming the
 * key, with the one meant when one is close (`maxMetrix: is not a known setting: did you mean "maxMetrics"?`),
 * rather than a misspelt bound silently left at its default.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { ConfigError } from "../../src/Errors.js"
import * as Memory from "../../src/Store/Memory.js"
import * as Pg from "../../src/Store/Pg.js"
import * as Sql from "../../src/Store/Sql.js"
import * as Sqlite from "../../src/Store/Sqlite.js"
import * as Store from "../../src/Store/Store.js"
import { closedPort, pgUrl, withHostAndPort } from "./services.js"

/** Narrows a failure to the `ConfigError` it must be. */
const configError = (error: unknown): ConfigError => {
  const tagged = error as { readonly _tag?: unknown; readonly message?: unknown }
  if (tagged?._tag !== "ConfigError") return assert.fail(`a ConfigError, not ${String(tagged?.message ?? error)}`)
  return error as ConfigError
}

/** The problems of `make`'s failure, as `[field, rule, value]`. */
const problemsOf = <A, E, R>(make: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(make), (error) => configError(error).problems.map((p) => [p.field, p.rule, p.value]))

const meant = (key: string) => `is not a known setting: did you mean "${key}"?`
/** A key far from every option: the options are listed (before, "check its spelling" alone). */
const unknown = `is not a known setting here (known: "filename", "busyTimeout", "tablePrefix", "retryAfter", ` +
  `"maxMetricAge", "maxMetrics", "maxRestarts", "maxTaskAge", "maxTasks" or "pruneEvery")`

/** A store that never reaches its database: options are decoded before anything else. */
const never = Effect.die("the client is never acquired")

describe("store options: an unknown key is a ConfigError naming it", () => {
  it.scoped("SQLite: a misspelt option, with the one meant; several at once, each named", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* problemsOf(Sqlite.make({ filename: ":memory:", maxMetrix: 5 } as Sqlite.SqliteOptions)),
        [["maxMetrix", meant("maxMetrics"), "5"]]
      )
      const problems = yield* problemsOf(
        Sqlite.make(
          { filename: ":memory:", busyTimout: "1s", colour: "red", tablePrefix: "x_" } as Sqlite.SqliteOptions
        )
      )
      assert.sameDeepMembers(problems, [["busyTimout", meant("busyTimeout"), "\"1s\""], ["colour", unknown, "\"red\""]])
      // `undefined` is an absent option, as the types say (`?: T | undefined`)
      const store = yield* Sqlite.make({ filename: ":memory:", other: undefined } as Sqlite.SqliteOptions)
      assert.isDefined(store.saveState)
    }))

  it.scoped("SQLite: with a bad value too, both reported; the layer fails to build the same way", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(
        Sqlite.make({ filename: ":memory:", maxMetrics: -1, pruneEvry: 5 } as Sqlite.SqliteOptions)
      )
      assert.sameMembers(problems.map(([field]) => field), ["maxMetrics", "pruneEvry"])
      const error = configError(
        yield* Effect.flip(
          Layer.build(Store.layerSqlite({ filename: ":memory:", retryAftr: 5 } as Sqlite.SqliteOptions))
        )
      )
      assert.strictEqual(error.field, "retryAftr")
      assert.strictEqual(error.rule, meant("retryAfter"))
      assert.include(error.message, "retryAftr")
      assert.include(error.message, "retryAfter")
    }))

  it.scoped("PostgreSQL: the store's options and the client's are known, any other refused (no server needed)", () =>
    Effect.gen(function*() {
      const url = Redacted.make(withHostAndPort(pgUrl, "127.0.0.1", yield* closedPort()))
      assert.deepStrictEqual(
        yield* problemsOf(Pg.make({ url, maxMetrix: 5 } as Pg.PgOptions)),
        [["maxMetrix", meant("maxMetrics"), "5"]]
      )
      assert.deepStrictEqual(
        yield* problemsOf(Pg.make({ url, maxConection: 5 } as Pg.PgOptions)),
        [["maxConection", meant("maxConnections"), "5"]]
      )
      const error = configError(
        yield* Effect.flip(Layer.build(Store.layerPg({ url, conectTimeout: "1 second" } as Pg.PgOptions)))
      )
      assert.strictEqual(error.field, "conectTimeout")
      assert.strictEqual(error.rule, meant("connectTimeout"))
      // the client's options stay the client's: known, passed on
      yield* Layer.build(Store.layerPg({ url, connectTimeout: "1 second", applicationName: "test", maxMetrics: 5 }))
    }))

  it.effect("Sql.make / makeLazy (any SqlClient): a misspelt option, before the client is acquired", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* problemsOf(Effect.scoped(Sql.makeLazy(never, { tablePrefx: "x_" } as Sql.Options))),
        [["tablePrefx", meant("tablePrefix"), "\"x_\""]]
      )
    }))

  it.effect("memory: Memory.make, Memory.layer and Store.makeMemory refuse one too", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* problemsOf(Memory.make({ maxMetrix: 5 } as Memory.Options)),
        [["maxMetrix", meant("maxMetrics"), "5"]]
      )
      assert.deepStrictEqual(
        yield* problemsOf(Store.makeMemory({ maxAgent: 5 } as Store.MemoryOptions)),
        [["maxAgent", meant("maxAgents"), "5"]]
      )
      const error = configError(
        yield* Effect.flip(Effect.scoped(Layer.build(Memory.layer({ maxTask: 1 } as Memory.Options))))
      )
      assert.strictEqual(error.rule, meant("maxTasks"))
      // the known ones, and none, still make a store
      const store = yield* Memory.make({ maxMetrics: 1, maxRestarts: 1, maxTasks: 1, maxAgents: 1 })
      assert.isDefined(store.saveState)
    }))
})

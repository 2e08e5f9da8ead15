import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"

// Both drivers are CommonJS: once loaded, they sit in the CommonJS cache (one per test file's process).
const drivers = () =>
  Object.keys(createRequire(import.meta.url).cache).filter((path) =>
    /[\\/]node_modules[\\/](better-sqlite3|pg)[\\/]/.test(path)
  )

describe("Store start-up", () => {
  it.effect("the core loads no database driver until a SQL backend is asked for", () =>
    Effect.gen(function*() {
      const Store = yield* Effect.promise(() => import("../../src/Store/Store.js"))
      yield* Effect.promise(() => import("../../src/Store/Memory.js"))
      assert.strictEqual(typeof Store.layerSqlite, "function")
      assert.deepStrictEqual(drivers(), [])
      // The check itself sees a driver once one is loaded.
      yield* Effect.promise(() => import("../../src/Store/Sqlite.js"))
      yield* Effect.promise(() => import("../../src/Store/Pg.js"))
      const loaded = drivers().join("\n")
      assert.match(loaded, /better-sqlite3/)
      assert.match(loaded, /[\\/]pg[\\/]/)
    }))
})

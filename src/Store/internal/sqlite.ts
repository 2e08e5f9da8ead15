/**
 * The SQLite store's client: `better-sqlite3` through `@effect/sql-sqlite-node`, opened on first use.
 *
 * @internal
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Store from "../Store.js"
import type { SqliteSettings } from "./options.js"
import * as sqlStore from "./sqlStore.js"

/** The SQLite store on decoded settings: see `Store/Sqlite.ts`'s `make`. */
export const make = (settings: SqliteSettings): Effect.Effect<Store.Store["Type"], never, Scope.Scope> => {
  const acquire = Effect.gen(function*() {
    // WAL is set below, after the busy timeout: the client's own pragma would wait 5 s on a locked file.
    const sql = yield* SqliteClient.make({ filename: settings.filename, disableWAL: true }).pipe(
      Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
    )
    yield* sql.unsafe(`PRAGMA busy_timeout = ${settings.busyTimeout}`)
    yield* sql.unsafe("PRAGMA journal_mode = WAL")
    yield* sql.unsafe("PRAGMA synchronous = NORMAL")
    return sql
  })
  return sqlStore.make(acquire, settings.sql)
}

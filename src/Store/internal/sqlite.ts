/**
 * The SQLite store's client: `better-sqlite3` through `@effect/sql-sqlite-node`. The driver is loaded and the file
 * opened once when the store is made (what fails there is the install or the configuration); the store's own
 * client, its pragmas and the migrations come on first use, so a file locked at start is an outage like any other.
 *
 * @internal
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import type { StoreError } from "../../Errors.js"
import { makeDirectorySync } from "../../internal/makeDirectory.js"
import type * as Store from "../Store.js"
import * as driver from "./driver.js"
import type { SqliteSettings } from "./options.js"
import * as sqlStore from "./sqlStore.js"

// WAL is set on first use, after the busy timeout: the client's own pragma would wait 5 s on a locked file.
const open = (filename: string) =>
  SqliteClient.make({ filename, disableWAL: true }).pipe(
    Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
  )

/**
 * `better-sqlite3` loads its native module when it opens its first database, and fails there when the module was
 * not built or was built for another Node.js: an in-memory database tells that apart from a file that cannot open.
 */
const loadDriver = Effect.scoped(open(":memory:")).pipe(
  Effect.catchAllDefect((defect) => Effect.fail(driver.unavailable("open", driver.sqlite, defect))),
  Effect.asVoid
)

/** A database of its own, in memory (`":memory:"`) or in a temporary file (`""`): nothing to open but the driver. */
const isAnonymous = (filename: string) => filename === ":memory:" || filename === ""

/**
 * Creates the file's directory and those above it, as `mkdir -p` does, but never loops: Node's own recursive
 * `mkdirSync` spins forever under a pseudo filesystem (`/proc/x`), blocking the event loop (see `makeDirectory.ts`).
 */
const createDirectory = (file: string): Effect.Effect<void, StoreError> => {
  const directory = path.dirname(file)
  return Effect.try({
    try: () => makeDirectorySync(directory),
    catch: (error) => driver.unusable(directory, `cannot create the directory ${directory} for ${file}`, error)
  })
}

const sqliteCode = (error: SqlError) => driver.codeOf(error.cause)

/**
 * Opens the file and reads its header: a file that cannot be opened, or is not a database, fails here. Any other
 * failure (a lock another process holds, say) is left to the first use, which treats it as an outage. This client
 * is closed again: the client's prepared statements keep a failure (a lock met while preparing) for minutes, so
 * each attempt to connect opens a client of its own.
 */
const checkFile = (file: string, busyTimeout: number): Effect.Effect<void, StoreError> =>
  Effect.scoped(Effect.gen(function*() {
    const sql = yield* open(file).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(driver.unusable(file, `cannot open ${file}`, defect)))
    )
    yield* sql.unsafe(`PRAGMA busy_timeout = ${busyTimeout}`).pipe(
      Effect.zipRight(sql.unsafe("PRAGMA schema_version")),
      Effect.catchAll((error) => {
        const code = sqliteCode(error)
        return code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT"
          ? Effect.fail(driver.unusable(file, `${file} is not a SQLite database`, error.cause))
          : Effect.void
      })
    )
  }))

/** The SQLite store on decoded settings: see `Store/Sqlite.ts`'s `make`. */
export const make = (settings: SqliteSettings): Effect.Effect<Store.Store["Type"], StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const { busyTimeout, filename } = settings
    // A `file:` URI is SQLite's to read: its directory is the user's to make.
    const isUri = filename.startsWith("file:")
    const file = isAnonymous(filename) || isUri ? filename : path.resolve(filename)
    yield* loadDriver
    if (!isAnonymous(file)) {
      if (!isUri) yield* createDirectory(file)
      yield* checkFile(file, busyTimeout)
    }
    const acquire = Effect.gen(function*() {
      const sql = yield* open(file)
      yield* sql.unsafe(`PRAGMA busy_timeout = ${busyTimeout}`)
      yield* sql.unsafe("PRAGMA journal_mode = WAL")
      yield* sql.unsafe("PRAGMA synchronous = NORMAL")
      return sql
    })
    return yield* sqlStore.make(acquire, settings.sql)
  })

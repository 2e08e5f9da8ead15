/**
 * The SQL stores' build failures: a driver that does not load, and a database path that cannot be used. Both are a
 * broken install or configuration, which waiting does not repair: they fail the layer when it is built, where an
 * outage (a database down, a file locked) only degrades the store. The core (`Store.ts`) imports this module, so
 * it loads no driver itself.
 *
 * @internal
 */
import { StoreError } from "../../Errors.js"
import { messageOf } from "../../internal/standalone/messageOf.js"

/** What a backend loads: the modules that may be missing (peer first), and the one to blame otherwise. */
export interface Driver {
  readonly modules: ReadonlyArray<string>
  /** The module a failure that names none is put down to: the native one, for SQLite. */
  readonly blamed: string
}

/** `@effect/sql-sqlite-node` and its native module, `better-sqlite3`. */
export const sqlite: Driver = { modules: ["@effect/sql-sqlite-node", "better-sqlite3"], blamed: "better-sqlite3" }

/** `@effect/sql-pg` and the `pg` driver. */
export const pg: Driver = { modules: ["@effect/sql-pg", "pg"], blamed: "pg" }

/** The errno (`ENOTDIR`), SQLite (`SQLITE_NOTADB`) or Node (`ERR_DLOPEN_FAILED`) code of a thrown error. */
export const codeOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined

/** An error's message on one line, without the require stack a `require` failure goes on with. */
const oneLine = (error: unknown): string => messageOf(error).split("\nRequire stack:")[0].replace(/\s*\n\s*/g, " ")

/** The package a "cannot find" error names, when it names one rather than a file. */
const missingPackage = (message: string): string | undefined =>
  /Cannot find (?:package|module) '((?:@[^/']+\/)?[^./'][^/']*)'/.exec(message)?.[1]

/**
 * A driver that did not load (`operation`: `"load"` for the backend module, `"open"` for a native module that
 * fails when first used), put down to the module the error names, or else to the driver's `blamed` one.
 */
export const unavailable = (operation: string, driver: Driver, error: unknown): StoreError => {
  const message = oneLine(error)
  const missing = missingPackage(message)
  const name = missing !== undefined && driver.modules.includes(missing) ? missing : driver.blamed
  const code = codeOf(error)
  return new StoreError({
    operation,
    reason: "driver_unavailable",
    driver: name,
    ...(code !== undefined ? { code } : {}),
    detail: `the driver ${name} did not load (${message})`
  })
}

/** A database path the store cannot use: `path` is the directory it could not create, or the file itself. */
export const unusable = (path: string, what: string, error: unknown): StoreError => {
  const code = codeOf(error)
  return new StoreError({
    operation: "open",
    reason: "path_unusable",
    path,
    ...(code !== undefined ? { code } : {}),
    detail: `${what} (${oneLine(error)})`
  })
}

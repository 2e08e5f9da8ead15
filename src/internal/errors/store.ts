/**
 * The remediation of a `StoreError`: what to do about an outage, a driver that does not load (a broken install:
 * which command repairs it) and a database path that cannot be used (a configuration to fix).
 *
 * Plain fields in, strings out: this module knows nothing of the error classes (`Errors.ts` imports it, never
 * the other way round).
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import { installCommand, type OPTIONAL_PEERS } from "../peers.js"

/**
 * The fields of `Errors.StoreError`.
 *
 * @internal
 */
export const storeFields = {
  operation: Schema.String,
  reason: Schema.Literal("timeout", "failure", "driver_unavailable", "path_unusable", "unencodable"),
  detail: Schema.String,
  driver: Schema.optional(Schema.String),
  path: Schema.optional(Schema.String),
  code: Schema.optional(Schema.String)
}

/**
 * The facts of a `StoreError` that its remediation depends on.
 *
 * @internal
 */
export interface StoreFacts {
  readonly reason: "timeout" | "failure" | "driver_unavailable" | "path_unusable" | "unencodable"
  readonly driver?: string | undefined
  readonly path?: string | undefined
  readonly code?: string | undefined
}

/** The optional peer dependency that brings each driver (installing it installs the driver). */
const packageOf: Record<string, keyof typeof OPTIONAL_PEERS> = {
  "better-sqlite3": "@effect/sql-sqlite-node",
  "@effect/sql-sqlite-node": "@effect/sql-sqlite-node",
  "pg": "@effect/sql-pg",
  "@effect/sql-pg": "@effect/sql-pg"
}

const withoutPersistence = "or provide Store.layerMemory to run without persistence."

const driverRemediation = (driver: string, code: string | undefined): string => {
  const peer = packageOf[driver]
  const install = peer === undefined ? `npm install ${driver}` : installCommand(peer)
  if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
    const brings = peer === undefined || peer === driver ? "" : ` (it brings ${driver})`
    return `Install the store's driver: \`${install}\`${brings}; ${withoutPersistence}`
  }
  return `Rebuild the driver for the Node.js that runs the application: \`npm rebuild ${driver}\` (a native module ` +
    `is compiled by node-gyp: python3, make and a C++ compiler); if it still fails, reinstall it with ` +
    `\`${install}\`; ${withoutPersistence}`
}

/** Linux's pseudo filesystems: the kernel's view of itself, where no directory of the user's can be created. */
const PSEUDO_FILESYSTEM = /^\/(?:proc|sys)(?:\/|$)/

const pathRemediation = (path: string, code: string | undefined): string => {
  // `ENOENT` from `mkdir` with its parent there is what procfs answers (see `makeDirectory.ts`).
  if (PSEUDO_FILESYSTEM.test(path) || code === "ENOENT") {
    return `No directory can be created at ${path}: its filesystem refuses one (/proc and /sys are the kernel's ` +
      "pseudo filesystems, not a place for files). Set `filename` to a path on an ordinary, writable filesystem."
  }
  switch (code) {
    case "EEXIST":
    case "ENOTDIR":
      return `A file is in the way of the directory ${path}: move it, or set \`filename\` to a path whose ` +
        "directories can be created."
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return `Create ${path} with write access for the user that runs the application, or set \`filename\` to a ` +
        "writable place."
    case "SQLITE_NOTADB":
    case "SQLITE_CORRUPT":
      return `${path} is not a usable SQLite database: set \`filename\` to the store's file, or move this one aside ` +
        "(a new store is created in its place)."
    default:
      return `Make ${path} a file this user can read and write (not a directory, in a writable directory), or set ` +
        "`filename` elsewhere."
  }
}

/**
 * The remediation of a `StoreError`.
 *
 * @internal
 */
export const storeRemediation = (e: StoreFacts): string => {
  switch (e.reason) {
    case "driver_unavailable":
      return driverRemediation(e.driver ?? "the driver", e.code)
    case "path_unusable":
      return pathRemediation(e.path ?? "the store's file", e.code)
    case "unencodable":
      return "The store is fine: the value given is not JSON it can keep as it is (the detail names where). Convert " +
        "it before it is saved: a Map with Object.fromEntries, a Set with [...set], a BigInt or a non-finite number " +
        "to a string."
    default:
      return "Check the store's database is reachable and not overloaded; supervision goes on without it meanwhile."
  }
}

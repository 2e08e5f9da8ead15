/**
 * The SQLite store: the SQL store on an embedded database file, through `@effect/sql-sqlite-node`
 * (`better-sqlite3`). Survives a restart of the application; needs no server.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigErrorEffect from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { ConfigError, StoreError } from "../Errors.js"
import * as internalOptions from "./internal/options.js"
import * as internal from "./internal/sqlite.js"
import * as Store from "./Store.js"

/**
 * Options of the SQLite store: the file (`filename`, created when missing with its directories, or `":memory:"`;
 * an empty one is a `ConfigError`, as SQLite would read it as a temporary database deleted when the store closes),
 * `busyTimeout` (how long a statement waits for another connection's lock; it blocks the event loop, so 50 millis
 * by default), and the SQL store's table prefix and retention (`Store/Sql.ts`'s `Options`).
 *
 * @since 0.1.0
 * @category models
 */
export type SqliteOptions = internalOptions.SqliteOptions

/**
 * Makes the SQLite store. Loads `better-sqlite3`, creates the file's missing directories and opens the file at
 * once: a driver that does not load, a directory that cannot be created or a file that cannot be opened (or is no
 * database) fails with a `StoreError` whose remediation says what to run or change. Its tables are made on first
 * use, in WAL mode (readers never wait for the writer) with `synchronous = NORMAL` (a power loss may lose the last
 * writes, never corrupts the file): the trade a best-effort store wants; a lock or a read-only file met then is an
 * outage, logged and retried. Bad options fail with a `ConfigError` naming the field, and an unknown key
 * (`maxMetrix`) with the option meant when one is close.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: SqliteOptions
): Effect.Effect<Store.Store["Type"], ConfigError | StoreError, Scope.Scope> =>
  Effect.flatMap(Effect.suspend(() => internalOptions.decodeSqlite(options)), internal.make)

/**
 * The SQLite store as a layer. Building it loads the driver and opens the file (see {@link make}): a broken install
 * or an unusable path fails the layer with a `StoreError`; a read-only or locked file shows up as warnings from
 * the supervisor's writes, never as a failure.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerSqlite({ filename: "agents.sqlite", maxMetricAge: "3 days" })
 * ```
 */
export const layer = (options: SqliteOptions): Layer.Layer<Store.Store, ConfigError | StoreError> =>
  Layer.scoped(Store.Store, make(options))

/**
 * The SQLite store with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerSqliteConfig({ filename: Config.string("AGENT_STORE_FILE") })
 * ```
 */
export const layerConfig = (
  config: Config.Config.Wrap<SqliteOptions>
): Layer.Layer<Store.Store, ConfigError | StoreError | ConfigErrorEffect.ConfigError> =>
  Layer.scoped(Store.Store, Effect.flatMap(Config.unwrap(config), make))

/**
 * The SQLite store: the SQL store on an embedded database file, through `@effect/sql-sqlite-node`
 * (`better-sqlite3`). Survives a restart of the application; needs no server.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Config from "effect/Config"
import type * as ConfigErrorEffect from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { DurationInput } from "../Agent/Config.js"
import { ConfigError } from "../Errors.js"
import * as Sql from "./Sql.js"
import * as Store from "./Store.js"

/**
 * Options of the SQLite store: the file, and the SQL store's table prefix and retention.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqliteOptions extends Sql.Options {
  /** The database file, created when missing (its directory must exist), or `":memory:"`. */
  readonly filename: string
  /**
   * How long a statement waits for a lock another connection holds before it fails. `better-sqlite3` is
   * synchronous, so the wait blocks the event loop: keep it short. 50 millis by default.
   */
  readonly busyTimeout?: Duration.DurationInput | undefined
}

const decodeDuration = Schema.decodeUnknownEither(DurationInput)

const busyTimeoutOf = (options: SqliteOptions): Effect.Effect<number, ConfigError> =>
  options.busyTimeout === undefined ? Effect.succeed(50) : Either.match(decodeDuration(options.busyTimeout), {
    onLeft: () =>
      Effect.fail(
        new ConfigError({
          field: "busyTimeout",
          rule: "must be a duration of 0 or more, like \"50 millis\"",
          value: String(options.busyTimeout)
        })
      ),
    // SQLite takes whole milliseconds in a 32-bit int; a minute is already far too long to block the event loop.
    onRight: (duration) => Effect.succeed(Math.min(60_000, Math.floor(Duration.toMillis(duration))))
  })

/**
 * Makes the SQLite store. The file is opened on first use, in WAL mode (readers never wait for the writer)
 * with `synchronous = NORMAL` (a power loss may lose the last writes, never corrupts the file): the trade a
 * best-effort store wants.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: SqliteOptions): Effect.Effect<Store.Store["Type"], ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const [own, client] = Sql.splitOptions(options)
    const busyTimeout = yield* busyTimeoutOf(options)
    const acquire = Effect.gen(function*() {
      // WAL is set below, after the busy timeout: the client's own pragma would wait 5 s on a locked file.
      const sql = yield* SqliteClient.make({ filename: client.filename, disableWAL: true }).pipe(
        Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
      )
      yield* sql.unsafe(`PRAGMA busy_timeout = ${busyTimeout}`)
      yield* sql.unsafe("PRAGMA journal_mode = WAL")
      yield* sql.unsafe("PRAGMA synchronous = NORMAL")
      return sql
    })
    return yield* Sql.makeLazy(acquire, own)
  })

/**
 * The SQLite store as a layer. Building it never touches the file: a missing directory, a read-only or locked
 * file shows up as warnings from the supervisor's writes, never as a failure.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerSqlite({ filename: "agents.sqlite", maxMetricAge: "3 days" })
 * ```
 */
export const layer = (options: SqliteOptions): Layer.Layer<Store.Store, ConfigError> =>
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
): Layer.Layer<Store.Store, ConfigError | ConfigErrorEffect.ConfigError> =>
  Layer.scoped(Store.Store, Effect.flatMap(Config.unwrap(config), make))

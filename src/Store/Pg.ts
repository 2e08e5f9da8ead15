/**
 * The PostgreSQL store: the SQL store on a PostgreSQL server, through `@effect/sql-pg`. For several
 * applications sharing one store, or a store that must outlive the machine.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigErrorEffect from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { ConfigError } from "../Errors.js"
import * as internalOptions from "./internal/options.js"
import * as internal from "./internal/pg.js"
import * as Store from "./Store.js"

/**
 * Options of the PostgreSQL store: where the server is (`url`, or `host`, `port`, `database`, `username`,
 * `password`...), the pool (`maxConnections`, `connectTimeout`...: `PgClient`'s options, less its name
 * transforms, which would rename the store's own columns), and the SQL store's table prefix and retention
 * (`Store/Sql.ts`'s `Options`).
 *
 * @since 0.1.0
 * @category models
 */
export type PgOptions = internalOptions.PgOptions

/**
 * Makes the PostgreSQL store. The server is reached on first use and reconnected after failures by the pool;
 * `connectTimeout` (2 seconds by default) bounds each connection attempt, so a vanished server costs a write
 * that long at most. At most `maxConnections` operations (10 by default) run at once: the others wait for a
 * connection in turn rather than fail when the pool is busy. Bad options fail with a `ConfigError` naming the
 * field; a key that is neither the store's nor `PgClient`'s (`maxMetrix`) too, with the option meant when one is
 * close.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: PgOptions): Effect.Effect<Store.Store["Type"], ConfigError, Scope.Scope> =>
  Effect.flatMap(Effect.suspend(() => internalOptions.decodePg(options)), internal.make)

/**
 * The PostgreSQL store as a layer. Building it never connects: a server that is down shows up as warnings from
 * the supervisor's writes, never as a failure, and the store records again once the server is back. (The driver,
 * `pg`, is loaded with this module: through `Store.layerPg`, a missing driver fails the layer with a `StoreError`.)
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerPg({ url: Redacted.make("postgres://app@db:5432/agents"), maxMetrics: 1_000_000 })
 * ```
 */
export const layer = (options: PgOptions): Layer.Layer<Store.Store, ConfigError> =>
  Layer.scoped(Store.Store, make(options))

/**
 * The PostgreSQL store with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerPgConfig({ url: Config.redacted("DATABASE_URL") })
 * ```
 */
export const layerConfig = (
  config: Config.Config.Wrap<PgOptions>
): Layer.Layer<Store.Store, ConfigError | ConfigErrorEffect.ConfigError> =>
  Layer.scoped(Store.Store, Effect.flatMap(Config.unwrap(config), make))

/**
 * The SQL store backend, on `@effect/sql`: the same tables, queries and retention on SQLite and PostgreSQL (see
 * `Store/Sqlite.ts` and `Store/Pg.ts` for the clients, or {@link layer} over any `SqlClient` you provide).
 *
 * Tables (each name starts with `tablePrefix`): `states` (one row per agent, replaced on every save),
 * `metrics` (one row per event; the fields other than `event`, `agent_name` and `timestamp` as JSON text),
 * `restarts`, `children`, `checkpoints` and `tasks` (one row per task of a topic, its payload, result and errors as
 * JSON text), created by `@effect/sql`'s migrator, which records what it ran in `<prefix>migrations`.
 *
 * Best effort, like every store, but also patient: the database is reached on first use, not when the layer is
 * built, so an application starts while its database is down; after a failure the store answers at once with
 * a `StoreError` for `retryAfter`, then tries again (connecting and migrating anew if it never got that far).
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { ConfigError } from "../Errors.js"
import * as internalOptions from "./internal/options.js"
import * as internal from "./internal/sqlStore.js"
import * as Store from "./Store.js"

/**
 * How much history the store keeps. Pruning runs when the store connects and then after every `pruneEvery`
 * writes of metrics, restart records and task records, so between two prunes a table holds at most `pruneEvery`
 * rows more. Task records are bounded by `maxTasks` (10 000 by default) and `maxTaskAge` (7 days) since 0.3.0.
 *
 * @since 0.1.0
 * @category models
 */
export type RetentionOptions = internalOptions.RetentionOptions

/**
 * Options of the SQL store: {@link RetentionOptions}, `tablePrefix` (starts the name of every table and index,
 * so several stores can share one database; `"agent_supervisor_"` by default) and `retryAfter` (after a failure,
 * how long the store answers at once with an error before it tries again; 1 second by default).
 *
 * @since 0.1.0
 * @category models
 */
export type Options = internalOptions.SqlOptions

/**
 * Splits an options object into the store's own options and the rest (the client's).
 *
 * @since 0.1.0
 * @category utils
 */
export const splitOptions: <A extends Options>(options: A) => readonly [Options, Omit<A, keyof Options>] =
  internalOptions.splitOptions

/**
 * A store over a client acquired on first use. `acquire` runs in a scope of its own, closed if it fails, if the
 * migrations fail, or when the store's scope closes; a failed acquisition is tried again on a later operation
 * (after `retryAfter`), so the store never needs the database to be up when it is made. Bad options fail with a
 * `ConfigError` naming the field, and an unknown key (`maxMetrix`) with the option meant when one is close (split
 * an object that holds a client's options too with {@link splitOptions} first).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeLazy = <E, R>(
  acquire: Effect.Effect<SqlClient.SqlClient, E, Scope.Scope | R>,
  options?: Options
): Effect.Effect<Store.Store["Type"], ConfigError, Scope.Scope | R> =>
  Effect.flatMap(
    Effect.suspend(() => internalOptions.decodeSql(options)),
    (settings) => internal.make(acquire, settings)
  )

/**
 * A store over the `SqlClient` in the context (any dialect `@effect/sql` supports with `ON CONFLICT`: SQLite,
 * PostgreSQL). Migrations run on first use.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<Store.Store["Type"], ConfigError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => makeLazy(Effect.succeed(sql), options))

/**
 * {@link make} as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Store.Store, ConfigError, SqlClient.SqlClient> =>
  Layer.scoped(Store.Store, make(options))

/**
 * The SQL store backend, on `@effect/sql`: the same tables, queries and retention on SQLite and PostgreSQL (see
 * `Store/Sqlite.ts` and `Store/Pg.ts` for the clients, or {@link layer} over any `SqlClient` you provide).
 *
 * Tables (each name starts with `tablePrefix`): `states` (one row per agent, replaced on every save),
 * `metrics` (one row per event; the fields other than `event`, `agent_name` and `timestamp` as JSON text) and
 * `restarts`, created by `@effect/sql`'s migrator, which records what it ran in `<prefix>migrations`.
 *
 * Best effort, like every store, but also patient: the database is reached on first use, not when the layer is
 * built, so an application starts while its database is down; after a failure the store answers at once with
 * a `StoreError` for `retryAfter`, then tries again (connecting and migrating anew if it never got that far).
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Fragment } from "@effect/sql/Statement"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { DurationInput } from "../Agent/Config.js"
import { ConfigError, StoreError } from "../Errors.js"
import * as Store from "./Store.js"

/**
 * How much history the store keeps. Pruning runs when the store connects and then after every `pruneEvery`
 * writes of metrics and restart records, so between two prunes a table holds at most `pruneEvery` rows more.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetentionOptions {
  /** Metrics whose `timestamp` is older than this are pruned. 7 days by default. */
  readonly maxMetricAge?: Duration.DurationInput | undefined
  /** At most this many metrics are kept, the latest written. 100 000 by default. */
  readonly maxMetrics?: number | undefined
  /** At most this many restart records are kept, the latest written. 10 000 by default. */
  readonly maxRestarts?: number | undefined
  /** Prune after this many writes (metrics and restart records). 1 000 by default. */
  readonly pruneEvery?: number | undefined
}

/**
 * Options of the SQL store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends RetentionOptions {
  /**
   * Starts the name of every table and index, so several stores (or test runs) can share one database:
   * lower-case letters, digits and `_`. `"agent_supervisor_"` by default.
   */
  readonly tablePrefix?: string | undefined
  /** After a failure, how long the store answers at once with an error before it tries again. 1 second by default. */
  readonly retryAfter?: Duration.DurationInput | undefined
}

const count = (what: string) =>
  Schema.Number.pipe(
    Schema.int({ message: () => `must be a whole number of ${what}` }),
    Schema.greaterThanOrEqualTo(0, { message: () => `must be 0 or more ${what}` })
  )

const OptionsSchema = Schema.Struct({
  tablePrefix: Schema.optionalWith(
    Schema.String.pipe(
      Schema.pattern(/^[a-z_][a-z0-9_]{0,39}$/, {
        message: () => "must be lower-case letters, digits and _ (at most 40), not starting with a digit"
      })
    ),
    { default: () => "agent_supervisor_", exact: true }
  ),
  retryAfter: Schema.optionalWith(DurationInput, { default: () => Duration.seconds(1), exact: true }),
  maxMetricAge: Schema.optionalWith(DurationInput, { default: () => Duration.days(7), exact: true }),
  maxMetrics: Schema.optionalWith(count("metrics"), { default: () => 100_000, exact: true }),
  maxRestarts: Schema.optionalWith(count("restart records"), { default: () => 10_000, exact: true }),
  pruneEvery: Schema.optionalWith(
    count("writes").pipe(Schema.greaterThanOrEqualTo(1, { message: () => "must be at least 1 write" })),
    { default: () => 1_000, exact: true }
  )
})

type Settings = typeof OptionsSchema.Type

/** The keys of `Options` itself, so that backends can pass the rest of an options object on to their client. */
const optionKeys: ReadonlyArray<string> = Object.keys(OptionsSchema.fields)

/**
 * Splits an options object into the store's own options and the rest (the client's).
 *
 * @since 0.1.0
 * @category utils
 */
export const splitOptions = <A extends Options>(options: A): readonly [Options, Omit<A, keyof Options>] => {
  const own: Record<string, unknown> = {}
  const rest: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue
    if (optionKeys.includes(key)) own[key] = value
    else rest[key] = value
  }
  return [own as Options, rest as Omit<A, keyof Options>]
}

const decodeSettings = (options: Options | undefined): Effect.Effect<Settings, ConfigError> =>
  Either.match(
    Schema.decodeUnknownEither(OptionsSchema, { errors: "first" })(
      Object.fromEntries(Object.entries(options ?? {}).filter(([, value]) => value !== undefined))
    ),
    {
      onLeft: (error) => {
        const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
        const field = issue.path.map(String).join(".")
        const value = field === "" ? undefined : (options as Record<string, unknown> | undefined)?.[field]
        return Effect.fail(
          new ConfigError({
            field: field === "" ? "(store options)" : field,
            rule: issue.message,
            ...(value !== undefined ? { value: JSON.stringify(value) ?? String(value) } : {})
          })
        )
      },
      onRight: Effect.succeed
    }
  )

// ---- schema ----

interface Tables {
  readonly states: string
  readonly metrics: string
  readonly restarts: string
  readonly migrations: string
  readonly prefix: string
}

const tablesOf = (prefix: string): Tables => ({
  states: `${prefix}states`,
  metrics: `${prefix}metrics`,
  restarts: `${prefix}restarts`,
  migrations: `${prefix}migrations`,
  prefix
})

/**
 * The first migration. Numbers are `REAL`/`DOUBLE PRECISION` where a record allows fractions (timestamps are
 * epoch milliseconds, exact up to 2^53) and where `pg` would otherwise hand back a `BIGINT` as a string.
 */
const createTables = (tables: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { id, real } = sql.onDialectOrElse({
      pg: () => ({ id: sql.literal("BIGSERIAL PRIMARY KEY"), real: sql.literal("DOUBLE PRECISION") }),
      // A plain INTEGER PRIMARY KEY is the rowid: always above every row left, so it keeps the write order.
      orElse: () => ({ id: sql.literal("INTEGER PRIMARY KEY"), real: sql.literal("REAL") })
    })
    const index = (name: string) => sql(`${tables.prefix}${name}`)
    yield* sql`CREATE TABLE ${sql(tables.states)} (
      agent_name TEXT PRIMARY KEY NOT NULL,
      state TEXT NOT NULL,
      pid INTEGER,
      restart_count INTEGER NOT NULL,
      updated_at ${real} NOT NULL
    )`
    yield* sql`CREATE TABLE ${sql(tables.metrics)} (
      id ${id},
      agent_name TEXT NOT NULL,
      event TEXT NOT NULL,
      timestamp_ms ${real} NOT NULL,
      fields TEXT NOT NULL
    )`
    // One index per filter of `listMetrics`, each ending in the sort order (newest first, then latest write).
    yield* sql`CREATE INDEX ${index("metrics_agent")} ON ${sql(tables.metrics)} (agent_name, timestamp_ms, id)`
    yield* sql`CREATE INDEX ${index("metrics_event")} ON ${sql(tables.metrics)} (event, timestamp_ms, id)`
    yield* sql`CREATE INDEX ${index("metrics_time")} ON ${sql(tables.metrics)} (timestamp_ms, id)`
    // `has_*`: a record may leave out `exit_code`/`signal` or set them to null, and reads back as it was.
    yield* sql`CREATE TABLE ${sql(tables.restarts)} (
      id ${id},
      agent_name TEXT NOT NULL,
      timestamp_ms ${real} NOT NULL,
      reason TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      delay_ms ${real} NOT NULL,
      has_exit_code SMALLINT NOT NULL,
      exit_code INTEGER,
      has_signal SMALLINT NOT NULL,
      signal TEXT
    )`
    yield* sql`CREATE INDEX ${index("restarts_agent")} ON ${sql(tables.restarts)} (agent_name, timestamp_ms, id)`
    yield* sql`CREATE INDEX ${index("restarts_time")} ON ${sql(tables.restarts)} (timestamp_ms, id)`
  })

const migrate = (tables: Tables) =>
  Migrator.make({})({
    loader: Migrator.fromRecord({ "1_create_tables": createTables(tables) }),
    table: tables.migrations
  })

// ---- rows ----

interface StateRow {
  readonly agent_name: string
  readonly state: string
  readonly pid: number | string | null
  readonly restart_count: number | string
  readonly updated_at: number | string
}

interface MetricRow {
  readonly agent_name: string
  readonly event: string
  readonly timestamp_ms: number | string
  readonly fields: string
}

interface RestartRow {
  readonly agent_name: string
  readonly timestamp_ms: number | string
  readonly reason: string
  readonly attempt: number | string
  readonly delay_ms: number | string
  readonly has_exit_code: number | string
  readonly exit_code: number | string | null
  readonly has_signal: number | string
  readonly signal: string | null
}

const fromStateRow = (row: StateRow): Store.StateRecord => ({
  agent_name: row.agent_name,
  state: row.state,
  ...(row.pid !== null ? { pid: Number(row.pid) } : {}),
  restart_count: Number(row.restart_count),
  updated_at: Number(row.updated_at)
})

const parseFields = (text: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : {}
  } catch {
    // Written by this module, always an object: a row edited by hand keeps its core fields at least.
    return {}
  }
}

const fromMetricRow = (row: MetricRow): Store.MetricEvent => ({
  event: row.event,
  agent_name: row.agent_name,
  ...parseFields(row.fields),
  timestamp: Number(row.timestamp_ms)
})

const fromRestartRow = (row: RestartRow): Store.RestartRecord => ({
  agent_name: row.agent_name,
  timestamp: Number(row.timestamp_ms),
  reason: row.reason,
  attempt: Number(row.attempt),
  delay_ms: Number(row.delay_ms),
  ...(Number(row.has_exit_code) === 1 ? { exit_code: row.exit_code === null ? null : Number(row.exit_code) } : {}),
  ...(Number(row.has_signal) === 1 ? { signal: row.signal } : {})
})

const describe = (cause: Cause.Cause<unknown>): string => {
  const reason = (error: unknown): string => {
    if (error instanceof Error) {
      const inner = "cause" in error && error.cause !== undefined ? reason(error.cause) : ""
      return inner === "" || inner === error.message ? error.message : `${error.message}: ${inner}`
    }
    return String(error)
  }
  return Option.match(Cause.failureOption(cause), {
    onSome: reason,
    onNone: () =>
      Option.match(Cause.dieOption(cause), {
        onSome: reason,
        onNone: () => Cause.pretty(cause)
      })
  })
}

// ---- the store ----

/**
 * A store over a client acquired on first use. `acquire` runs in a scope of its own, closed if it fails, if the
 * migrations fail, or when the store's scope closes; a failed acquisition is tried again on a later operation
 * (after `retryAfter`), so the store never needs the database to be up when it is made.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeLazy = <E, R>(
  acquire: Effect.Effect<SqlClient.SqlClient, E, Scope.Scope | R>,
  options?: Options
): Effect.Effect<Store.Store["Type"], ConfigError, Scope.Scope | R> =>
  Effect.gen(function*() {
    const settings = yield* decodeSettings(options)
    const tables = tablesOf(settings.tablePrefix)
    const retryAfter = Duration.toMillis(settings.retryAfter)
    const maxAge = Duration.toMillis(settings.maxMetricAge)
    const context = yield* Effect.context<R>()
    const outer = yield* Effect.scope
    const connecting = yield* Effect.makeSemaphore(1)

    let client: SqlClient.SqlClient | undefined
    // While `Clock` is before `blockedUntil`, operations fail at once with `lastFailure`.
    let blockedUntil = -Infinity
    let lastFailure = ""
    let writesSincePrune = 0

    const unavailable = (operation: string) =>
      new StoreError({ operation, reason: "failure", detail: `database unavailable (${lastFailure}); retrying soon` })

    const trip = (operation: string, cause: Cause.Cause<unknown>) =>
      Effect.gen(function*() {
        lastFailure = describe(cause)
        blockedUntil = (yield* Clock.currentTimeMillis) + retryAfter
        return new StoreError({ operation, reason: "failure", detail: lastFailure })
      })

    const prune = (sql: SqlClient.SqlClient) =>
      Effect.gen(function*() {
        writesSincePrune = 0
        const now = yield* Clock.currentTimeMillis
        yield* sql`DELETE FROM ${sql(tables.metrics)} WHERE timestamp_ms < ${now - maxAge}`
        // The id of the newest row past the bound (none when there are fewer rows): it and older ones go.
        yield* sql`DELETE FROM ${sql(tables.metrics)} WHERE id <= (
          SELECT id FROM ${sql(tables.metrics)} ORDER BY id DESC LIMIT 1 OFFSET ${settings.maxMetrics}
        )`
        yield* sql`DELETE FROM ${sql(tables.restarts)} WHERE id <= (
          SELECT id FROM ${sql(tables.restarts)} ORDER BY id DESC LIMIT 1 OFFSET ${settings.maxRestarts}
        )`
      })

    const warnPruneFailed = (cause: Cause.Cause<unknown>) =>
      Effect.logWarning(`Store: pruning old rows failed, trying again later: ${describe(cause)}`)

    const connect = (operation: string): Effect.Effect<SqlClient.SqlClient, StoreError> =>
      // Connected: no semaphore on the way of every operation (each release of Effect's wakes all its waiters).
      Effect.suspend(() => client !== undefined ? Effect.succeed(client) : connectOnce(operation))

    const connectOnce = (operation: string): Effect.Effect<SqlClient.SqlClient, StoreError> =>
      connecting.withPermits(1)(Effect.suspend(() => {
        if (client !== undefined) return Effect.succeed(client)
        return Effect.gen(function*() {
          if ((yield* Clock.currentTimeMillis) < blockedUntil) return yield* Effect.fail(unavailable(operation))
          const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
          const exit = yield* acquire.pipe(
            Effect.tap((sql) =>
              migrate(tables).pipe(
                // A read-only database can still answer reads: failing to prune it must not fail the connection.
                Effect.zipRight(Effect.catchAllCause(prune(sql), warnPruneFailed)),
                Effect.provideService(SqlClient.SqlClient, sql)
              )
            ),
            Scope.extend(scope),
            Effect.provide(context),
            // Interrupted (by `resilient`'s timeout, say): nothing of this attempt may stay open.
            Effect.onInterrupt(() => Scope.close(scope, Exit.void)),
            Effect.exit
          )
          if (Exit.isSuccess(exit)) {
            client = exit.value
            return exit.value
          }
          yield* Scope.close(scope, exit)
          return yield* Effect.flatMap(trip(operation, exit.cause), Effect.fail)
        })
      }))

    // The latest state of each agent whose save failed, written as soon as the database answers again: so the
    // last state survives an outage even when the agent makes no transition after it.
    const unsaved = new Map<string, Store.StateRecord>()

    const upsertState = (sql: SqlClient.SqlClient, record: Store.StateRecord, onlyIfNewer: boolean) =>
      sql`INSERT INTO ${sql(tables.states)} (agent_name, state, pid, restart_count, updated_at)
        VALUES (${record.agent_name}, ${record.state}, ${record.pid ?? null}, ${record.restart_count},
          ${record.updated_at})
        ON CONFLICT (agent_name) DO UPDATE SET state = excluded.state, pid = excluded.pid,
          restart_count = excluded.restart_count, updated_at = excluded.updated_at
        ${onlyIfNewer ? sql`WHERE ${sql(tables.states)}.updated_at < excluded.updated_at` : sql.literal("")}`

    /**
     * Writes the states left over from an outage, unless a newer one got there first. Stops at the first failure
     * (keeping the rest) and holds the store off as any failure does: a locked SQLite file would otherwise make
     * every successful read wait for it again.
     */
    const catchUp = (sql: SqlClient.SqlClient) =>
      Effect.forEach(
        [...unsaved.values()],
        (record) =>
          upsertState(sql, record, true).pipe(
            Effect.zipRight(Effect.sync(() => {
              if (unsaved.get(record.agent_name) === record) unsaved.delete(record.agent_name)
            }))
          ),
        { discard: true }
      ).pipe(Effect.catchAllCause((cause) => Effect.asVoid(trip("saveState", cause))))

    /** Runs a query; any failure or defect becomes a `StoreError` and holds the store off for `retryAfter`. */
    const use = <A>(
      operation: string,
      run: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>
    ): Effect.Effect<A, StoreError> =>
      Effect.gen(function*() {
        if ((yield* Clock.currentTimeMillis) < blockedUntil) return yield* Effect.fail(unavailable(operation))
        const sql = yield* connect(operation)
        const result = yield* Effect.catchAllCause(
          Effect.suspend(() => run(sql)),
          (cause) => Effect.flatMap(trip(operation, cause), Effect.fail)
        )
        if (unsaved.size > 0) yield* catchUp(sql)
        return result
      })

    /** After a write to a log: prune once every `pruneEvery` of them. A failed prune fails only itself. */
    const counted = (sql: SqlClient.SqlClient) =>
      Effect.suspend(() =>
        ++writesSincePrune < settings.pruneEvery ? Effect.void : Effect.catchAllCause(prune(sql), warnPruneFailed)
      )

    const encodeFields = (operation: string, event: Store.MetricEvent) =>
      Effect.try({
        try: () => {
          const { agent_name: _a, event: _e, timestamp: _t, ...fields } = event
          return JSON.stringify(fields)
        },
        catch: (error) =>
          new StoreError({ operation, reason: "failure", detail: `the event's fields are not JSON: ${String(error)}` })
      })

    return Store.Store.of({
      saveState: (record) =>
        Effect.suspend(() => {
          // This record supersedes any left over from an outage; if it fails too, it is the one to write later.
          unsaved.delete(record.agent_name)
          return use("saveState", (sql) => upsertState(sql, record, false)).pipe(
            Effect.onExit((exit) =>
              Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => unsaved.set(record.agent_name, record))
            )
          )
        }),
      saveMetric: (event) =>
        Effect.flatMap(encodeFields("saveMetric", event), (fields) =>
          use("saveMetric", (sql) =>
            sql`INSERT INTO ${sql(tables.metrics)} (agent_name, event, timestamp_ms, fields)
              VALUES (${event.agent_name}, ${event.event}, ${event.timestamp}, ${fields})`.pipe(
              Effect.zipRight(counted(sql))
            ))),
      recordRestart: (record) =>
        use("recordRestart", (sql) =>
          sql`INSERT INTO ${sql(tables.restarts)}
              (agent_name, timestamp_ms, reason, attempt, delay_ms, has_exit_code, exit_code, has_signal, signal)
            VALUES (${record.agent_name}, ${record.timestamp}, ${record.reason}, ${record.attempt},
              ${record.delay_ms}, ${record.exit_code !== undefined ? 1 : 0}, ${record.exit_code ?? null},
              ${record.signal !== undefined ? 1 : 0}, ${record.signal ?? null})`.pipe(
            Effect.zipRight(counted(sql))
          )),
      getState: (agent) =>
        use("getState", (sql) =>
          sql<StateRow>`SELECT agent_name, state, pid, restart_count, updated_at FROM ${sql(tables.states)}
            WHERE agent_name = ${agent}`.pipe(
            Effect.map((rows) =>
              Option.map(Option.fromNullable(rows[0]), fromStateRow)
            )
          )),
      listMetrics: (query) =>
        use("listMetrics", (sql) => {
          const limit = query?.limit === undefined || Number.isNaN(query.limit)
            ? Store.defaultMetricLimit
            : Math.max(0, Math.floor(query.limit))
          const where: Array<Fragment> = []
          if (query?.agent !== undefined) {
            where.push(sql`agent_name = ${query.agent}`)
          }
          if (query?.event !== undefined) {
            where.push(sql`event = ${query.event}`)
          }
          if (query?.since !== undefined) {
            where.push(sql`timestamp_ms >= ${query.since}`)
          }
          return sql<MetricRow>`SELECT agent_name, event, timestamp_ms, fields FROM ${sql(tables.metrics)}
            WHERE ${sql.and(where)} ORDER BY timestamp_ms DESC, id DESC LIMIT ${limit}`.pipe(
            Effect.map((rows) =>
              rows.map(fromMetricRow)
            )
          )
        }),
      restartHistory: (agent) =>
        use("restartHistory", (sql) =>
          sql<RestartRow>`SELECT agent_name, timestamp_ms, reason, attempt, delay_ms, has_exit_code, exit_code,
              has_signal, signal
            FROM ${sql(tables.restarts)}
            WHERE ${sql.and(agent === undefined ? [] : [sql`agent_name = ${agent}`])}
            ORDER BY timestamp_ms DESC, id DESC`.pipe(
            Effect.map((rows) =>
              rows.map(fromRestartRow)
            )
          ))
    })
  })

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

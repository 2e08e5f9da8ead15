/**
 * The options of the SQL stores, as users write them, and their decoding into settings. The core (`Store.ts`,
 * whose `layerSqlite`/`layerPg` take these options) and the backends import this module; the backends re-export
 * the option types under their public names.
 *
 * @internal
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { ConfigError } from "../../Errors.js"
import type * as Text from "../../internal/durationText.js"
import {
  allKeysOf,
  configError,
  decodeOptions,
  DurationInput,
  type Problem,
  show,
  unknownKeys
} from "../../internal/schema.js"
import { DEFAULT_MAX_TASK_AGE_DAYS, DEFAULT_MAX_TASKS } from "./taskBounds.js"

/**
 * How much history the store keeps. Pruning runs when the store connects and then after every `pruneEvery`
 * writes of metrics, restart records and task records, so between two prunes a table holds at most `pruneEvery`
 * rows more.
 */
export interface RetentionOptions {
  /** Metrics whose `timestamp` is older than this are pruned. 7 days by default. */
  readonly maxMetricAge?: Text.DurationInput | undefined
  /** At most this many metrics are kept, the latest written. 100 000 by default. */
  readonly maxMetrics?: number | undefined
  /** At most this many restart records are kept, the latest written. 10 000 by default. */
  readonly maxRestarts?: number | undefined
  /** Task records whose `updated_at` (their outcome) is older than this are pruned. 7 days by default. */
  readonly maxTaskAge?: Text.DurationInput | undefined
  /** At most this many task records are kept, the latest written. 10 000 by default. */
  readonly maxTasks?: number | undefined
  /** Prune after this many writes (metrics, restart records and task records). 1 000 by default. */
  readonly pruneEvery?: number | undefined
}

/** Options of the SQL store (`Store/Sql.ts`'s `Options`). */
export interface SqlOptions extends RetentionOptions {
  /**
   * Starts the name of every table and index, so several stores (or test runs) can share one database:
   * lower-case letters, digits and `_`. `"agent_supervisor_"` by default.
   */
  readonly tablePrefix?: string | undefined
  /** After a failure, how long the store answers at once with an error before it tries again. 1 second by default. */
  readonly retryAfter?: Text.DurationInput | undefined
}

/** Options of the SQLite store: the file, and the SQL store's table prefix and retention. */
export interface SqliteOptions extends SqlOptions {
  /** The database file, created when missing (with its directories), or `":memory:"`. */
  readonly filename: string
  /**
   * How long a statement waits for a lock another connection holds before it fails. `better-sqlite3` is
   * synchronous, so the wait blocks the event loop: keep it short. 50 millis by default.
   */
  readonly busyTimeout?: Text.DurationInput | undefined
}

/**
 * Options of the PostgreSQL store: where the server is (`url`, or `host`, `port`, `database`, `username`,
 * `password`...), the pool, and the SQL store's table prefix and retention.
 */
export interface PgOptions extends
  SqlOptions,
  // Name transforms would rename the store's own columns: not offered.
  Omit<PgClient.PgClientConfig, "transformResultNames" | "transformQueryNames" | "transformJson" | "types">
{}

const count = (what: string) =>
  Schema.Number.pipe(
    Schema.int({ message: () => `must be a whole number of ${what}` }),
    Schema.greaterThanOrEqualTo(0, { message: () => `must be 0 or more ${what}` })
  )

/** {@link SqlOptions} decoded, with their defaults. */
export const SqlSettings = Schema.Struct({
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
  maxTaskAge: Schema.optionalWith(DurationInput, {
    default: () => Duration.days(DEFAULT_MAX_TASK_AGE_DAYS),
    exact: true
  }),
  maxTasks: Schema.optionalWith(count("task records"), { default: () => DEFAULT_MAX_TASKS, exact: true }),
  pruneEvery: Schema.optionalWith(
    count("writes").pipe(Schema.greaterThanOrEqualTo(1, { message: () => "must be at least 1 write" })),
    { default: () => 1_000, exact: true }
  )
})

/** What the SQL store runs with. */
export type SqlSettings = typeof SqlSettings.Type

/** The keys of `SqlOptions` itself, so that backends can pass the rest of an options object on to their client. */
const sqlOptionKeys: ReadonlyArray<string> = Object.keys(SqlSettings.fields)

/** Splits an options object into the SQL store's own options and the rest (the client's); drops `undefined`s. */
export const splitOptions = <A extends SqlOptions>(options: A): readonly [SqlOptions, Omit<A, keyof SqlOptions>] => {
  const own: Record<string, unknown> = {}
  const rest: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue
    if (sqlOptionKeys.includes(key)) own[key] = value
    else rest[key] = value
  }
  return [own as SqlOptions, rest as Omit<A, keyof SqlOptions>]
}

/** Where store options are, for their `ConfigError`. */
const storeOptions = { whole: "(store options)", undefinedIsAbsent: true } as const

/** The problems of a decode that failed, none when it did not. */
const problemsOf = (decoded: Either.Either<unknown, ConfigError>): ReadonlyArray<Problem> =>
  Either.isLeft(decoded) ? decoded.left.problems : []

/**
 * Decodes the SQL store's options (`Store/Sql.ts`): any other key is a problem, with the option meant when one is
 * close (the schema's own check, as for every options object the library decodes).
 */
export const decodeSql = (options: SqlOptions | undefined): Either.Either<SqlSettings, ConfigError> =>
  decodeOptions(SqlSettings, options ?? {}, storeOptions)

/** What the SQLite store runs with. */
export interface SqliteSettings {
  readonly sql: SqlSettings
  readonly filename: string
  /** Whole milliseconds, at most a minute. */
  readonly busyTimeout: number
}

const SqliteOwn = Schema.Struct({
  // Checked on its own (`filenameProblem`); here so that an unknown key is told it among the known ones
  filename: Schema.optional(Schema.Unknown),
  // First: a bad `busyTimeout` is the one reported when there are several problems, as it always was.
  busyTimeout: Schema.optionalWith(DurationInput, { default: () => Duration.millis(50), exact: true }),
  ...SqlSettings.fields
})

/**
 * What is wrong with a SQLite `filename`, if anything: SQLite reads an empty name as a private temporary database,
 * deleted when it closes, so a store given one would keep nothing, without a word.
 */
const filenameProblem = (filename: unknown): Problem | undefined =>
  typeof filename === "string" && filename !== "" ? undefined : {
    field: "filename",
    rule: `must be the database file's path, or ":memory:" for one kept in memory (an empty name is SQLite's ` +
      "temporary database, deleted when the store closes: nothing would be kept)",
    value: show(filename) ?? "undefined"
  }

/**
 * Decodes the SQLite store's options: `filename` (given to the client as it is, but never empty), `busyTimeout` and
 * the SQL store's own; any other key is a problem (with the option meant, when one is close); every problem in one
 * `ConfigError`.
 */
export const decodeSqlite = (options: SqliteOptions): Either.Either<SqliteSettings, ConfigError> => {
  const decoded = decodeOptions(SqliteOwn, options, storeOptions)
  const problem = filenameProblem(options.filename)
  if (problem !== undefined) return Either.left(configError([problem, ...problemsOf(decoded)]))
  return Either.map(decoded, ({ busyTimeout, filename: _, ...sql }) => ({
    sql,
    filename: options.filename,
    // SQLite takes whole milliseconds in a 32-bit int; a minute is already far too long to block the event loop.
    busyTimeout: Math.min(60_000, Math.floor(Duration.toMillis(busyTimeout)))
  }))
}

/** The options `PgClient.make` takes from a store's options: the rest of them, less the SQL store's own. */
export type PgClientOptions = Omit<PgOptions, keyof SqlOptions>

/** What the PostgreSQL store runs with. */
export interface PgSettings {
  readonly sql: SqlSettings
  readonly client: PgClientOptions
  /** At least 1: the pool's size, and how many operations run at once. */
  readonly maxConnections: number
}

/** `pg`'s own default pool size. */
const defaultMaxConnections = 10

/**
 * Every option `PgClient.make` takes from a store's options: a key it gains is a type error here until it is
 * listed, so a new client option is never refused as unknown.
 */
const PG_CLIENT_KEYS = allKeysOf<PgClientOptions>()([
  "url",
  "host",
  "port",
  "path",
  "ssl",
  "database",
  "username",
  "password",
  "stream",
  "idleTimeout",
  "connectTimeout",
  "maxConnections",
  "minConnections",
  "connectionTTL",
  "applicationName",
  "spanAttributes"
])

/** The PostgreSQL store's options: the SQL store's and the client's. */
const PG_KEYS: ReadonlyArray<string> = [...sqlOptionKeys, ...PG_CLIENT_KEYS]

/** Keys of `PgClient.make`'s options that the store does not take, and why. */
const PG_NOT_OFFERED: Readonly<Record<string, string>> = Object.fromEntries(
  ["transformResultNames", "transformQueryNames", "transformJson", "types"].map((key) => [
    key,
    "is not an option of the store: it would change how the store's own columns are named or read"
  ])
)

/**
 * Decodes the PostgreSQL store's own options; the client's are passed on as they are. A key that is neither's is a
 * problem (with the option meant, when one is close), in the one `ConfigError` with the others.
 */
export const decodePg = (options: PgOptions): Either.Either<PgSettings, ConfigError> => {
  const unknown = unknownKeys(options, PG_KEYS, undefined, PG_NOT_OFFERED)
  const decoded = decodeSql(splitOptions(options)[0])
  const [first, ...rest] = [...problemsOf(decoded), ...unknown]
  if (first !== undefined) return Either.left(configError([first, ...rest]))
  return Either.map(decoded, (sql) => {
    const client = splitOptions(options)[1]
    // `pg` takes any falsy `max` for its default.
    const maxConnections = client.maxConnections !== undefined && client.maxConnections >= 1
      ? Math.floor(client.maxConnections)
      : defaultMaxConnections
    return { sql, client, maxConnections }
  })
}

/**
 * The `store` section of a tree file: the in-memory store, a SQLite file, or a PostgreSQL server whose URL comes
 * from the environment. The SQL stores' own options are the library's schema (`Store/internal/options.ts`).
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import { SqlSettings } from "../../Store/internal/options.js"
import * as Edge from "../schema.js"

/** A message that replaces the schema's own for the whole value. */
export const says = (message: string) => ({ message: () => ({ message, override: true }) })

/** A required key, with the text editors show for it (on the key: a schema's description would change messages). */
export const required = <S extends Schema.Schema.Any>(schema: S, description: string) =>
  Schema.propertySignature(schema).annotations({ description })

/** An optional key, as files write them (absent, never `null`), with the text editors show for it. */
export const optional = <S extends Schema.Schema.All>(schema: S, description: string) =>
  Schema.optionalWith(schema, { exact: true }).annotations({ description })

const count = (what: string) =>
  Schema.Number.pipe(
    Schema.int({ message: () => `must be a whole number of ${what}` }),
    Schema.greaterThanOrEqualTo(0, { message: () => `must be 0 or more ${what}` })
  )

const MemoryStore = Schema.Struct({
  type: Schema.Literal("memory"),
  maxMetrics: optional(count("metrics"), "Metrics kept; past it the oldest are dropped. 10000 by default."),
  maxRestarts: optional(count("restart records"), "Restart records kept. 1000 by default."),
  maxTasks: optional(
    count("task records"),
    "Task records kept; past it the least recently written go. 10000 by default."
  ),
  maxAgents: optional(
    count("agents"),
    "Of how many agents the last state and checkpoint are kept; past it those written least recently go. 10000 by " +
      "default."
  )
}).annotations({ title: "In-memory store", description: "Kept for the life of the process." })

const SqliteStore = Schema.Struct({
  type: Schema.Literal("sqlite"),
  filename: required(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a file name" })),
    "The database file, relative to this file's directory; created with its directories when missing."
  ),
  busyTimeout: optional(Edge.DurationInput, "How long a statement waits for a lock. 50 millis by default."),
  ...SqlSettings.fields
}).annotations({ title: "SQLite store", description: "Needs @effect/sql-sqlite-node." })

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** Exactly one of `url` and `urlEnv`. */
export const oneUrl = (store: { readonly url?: string; readonly urlEnv?: string }) =>
  (store.url === undefined) !== (store.urlEnv === undefined) || {
    path: [store.url === undefined ? "url" : "urlEnv"],
    message: store.url === undefined
      ? `is missing: give the server's URL as "url" (say "\${DATABASE_URL}") or the name of a variable as "urlEnv"`
      : `give "url" or "urlEnv", not both`
  }

/** A PostgreSQL server's URL. No pattern for editors: the URL is usually a reference, `${DATABASE_URL}`. */
export const PostgresUrl = Schema.String.pipe(
  Schema.filter((url) => /^postgres(ql)?:\/\//.test(url), {
    message: () => "must be a PostgreSQL URL such as postgres://user:password@host:5432/database"
  })
)

/** The name of the environment variable that holds a server's URL. */
export const PostgresUrlEnv = Schema.String.pipe(
  Schema.pattern(ENV_NAME, { message: () => "must be the name of an environment variable (letters, digits, _)" })
)

/**
 * How to reach a PostgreSQL server, in the `store` section and the `cluster` section's `database`: its `type`, `url`
 * or `urlEnv` (exactly one: {@link oneUrl}) and `maxConnections`.
 */
export const PostgresConnection = Schema.Struct({
  type: Schema.Literal("postgres"),
  url: optional(PostgresUrl, `The server's URL (postgres://...), usually from the environment: "\${DATABASE_URL}".`),
  urlEnv: optional(
    PostgresUrlEnv,
    "The name of the environment variable that holds the server's URL (instead of url)."
  ),
  maxConnections: optional(
    Schema.Int.pipe(Schema.greaterThanOrEqualTo(1, { message: () => "must be a whole number of 1 or more" })),
    "The pool's size: how many operations run at once. 10 by default."
  )
})

const PostgresStore = Schema.Struct({
  ...PostgresConnection.fields,
  ...SqlSettings.fields
}).pipe(Schema.filter(oneUrl)).annotations({ title: "PostgreSQL store", description: "Needs @effect/sql-pg." })

/** The `store` section. */
export const StoreSection = Schema.Union(MemoryStore, SqliteStore, PostgresStore).annotations({
  message: () => `must be a mapping with a type ("memory", "sqlite" or "postgres") and its options`,
  description: `Where states, metrics and restart history are kept: "memory" (the default), "sqlite" or "postgres".`
})

/** The `store` section as a file holds it. */
export type StoreInput = typeof StoreSection.Encoded

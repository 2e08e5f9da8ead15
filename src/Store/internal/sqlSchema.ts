/**
 * The SQL store's tables and their migrations, run by `@effect/sql`'s migrator on first use.
 *
 * @internal
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

/** The names of one store's tables, each starting with its `tablePrefix`. */
export interface Tables {
  readonly states: string
  readonly metrics: string
  readonly restarts: string
  readonly children: string
  readonly checkpoints: string
  readonly tasks: string
  readonly migrations: string
  readonly prefix: string
}

/** The tables of the store whose `tablePrefix` is `prefix`. */
export const tablesOf = (prefix: string): Tables => ({
  states: `${prefix}states`,
  metrics: `${prefix}metrics`,
  restarts: `${prefix}restarts`,
  children: `${prefix}children`,
  checkpoints: `${prefix}checkpoints`,
  tasks: `${prefix}tasks`,
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

/**
 * The second migration: the child records of trees that restore. `id` keeps the order in which children were first
 * saved (an upsert keeps it); `spec` is NULL for a static child, whose record only says that it is parked.
 */
const createChildren = (tables: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { id, real } = sql.onDialectOrElse({
      pg: () => ({ id: sql.literal("BIGSERIAL PRIMARY KEY"), real: sql.literal("DOUBLE PRECISION") }),
      orElse: () => ({ id: sql.literal("INTEGER PRIMARY KEY"), real: sql.literal("REAL") })
    })
    yield* sql`CREATE TABLE ${sql(tables.children)} (
      id ${id},
      supervisor TEXT NOT NULL,
      child_id TEXT NOT NULL,
      spec TEXT,
      parked SMALLINT NOT NULL,
      updated_at ${real} NOT NULL,
      UNIQUE (supervisor, child_id)
    )`
  })

/** The third migration: each agent's latest checkpoint (protocol 1.1), its data as JSON text. */
const createCheckpoints = (tables: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const real = sql.onDialectOrElse({
      pg: () => sql.literal("DOUBLE PRECISION"),
      orElse: () => sql.literal("REAL")
    })
    yield* sql`CREATE TABLE ${sql(tables.checkpoints)} (
      agent_name TEXT PRIMARY KEY NOT NULL,
      data TEXT NOT NULL,
      updated_at ${real} NOT NULL
    )`
  })

/**
 * The fourth migration: the outcomes of the tasks of topics, one row per task, its payload, result and errors as
 * JSON text (`result` NULL: none). `seq` is the write order, renewed by every write of the row (an upsert keeps a
 * rowid, so it cannot be the key): the tie-break of the list and the order in which `maxTasks` drops rows.
 */
const createTasks = (tables: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { real, seq } = sql.onDialectOrElse({
      pg: () => ({ real: sql.literal("DOUBLE PRECISION"), seq: sql.literal("BIGSERIAL") }),
      orElse: () => ({ real: sql.literal("REAL"), seq: sql.literal("INTEGER") })
    })
    const index = (name: string) => sql(`${tables.prefix}${name}`)
    yield* sql`CREATE TABLE ${sql(tables.tasks)} (
      task_id TEXT PRIMARY KEY NOT NULL,
      topic TEXT NOT NULL,
      status TEXT NOT NULL,
      payload TEXT NOT NULL,
      result TEXT,
      attempts INTEGER NOT NULL,
      errors TEXT NOT NULL,
      created_at ${real} NOT NULL,
      updated_at ${real} NOT NULL,
      seq ${seq} NOT NULL
    )`
    // One index per filter of `listTasks`, each ending in its sort order; `seq` alone for pruning by count.
    yield* sql`CREATE INDEX ${index("tasks_status")} ON ${sql(tables.tasks)} (status, updated_at, seq)`
    yield* sql`CREATE INDEX ${index("tasks_topic")} ON ${sql(tables.tasks)} (topic, updated_at, seq)`
    yield* sql`CREATE INDEX ${index("tasks_time")} ON ${sql(tables.tasks)} (updated_at, seq)`
    yield* sql`CREATE INDEX ${index("tasks_seq")} ON ${sql(tables.tasks)} (seq)`
  })

/**
 * The fifth migration: whether the process of a restart was left behind after SIGKILL (1; NULL otherwise, and in the
 * rows written before it).
 */
const addRestartsLeftBehind = (tables: Tables) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`ALTER TABLE ${sql(tables.restarts)} ADD COLUMN left_behind SMALLINT`
  })

/** Brings `tables` up to date, recording what ran in `<prefix>migrations`. Never edit a migration once released. */
export const migrate = (tables: Tables) =>
  Migrator.make({})({
    loader: Migrator.fromRecord({
      "1_create_tables": createTables(tables),
      "2_create_children": createChildren(tables),
      "3_create_checkpoints": createCheckpoints(tables),
      "4_create_tasks": createTasks(tables),
      "5_restarts_left_behind": addRestartsLeftBehind(tables)
    }),
    table: tables.migrations
  })

/**
 * The SQL store's statements: a record in, a row out, and the conversions between the two.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { Fragment } from "@effect/sql/Statement"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { StoreError } from "../../Errors.js"
import { messageOf } from "../../internal/standalone/messageOf.js"
import * as StrictJson from "../../internal/standalone/strictJson.js"
import * as Store from "../Store.js"
import type { Tables } from "./sqlSchema.js"

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
  /** 1 for a process left behind; NULL otherwise (and in the rows written before the column). */
  readonly left_behind: number | string | null
}

interface CheckpointRow {
  readonly agent_name: string
  readonly data: string
  readonly updated_at: number | string
}

interface TaskRow {
  readonly task_id: string
  readonly topic: string
  readonly status: string
  readonly payload: string
  readonly result: string | null
  readonly attempts: number | string
  readonly errors: string
  readonly created_at: number | string
  readonly updated_at: number | string
}

interface ChildRow {
  readonly supervisor: string
  readonly child_id: string
  readonly spec: string | null
  readonly parked: number | string | boolean
  readonly updated_at: number | string
}

const fromChildRow = (row: ChildRow): Store.ChildRecord => ({
  supervisor: row.supervisor,
  child_id: row.child_id,
  ...(row.spec !== null ? { spec: row.spec } : {}),
  parked: Number(row.parked) === 1,
  updated_at: Number(row.updated_at)
})

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
  ...(Number(row.has_signal) === 1 ? { signal: row.signal } : {}),
  ...(Number(row.left_behind) === 1 ? { left_behind: true as const } : {})
})

/** An event's fields other than `event`, `agent_name` and `timestamp`, as the JSON text its row keeps. */
export const encodeFields = (operation: string, event: Store.MetricEvent): Effect.Effect<string, StoreError> =>
  Effect.try({
    try: () => {
      const { agent_name: _a, event: _e, timestamp: _t, ...fields } = event
      return JSON.stringify(fields)
    },
    catch: (error) =>
      new StoreError({ operation, reason: "unencodable", detail: `the event's fields are not JSON: ${String(error)}` })
  })

/** Writes the state of `record`'s agent; with `onlyIfNewer`, only over an older one. */
export const upsertState = (
  sql: SqlClient.SqlClient,
  tables: Tables,
  record: Store.StateRecord,
  onlyIfNewer: boolean
) =>
  sql`INSERT INTO ${sql(tables.states)} (agent_name, state, pid, restart_count, updated_at)
    VALUES (${record.agent_name}, ${record.state}, ${record.pid ?? null}, ${record.restart_count},
      ${record.updated_at})
    ON CONFLICT (agent_name) DO UPDATE SET state = excluded.state, pid = excluded.pid,
      restart_count = excluded.restart_count, updated_at = excluded.updated_at
    ${onlyIfNewer ? sql`WHERE ${sql(tables.states)}.updated_at < excluded.updated_at` : sql.literal("")}`

/** Appends a metric, its other fields already encoded by {@link encodeFields}. */
export const insertMetric = (sql: SqlClient.SqlClient, tables: Tables, event: Store.MetricEvent, fields: string) =>
  sql`INSERT INTO ${sql(tables.metrics)} (agent_name, event, timestamp_ms, fields)
    VALUES (${event.agent_name}, ${event.event}, ${event.timestamp}, ${fields})`

/** Appends metrics in one statement, their other fields already encoded by {@link encodeFields}. */
export const insertMetrics = (
  sql: SqlClient.SqlClient,
  tables: Tables,
  events: ReadonlyArray<Store.MetricEvent>,
  fields: ReadonlyArray<string>
) =>
  sql`INSERT INTO ${sql(tables.metrics)} ${
    sql.insert(events.map((event, i) => ({
      agent_name: event.agent_name,
      event: event.event,
      timestamp_ms: event.timestamp,
      fields: fields[i]
    })))
  }`

/** Appends a restart record. */
export const insertRestart = (sql: SqlClient.SqlClient, tables: Tables, record: Store.RestartRecord) =>
  sql`INSERT INTO ${sql(tables.restarts)}
      (agent_name, timestamp_ms, reason, attempt, delay_ms, has_exit_code, exit_code, has_signal, signal, left_behind)
    VALUES (${record.agent_name}, ${record.timestamp}, ${record.reason}, ${record.attempt},
      ${record.delay_ms}, ${record.exit_code !== undefined ? 1 : 0}, ${record.exit_code ?? null},
      ${record.signal !== undefined ? 1 : 0}, ${record.signal ?? null}, ${record.left_behind === true ? 1 : null})`

/** The state of `agent`, if one was written. */
export const selectState = (sql: SqlClient.SqlClient, tables: Tables, agent: string) =>
  sql<StateRow>`SELECT agent_name, state, pid, restart_count, updated_at FROM ${sql(tables.states)}
    WHERE agent_name = ${agent}`.pipe(
    Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), fromStateRow))
  )

/** A query's `limit` as given (absent or `NaN`: `fallback`), made a whole number of 0 or more. */
const limitOf = (limit: number | undefined, fallback: number): number =>
  limit === undefined || Number.isNaN(limit) ? fallback : Math.max(0, Math.floor(limit))

/** The metrics `query` selects, newest first. */
export const selectMetrics = (sql: SqlClient.SqlClient, tables: Tables, query: Store.MetricQuery | undefined) => {
  const limit = limitOf(query?.limit, Store.defaultMetricLimit)
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
    Effect.map((rows) => rows.map(fromMetricRow))
  )
}

/** The restart records of `agent` (of every agent when absent), newest first. */
export const selectRestarts = (sql: SqlClient.SqlClient, tables: Tables, agent: string | undefined) =>
  sql<RestartRow>`SELECT agent_name, timestamp_ms, reason, attempt, delay_ms, has_exit_code, exit_code,
      has_signal, signal, left_behind
    FROM ${sql(tables.restarts)}
    WHERE ${sql.and(agent === undefined ? [] : [sql`agent_name = ${agent}`])}
    ORDER BY timestamp_ms DESC, id DESC`.pipe(
    Effect.map((rows) => rows.map(fromRestartRow))
  )

/** Writes a child's record; a record replaced keeps its `id`, so its place in the list. */
export const upsertChild = (sql: SqlClient.SqlClient, tables: Tables, record: Store.ChildRecord) =>
  sql`INSERT INTO ${sql(tables.children)} (supervisor, child_id, spec, parked, updated_at)
    VALUES (${record.supervisor}, ${record.child_id}, ${record.spec ?? null}, ${record.parked ? 1 : 0},
      ${record.updated_at})
    ON CONFLICT (supervisor, child_id) DO UPDATE SET spec = excluded.spec, parked = excluded.parked,
      updated_at = excluded.updated_at`

/**
 * Deletes a child's record and those of the supervisors at and below its path. The prefix is compared with `substr`
 * over its length as SQL counts it (`LIKE` would need escaping, and is case-blind in SQLite).
 */
export const deleteChild = (sql: SqlClient.SqlClient, tables: Tables, supervisor: string, childId: string) => {
  const path = `${supervisor}/${childId}`
  const below = `${path}/`
  return sql`DELETE FROM ${sql(tables.children)}
    WHERE (supervisor = ${supervisor} AND child_id = ${childId}) OR supervisor = ${path}
      OR substr(supervisor, 1, length(CAST(${below} AS TEXT))) = ${below}`
}

/** The child records of `supervisor` (of every supervisor when absent), in the order first saved. */
export const selectChildren = (sql: SqlClient.SqlClient, tables: Tables, supervisor: string | undefined) =>
  sql<ChildRow>`SELECT supervisor, child_id, spec, parked, updated_at FROM ${sql(tables.children)}
    WHERE ${sql.and(supervisor === undefined ? [] : [sql`supervisor = ${supervisor}`])}
    ORDER BY id`.pipe(
    Effect.map((rows) => rows.map(fromChildRow))
  )

/**
 * A checkpoint's data as the JSON text its row keeps; data JSON would change (a Map, NaN: `StrictJson`) fails as
 * data JSON cannot encode (a BigInt) does, rather than be kept changed.
 */
export const encodeCheckpoint = (record: Store.CheckpointRecord): Effect.Effect<string, StoreError> =>
  Effect.try({
    try: () => StrictJson.stringify(record.data, "data") ?? "null",
    catch: (error) =>
      new StoreError({
        operation: "saveCheckpoint",
        reason: "unencodable",
        detail: `the data is not JSON: ${messageOf(error)}`
      })
  })

/** Writes an agent's checkpoint, its data already encoded by {@link encodeCheckpoint}, over the one before. */
export const upsertCheckpoint = (sql: SqlClient.SqlClient, tables: Tables, agent: string, data: string, at: number) =>
  sql`INSERT INTO ${sql(tables.checkpoints)} (agent_name, data, updated_at) VALUES (${agent}, ${data}, ${at})
    ON CONFLICT (agent_name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`

/** The checkpoint of `agent`, if one was written. */
export const selectCheckpoint = (sql: SqlClient.SqlClient, tables: Tables, agent: string) =>
  sql<CheckpointRow>`SELECT agent_name, data, updated_at FROM ${sql(tables.checkpoints)}
    WHERE agent_name = ${agent}`.pipe(
    Effect.map((rows) =>
      Option.map(Option.fromNullable(rows[0]), (row): Store.CheckpointRecord => ({
        agent_name: row.agent_name,
        data: JSON.parse(row.data),
        updated_at: Number(row.updated_at)
      }))
    )
  )

/** A task's payload, result and errors, as the JSON text its row keeps (`result`: `null` when it has none). */
export interface EncodedTask {
  readonly payload: string
  readonly result: string | null
  readonly errors: string
}

/** Encodes what a task's row keeps as JSON text, refusing what JSON would change as {@link encodeCheckpoint} does. */
export const encodeTask = (record: Store.TaskRecord): Effect.Effect<EncodedTask, StoreError> =>
  Effect.try({
    try: () => ({
      payload: StrictJson.stringify(record.payload, "payload") ?? "null",
      result: record.result === undefined ? null : StrictJson.stringify(record.result, "result") ?? "null",
      errors: JSON.stringify(record.errors)
    }),
    catch: (error) =>
      new StoreError({
        operation: "saveTask",
        reason: "unencodable",
        detail: `task ${record.task_id}: its payload, result or errors are not JSON: ${messageOf(error)}`
      })
  })

/**
 * Writes a task's record over the one before, its JSON already encoded by {@link encodeTask}, with the next write
 * order: PostgreSQL's from the column's sequence (its default), SQLite's the highest plus one (its writes are
 * serialized, so no two take the same).
 */
export const upsertTask = (sql: SqlClient.SqlClient, tables: Tables, record: Store.TaskRecord, json: EncodedTask) => {
  const seq = sql.onDialectOrElse({
    pg: () => sql.literal("DEFAULT"),
    orElse: () => sql`(SELECT COALESCE(MAX(seq), 0) + 1 FROM ${sql(tables.tasks)})`
  })
  return sql`INSERT INTO ${sql(tables.tasks)}
      (task_id, topic, status, payload, result, attempts, errors, created_at, updated_at, seq)
    VALUES (${record.task_id}, ${record.topic}, ${record.status}, ${json.payload}, ${json.result},
      ${record.attempts}, ${json.errors}, ${record.created_at}, ${record.updated_at}, ${seq})
    ON CONFLICT (task_id) DO UPDATE SET topic = excluded.topic, status = excluded.status,
      payload = excluded.payload, result = excluded.result, attempts = excluded.attempts, errors = excluded.errors,
      created_at = excluded.created_at, updated_at = excluded.updated_at, seq = excluded.seq`
}

/** Deletes an agent's last state and checkpoint, if it has them, in one transaction. */
export const deleteAgent = (sql: SqlClient.SqlClient, tables: Tables, agent: string) =>
  sql.withTransaction(Effect.zipRight(
    sql`DELETE FROM ${sql(tables.states)} WHERE agent_name = ${agent}`,
    sql`DELETE FROM ${sql(tables.checkpoints)} WHERE agent_name = ${agent}`
  ))

/** Deletes a task's record, if there is one. */
export const deleteTask = (sql: SqlClient.SqlClient, tables: Tables, taskId: string) =>
  sql`DELETE FROM ${sql(tables.tasks)} WHERE task_id = ${taskId}`

const taskColumns = "task_id, topic, status, payload, result, attempts, errors, created_at, updated_at"

/** The row of task `taskId`, if there is one; {@link decodeTask} reads it. */
export const selectTask = (sql: SqlClient.SqlClient, tables: Tables, taskId: string) =>
  sql<TaskRow>`SELECT ${sql.literal(taskColumns)} FROM ${sql(tables.tasks)} WHERE task_id = ${taskId}`.pipe(
    Effect.map((rows) => Option.fromNullable(rows[0]))
  )

/** The rows of the tasks `query` selects, newest `updated_at` first, then the later write; {@link decodeTask}. */
export const selectTasks = (sql: SqlClient.SqlClient, tables: Tables, query: Store.TaskQuery | undefined) => {
  const where: Array<Fragment> = []
  if (query?.topic !== undefined) where.push(sql`topic = ${query.topic}`)
  if (query?.status !== undefined) where.push(sql`status = ${query.status}`)
  return sql<TaskRow>`SELECT ${sql.literal(taskColumns)} FROM ${sql(tables.tasks)}
    WHERE ${sql.and(where)} ORDER BY updated_at DESC, seq DESC
    LIMIT ${limitOf(query?.limit, Store.defaultTaskLimit)}`
}

const decodeTaskRecord = Schema.decodeUnknownEither(Store.TaskRecord)

/**
 * A task's row back into its record, checked by its schema: a row that does not decode (edited by hand, written by
 * something else) fails the read that met it with a `StoreError` naming the task and what is wrong.
 */
export const decodeTask = (operation: string) => (row: TaskRow): Effect.Effect<Store.TaskRecord, StoreError> => {
  const bad = (what: string) =>
    new StoreError({ operation, reason: "failure", detail: `the row of task ${row.task_id} does not decode: ${what}` })
  return Effect.try({
    try: () => ({
      task_id: row.task_id,
      topic: row.topic,
      status: row.status,
      payload: JSON.parse(row.payload),
      ...(row.result !== null ? { result: JSON.parse(row.result) } : {}),
      attempts: Number(row.attempts),
      errors: JSON.parse(row.errors),
      created_at: Number(row.created_at),
      updated_at: Number(row.updated_at)
    }),
    catch: (error) => bad(`its JSON is not valid (${messageOf(error)})`)
  }).pipe(
    Effect.flatMap((candidate) =>
      Either.mapLeft(decodeTaskRecord(candidate), (error) => {
        const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
        return bad(issue === undefined ? String(error) : `${issue.path.join(".") || "(the row)"}: ${issue.message}`)
      })
    )
  )
}

/** What pruning keeps. */
export interface Retention {
  /** Metrics older than this (epoch milliseconds) go. */
  readonly oldestMetric: number
  readonly maxMetrics: number
  readonly maxRestarts: number
  /** Task records whose outcome is older than this (epoch milliseconds) go. */
  readonly oldestTask: number
  readonly maxTasks: number
}

/** Deletes the metrics, restart records and task records past `retention`. */
export const prune = (sql: SqlClient.SqlClient, tables: Tables, retention: Retention) =>
  Effect.gen(function*() {
    yield* sql`DELETE FROM ${sql(tables.metrics)} WHERE timestamp_ms < ${retention.oldestMetric}`
    // The id of the newest row past the bound (none when there are fewer rows): it and older ones go.
    yield* sql`DELETE FROM ${sql(tables.metrics)} WHERE id <= (
      SELECT id FROM ${sql(tables.metrics)} ORDER BY id DESC LIMIT 1 OFFSET ${retention.maxMetrics}
    )`
    yield* sql`DELETE FROM ${sql(tables.restarts)} WHERE id <= (
      SELECT id FROM ${sql(tables.restarts)} ORDER BY id DESC LIMIT 1 OFFSET ${retention.maxRestarts}
    )`
    yield* sql`DELETE FROM ${sql(tables.tasks)} WHERE updated_at < ${retention.oldestTask}`
    yield* sql`DELETE FROM ${sql(tables.tasks)} WHERE seq <= (
      SELECT seq FROM ${sql(tables.tasks)} ORDER BY seq DESC LIMIT 1 OFFSET ${retention.maxTasks}
    )`
  })

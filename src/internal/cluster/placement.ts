/**
 * Where each agent runs: a row per started agent entity (agent, runner, shard, since), written by the entity when
 * it starts and deleted when it stops. The admin API reads it without waking an agent (asking an entity its status
 * would start its process). On SQL the rows live in `${prefix}_agents`, shared by every runner; a row left by a
 * runner that died shows as `lost` until the agent starts elsewhere and takes it over.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { StoreError } from "../../Errors.js"

/** One started agent and the runner that holds it. `since`: epoch milliseconds. */
export interface PlacementRow {
  readonly agent: string
  readonly runner: string
  readonly shard: string
  readonly since: number
}

/** Records where agents run (best effort: a failed write is logged, never fails the agent). */
export class Placement extends Context.Tag("effect-agent-supervisor/Cluster/Placement")<Placement, {
  readonly claim: (agent: string, runner: string, shard: string) => Effect.Effect<void>
  readonly release: (agent: string, runner: string) => Effect.Effect<void>
  readonly list: Effect.Effect<ReadonlyArray<PlacementRow>, StoreError>
}>() {}

/** Placement in this process's memory: the agents of this runner only. */
export const layerMemory: Layer.Layer<Placement> = Layer.sync(Placement, () => {
  const rows = new Map<string, PlacementRow>()
  return {
    claim: (agent, runner, shard) =>
      Effect.sync(() => void rows.set(agent, { agent, runner, shard, since: Date.now() })),
    release: (agent, runner) =>
      Effect.sync(() => {
        if (rows.get(agent)?.runner === runner) rows.delete(agent)
      }),
    list: Effect.sync(() => [...rows.values()].sort((a, b) => a.agent.localeCompare(b.agent)))
  }
})

/** The table's name for a prefix. */
export const tableName = (prefix: string): string => `${prefix}_agents`

/** Creates the placement table (idempotent; `migrate` runs it). */
export const createTable = (prefix: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(
      `CREATE TABLE IF NOT EXISTS ${tableName(prefix)} (agent VARCHAR(255) PRIMARY KEY, ` +
        "runner VARCHAR(255) NOT NULL, shard VARCHAR(64) NOT NULL, since BIGINT NOT NULL)"
    ))

const logged = (what: string) => (effect: Effect.Effect<unknown, unknown>) =>
  effect.pipe(
    Effect.asVoid,
    Effect.catchAllCause((cause) => Effect.logWarning(`cluster placement: could not ${what}`, cause))
  )

/** Placement in `${prefix}_agents` (SQLite or PostgreSQL), shared by the runners of one cluster. */
export const layerSql = (prefix: string): Layer.Layer<Placement, never, SqlClient.SqlClient> =>
  Layer.effect(
    Placement,
    Effect.map(SqlClient.SqlClient, (sql) => {
      const table = sql(tableName(prefix))
      return {
        claim: (agent, runner, shard) =>
          logged(`record ${agent} on ${runner}`)(
            sql`INSERT INTO ${table} (agent, runner, shard, since) VALUES (${agent}, ${runner}, ${shard}, ${Date.now()})
              ON CONFLICT (agent) DO UPDATE SET runner = excluded.runner, shard = excluded.shard, since = excluded.since`
          ),
        release: (agent, runner) =>
          logged(`clear ${agent} on ${runner}`)(
            sql`DELETE FROM ${table} WHERE agent = ${agent} AND runner = ${runner}`
          ),
        list: sql<{ agent: string; runner: string; shard: string; since: number | string }>`
          SELECT agent, runner, shard, since FROM ${table} ORDER BY agent`.pipe(
          Effect.map((rows) => rows.map((row) => ({ ...row, since: Number(row.since) }))),
          Effect.mapError((e) =>
            new StoreError({ operation: "clusterPlacement", reason: "failure", detail: String(e.message) })
          )
        )
      }
    })
  )

/**
 * Creates the cluster's tables once, before runners use them. `@effect/cluster`'s migrator checks for its table,
 * then runs a plain `CREATE TABLE`: concurrent first boots on an empty database race, and all but one die
 * (`relation "..._migrations" already exists`). On PostgreSQL the migration runs under a session advisory lock on
 * one reserved connection; on SQLite (one host) a boot that lost the race runs it again and finds the tables.
 */
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { type ConfigError, StoreError } from "../../Errors.js"
import type { DurationInput } from "../durationText.js"
import * as Edge from "../schema.js"
import { createTable } from "./placement.js"

/**
 * The fewest connections a PostgreSQL pool needs for a runner: one reserved for its shard locks, one for `migrate`'s
 * lock, one for the queries. With fewer, `migrate` would wait for a connection for ever: it fails after
 * {@link MIGRATE_TIMEOUT} instead.
 */
export const MIN_PG_CONNECTIONS = 3

/** How long `migrate` may take (waiting for the lock of another runner's migration included). */
export const MIGRATE_TIMEOUT = Duration.seconds(60)

const storages = (prefix: string) =>
  Effect.scoped(Layer.build(
    Layer.mergeAll(
      SqlMessageStorage.layerWith({ prefix }),
      Layer.orDie(SqlRunnerStorage.layerWith({ prefix }))
    ).pipe(Layer.provide(ShardingConfig.layer({ ...ShardingConfig.defaults })))
  ))

/**
 * Creates the tables of the cluster with this prefix (`${prefix}_messages`, `_replies`, `_migrations`, `_runners`,
 * `_locks` and `_agents`) where they are missing. Safe to run from every runner at once. Fails with `StoreError`
 * (`operation` "clusterMigrate") when the database refuses, or (`reason` "timeout") after `timeout` (60 s), and
 * with `ConfigError` before touching the database when `timeout` is no duration (or negative).
 */
export const migrate = (
  prefix: string,
  timeout: DurationInput = MIGRATE_TIMEOUT
): Effect.Effect<void, StoreError | ConfigError, SqlClient.SqlClient> =>
  Effect.flatMap(Edge.decodeDuration("timeout", timeout), (decoded) => migrateWithin(prefix, decoded))

/** {@link migrate} with its timeout decoded (the cluster's layers run it with the default). */
export const migrateWithin = (
  prefix: string,
  timeout: Duration.Duration
): Effect.Effect<void, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const run = Effect.zipRight(storages(prefix), createTable(prefix))
    const lockKey = `${prefix}:migrate`
    yield* sql.onDialectOrElse({
      pg: () =>
        Effect.scoped(Effect.gen(function*() {
          const conn = yield* sql.reserve
          yield* conn.executeRaw("SELECT pg_advisory_lock(hashtext($1))", [lockKey])
          yield* Effect.ensuring(
            run,
            Effect.ignore(conn.executeRaw("SELECT pg_advisory_unlock(hashtext($1))", [lockKey]))
          )
        })),
      orElse: () => Effect.retry(run, Schedule.spaced("200 millis").pipe(Schedule.intersect(Schedule.recurs(5))))
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new StoreError({
            operation: "clusterMigrate",
            reason: "timeout",
            detail:
              `the cluster's tables were not created within ${
                Duration.format(timeout)
              }: on PostgreSQL, give the pool ` +
              `at least ${MIN_PG_CONNECTIONS} connections (a runner reserves one for its shard locks)`
          })
      }),
      Effect.sandbox
    )
  }).pipe(
    Effect.catchAll((cause) => {
      const failure = Cause.isCause(cause) ? Cause.failureOption(cause) : Option.some(cause)
      return Effect.fail(
        Option.isSome(failure) && failure.value instanceof StoreError ? failure.value : new StoreError({
          operation: "clusterMigrate",
          reason: "failure",
          detail: Cause.pretty(Cause.isCause(cause) ? cause : Cause.fail(cause))
        })
      )
    })
  )

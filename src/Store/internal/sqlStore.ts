/**
 * The SQL store itself: a client acquired on first use, held off after a failure, and the states that failed to
 * save written again once the database answers. Takes decoded settings: `Store/Sql.ts` and the backends decode.
 *
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { StoreError } from "../../Errors.js"
import * as Store from "../Store.js"
import type { SqlSettings } from "./options.js"
import * as rows from "./sqlRows.js"
import { migrate, tablesOf } from "./sqlSchema.js"

/** A failure as one line: the error's message and those of its causes. */
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

/**
 * Runs `write`, the latest of `agent`'s state (`undefined`: its deletion): it supersedes the one left over from an
 * outage, if any, and if it fails it is the one to make once the database answers again.
 */
const latest = <E>(
  unsaved: Map<string, Store.StateRecord | undefined>,
  agent: string,
  value: Store.StateRecord | undefined,
  write: Effect.Effect<void, E>
): Effect.Effect<void, E> =>
  Effect.suspend(() => {
    unsaved.delete(agent)
    return Effect.onExit(write, (exit) =>
      Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => unsaved.set(agent, value)))
  })

/**
 * A store over a client acquired on first use. `acquire` runs in a scope of its own, closed if it fails, if the
 * migrations fail, or when the store's scope closes; a failed acquisition is tried again on a later operation
 * (after `retryAfter`), so the store never needs the database to be up when it is made.
 */
export const make = <E, R>(
  acquire: Effect.Effect<SqlClient.SqlClient, E, Scope.Scope | R>,
  settings: SqlSettings
): Effect.Effect<Store.Store["Type"], never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const tables = tablesOf(settings.tablePrefix)
    const retryAfter = Duration.toMillis(settings.retryAfter)
    const maxAge = Duration.toMillis(settings.maxMetricAge)
    const maxTaskAge = Duration.toMillis(settings.maxTaskAge)
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
        yield* rows.prune(sql, tables, {
          oldestMetric: now - maxAge,
          maxMetrics: settings.maxMetrics,
          maxRestarts: settings.maxRestarts,
          oldestTask: now - maxTaskAge,
          maxTasks: settings.maxTasks
        })
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
    // last state survives an outage even when the agent makes no transition after it. An agent whose deletion
    // failed is there as `undefined`: it is deleted then (unless a state of it came in the meantime).
    const unsaved = new Map<string, Store.StateRecord | undefined>()

    /**
     * Writes the states left over from an outage, unless a newer one got there first. Stops at the first failure
     * (keeping the rest) and holds the store off as any failure does: a locked SQLite file would otherwise make
     * every successful read wait for it again.
     */
    const catchUp = (sql: SqlClient.SqlClient) =>
      Effect.forEach(
        [...unsaved],
        ([agent, record]) =>
          (record === undefined ? rows.deleteAgent(sql, tables, agent) : rows.upsertState(sql, tables, record, true))
            .pipe(
              Effect.zipRight(Effect.sync(() => {
                if (unsaved.get(agent) === record) unsaved.delete(agent)
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
    const counted = (sql: SqlClient.SqlClient, writes = 1) =>
      Effect.suspend(() =>
        (writesSincePrune += writes) < settings.pruneEvery
          ? Effect.void
          : Effect.catchAllCause(prune(sql), warnPruneFailed)
      )

    return Store.Store.of({
      // This record supersedes any left over from an outage; if it fails too, it is the one to write later.
      saveState: (record) =>
        latest(
          unsaved,
          record.agent_name,
          record,
          use("saveState", (sql) => rows.upsertState(sql, tables, record, false))
        ),
      saveMetric: (event) =>
        Effect.flatMap(rows.encodeFields("saveMetric", event), (fields) =>
          use("saveMetric", (sql) =>
            rows.insertMetric(sql, tables, event, fields).pipe(Effect.zipRight(counted(sql))))),
      // One statement for the batch; an event whose fields are not JSON is left out (the batch fails with its
      // error once the others are written), as it alone would fail through saveMetric.
      saveMetrics: (events) =>
        Effect.flatMap(
          Effect.forEach(events, (event) =>
            Effect.either(rows.encodeFields("saveMetrics", event))),
          (encoded) => {
            const good = events.filter((_, i) => Either.isRight(encoded[i]))
            const fields = encoded.flatMap((e) => Either.isRight(e) ? [e.right] : [])
            const bad = encoded.find(Either.isLeft)
            const written = good.length === 0 ?
              Effect.void :
              use("saveMetrics", (sql) =>
                rows.insertMetrics(sql, tables, good, fields).pipe(Effect.zipRight(counted(sql, good.length))))
            return bad === undefined ? written : Effect.zipRight(written, Effect.fail(bad.left))
          }
        ),
      recordRestart: (record) =>
        use("recordRestart", (sql) => rows.insertRestart(sql, tables, record).pipe(Effect.zipRight(counted(sql)))),
      getState: (agent) => use("getState", (sql) => rows.selectState(sql, tables, agent)),
      listMetrics: (query) => use("listMetrics", (sql) => rows.selectMetrics(sql, tables, query)),
      restartHistory: (agent) => use("restartHistory", (sql) => rows.selectRestarts(sql, tables, agent)),
      saveChild: (record) => use("saveChild", (sql) => rows.upsertChild(sql, tables, record)),
      deleteChild: (supervisor, childId) =>
        use("deleteChild", (sql) => rows.deleteChild(sql, tables, supervisor, childId)),
      listChildren: (supervisor) => use("listChildren", (sql) => rows.selectChildren(sql, tables, supervisor)),
      saveCheckpoint: (record) =>
        Effect.flatMap(rows.encodeCheckpoint(record), (data) =>
          use("saveCheckpoint", (sql) =>
            rows.upsertCheckpoint(sql, tables, record.agent_name, data, record.updated_at))),
      loadCheckpoint: (agent) =>
        use("loadCheckpoint", (sql) =>
          rows.selectCheckpoint(sql, tables, agent)),
      saveTask: (record) =>
        Effect.flatMap(rows.encodeTask(record), (json) =>
          use("saveTask", (sql) =>
            rows.upsertTask(sql, tables, record, json).pipe(Effect.zipRight(counted(sql))))),
      // Rows are decoded after `use`: a row that does not decode fails its read, but is no outage of the database.
      getTask: (taskId) =>
        Effect.flatMap(
          use("getTask", (sql) =>
            rows.selectTask(sql, tables, taskId)),
          Effect.transposeMapOption(rows.decodeTask("getTask"))
        ),
      listTasks: (query) =>
        Effect.flatMap(
          use("listTasks", (sql) =>
            rows.selectTasks(sql, tables, query)),
          Effect.forEach(rows.decodeTask("listTasks"))
        ),
      deleteTask: (taskId) => use("deleteTask", (sql) => rows.deleteTask(sql, tables, taskId)),
      // A state left over from an outage must not bring the agent back; a failed deletion is made later.
      deleteAgent: (agent) =>
        latest(unsaved, agent, undefined, use("deleteAgent", (sql) => rows.deleteAgent(sql, tables, agent)))
    })
  })

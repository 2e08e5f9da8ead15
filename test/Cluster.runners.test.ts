/**
 * Two runner processes of one cluster (test/fixtures/cluster/runner.mjs, built JS), on one SQLite file and on the
 * local PostgreSQL: SIGKILL one and every agent answers from the other within the timing's failover bound; a keyed
 * task in flight on the killed runner completes once from the caller's view (it ran at least once underneath); a
 * runner stopped by SIGTERM exits 0 and hands its agents over; nothing is left afterwards: no runner, no agent
 * process, no table.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cluster from "../src/Cluster.js"
import { describeWithService, pgUnavailable, pgUrl, withPg } from "./Store/services.js"
import {
  type AppProcess,
  eventually,
  eventuallyEffect,
  fixture,
  freePort,
  isAlive,
  processesWith,
  spawnApp,
  tempDir
} from "./support.js"

const AGENTS = 12
/**
 * How long every agent may take to answer again after a runner goes: the `test` timing (shard locks expire after
 * 3 s, assignments refresh every 1 s) moves them in about 7 s on an idle machine, but on CI's 2 busy cores the
 * runners' own work and twelve agents' starts took longer than 13 s. This test checks that they move, not how fast:
 * the failover's time is `npm run bench`'s (`bench/cluster.ts`, by timing preset).
 */
const ANSWER_WITHIN_MS = 60_000

const ids = Array.from({ length: AGENTS }, (_, i) => `agent-${i}`)

interface Runner {
  readonly app: AppProcess
  readonly address: string
}

const startRunner = (db: string, prefix: string): Effect.Effect<Runner, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* Effect.promise(freePort)
    let ready: (() => void) | undefined
    const isReady = new Promise<void>((resolve) => (ready = resolve))
    const app = yield* spawnApp(
      fixture("cluster", "runner.mjs"),
      [String(port), db, prefix, "test", String(AGENTS)],
      { onLine: (line) => line.startsWith("READY ") && ready?.() }
    )
    yield* Effect.promise(() => isReady).pipe(
      Effect.raceFirst(Effect.flatMap(app.exited, (exit) =>
        Effect.fail(new Error(`runner exited before READY (${JSON.stringify(exit)}): ${app.stderr()}`)))),
      Effect.timeoutFail({
        duration: "60 seconds",
        onTimeout: () =>
          new Error(`no READY: ${app.stderr()}`)
      })
    )
    return { app, address: `127.0.0.1:${port}` }
  })

/** Each agent's runner, by id (asking `Status` starts an agent where the cluster assigns it). */
const placements = Effect.gen(function*() {
  const client = yield* Cluster.AgentClient
  return yield* Effect.forEach(
    ids,
    (id) => Effect.map(client.status(id, { timeout: "5 seconds" }), (s) => [id, s.runner] as const),
    { concurrency: 4 }
  )
})

/** Every agent answers a call (a short timeout each, tried again until `within`); gives each one's runner. */
const allAnswer = (within: number) =>
  Effect.gen(function*() {
    const client = yield* Cluster.AgentClient
    const deadline = Date.now() + within
    return yield* Effect.forEach(ids, (id) =>
      Effect.gen(function*() {
        while (true) {
          const reply = yield* Effect.either(client.call(id, { ping: true }, { timeout: "1 second" }))
          if (reply._tag === "Right") return (reply.right as { pid: number }).pid
          if (Date.now() > deadline) return yield* Effect.fail(new Error(`${id} did not answer: ${reply.left.message}`))
        }
      }), { concurrency: AGENTS })
  })

const scenario = (db: string, prefix: string, sql: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("cluster-runners-")
    const journal = path.join(dir, "journal")
    yield* Cluster.migrate(prefix).pipe(Effect.provide(sql))
    const a = yield* startRunner(db, prefix)
    const b = yield* startRunner(db, prefix)
    // the runners' topics (agent-i takes topic-i), for publishing from here
    const topology = Cluster.layerTopology({
      agents: ids.map((name, i) => ({ config: { name, command: process.execPath }, topics: [`topic-${i}`] }))
    })
    const client = Layer.merge(
      Cluster.layerClient({ prefix, timing: "test" }).pipe(Layer.provide(Layer.orDie(sql))),
      topology
    )
    yield* Effect.scoped(
      Effect.gen(function*() {
        const agentClient = yield* Cluster.AgentClient
        // both runners hold some agents once the shards are balanced between them
        let held: ReadonlyArray<readonly [string, string]> = []
        let lastError = ""
        yield* eventuallyEffect(
          "both runners hold agents",
          Effect.map(placements, (rows) => {
            held = rows
            return new Set(rows.map(([, runner]) => runner)).size === 2
          }).pipe(Effect.catchAll((e) => Effect.sync(() => (lastError = e.message, false)))),
          "90 seconds"
        ).pipe(Effect.mapError((e) =>
          new Error(
            `${e.message}; last placements ${JSON.stringify(held)}; last error: ${lastError}; ` +
              `A (${a.address}) stderr: ${a.app.stderr().slice(-1500)}; B (${b.address}) stderr: ${
                b.app.stderr().slice(-1500)
              }`
          )
        ))
        const onA = held.filter(([, runner]) => runner === a.address).map(([id]) => id)
        assert.isAbove(onA.length, 0)
        // a task published to an agent on A, stored before A is killed (its agent sleeps: still running then)
        const published = path.join(dir, "published")
        const taskId = yield* agentClient.publish(`topic-${ids.indexOf(onA[onA.length - 1])}`, {
          journal: published,
          key: "published",
          sleep: 1500
        })
        // a client that gives up on a keyed task and closes (a process redeployed) does not cancel it
        const dropped = `dropped-${prefix}`
        const short = yield* Effect.exit(Effect.scoped(
          Effect.flatMap(
            Cluster.AgentClient,
            (other) =>
              other.call(onA[0], { journal: path.join(dir, "dropped"), key: dropped, sleep: 500 }, {
                timeout: "200 millis",
                idempotencyKey: dropped
              })
          ).pipe(Effect.provide(Cluster.layerClient({ prefix, timing: "test" }).pipe(Layer.provide(Layer.orDie(sql)))))
        ))
        assert.isTrue(short._tag === "Failure")
        const kept = (yield* agentClient.call(onA[0], {}, { timeout: "20 seconds", idempotencyKey: dropped })) as {
          echo: { key: string }
        }
        assert.strictEqual(kept.echo.key, dropped)
        // a keyed task in flight on A when A is killed: given as long as the failover below is (every agent
        // answering, then every placement on B: a minute each), so that it is answered once the agents have moved
        const key = `task-${prefix}`
        const task = yield* agentClient.call(onA[0], { journal, key, sleep: 1500 }, {
          timeout: Duration.millis(ANSWER_WITHIN_MS + 60_000),
          idempotencyKey: key
        }).pipe(Effect.fork)
        yield* eventually("the task started on A", () => fs.existsSync(journal), "20 seconds")
        process.kill(a.app.pid, "SIGKILL")
        yield* a.app.exited
        yield* allAnswer(ANSWER_WITHIN_MS)
        yield* eventuallyEffect(
          "every agent is on B",
          Effect.map(placements, (rows) => rows.every(([, runner]) => runner === b.address)).pipe(
            Effect.orElseSucceed(() => false)
          ),
          "60 seconds"
        )
        const reply = (yield* Fiber.join(task)) as { agent: string; echo: { key: string } }
        assert.strictEqual(reply.agent, onA[0])
        assert.strictEqual(reply.echo.key, key)
        const lines = fs.readFileSync(journal, "utf8").trim().split("\n")
        assert.isTrue(lines.some((line) => line.startsWith(`end ${key}`)), lines.join("\n"))
        // the same key again: the first reply, not another run
        const again = yield* agentClient.call(onA[0], { journal, key, sleep: 1500 }, {
          timeout: "20 seconds",
          idempotencyKey: key
        })
        assert.deepStrictEqual(again, reply)
        assert.deepStrictEqual(fs.readFileSync(journal, "utf8").trim().split("\n"), lines)
        // the published task completes once from the caller's view, on B (at least once underneath)
        const result = (yield* agentClient.awaitResult(taskId, { timeout: "30 seconds" })) as { echo: { key: string } }
        assert.strictEqual(result.echo.key, "published")
        assert.isTrue(fs.readFileSync(published, "utf8").includes("end published"))
        assert.deepStrictEqual(yield* agentClient.awaitResult(taskId, { timeout: "10 seconds" }), result)
        // C joins, takes agents over, and on SIGTERM exits 0 and hands them back to B
        const c = yield* startRunner(db, prefix)
        yield* eventuallyEffect(
          "C holds agents",
          Effect.map(placements, (rows) => rows.some(([, runner]) => runner === c.address)).pipe(
            Effect.orElseSucceed(() => false)
          ),
          "90 seconds"
        )
        process.kill(c.app.pid, "SIGTERM")
        const exit = yield* c.app.exited
        assert.deepStrictEqual(exit, { code: 0, signal: null }, c.app.stderr())
        yield* allAnswer(ANSWER_WITHIN_MS)
        const status = yield* agentClient.status(onA[0], { timeout: "20 seconds" })
        assert.strictEqual(status.runner, b.address)
        assert.isTrue(Option.isSome(status.pid))
      }).pipe(Effect.provide(client))
    )
    process.kill(b.app.pid, "SIGTERM")
    const exit = yield* b.app.exited.pipe(Effect.timeout("20 seconds"))
    assert.deepStrictEqual(exit, { code: 0, signal: null }, b.app.stderr())
    yield* eventually("no agent of this cluster is left", () => processesWith(prefix).length === 0, "10 seconds")
    for (const runner of [a, b]) assert.isFalse(isAlive(runner.app.pid))
  })

const uniquePrefix = () => `eas_cl_${process.pid.toString(36)}_${Date.now().toString(36)}`

describe.sequential("Cluster, two runners", () => {
  it.scopedLive("on one SQLite file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cluster-sqlite-")
      const file = path.join(dir, "cluster.db")
      yield* scenario(`sqlite:${file}`, uniquePrefix(), SqliteClient.layer({ filename: file }))
    }), 240_000)
})

describeWithService("Cluster, two runners on PostgreSQL", await pgUnavailable(), () => {
  it.live(
    "migrate on a pool too small for its lock fails with a StoreError in time, instead of waiting for ever",
    () =>
      Effect.gen(function*() {
        const prefix = uniquePrefix()
        const exit = yield* Effect.exit(
          Cluster.migrate(prefix, "2 seconds").pipe(
            Effect.provide(PgClient.layer({ url: Redacted.make(pgUrl), maxConnections: 1 })),
            Effect.scoped
          )
        )
        assert.isTrue(exit._tag === "Failure")
        const error = exit._tag === "Failure" && exit.cause._tag === "Fail" ? exit.cause.error : undefined
        assert.strictEqual(error?._tag, "StoreError")
        assert.strictEqual(error?._tag === "StoreError" && error.reason, "timeout")
        yield* withPg((sql) => sql.unsafe(`SELECT 1`))
        const left = yield* withPg((sql) =>
          sql<{ tablename: string }>`SELECT tablename FROM pg_tables WHERE tablename LIKE ${`${prefix}%`}`
        )
        yield* Effect.forEach(
          left,
          ({ tablename }) => withPg((sql) => sql.unsafe(`DROP TABLE IF EXISTS "${tablename}"`))
        )
      }),
    30_000
  )

  it.scopedLive("on the local PostgreSQL; no table is left", () =>
    Effect.gen(function*() {
      const prefix = uniquePrefix()
      const drop = withPg((sql) =>
        Effect.gen(function*() {
          const tables = yield* sql<{ tablename: string }>`
            SELECT tablename FROM pg_tables WHERE tablename LIKE ${`${prefix}%`}`
          for (const { tablename } of tables) yield* sql.unsafe(`DROP TABLE IF EXISTS "${tablename}" CASCADE`)
          return tables.length
        })
      )
      yield* Effect.addFinalizer(() => Effect.ignore(drop))
      const pg = PgClient.layer({ url: Redacted.make(pgUrl) })
      yield* scenario(pgUrl, prefix, pg)
      assert.isAbove(yield* drop, 0)
      const left = yield* withPg((sql) =>
        sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_tables WHERE tablename LIKE ${`${prefix}%`}`
      )
      assert.strictEqual(left[0].n, 0)
    }), 240_000)
})

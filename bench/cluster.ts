/**
 * The cluster (issue 15, `effect-agent-supervisor/Cluster`): what a call through `@effect/cluster` costs against a
 * direct `AgentSupervisor.handleEvent` measured in the same run, and how long failover takes by timing preset.
 * Exported for `bench/index.ts` (`BENCH_ONLY=cluster` runs it alone there); runnable alone with
 * `tsx bench/cluster.ts` (after `npm run build`: the runners are built JS importing `dist/`).
 *
 * - **Latency**: sequential calls to the echo agent (`test/fixtures/cluster/agent.mjs`) along every path in turn,
 *   one call of each per round (`BENCH_CLUSTER_CALLS` rounds, 3,000, after 300 of warm-up), so that every path sees
 *   the same moments of the machine: direct `handleEvent`; `Cluster.layerMemory`, volatile; `Cluster.layerLocal`
 *   on a temp SQLite file, volatile and persisted (a fresh `idempotencyKey` per call); remote: `Cluster.layerClient`
 *   in this process to one runner process (`test/fixtures/cluster/runner.mjs`) on another SQLite file, volatile and
 *   persisted. p50 and p99 of each, and each p50 against the direct one. Target: a local call within 3x of direct.
 * - **Failover**: two runner processes (12 agents) on one SQLite file, and on PostgreSQL when it answers
 *   (`BENCH_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/test`; a unique table prefix, its tables dropped
 *   afterwards). Once both hold agents, a keyed task is sent to an agent of runner A, and A is SIGKILLed: the time
 *   until every agent answers a call again (1 s timeout per call, in a loop) from the survivor, and until the task's
 *   reply. Then a third runner C joins and is stopped with SIGTERM: the time until every agent answers from B again.
 *   For the presets `fast` and `test` (`BENCH_CLUSTER_FAILOVER=standard` adds `standard`, about 40 s per database;
 *   `BENCH_CLUSTER_FAILOVER=none` skips failover, `BENCH_CLUSTER_LATENCY=0` skips latency). Target: under 10 s with
 *   `fast`, the documented preset.
 *
 * Every process started (runners and agents, found in `/proc` by a marker in their environment) is gone at the end,
 * and every temp file.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as AgentSupervisor from "../dist/Agent/AgentSupervisor.js"
import * as Cluster from "../dist/Cluster.js"
import * as Store from "../dist/Store/Store.js"
import { fixtures, runner, sweep } from "./clusterProcesses.js"

const CALLS = Number(process.env.BENCH_CLUSTER_CALLS ?? 3000)
const WARMUP = Number(process.env.BENCH_CLUSTER_WARMUP ?? 300)
const LATENCY = process.env.BENCH_CLUSTER_LATENCY !== "0"
const FAILOVER = process.env.BENCH_CLUSTER_FAILOVER ?? "fast,test"
type Timing = "fast" | "test" | "standard"
const PRESETS: ReadonlyArray<Timing> = FAILOVER === "none"
  ? []
  : FAILOVER === "standard"
  ? ["fast", "test", "standard"]
  : FAILOVER.split(",").filter((t): t is Timing => t === "fast" || t === "test" || t === "standard")
const AGENTS = 12
const databaseUrl = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/test"
const payload = { task: "echo", n: 42, text: "a short message" }

type Client = Context.Tag.Service<typeof Cluster.AgentClient>

const round = (n: number, digits = 1) => Number(n.toFixed(digits))
const seconds = (ms: number) => round(ms / 1000, 2)
const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]

/** The echo agent, as the runners configure theirs. */
const agentConfig = (name: string) => ({
  name,
  command: process.execPath,
  args: [path.join(fixtures, "agent.mjs"), name],
  restartBackoff: "50 millis" as const,
  jitter: 0,
  gracefulTimeout: "2 seconds" as const,
  startupTimeout: "10 seconds" as const
})

/** A temp directory, removed with the scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "eas-bench-cluster-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const sqlite = (filename: string) => Layer.orDie(SqliteClient.layer({ filename }))
const pg = Layer.orDie(PgClient.layer({ url: Redacted.make(databaseUrl) }))

/** The agent client of a cluster layer built in the scope. */
const clientOf = <E>(layer: Layer.Layer<Cluster.Provided, E>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, Cluster.AgentClient))

const hosting = <E, R>(layer: Layer.Layer<Cluster.Provided, E, R>) =>
  Cluster.layerAgents([agentConfig("agent-0")]).pipe(
    Layer.provideMerge(layer),
    Layer.provide([Store.layerMemory, NodeContext.layer])
  )

// ---- latency ----

/** Every path, built in the scope: a name and one call along it. */
const latencyPaths = Effect.gen(function*() {
  const dir = yield* tempDir
  const direct = yield* AgentSupervisor.make(agentConfig("direct")).pipe(
    Effect.provide([Store.layerMemory, NodeContext.layer])
  )
  const memory = yield* clientOf(hosting(Cluster.layerMemory()))
  const local = yield* clientOf(
    hosting(Cluster.layerLocal({ prefix: "bench_local" })).pipe(Layer.provide(sqlite(path.join(dir, "local.db"))))
  )
  const remoteDb = path.join(dir, "remote.db")
  yield* Cluster.migrate("bench_remote").pipe(Effect.provide(sqlite(remoteDb)))
  yield* runner(`sqlite:${remoteDb}`, "bench_remote", "fast", 1)
  const remote = yield* clientOf(
    Cluster.layerClient({ prefix: "bench_remote" }).pipe(Layer.provide(sqlite(remoteDb)))
  )
  let keys = 0
  const volatile = (client: Client) => client.call("agent-0", payload, { timeout: "10 seconds" })
  const persisted = (client: Client) =>
    Effect.suspend(() =>
      client.call("agent-0", payload, { timeout: "10 seconds", idempotencyKey: `bench-${process.pid}-${keys++}` })
    )
  return [
    ["direct_handle_event", direct.handleEvent(payload)],
    ["memory_volatile", volatile(memory)],
    ["local_sqlite_volatile", volatile(local)],
    ["local_sqlite_persisted", persisted(local)],
    ["remote_sqlite_volatile", volatile(remote)],
    ["remote_sqlite_persisted", persisted(remote)]
  ] as const
})

/** One call of each path per round, in turn; p50/p99 of each in microseconds, and each p50 against direct. */
const latency = Effect.scoped(Effect.gen(function*() {
  const paths = yield* latencyPaths
  const micros = paths.map((): Array<number> => [])
  for (let i = 0; i < WARMUP + CALLS; i++) {
    for (const [index, [, call]] of paths.entries()) {
      const start = performance.now()
      yield* call
      if (i >= WARMUP) micros[index].push((performance.now() - start) * 1000)
    }
  }
  const stats = micros.map((m) => {
    m.sort((a, b) => a - b)
    return { p50_us: round(quantile(m, 0.5)), p99_us: round(quantile(m, 0.99)) }
  })
  return Object.fromEntries(paths.map(([name], index) => [
    name,
    { ...stats[index], p50_vs_direct: round(stats[index].p50_us / stats[0].p50_us, 2) }
  ]))
}))

// ---- failover ----

const ids = Array.from({ length: AGENTS }, (_, i) => `agent-${i}`)

interface Reply {
  readonly pid: number
}

/** Each agent's runner and pid (`Status` starts an agent where the cluster assigns it); `None` while one fails. */
const placements = (client: Client) =>
  Effect.forEach(ids, (id) => client.status(id, { timeout: "5 seconds" }), { concurrency: 4 }).pipe(
    Effect.option
  )

/** Polls `placements` until `ok` holds, for at most `within` ms. */
const placedWhen = (
  client: Client,
  what: string,
  within: number,
  ok: (rows: ReadonlyArray<Cluster.AgentStatus>) => boolean
) =>
  Effect.gen(function*() {
    const deadline = Date.now() + within
    while (true) {
      const rows = yield* placements(client)
      if (Option.isSome(rows) && ok(rows.value)) return rows.value
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`not within ${within} ms: ${what}`))
      yield* Effect.sleep("250 millis")
    }
  })

/**
 * Calls every agent until each answers from a process not in `gone` (1 s timeout per call, tried again at once):
 * the milliseconds from `since` to the last first answer.
 */
const allAnswer = (client: Client, gone: ReadonlySet<number>, since: number, within: number) =>
  Effect.map(
    Effect.forEach(ids, (id) =>
      Effect.gen(function*() {
        while (true) {
          const reply = yield* Effect.either(client.call(id, { ping: true }, { timeout: "1 second" }))
          if (reply._tag === "Right" && !gone.has((reply.right as Reply).pid)) return Date.now() - since
          if (Date.now() - since > within) {
            return yield* Effect.fail(new Error(`${id} did not answer within ${within} ms`))
          }
          if (reply._tag === "Right") yield* Effect.sleep("20 millis")
        }
      }), { concurrency: AGENTS }),
    (times) => Math.max(...times)
  )

const pidsOn = (rows: ReadonlyArray<Cluster.AgentStatus>, address: string) =>
  new Set(rows.filter((row) => row.runner === address).flatMap((row) => Option.toArray(row.pid)))

/** One scenario: two runners, SIGKILL one, then a third joins and leaves on SIGTERM. */
const failover = (
  database: "sqlite" | "postgres",
  timing: Timing,
  sql: Layer.Layer<SqlClient.SqlClient>,
  db: string,
  prefix: string
) =>
  Effect.scoped(Effect.gen(function*() {
    const dir = yield* tempDir
    yield* Cluster.migrate(prefix).pipe(Effect.provide(sql))
    const started = Date.now()
    const [a, b] = yield* Effect.all([runner(db, prefix, timing, AGENTS), runner(db, prefix, timing, AGENTS)], {
      concurrency: 2
    })
    const client = yield* clientOf(Cluster.layerClient({ prefix, timing }).pipe(Layer.provide(sql)))
    const balanced = yield* placedWhen(client, "both runners hold agents", 90_000, (rows) =>
      rows.some((row) =>
        row.runner === a.address
      ) && rows.some((row) => row.runner === b.address))
    const balancedAfter = Date.now() - started
    const onA = balanced.filter((row) =>
      row.runner === a.address
    ).map((row) => row.agent)
    // a keyed task in flight on A when A dies: its reply comes from B, once
    const journal = path.join(dir, "journal")
    const key = `task-${prefix}`
    let taskDoneAt = 0
    const task = yield* client.call(onA[0], { journal, key, sleep: 1500 }, {
      timeout: "90 seconds",
      idempotencyKey: key
    })
      .pipe(Effect.tap(() => Effect.sync(() => void (taskDoneAt = Date.now()))), Effect.fork)
    yield* waitFor(() => fs.existsSync(journal), 20_000, "the task started on A")
    const killedAt = Date.now()
    a.kill("SIGKILL")
    yield* Effect.promise(() => a.exited)
    const answered = yield* allAnswer(client, pidsOn(balanced, a.address), killedAt, 90_000)
    yield* Fiber.join(task)
    const runs = fs.readFileSync(journal, "utf8").trim().split("\n").filter((l) => l.startsWith("start")).length
    // C joins, holds agents, and hands them back to B on SIGTERM
    const c = yield* runner(db, prefix, timing, AGENTS)
    const joinedAt = Date.now()
    const withC = yield* placedWhen(
      client,
      "C holds agents",
      90_000,
      (rows) => rows.some((r) => r.runner === c.address)
    )
    const cTookOver = Date.now() - joinedAt
    const stoppedAt = Date.now()
    c.kill("SIGTERM")
    const cExited = c.exited.then((exit) => ({ exit, after: Date.now() - stoppedAt }))
    const handedOver = yield* allAnswer(client, pidsOn(withC, c.address), stoppedAt, 90_000)
    const cExit = yield* Effect.promise(() => cExited)
    return {
      database,
      timing,
      agents_on_killed_runner: onA.length,
      both_runners_hold_agents_s: seconds(balancedAfter),
      sigkill_all_agents_answered_s: seconds(answered),
      sigkill_persisted_task_done_s: seconds(taskDoneAt - killedAt),
      persisted_task_runs: runs,
      joined_runner_took_agents_s: seconds(cTookOver),
      sigterm_handoff_all_answered_s: seconds(handedOver),
      sigterm_runner_exit_s: seconds(cExit.after),
      sigterm_runner_exit: cExit.exit
    }
  }))

const waitFor = (ok: () => boolean, within: number, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + within
    while (!ok()) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`not within ${within} ms: ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

/** The tables of `prefix` in PostgreSQL, dropped: how many there were, and how many are left (none). */
const dropTables = (prefix: string) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const pattern = `${prefix.replace(/_/g, "\\_")}\\_%`
    const list = sql<{ tablename: string }>`SELECT tablename FROM pg_tables WHERE tablename LIKE ${pattern}`
    const tables = yield* list
    for (const { tablename } of tables) yield* sql.unsafe(`DROP TABLE IF EXISTS "${tablename}" CASCADE`)
    return { tables_dropped: tables.length, tables_left: (yield* list).length }
  }).pipe(Effect.provide(pg))

const pgAnswers = Effect.scoped(
  Effect.flatMap(
    PgClient.make({ url: Redacted.make(databaseUrl), connectTimeout: "3 seconds" }).pipe(
      Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
    ),
    (sql) => sql`SELECT 1`
  )
).pipe(Effect.as(true), Effect.catchAllCause(() => Effect.succeed(false)))

let scenarios = 0
const uniquePrefix = () => `eas_bcl_${process.pid.toString(36)}_${Date.now().toString(36)}_${scenarios++}`

const failovers = Effect.gen(function*() {
  const results: Array<unknown> = []
  const postgres = yield* pgAnswers
  for (const timing of PRESETS) {
    yield* Effect.scoped(Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "cluster.db")
      results.push(yield* failover("sqlite", timing, sqlite(file), `sqlite:${file}`, uniquePrefix()))
    }))
    if (!postgres) continue
    const prefix = uniquePrefix()
    const run = failover("postgres", timing, pg, databaseUrl, prefix)
    const [result, dropped] = yield* Effect.all([Effect.either(run), dropTables(prefix)])
    results.push(
      result._tag === "Right" ? { ...result.right, ...dropped } : yield* Effect.fail(result.left)
    )
  }
  return {
    postgres: postgres ? "ran" : `skipped: no answer from ${databaseUrl.replace(/\/\/[^@]*@/, "//")}`,
    runs: results
  }
})

/** The section's report. */
export const cluster = Effect.gen(function*() {
  const latencyReport = LATENCY ? yield* latency : "skipped (BENCH_CLUSTER_LATENCY=0)"
  const failoverReport = yield* failovers
  const left = yield* Effect.promise(() => sweep(10_000))
  const ratio = (name: string) =>
    typeof latencyReport === "string" ? null : (latencyReport[name] as { p50_vs_direct: number }).p50_vs_direct
  const fastRuns = (failoverReport.runs as Array<{ timing: string; sigkill_all_agents_answered_s: number }>)
    .filter((run) => run.timing === "fast")
  return {
    settings: { calls: CALLS, warm_up: WARMUP, payload, failover_agents: AGENTS, presets: PRESETS },
    latency_method: "sequential; one call of each path per round, in turn; p50/p99 per path, p50 against direct",
    latency: latencyReport,
    failover: failoverReport,
    targets: {
      local_call_p50_vs_direct: {
        target: "<= 3",
        memory: ratio("memory_volatile"),
        local_sqlite: ratio("local_sqlite_volatile"),
        met: LATENCY
          ? [ratio("memory_volatile"), ratio("local_sqlite_volatile")].every((r) => r !== null && r <= 3)
          : null
      },
      failover_fast_s: {
        target: "< 10",
        worst: fastRuns.length === 0 ? null : Math.max(...fastRuns.map((r) => r.sigkill_all_agents_answered_s)),
        met: fastRuns.length === 0 ? null : fastRuns.every((r) => r.sigkill_all_agents_answered_s < 10)
      }
    },
    processes_left_and_killed: left
  }
}).pipe(Effect.ensuring(Effect.promise(() => sweep(10_000))))

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  Effect.runPromise(cluster.pipe(Logger.withMinimumLogLevel(LogLevel.Error))).then(
    (report) => {
      console.log(JSON.stringify({ cluster: report }, null, 2))
      // Exit now: after a failover, timers of the cluster's fibers sometimes outlive every scope (seen here for
      // minutes, with nothing of ours left), which would hold this process after its report.
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

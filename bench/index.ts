/**
 * `npm run bench`: the cost of supervision, measured against a baseline in the same run.
 *
 * Library: requests through `AgentProcess` to the Node adapter running an echo callback.
 * Baseline: the same agent driven by a bare `node:child_process` client with no library (a Map of ids to
 * promise resolvers, one write per request). Both talk to the same agent, so the ratios isolate what the
 * supervisor side costs. Prints one JSON object.
 *
 * Every section runs the built package (`dist/`, as users run it; `npm run bench` builds first), not the sources
 * through tsx, whose transform names every function it makes (`__name`): a property store on each closure, about a
 * fifth more heap per agent, and time.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as AgentSupervisor from "../dist/Agent/AgentSupervisor.js"
import * as AgentProcess from "../dist/Agent/Process.js"
import * as Store from "../dist/Store/Store.js"
import { admin } from "./admin.js"
import { cluster } from "./cluster.js"
import { heartbeat } from "./heartbeat.js"
import { lifecycle } from "./lifecycle.js"
import { limits } from "./limits.js"
import { onCpu, pinClient, placements } from "./pinning.js"
import { pools } from "./pools.js"
import { run as pythonBench } from "./python.js"
import { layerStore, scale } from "./scale.js"
import { median, quantile } from "./stats.js"
import { streaming } from "./streaming.js"
import { tree } from "./tree.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const nodeAdapter = path.join(root, "dist", "Adapter", "node.js")
const pythonAdapter = path.join(root, "adapters", "python", "supervisor_adapter.py")
const nodeEcho = path.join(root, "bench", "agents", "echo.mjs")
const pythonEcho = `${path.join(root, "bench", "agents", "echo.py")}:handle_request`

const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 5000)
const PIPELINED = Number(process.env.BENCH_PIPELINED ?? 50_000)
const IN_FLIGHT = 256
const SPAWNS = Number(process.env.BENCH_SPAWNS ?? 10)
const payload = { task: "echo", n: 42, text: "a short message" }

const round = (n: number, digits = 3) => Number(n.toFixed(digits))
const cpuMicros = () => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

// ---- baseline: bare child_process ----

/** The bare client: a Map of ids to promise resolvers, one write per request, no library. */
interface BareClient {
  /** Resolves with its own round-trip time in microseconds (timed inside, without any Effect around it). */
  readonly request: () => Promise<number>
  /**
   * The same request as one `Effect.async`, resumed from the same Map: what any client whose callers are Effect
   * fibers pays at least (the fiber suspended, then resumed through Effect's scheduler), with nothing of ours.
   */
  readonly requestEffect: Effect.Effect<void>
  readonly close: () => Promise<void>
}

/** The bare client of the agent `command args`. */
const bareClient = async (agent: { readonly command: string; readonly args: Array<string> }): Promise<BareClient> => {
  const child = spawn(agent.command, agent.args, { stdio: ["pipe", "pipe", "inherit"] })
  const pending = new Map<string, () => void>()
  let ready: () => void = () => {}
  const readyPromise = new Promise<void>((resolve) => (ready = resolve))
  let buffered = ""
  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    buffered += chunk
    let newline
    while ((newline = buffered.indexOf("\n")) !== -1) {
      const msg = JSON.parse(buffered.slice(0, newline))
      buffered = buffered.slice(newline + 1)
      if (msg.type === "ready") ready()
      else {
        const resolve = pending.get(msg.id)
        pending.delete(msg.id)
        resolve?.()
      }
    }
  })
  await readyPromise
  let id = 0
  return {
    request: () =>
      new Promise<number>((resolve) => {
        const start = performance.now()
        const key = String(++id)
        pending.set(key, () => resolve((performance.now() - start) * 1000))
        child.stdin.write(JSON.stringify({ id: key, type: "task", payload }) + "\n")
      }),
    requestEffect: Effect.async<void>((resume) => {
      const key = String(++id)
      pending.set(key, () => resume(Effect.void))
      child.stdin.write(JSON.stringify({ id: key, type: "task", payload }) + "\n")
    }),
    close: async () => {
      child.stdin.end(JSON.stringify({ type: "shutdown" }) + "\n")
      await new Promise((resolve) => child.once("exit", resolve))
    }
  }
}

interface Throughput {
  readonly throughput_per_s: number
  readonly cpu_us_per_request: number
}

const bareThroughput = async (client: BareClient): Promise<Throughput> => {
  const cpuBefore = cpuMicros()
  const start = performance.now()
  let sent = 0
  const worker = async () => {
    while (sent < PIPELINED) {
      sent++
      await client.request()
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  const seconds = (performance.now() - start) / 1000
  return {
    throughput_per_s: Math.round(PIPELINED / seconds),
    cpu_us_per_request: round((cpuMicros() - cpuBefore) / PIPELINED, 2)
  }
}

// ---- library: AgentProcess ----

const libraryThroughput = (agent: AgentProcess.AgentProcess, count: number) =>
  fiberThroughput(agent.request(payload), count)

/** 256 fibers sending `request` in turn, `count` in all. */
const fiberThroughput = (request: Effect.Effect<unknown, unknown>, count: number) =>
  Effect.gen(function*() {
    const cpuBefore = cpuMicros()
    const start = performance.now()
    // 256 long-lived callers, each sending its next request when the last is answered: the baseline's shape,
    // written as the tight loop an Effect user would write.
    let sent = 0
    const worker = Effect.whileLoop({ while: () => sent++ < count, body: () => request, step: () => {} })
    yield* Effect.all(Array.from({ length: IN_FLIGHT }, () => worker), { concurrency: "unbounded", discard: true })
    const seconds = (performance.now() - start) / 1000
    return {
      throughput_per_s: Math.round(count / seconds),
      cpu_us_per_request: round((cpuMicros() - cpuBefore) / count, 2)
    } satisfies Throughput
  })

const percentiles = (micros: Array<number>) => {
  micros.sort((a, b) => a - b)
  return { p50_us: round(quantile(micros, 0.5), 1), p99_us: round(quantile(micros, 0.99), 1) }
}

/**
 * Sequential round trips, one bare request then one library request, turn by turn, from this one process to
 * two agents of the same kind. Measured apart, each side's p50 swings between about 30 and 60 µs from one run to
 * the next (where the scheduler happens to place the two processes of a pair, same core or not); interleaved,
 * both sides see the same moments of the machine, and with both agents pinned to one CPU and the client pinned in
 * turn to that CPU and another (`pinning.ts`), the same placement too.
 */
const interleavedLatency = (client: BareClient, agent: AgentProcess.AgentProcess, count: number) =>
  Effect.gen(function*() {
    const request = agent.request(payload)
    const bare = Effect.promise(client.request)
    for (let i = 0; i < 500; i++) {
      yield* bare
      yield* request
    }
    const bareMicros: Array<number> = []
    const libraryMicros: Array<number> = []
    for (let i = 0; i < count; i++) {
      bareMicros.push(yield* bare)
      const start = performance.now()
      yield* request
      libraryMicros.push((performance.now() - start) * 1000)
    }
    return { baseline: percentiles(bareMicros), library: percentiles(libraryMicros) }
  })

/** A library agent for the measurements, in its own scope. */
const withAgent = <A, E>(
  command: string,
  args: Array<string>,
  use: (agent: AgentProcess.AgentProcess) => Effect.Effect<A, E>
) =>
  Effect.scoped(Effect.flatMap(
    AgentProcess.make({ name: "bench", command, args, maxInFlight: IN_FLIGHT }),
    (agent) => Effect.andThen(Effect.forEach(Array.from({ length: 500 }), () => agent.request(payload)), use(agent))
  ))

const spawnToReady = (command: string, args: Array<string>) =>
  Effect.gen(function*() {
    const times: Array<number> = []
    for (let i = 0; i < SPAWNS; i++) {
      const start = performance.now()
      yield* Effect.scoped(AgentProcess.make({ name: "bench-spawn", command, args }))
      times.push(performance.now() - start)
    }
    // make returns at `ready`; the scope close (shutdown) is included above, so time ready alone too
    const readyTimes: Array<number> = []
    for (let i = 0; i < SPAWNS; i++) {
      yield* Effect.scoped(Effect.gen(function*() {
        const start = performance.now()
        yield* AgentProcess.make({ name: "bench-spawn", command, args })
        readyTimes.push(performance.now() - start)
      }))
    }
    readyTimes.sort((a, b) => a - b)
    times.sort((a, b) => a - b)
    return {
      spawn_to_ready_ms_p50: round(quantile(readyTimes, 0.5), 1),
      start_stop_cycle_ms_p50: round(quantile(times, 0.5), 1)
    }
  })

// ---- stores: write throughput, and what a store adds to a state transition ----

const STORE_WRITES = Number(process.env.BENCH_STORE_WRITES ?? 5000)
const TRANSITIONS = Number(process.env.BENCH_TRANSITIONS ?? 40)
const databaseUrl = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/test"

/** A store that keeps nothing: the supervisor with no store work at all, the baseline of a transition. */
const noStore = Layer.succeed(Store.Store, {
  saveState: () => Effect.void,
  saveMetric: () => Effect.void,
  recordRestart: () => Effect.void,
  getState: () => Effect.succeedNone,
  listMetrics: () => Effect.succeed([]),
  restartHistory: () => Effect.succeed([])
})

const withPg = <A, E>(f: (sql: PgClient.PgClient) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.flatMap(
      PgClient.make({ url: Redacted.make(databaseUrl), connectTimeout: "3 seconds" }).pipe(
        Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
      ),
      f
    )
  )

/** Each backend as a fresh, empty store, removed afterwards; `None` with the reason when it cannot run here. */
const storeBackends = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "eas-bench-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
  let files = 0
  let prefixes = 0
  const pgDown = yield* withPg((sql) => sql`SELECT 1`).pipe(
    Effect.match({ onFailure: (e) => Option.some(`PostgreSQL does not answer: ${e.message}`), onSuccess: Option.none })
  )
  const pg = (): Layer.Layer<Store.Store> =>
    Layer.unwrapScoped(Effect.gen(function*() {
      const tablePrefix = `eas_bench_${process.pid}_${prefixes++}_`
      yield* Effect.addFinalizer(() =>
        withPg((sql) =>
          sql.unsafe(
            ["states", "metrics", "restarts", "children", "migrations"].map((t) =>
              `DROP TABLE IF EXISTS "${tablePrefix}${t}"`
            )
              .join("; ")
          )
        ).pipe(Effect.ignore)
      )
      return Layer.orDie(Store.layerPg({ url: Redacted.make(databaseUrl), tablePrefix }))
    }))
  return {
    none: () => Option.some(noStore),
    memory: () => Option.some(Store.layerMemory),
    sqlite: () => Option.some(Layer.orDie(Store.layerSqlite({ filename: path.join(dir, `bench-${files++}.sqlite`) }))),
    postgres: () => Option.isSome(pgDown) ? Option.none() : Option.some(pg())
  }
})

/** Sequential writes through `Store.resilient`, as the supervisor's writer makes them. */
const storeWrites = (layer: Layer.Layer<Store.Store>) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* Store.resilient(Context.get(yield* Layer.build(layer), Store.Store))
    const now = Date.now()
    const health = (i: number) =>
      Store.healthCheck({
        agent_name: `bench-${i % 20}`,
        state: "RUNNING",
        cpu_percent: 1.5,
        memory_mb: 40,
        latency_ms: 0.4,
        restart_count: 0,
        timestamp: now + i
      })
    yield* store.getState("warm-up") // connects and migrates
    let start = performance.now()
    for (let i = 0; i < STORE_WRITES; i++) yield* store.saveMetric(health(i))
    const metrics = STORE_WRITES / ((performance.now() - start) / 1000)
    start = performance.now()
    for (let i = 0; i < STORE_WRITES; i++) {
      yield* store.saveState({ agent_name: `bench-${i % 20}`, state: "RUNNING", restart_count: i, updated_at: now + i })
    }
    const states = STORE_WRITES / ((performance.now() - start) / 1000)
    return {
      metric_writes_per_s: Math.round(metrics),
      state_writes_per_s: Math.round(states),
      failures: yield* store.failures
    }
  }))

/**
 * Manual restarts of a supervised echo agent per store (a stop and a start: four transitions, each writing a
 * metric and a state), taken in turns so that any drift of the machine weighs on every store alike: the median
 * and p90 of a whole cycle in milliseconds.
 */
const restartCycles = (layers: Record<string, Layer.Layer<Store.Store>>) =>
  Effect.scoped(Effect.gen(function*() {
    const agents: Array<readonly [string, AgentSupervisor.AgentSupervisor]> = []
    for (const [name, layer] of Object.entries(layers)) {
      const context = yield* Layer.build(layer)
      const agent = yield* AgentSupervisor.make({
        name: `bench-${name}`,
        command: process.execPath,
        args: [nodeAdapter, nodeEcho]
      }).pipe(Effect.provide(context))
      agents.push([name, agent])
    }
    const times: Record<string, Array<number>> = Object.fromEntries(agents.map(([name]) => [name, []]))
    for (let i = 0; i < TRANSITIONS + 3; i++) {
      for (const [name, agent] of agents) {
        const start = performance.now()
        yield* agent.restart
        if (i >= 3) times[name].push(performance.now() - start)
      }
    }
    return Object.fromEntries(
      Object.entries(times).map(([name, t]) => {
        t.sort((a, b) => a - b)
        return [name, { median_ms: round(quantile(t, 0.5), 2), p90_ms: round(quantile(t, 0.9), 2) }]
      })
    )
  }))

const storeBench = Effect.scoped(Effect.gen(function*() {
  const backends = yield* storeBackends
  const writes: Record<string, unknown> = {}
  const layers: Record<string, Layer.Layer<Store.Store>> = {}
  for (const [name, make] of Object.entries(backends)) {
    const layer = make()
    if (Option.isNone(layer)) {
      writes[name] = "skipped: PostgreSQL does not answer (set BENCH_DATABASE_URL)"
      continue
    }
    if (name !== "none") writes[name] = yield* storeWrites(layer.value)
    layers[name] = Option.getOrThrow(make())
  }
  const cycles = yield* restartCycles(layers)
  const added: Record<string, number> = {}
  for (const [name, t] of Object.entries(cycles)) {
    if (name !== "none") added[name] = round(t.median_ms - cycles.none.median_ms, 2)
  }
  return {
    settings: { writes: STORE_WRITES, restart_cycles: TRANSITIONS },
    writes_through_resilient: writes,
    restart_cycle_ms: cycles,
    restart_cycle_added_ms_vs_no_store: added,
    target: "no measurable difference: the writer keeps store writes off the transition path"
  }
}))

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
/** `BENCH_ONLY=requests`: the request section alone (sequential latency and pipelined throughput). */
const ONLY_REQUESTS = process.env.BENCH_ONLY === "requests"
/** `BENCH_ONLY=cluster`: the cluster section alone (call latency through the cluster, failover). */
const ONLY_CLUSTER = process.env.BENCH_ONLY === "cluster"

/** A bare client and a library agent, both on `cpu` alone when given, for the life of the scope. */
const pair = (cpu: number | undefined) => {
  const agentCommand = onCpu(cpu, process.execPath, [nodeAdapter, nodeEcho])
  return Effect.all([
    Effect.acquireRelease(Effect.promise(() => bareClient(agentCommand)), (client) => Effect.promise(client.close)),
    AgentProcess.make({ name: "bench", ...agentCommand, maxInFlight: IN_FLIGHT })
  ])
}

type Latency = Effect.Effect.Success<ReturnType<typeof interleavedLatency>>
const ratioOf = (latency: Latency) => latency.library.p50_us / latency.baseline.p50_us

/** The sequential latency of a pinned pair in each placement of the client (`pinning.ts`), by placement. */
const pinnedLatencies = Effect.forEach(placements ?? [], (placement) =>
  Effect.scoped(Effect.gen(function*() {
    const [client, agent] = yield* pair(placement.agents)
    yield* Effect.acquireRelease(
      Effect.sync(() => pinClient(placement.client)),
      () => Effect.sync(() => pinClient(undefined))
    )
    return [placement.name, yield* interleavedLatency(client, agent, SEQUENTIAL)] as const
  })))

const main = Effect.gen(function*() {
  if (ONLY_CLUSTER) return console.log(JSON.stringify({ cluster: yield* cluster }, null, 2))
  // Sequential latency on pinned pairs (`pinning.ts`), the worse placement checked; throughput, and the same
  // latency for information, on an unpinned pair.
  const byPlacement = yield* pinnedLatencies
  const [client, agent] = yield* pair(undefined)
  const unpinned = yield* interleavedLatency(client, agent, SEQUENTIAL)
  // The worse placement's (the unpinned pair's when nothing could be pinned)
  const latency = byPlacement.map(([, l]) => l).reduce<Latency | undefined>(
    (worst, l) => worst === undefined || ratioOf(l) > ratioOf(worst) ? l : worst,
    undefined
  ) ?? unpinned
  const latencyByPlacement = Object.fromEntries(byPlacement)
  // Throughput: baseline and library alternate, round after round, and the ratios are taken per round: on a
  // shared machine the baseline alone swings by 2x between minutes, so only same-round ratios compare like with
  // like.
  // Each round also runs the bare client's requests as `Effect.async`s from 256 fibers: the part of the gap that
  // is the callers being fibers, whatever the library does (`effect_async_floor`).
  const rounds: Array<{ readonly base: Throughput; readonly floor: Throughput; readonly library: Throughput }> = []
  for (let i = 0; i < ROUNDS; i++) {
    const base = yield* Effect.promise(() => bareThroughput(client))
    const floor = yield* fiberThroughput(client.requestEffect, PIPELINED)
    const library = yield* libraryThroughput(agent, PIPELINED)
    rounds.push({ base, floor, library })
  }
  const perRound = rounds.map(({ base, floor, library }) => ({
    throughput_vs_baseline: round(library.throughput_per_s / base.throughput_per_s, 2),
    cpu_per_request_vs_baseline: round(library.cpu_us_per_request / base.cpu_us_per_request, 2),
    effect_async_floor_throughput_vs_baseline: round(floor.throughput_per_s / base.throughput_per_s, 2),
    throughput_vs_effect_async_floor: round(library.throughput_per_s / floor.throughput_per_s, 2)
  }))
  const { base, floor, library } = rounds[rounds.length - 1]
  const ratios = {
    p50_latency_vs_baseline: round(ratioOf(latency), 2),
    throughput_vs_baseline: median(perRound.map((r) => r.throughput_vs_baseline)),
    cpu_per_request_vs_baseline: median(perRound.map((r) => r.cpu_per_request_vs_baseline)),
    effect_async_floor_throughput_vs_baseline: median(perRound.map((r) => r.effect_async_floor_throughput_vs_baseline)),
    throughput_vs_effect_async_floor: median(perRound.map((r) => r.throughput_vs_effect_async_floor))
  }
  if (ONLY_REQUESTS) {
    const baseline_child_process_node_adapter = { ...latency.baseline, ...base }
    const agent_process_node_adapter = { ...latency.library, ...library }
    const only = {
      baseline_child_process_node_adapter,
      effect_async_floor_child_process_node_adapter: floor,
      agent_process_node_adapter,
      latency_by_placement: latencyByPlacement,
      unpinned_latency: unpinned,
      placements: placements ?? null,
      ratios,
      ratios_per_round: perRound
    }
    return console.log(JSON.stringify(only, null, 2))
  }
  // Before `scale`: the metrics of the thousands of agents the later sections start stay in Effect's global registry,
  // and a scrape of `/metrics` (ten a second here) would serve all of them, about 35,000 lines per 1,000 agents.
  const adminReport = yield* admin
  // Early, before the other sections grow this process: a spawn forks it, at a cost that grows with its memory.
  const scaleReport = yield* scale.pipe(Effect.provide(layerStore))
  const python = yield* withAgent("python3", [pythonAdapter, pythonEcho], (agent) =>
    Effect.gen(function*() {
      const micros: Array<number> = []
      const request = agent.request(payload)
      for (let i = 0; i < 1000; i++) {
        const start = performance.now()
        yield* request
        micros.push((performance.now() - start) * 1000)
      }
      return { ...percentiles(micros), ...(yield* libraryThroughput(agent, Math.min(PIPELINED, 20_000))) }
    }))
  const spawnNode = yield* spawnToReady(process.execPath, [nodeAdapter, nodeEcho])
  const spawnPython = yield* spawnToReady("python3", [pythonAdapter, pythonEcho])
  const limitsReport = yield* limits
  const streamingReport = yield* streaming
  const stores = yield* storeBench
  const lifecycleReport = yield* lifecycle
  const treeReport = yield* tree
  const heartbeatReport = yield* heartbeat
  const poolsReport = yield* pools
  const pythonReport = yield* Effect.promise(pythonBench)
  const clusterReport = yield* cluster
  const report = {
    machine: { node: process.version, cpus: os.cpus().length },
    settings: { sequential: SEQUENTIAL, pipelined: PIPELINED, in_flight: IN_FLIGHT, payload },
    rounds: ROUNDS,
    latency: "sequential, one bare request and one library request in turn (interleaved), p50 of each, both " +
      "agents on one CPU and the client in each of placements (bench/pinning.ts): the worse placement's figures " +
      "here, each in latency_by_placement; unpinned_latency: the same on the unpinned pair",
    placements: placements ?? null,
    latency_by_placement: latencyByPlacement,
    unpinned_latency: unpinned,
    baseline_child_process_node_adapter: { ...latency.baseline, ...base },
    effect_async_floor_child_process_node_adapter: floor,
    agent_process_node_adapter: { ...latency.library, ...library },
    agent_process_python_adapter: python,
    spawn: { node: spawnNode, python: spawnPython },
    limits: limitsReport,
    streaming: streamingReport,
    ratios,
    ratios_per_round: perRound,
    targets: { p50_latency_vs_baseline: "<= 1.2", throughput_vs_baseline: ">= 0.8" },
    stores,
    lifecycle: lifecycleReport,
    tree: treeReport,
    heartbeat: heartbeatReport,
    admin: adminReport,
    pools: poolsReport,
    scale: scaleReport,
    python: pythonReport,
    cluster: clusterReport
  }
  console.log(JSON.stringify(report, null, 2))
})

Effect.runPromise(
  main.pipe(
    Effect.scoped,
    // The in-memory store unless a measurement provides its own (the restart cycles, per store).
    Effect.provide(Layer.merge(NodeContext.layer, Store.layerMemory)),
    Logger.withMinimumLogLevel(LogLevel.Error)
  )
).then(
  // Exit once the report is out: after the cluster section's failovers, timers of the cluster's fibers sometimes
  // outlive every scope for minutes (bench/cluster.ts), which would hold the process.
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)

/**
 * `npm run bench`: the cost of supervision, measured against a baseline in the same run.
 *
 * Library: requests through `AgentProcess` to the Node adapter running an echo callback.
 * Baseline: the same agent driven by a bare `node:child_process` client with no library (a Map of ids to
 * promise resolvers, one write per request). Both talk to the same agent, so the ratios isolate what the
 * supervisor side costs. Prints one JSON object.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { spawn } from "node:child_process"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as AgentProcess from "../src/Agent/Process.js"

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

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
const round = (n: number, digits = 3) => Number(n.toFixed(digits))
const cpuMicros = () => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

interface Measurement {
  readonly p50_us: number
  readonly p99_us: number
  readonly throughput_per_s: number
  readonly cpu_us_per_request: number
}

// ---- baseline: bare child_process ----
const baseline = async (): Promise<Measurement> => {
  const child = spawn(process.execPath, [nodeAdapter, nodeEcho], { stdio: ["pipe", "pipe", "inherit"] })
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
  const request = () =>
    new Promise<void>((resolve) => {
      const key = String(++id)
      pending.set(key, resolve)
      child.stdin.write(JSON.stringify({ id: key, type: "task", payload }) + "\n")
    })
  const result = await measureAsync(request)
  child.stdin.end(JSON.stringify({ type: "shutdown" }) + "\n")
  await new Promise((resolve) => child.once("exit", resolve))
  return result
}

const measureAsync = async (request: () => Promise<void>): Promise<Measurement> => {
  for (let i = 0; i < 500; i++) await request()
  const latencies: Array<number> = []
  for (let i = 0; i < SEQUENTIAL; i++) {
    const start = performance.now()
    await request()
    latencies.push((performance.now() - start) * 1000)
  }
  latencies.sort((a, b) => a - b)
  const cpuBefore = cpuMicros()
  const start = performance.now()
  let sent = 0
  const worker = async () => {
    while (sent < PIPELINED) {
      sent++
      await request()
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  const seconds = (performance.now() - start) / 1000
  return {
    p50_us: round(quantile(latencies, 0.5), 1),
    p99_us: round(quantile(latencies, 0.99), 1),
    throughput_per_s: Math.round(PIPELINED / seconds),
    cpu_us_per_request: round((cpuMicros() - cpuBefore) / PIPELINED, 2)
  }
}

// ---- library: AgentProcess ----
const throughAgentProcess = (command: string, args: Array<string>, count: number, sequential: number) =>
  Effect.scoped(Effect.gen(function*() {
    const agent = yield* AgentProcess.make({ name: "bench", command, args, maxInFlight: IN_FLIGHT })
    const request = agent.request(payload)
    for (let i = 0; i < 500; i++) yield* request
    const latencies: Array<number> = []
    for (let i = 0; i < sequential; i++) {
      const start = performance.now()
      yield* request
      latencies.push((performance.now() - start) * 1000)
    }
    latencies.sort((a, b) => a - b)
    const cpuBefore = cpuMicros()
    const start = performance.now()
    // 256 long-lived callers, each sending its next request when the last is answered: the baseline's shape.
    let sent = 0
    const worker = Effect.suspend((): Effect.Effect<unknown, unknown> => sent++ < count ? request : Effect.fail("done"))
      .pipe(
        Effect.forever,
        Effect.catchAll(() => Effect.void)
      )
    yield* Effect.all(Array.from({ length: IN_FLIGHT }, () => worker), { concurrency: "unbounded", discard: true })
    const seconds = (performance.now() - start) / 1000
    return {
      p50_us: round(quantile(latencies, 0.5), 1),
      p99_us: round(quantile(latencies, 0.99), 1),
      throughput_per_s: Math.round(count / seconds),
      cpu_us_per_request: round((cpuMicros() - cpuBefore) / count, 2)
    } satisfies Measurement
  }))

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

const main = Effect.gen(function*() {
  const base = yield* Effect.promise(baseline)
  const library = yield* throughAgentProcess(process.execPath, [nodeAdapter, nodeEcho], PIPELINED, SEQUENTIAL)
  const python = yield* throughAgentProcess("python3", [pythonAdapter, pythonEcho], Math.min(PIPELINED, 20_000), 1000)
  const spawnNode = yield* spawnToReady(process.execPath, [nodeAdapter, nodeEcho])
  const spawnPython = yield* spawnToReady("python3", [pythonAdapter, pythonEcho])
  const report = {
    machine: { node: process.version, cpus: os.cpus().length },
    settings: { sequential: SEQUENTIAL, pipelined: PIPELINED, in_flight: IN_FLIGHT, payload },
    baseline_child_process_node_adapter: base,
    agent_process_node_adapter: library,
    agent_process_python_adapter: python,
    spawn: { node: spawnNode, python: spawnPython },
    ratios: {
      p50_latency_vs_baseline: round(library.p50_us / base.p50_us, 2),
      throughput_vs_baseline: round(library.throughput_per_s / base.throughput_per_s, 2),
      cpu_per_request_vs_baseline: round(library.cpu_us_per_request / base.cpu_us_per_request, 2)
    },
    targets: { p50_latency_vs_baseline: "<= 1.5", throughput_vs_baseline: ">= 0.5" }
  }
  console.log(JSON.stringify(report, null, 2))
})

Effect.runPromise(main.pipe(Effect.provide(NodeContext.layer), Logger.withMinimumLogLevel(LogLevel.Warning))).catch(
  (error) => {
    console.error(error)
    process.exit(1)
  }
)

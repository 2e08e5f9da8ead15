/**
 * The Python adapter against a raw Python line echo (`bench/agents/raw_echo.py`), measured in the same run. Exported
 * for `bench/index.ts`; runnable alone with `npx tsx bench/python.ts` (prints JSON).
 *
 * Both agents run under one real interpreter, resolved once through `sys.executable`: on some machines `python3` on
 * PATH is a wrapper script (pyenv's shim) that costs 0.5-1 s per start, far more than the interpreter itself.
 * `BENCH_PYTHON` names another command to resolve. Both are driven by the same bare `node:child_process` client (a
 * Map of ids to resolvers, one write per request, line splitting), so the ratios isolate what the adapter costs:
 *
 * - over `BENCH_ROUNDS` rounds (3), each with fresh pairs of processes: sequential p50 latency, interleaved (one
 *   raw request, one adapter request, in turn), of a pair on one CPU with the client on that CPU and then on another
 *   (`pinning.ts`), target <= 1.5x for the worse of the two; then, on an unpinned pair, the same latency for
 *   information and pipelined throughput with 256 in flight, raw and adapter in turn, target >= 0.8x. Each ratio is
 *   the median of the rounds' ratios. (Unpinned, of 16 rounds measured, the raw echo drew the client's core 10
 *   times and the adapter 4: see `pinning.ts`.)
 * - graceful stop of an idle adapter: from writing `shutdown` (stdin ended right after, as the supervisor does) to
 *   the process's exit, target < 30 ms; the same through `AgentSupervisor`'s `stop` (`BENCH_PYTHON_LIBRARY=0` skips
 *   it);
 * - spawn to `ready` against a bare interpreter's start to exit (`python -c "print(1)"`), target <= 1.5x.
 */
import type { ChildProcess } from "node:child_process"
import { execFileSync, spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { onCpu, placements, withClientOn } from "./pinning.js"
import { median, quantile } from "./stats.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
/** `BENCH_PYTHON_ADAPTER` points at another copy of the adapter (to compare two versions on one machine). */
const adapter = process.env.BENCH_PYTHON_ADAPTER ?? path.join(root, "adapters", "python", "supervisor_adapter.py")
const echoTarget = `${path.join(root, "bench", "agents", "echo.py")}:handle_request`
const rawEcho = path.join(root, "bench", "agents", "raw_echo.py")

const SEQUENTIAL = Number(process.env.BENCH_SEQUENTIAL ?? 3000)
const PIPELINED = Number(process.env.BENCH_PYTHON_PIPELINED ?? 20_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const STOPS = Number(process.env.BENCH_STOPS ?? 10)
const SPAWNS = Number(process.env.BENCH_SPAWNS ?? 10)
const LIBRARY = process.env.BENCH_PYTHON_LIBRARY !== "0"
const IN_FLIGHT = 256
const payload = { task: "echo", n: 42, text: "a short message" }

const round = (n: number, digits = 3) => Number(n.toFixed(digits))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Every process this module started and has not seen exit: killed on the way out, whatever happens. */
const live = new Set<ChildProcess>()
const killAll = () => {
  for (const child of live) child.kill("SIGKILL")
}

/** The interpreter `python3` (or `BENCH_PYTHON`) stands for, resolved once. */
const resolveInterpreter = () => {
  const command = process.env.BENCH_PYTHON ?? "python3"
  const executable = execFileSync(command, ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim()
  const version = execFileSync(executable, ["-c", "import sys; print(sys.version.split()[0])"], { encoding: "utf8" })
    .trim()
  return { command, executable, version }
}

/** Starts `python args` (on `cpu` alone when given): the child, when it was spawned, and a promise of its exit. */
const startProcess = (python: string, args: ReadonlyArray<string>, cpu?: number) => {
  const spawnedAt = performance.now()
  const pinned = onCpu(cpu, python, args)
  const child = spawn(pinned.command, pinned.args, { stdio: ["pipe", "pipe", "inherit"] })
  live.add(child)
  const exited = new Promise<number>((resolve, reject) => {
    child.once("error", reject)
    child.once("exit", () => {
      live.delete(child)
      resolve(performance.now())
    })
  })
  return { child, spawnedAt, exited }
}

/** The bare client: a Map of ids to resolvers, one write per request, no library. */
interface Client {
  /** Milliseconds from `spawn` to the `ready` line. */
  readonly readyMs: number
  /** One round trip; resolves with its time in microseconds. */
  readonly request: () => Promise<number>
  /** Writes `shutdown` and ends stdin, as a supervisor's stop does; resolves with milliseconds from the write to exit. */
  readonly stop: () => Promise<number>
}

const connect = (python: string, args: ReadonlyArray<string>, cpu?: number) =>
  new Promise<Client>((resolve, reject) => {
    const { child, exited, spawnedAt } = startProcess(python, args, cpu)
    const stdin = child.stdin!
    stdin.on("error", () => {}) // EPIPE once the child is gone: its exit is what counts
    const pending = new Map<string, { readonly done: () => void; readonly fail: (error: Error) => void }>()
    let buffered = ""
    let id = 0
    exited.then(() => {
      const error = new Error(`${args.join(" ")} exited (before ready, or with requests in flight)`)
      reject(error)
      for (const request of pending.values()) request.fail(error)
      pending.clear()
    }, reject)
    child.stdout!.setEncoding("utf8")
    child.stdout!.on("data", (chunk: string) => {
      buffered += chunk
      let newline
      while ((newline = buffered.indexOf("\n")) !== -1) {
        const msg = JSON.parse(buffered.slice(0, newline))
        buffered = buffered.slice(newline + 1)
        if (msg.type === "ready") {
          resolve({
            readyMs: performance.now() - spawnedAt,
            request: () =>
              new Promise<number>((done, fail) => {
                const start = performance.now()
                const key = String(++id)
                pending.set(key, { done: () => done((performance.now() - start) * 1000), fail })
                stdin.write(JSON.stringify({ id: key, type: "task", payload }) + "\n")
              }),
            stop: () => {
              const start = performance.now()
              stdin.end(`{"type":"shutdown"}\n`)
              return exited.then((end) => end - start)
            }
          })
        } else {
          const request = pending.get(msg.id)
          pending.delete(msg.id)
          request?.done()
        }
      }
    })
  })

const percentiles = (micros: Array<number>) => {
  micros.sort((a, b) => a - b)
  return { p50_us: round(quantile(micros, 0.5), 1), p99_us: round(quantile(micros, 0.99), 1) }
}

/** One raw request, then one adapter request, in turn: both sides see the same moments of the machine. */
const interleavedLatency = async (raw: Client, agent: Client) => {
  for (let i = 0; i < 500; i++) {
    await raw.request()
    await agent.request()
  }
  const rawMicros: Array<number> = []
  const adapterMicros: Array<number> = []
  for (let i = 0; i < SEQUENTIAL; i++) {
    rawMicros.push(await raw.request())
    adapterMicros.push(await agent.request())
  }
  return { raw: percentiles(rawMicros), adapter: percentiles(adapterMicros) }
}

/** 256 callers, each sending its next request when the last is answered; requests per second. */
const throughput = async (client: Client) => {
  const start = performance.now()
  let sent = 0
  const caller = async () => {
    while (sent < PIPELINED) {
      sent++
      await client.request()
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, caller))
  return Math.round(PIPELINED / ((performance.now() - start) / 1000))
}

/** Idle agents (each answered a few requests, then sat still) stopped in turns: ms from `shutdown` to exit. */
const gracefulStops = async (python: string) => {
  const rawTimes: Array<number> = []
  const adapterTimes: Array<number> = []
  for (let i = 0; i < STOPS; i++) {
    for (const [args, times] of [[[rawEcho], rawTimes], [[adapter, echoTarget], adapterTimes]] as const) {
      const client = await connect(python, args)
      for (let j = 0; j < 10; j++) await client.request()
      await sleep(50)
      times.push(await client.stop())
    }
  }
  return { raw_echo_ms_p50: round(median(rawTimes), 1), adapter_ms_p50: round(median(adapterTimes), 1) }
}

/** Spawn to `ready` of the adapter, and a bare interpreter's start to exit, in turns. */
const spawnTimes = async (python: string) => {
  const ready: Array<number> = []
  const bare: Array<number> = []
  for (let i = 0; i < SPAWNS + 1; i++) {
    const { exited, spawnedAt } = startProcess(python, ["-c", "print(1)"])
    const bareMs = (await exited) - spawnedAt
    const client = await connect(python, [adapter, echoTarget])
    await client.stop()
    if (i === 0) continue // the first of each warms the file cache
    bare.push(bareMs)
    ready.push(client.readyMs)
  }
  return { adapter_spawn_to_ready_ms_p50: round(median(ready), 1), bare_start_to_exit_ms_p50: round(median(bare), 1) }
}

/** The same stop through the library: `AgentSupervisor`'s `stop` of an idle Python agent, then `start` again. */
const libraryStops = async (python: string) => {
  const [Effect, Layer, Logger, LogLevel, NodeContext, AgentSupervisor, Store] = await Promise.all([
    import("effect/Effect"),
    import("effect/Layer"),
    import("effect/Logger"),
    import("effect/LogLevel"),
    import("@effect/platform-node/NodeContext"),
    import("../dist/Agent/AgentSupervisor.js"),
    import("../dist/Store/Store.js")
  ])
  const program = Effect.scoped(Effect.gen(function*() {
    const agent = yield* AgentSupervisor.make({
      name: "bench-python-stop",
      command: python,
      args: [adapter, echoTarget]
    })
    const times: Array<number> = []
    for (let i = 0; i < STOPS; i++) {
      for (let j = 0; j < 10; j++) yield* agent.handleEvent(payload)
      yield* Effect.sleep("50 millis")
      const start = performance.now()
      yield* agent.stop
      times.push(performance.now() - start)
      yield* agent.start
    }
    return round(median(times), 1)
  }))
  return Effect.runPromise(program.pipe(
    Effect.provide(Layer.merge(NodeContext.layer, Store.layerMemory)),
    Logger.withMinimumLogLevel(LogLevel.Error)
  ))
}

interface Round {
  /** Of the pinned pair, by placement of the client (`pinning.ts`); empty when nothing could be pinned. */
  readonly sequential_p50_us: Record<string, { readonly raw_echo: number; readonly adapter: number }>
  /** The worse of the placements' ratios (the unpinned pair's when nothing could be pinned). */
  readonly sequential_p50_ratio: number
  /** Of the unpinned pair: for information (each side's p50 is ~25 or ~70 us by where it was placed). */
  readonly unpinned_sequential_p50_us: { readonly raw_echo: number; readonly adapter: number }
  readonly throughput_per_s: { readonly raw_echo: number; readonly adapter: number }
  readonly throughput_ratio: number
}

/** A fresh raw echo and a fresh adapter (both on `cpu` when given), stopped after `measure`. */
const withPair = async <A>(
  python: string,
  cpu: number | undefined,
  measure: (raw: Client, agent: Client) => Promise<A>
): Promise<A> => {
  const raw = await connect(python, [rawEcho], cpu)
  const agent = await connect(python, [adapter, echoTarget], cpu).catch(async (error) => {
    await raw.stop()
    throw error
  })
  try {
    return await measure(raw, agent)
  } finally {
    await Promise.all([raw.stop(), agent.stop()])
  }
}

type Latency = Awaited<ReturnType<typeof interleavedLatency>>
const ratioOf = (latency: Latency) => round(latency.adapter.p50_us / latency.raw.p50_us, 2)

/**
 * One round: sequential latency interleaved on a pinned pair, the client in each placement in turn; then an
 * unpinned pair's latency and the throughput of each in turn. Fresh processes each round.
 */
const measureRound = async (python: string): Promise<Round> => {
  const pinned: Record<string, { readonly raw_echo: number; readonly adapter: number }> = {}
  let worst = 0
  for (const placement of placements ?? []) {
    const latency = await withPair(
      python,
      placement.agents,
      (raw, agent) => withClientOn(placement.client, () => interleavedLatency(raw, agent))
    )
    pinned[placement.name] = { raw_echo: latency.raw.p50_us, adapter: latency.adapter.p50_us }
    worst = Math.max(worst, ratioOf(latency))
  }
  return withPair(python, undefined, async (raw, agent) => {
    const unpinned = await interleavedLatency(raw, agent)
    const rawPerSecond = await throughput(raw)
    const adapterPerSecond = await throughput(agent)
    return {
      sequential_p50_us: pinned,
      sequential_p50_ratio: placements === undefined ? ratioOf(unpinned) : worst,
      unpinned_sequential_p50_us: { raw_echo: unpinned.raw.p50_us, adapter: unpinned.adapter.p50_us },
      throughput_per_s: { raw_echo: rawPerSecond, adapter: adapterPerSecond },
      throughput_ratio: round(adapterPerSecond / rawPerSecond, 2)
    }
  })
}

/** The Python section of the benchmark report. */
export const run = async (): Promise<Record<string, unknown>> => {
  process.once("exit", killAll)
  try {
    const interpreter = resolveInterpreter()
    const python = interpreter.executable
    const rounds: Array<Round> = []
    for (let i = 0; i < ROUNDS; i++) rounds.push(await measureRound(python))
    const stops = await gracefulStops(python)
    const spawns = await spawnTimes(python)
    const library = LIBRARY
      ? await libraryStops(python).then((ms) => ms, (error) => `failed: ${String(error)}`)
      : "skipped (BENCH_PYTHON_LIBRARY=0)"
    const ratios = {
      sequential_p50_vs_raw: median(rounds.map((r) => r.sequential_p50_ratio)),
      throughput_vs_raw: median(rounds.map((r) => r.throughput_ratio)),
      spawn_to_ready_vs_bare_start: round(spawns.adapter_spawn_to_ready_ms_p50 / spawns.bare_start_to_exit_ms_p50, 2)
    }
    return {
      interpreter,
      adapter: path.relative(root, adapter),
      settings: {
        sequential: SEQUENTIAL,
        pipelined: PIPELINED,
        in_flight: IN_FLIGHT,
        rounds: ROUNDS,
        placements: placements ?? null,
        payload
      },
      rounds,
      graceful_stop: { ...stops, through_agent_supervisor_stop_ms_p50: library },
      spawn: spawns,
      ratios,
      targets: {
        sequential_p50_vs_raw: { target: "<= 1.5", met: ratios.sequential_p50_vs_raw <= 1.5 },
        throughput_vs_raw: { target: ">= 0.8", met: ratios.throughput_vs_raw >= 0.8 },
        graceful_stop_ms: { target: "< 30", met: stops.adapter_ms_p50 < 30 },
        graceful_stop_through_stop_ms: { target: "< 30", met: typeof library === "number" ? library < 30 : null },
        spawn_to_ready_vs_bare_start: { target: "<= 1.5", met: ratios.spawn_to_ready_vs_bare_start <= 1.5 }
      }
    }
  } finally {
    killAll()
    process.removeListener("exit", killAll)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  run().then(
    (report) => console.log(JSON.stringify({ python: report }, null, 2)),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

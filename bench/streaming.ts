/**
 * Streaming (protocol 1.1 `stream`): chunks per second and time to first chunk through `AgentProcess.requestStream`,
 * against a bare `node:child_process` client reading the same Node adapter's chunk lines with no library (a split on
 * newlines and a `JSON.parse` per line, as any client must). Both drive the same agent (`bench/agents/stream.mjs`),
 * one after the other in each round, so the ratios isolate what the supervisor side costs. Exported for
 * `bench/index.ts`; runnable alone with `tsx bench/streaming.ts` (after `npm run build`).
 */
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Stream from "effect/Stream"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as AgentProcess from "../dist/Agent/Process.js"
import { median } from "./stats.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const adapter = path.join(root, "dist", "Adapter", "node.js")
const agentFile = path.join(root, "bench", "agents", "stream.mjs")
const CHUNKS = Number(process.env.BENCH_STREAM_CHUNKS ?? 100_000)
const FIRSTS = Number(process.env.BENCH_STREAM_FIRSTS ?? 100)
const ROUNDS = Number(process.env.BENCH_STREAM_ROUNDS ?? 3)

const round = (n: number, digits = 2) => Number(n.toFixed(digits))

/** The bare client: one streaming task at a time, its chunks counted, resolved with the count at the response. */
const bareClient = async () => {
  const child = spawn(process.execPath, [adapter, agentFile], { stdio: ["pipe", "pipe", "inherit"] })
  let onLine: (message: any) => void = () => {}
  let ready: () => void = () => {}
  const readyPromise = new Promise<void>((resolve) => (ready = resolve))
  let buffered = ""
  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (text: string) => {
    buffered += text
    let start = 0
    let newline: number
    while ((newline = buffered.indexOf("\n", start)) !== -1) {
      const message = JSON.parse(buffered.slice(start, newline))
      start = newline + 1
      if (message.type === "ready") ready()
      else onLine(message)
    }
    buffered = buffered.slice(start)
  })
  await readyPromise
  let next = 0
  /** Streams n chunks; resolves with the chunk count and the milliseconds to the first chunk. */
  const stream = (n: number) =>
    new Promise<{ readonly chunks: number; readonly firstMillis: number }>((resolve) => {
      const id = String(next++)
      const sent = performance.now()
      let chunks = 0
      let firstMillis = 0
      onLine = (message) => {
        if (message.id !== id) return
        if (message.type === "chunk") {
          if (chunks++ === 0) firstMillis = performance.now() - sent
        } else resolve({ chunks, firstMillis })
      }
      child.stdin.write(JSON.stringify({ id, type: "task", payload: { n }, stream: true }) + "\n")
    })
  const close = () =>
    new Promise<void>((resolve) => {
      child.on("exit", () => resolve())
      child.stdin.end(JSON.stringify({ type: "shutdown" }) + "\n")
    })
  return { stream, close }
}

/** The library: the same request through `requestStream`, its chunks counted as they are consumed. */
const libraryStream = (agent: AgentProcess.AgentProcess, n: number) =>
  Effect.suspend(() => {
    const sent = performance.now()
    let chunks = 0
    let firstMillis = 0
    return agent.requestStream({ n }, { maxBufferedChunks: 1_000_000 }).pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          if (event._tag === "Chunk" && chunks++ === 0) firstMillis = performance.now() - sent
        })
      ),
      Effect.map(() => ({ chunks, firstMillis }))
    )
  })

export const streaming = Effect.scoped(Effect.gen(function*() {
  const bare = yield* Effect.promise(bareClient)
  yield* Effect.addFinalizer(() => Effect.promise(bare.close))
  const agent = yield* AgentProcess.make({
    name: "bench-stream",
    command: process.execPath,
    args: [adapter, agentFile]
  })
  // Warm both paths.
  yield* Effect.promise(() => bare.stream(10_000))
  yield* libraryStream(agent, 10_000)
  const bareRates: Array<number> = []
  const libraryRates: Array<number> = []
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now()
    const b = yield* Effect.promise(() => bare.stream(CHUNKS))
    bareRates.push(b.chunks / ((performance.now() - start) / 1000))
    const libraryStart = performance.now()
    const l = yield* libraryStream(agent, CHUNKS)
    libraryRates.push(l.chunks / ((performance.now() - libraryStart) / 1000))
    if (b.chunks !== CHUNKS || l.chunks !== CHUNKS) {
      throw new Error(`chunks lost: bare ${b.chunks}, library ${l.chunks}`)
    }
  }
  const bareFirst: Array<number> = []
  const libraryFirst: Array<number> = []
  for (let i = 0; i < FIRSTS; i++) {
    bareFirst.push((yield* Effect.promise(() => bare.stream(1))).firstMillis)
    libraryFirst.push((yield* libraryStream(agent, 1)).firstMillis)
  }
  const bareRate = median(bareRates)
  const libraryRate = median(libraryRates)
  return {
    chunks_per_stream: CHUNKS,
    rounds: ROUNDS,
    chunks_per_s: { bare_pipe: Math.round(bareRate), library: Math.round(libraryRate) },
    first_chunk_ms_p50: { bare_pipe: round(median(bareFirst), 3), library: round(median(libraryFirst), 3) },
    ratios: {
      throughput_vs_bare: round(libraryRate / bareRate),
      first_chunk_vs_bare: round(median(libraryFirst) / median(bareFirst))
    },
    targets: { throughput_vs_bare: ">= 0.5" }
  }
}))

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  Effect.runPromise(streaming.pipe(Logger.withMinimumLogLevel(LogLevel.Error))).then(
    (report) => console.log(JSON.stringify(report, null, 2)),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

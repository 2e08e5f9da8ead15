/**
 * Pools and topics (issue 14): a pool's throughput with 1, 2 and 4 members of the Node adapter running a task that
 * spins the CPU for 2 ms (`bench/agents/work.mjs`), as the ratio to one member (near-linear until the machine's
 * cores run out: `machine.cpus` says how many); and a topic's publish-to-result latency (`publish` then
 * `awaitResult`) against a direct `call` to the same agent, one of each in turn, p50 of each. Exported for
 * `bench/index.ts`; runnable alone with `tsx bench/pools.ts` (after `npm run build`).
 */
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Store from "../dist/Store/Store.js"
import * as Supervisor from "../dist/Supervisor.js"
import { median } from "./stats.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const adapter = path.join(root, "dist", "Adapter", "node.js")
const TASKS = Number(process.env.BENCH_POOL_TASKS ?? 1500)
const WORK_MS = Number(process.env.BENCH_POOL_WORK_MS ?? 2)
const LATENCY_ROUNDS = Number(process.env.BENCH_TOPIC_ROUNDS ?? 500)

const round = (n: number, digits = 2) => Number(n.toFixed(digits))

const config = (name: string, file: string) => ({
  name,
  command: process.execPath,
  args: [adapter, path.join(root, "bench", "agents", file)],
  outputLogLevel: "None" as const,
  requestTimeout: "60 seconds" as const
})

/** Tasks per second through a pool of `size` members, 8 calls in flight per member. */
const poolThroughput = (size: number) =>
  Effect.scoped(Effect.gen(function*() {
    const sup = yield* Supervisor.make({
      children: [Supervisor.pool({ id: "pool", size, config: config("work", "work.mjs") })]
    })
    const call = sup.call("pool", { ms: WORK_MS })
    yield* Effect.forEach(Array.from({ length: 8 * size }), () => call, { concurrency: "unbounded" })
    const start = performance.now()
    yield* Effect.forEach(Array.from({ length: TASKS }), () => call, { concurrency: 8 * size, discard: true })
    return TASKS / ((performance.now() - start) / 1000)
  }))

/** p50 of a direct call and of publish-to-result on one echo agent subscribed to the topic, in turn. */
const topicLatency = Effect.scoped(Effect.gen(function*() {
  const sup = yield* Supervisor.make({
    children: [Supervisor.agent({ id: "echo", topics: ["bench"], config: config("echo", "echo.mjs") })]
  })
  const direct: Array<number> = []
  const viaTopic: Array<number> = []
  for (let i = 0; i < LATENCY_ROUNDS + 50; i++) {
    const a = performance.now()
    yield* sup.call("echo", i)
    const b = performance.now()
    yield* Effect.flatMap(sup.publish("bench", i), sup.awaitResult)
    const c = performance.now()
    if (i >= 50) {
      direct.push((b - a) * 1000)
      viaTopic.push((c - b) * 1000)
    }
  }
  return { direct_us: median(direct), publish_to_result_us: median(viaTopic) }
}))

/** The section's report. */
export const pools = Effect.gen(function*() {
  const rates: Record<string, number> = {}
  for (const size of [1, 2, 4]) rates[size] = yield* poolThroughput(size)
  const latency = yield* topicLatency
  return {
    pool: {
      work_ms_per_task: WORK_MS,
      tasks: TASKS,
      cpus: os.cpus().length,
      tasks_per_s: { 1: Math.round(rates[1]), 2: Math.round(rates[2]), 4: Math.round(rates[4]) },
      vs_one_member: { 2: round(rates[2] / rates[1]), 4: round(rates[4] / rates[1]) }
    },
    topic: {
      rounds: LATENCY_ROUNDS,
      p50_us: { direct_call: round(latency.direct_us, 1), publish_to_result: round(latency.publish_to_result_us, 1) },
      publish_to_result_vs_direct: round(latency.publish_to_result_us / latency.direct_us)
    }
  }
}).pipe(Effect.provide(Store.layerMemory))

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  Effect.runPromise(pools.pipe(Logger.withMinimumLogLevel(LogLevel.Error))).then(
    (report) => console.log(JSON.stringify(report, null, 2)),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

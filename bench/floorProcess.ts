/**
 * The heartbeat floor in a process of its own, for `scale.ts`: `count` pong agents pinged every `intervalMs`
 * (spread over it) from a plain Node loop over bare pipes (`bareAgents`), with no supervisor. The parent measures
 * the supervisor and this process over the same windows of wall time, so that both see the machine as it is at
 * that moment: on a shared 2-core VM the floor measured alone moved by 10-40% from one minute to the next.
 *
 * Run as `node [tsx's flags] bench/floorProcess.ts <count> <intervalMs>`. One line each way on stdin and stdout:
 * - it prints `{"ready":true,"spawn_ms_per_agent":…}` once every agent is spawned, its code is warm (5,000 pings
 *   answered through the same handlers) and it has pinged for 8 intervals;
 * - `start` begins a window (the CPU used and the round trips from then on);
 * - `stop` ends it and prints `{"cpu_percent_of_one_core":…,"ping_latency_p99_ms":…,"answered":…}`;
 * - the end of stdin stops the agents (their stdin's end) and exits.
 */
import * as Effect from "effect/Effect"
import * as readline from "node:readline"
import { bareAgents } from "./heartbeat.js"
import { percentile } from "./stats.js"

const [count, intervalMs] = process.argv.slice(2).map(Number)
const WARM_PINGS = 5000

const round = (n: number, digits = 1) => Number(n.toFixed(digits))
const p99 = (values: Array<number>) => {
  const value = percentile(values, 0.99)
  return value === null ? null : round(value, 2)
}

const main = Effect.scoped(Effect.gen(function*() {
  const answered = { count: 0 }
  const latencies: Array<number> = []
  const spawnStart = performance.now()
  const agents = yield* bareAgents(count, answered, intervalMs, latencies)
  const spawnMs = (performance.now() - spawnStart) / count
  // Its code warm however few the agents (the supervisor's is warm from the sections and sizes before): 5,000
  // pings, one per agent every 10 ms, answered through the same handlers (their ids are no pings it waits for).
  for (let sent = 0; sent < WARM_PINGS;) {
    for (const agent of agents) agent.child.stdin.write(`{"id":"warm-${sent++}","type":"ping"}\n`)
    yield* Effect.sleep("10 millis")
  }
  // past its warm-up (the JIT, the first scavenges; its first window was 40% dearer after 4 s): the supervisor beside
  // it has been beating for 10 s and more
  yield* Effect.sleep(`${8 * intervalMs} millis`)
  console.log(JSON.stringify({ ready: true, spawn_ms_per_agent: round(spawnMs, 2) }))
  yield* Effect.async<void>((resume) => {
    let cpu = process.cpuUsage()
    let start = performance.now()
    let answeredBefore = 0
    const lines = readline.createInterface({ input: process.stdin })
    lines.on("line", (line) => {
      if (line === "start") {
        latencies.length = 0
        answeredBefore = answered.count
        cpu = process.cpuUsage()
        start = performance.now()
      } else if (line === "stop") {
        const used = process.cpuUsage(cpu)
        const elapsed = (performance.now() - start) / 1000
        console.log(JSON.stringify({
          cpu_percent_of_one_core: round(((used.user + used.system) / 1e6 / elapsed) * 100, 4),
          ping_latency_p99_ms: p99(latencies),
          answered: answered.count - answeredBefore
        }))
      }
    })
    lines.once("close", () => resume(Effect.void))
  })
}))

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)

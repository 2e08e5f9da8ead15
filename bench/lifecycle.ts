/**
 * Lifecycle benchmarks: how fast an agent comes back after SIGKILL (zero backoff), for the Node and Python
 * adapters, and how long a graceful stop takes. Exported for `bench/index.ts`; runnable alone with
 * `tsx bench/lifecycle.ts`.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as AgentSupervisor from "../dist/Agent/AgentSupervisor.js"
import * as Store from "../dist/Store/Store.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const ROUNDS = Number(process.env.BENCH_LIFECYCLE_ROUNDS ?? 10)

const agents = {
  node: {
    command: process.execPath,
    args: [path.join(root, "dist", "Adapter", "node.js"), path.join(root, "bench", "agents", "echo.mjs")]
  },
  python: {
    command: "python3",
    args: [
      path.join(root, "adapters", "python", "supervisor_adapter.py"),
      `${path.join(root, "bench", "agents", "echo.py")}:handle_request`
    ]
  }
}

const median = (values: Array<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return Number(sorted[Math.floor(sorted.length / 2)].toFixed(1))
}

const recovery = (language: keyof typeof agents) =>
  Effect.scoped(Effect.gen(function*() {
    const agent = yield* AgentSupervisor.make({
      name: `bench-${language}`,
      ...agents[language],
      restartBackoff: 0,
      maxRestartAttempts: 1_000_000
    })
    const events = yield* agent.subscribe
    const toRunning: Array<number> = []
    const toReply: Array<number> = []
    for (let i = 0; i < ROUNDS; i++) {
      const pid = Option.getOrThrow((yield* agent.metadata).pid)
      const start = performance.now()
      process.kill(pid, "SIGKILL")
      yield* Queue.take(events).pipe(Effect.repeat({ until: (e) => e._tag === "StateChanged" && e.to === "RUNNING" }))
      toRunning.push(performance.now() - start)
      yield* agent.handleEvent({ round: i })
      toReply.push(performance.now() - start)
    }
    return { sigkill_to_running_ms_p50: median(toRunning), sigkill_to_first_reply_ms_p50: median(toReply) }
  }))

const stopDuration = Effect.scoped(Effect.gen(function*() {
  const agent = yield* AgentSupervisor.make({ name: "bench-stop", ...agents.node })
  const times: Array<number> = []
  for (let i = 0; i < ROUNDS; i++) {
    const start = performance.now()
    yield* agent.stop
    times.push(performance.now() - start)
    yield* agent.start
  }
  return { graceful_stop_ms_p50: median(times) }
}))

/** The lifecycle section of the benchmark report. */
export const lifecycle = Effect.gen(function*() {
  return {
    rounds: ROUNDS,
    node: yield* recovery("node"),
    python: yield* recovery("python"),
    stop_node: yield* stopDuration
  }
})

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(
    lifecycle.pipe(
      Effect.provide(Layer.merge(NodeContext.layer, Store.layerMemory)),
      Logger.withMinimumLogLevel(LogLevel.Error)
    )
  ).then(
    (report) => console.log(JSON.stringify({ lifecycle: report }, null, 2)),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

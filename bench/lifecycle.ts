/**
 * Lifecycle benchmarks: how fast an agent comes back after SIGKILL (zero backoff), for the Node and Python
 * adapters, how long a graceful stop takes, and how fast a SIGKILL is seen (`crash`: to the `Exited` event,
 * with and without a grandchild that holds the agent's pipes). Exported for `bench/index.ts`; runnable alone
 * with `tsx bench/lifecycle.ts` (`BENCH_LIFECYCLE_ONLY=crash` for the crash section alone).
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

/** The value below which a fraction `p` of the values lie (nearest rank). */
const percentile = (values: Array<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return Number(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)].toFixed(1))
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

// ---- crash: SIGKILL to the `Exited` event (issue 10: under 15 ms p50, whatever the grandchildren hold) ----

const CRASH_ROUNDS = Number(process.env.BENCH_CRASH_ROUNDS ?? 20)
const CRASH_TARGET_P50_MS = 15

/** A raw-protocol agent that answers `{}` with its grandchild's pid (test/fixtures/crash/agent.mjs). */
const crashFixture = (mode: "grandchild" | "escaped") => ({
  command: process.execPath,
  args: [path.join(root, "test", "fixtures", "crash", "agent.mjs"), mode]
})

const crashAgents = {
  /** The Node adapter, no descendants. */
  node: agents.node,
  /** A Node agent whose grandchild, in its process group, holds its stdout and stderr (the exit sweeps it). */
  node_grandchild_in_group: crashFixture("grandchild"),
  /** A Node agent whose grandchild escaped with setsid and holds its stdout and stderr for as long as it lives. */
  node_grandchild_escaped: crashFixture("escaped"),
  /** The Python adapter, no descendants. */
  python: agents.python
}

const killQuietly = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL")
  } catch {
    // already gone
  }
}

/**
 * SIGKILL to the `Exited` event as a subscriber receives it, each round on an agent that is up and idle (it
 * answered a request, then 20 ms pass). An escaped grandchild is killed after the round, once `Exited` was seen.
 */
const crashDetection = (kind: keyof typeof crashAgents) =>
  Effect.scoped(Effect.gen(function*() {
    const agent = yield* AgentSupervisor.make({
      name: `bench-crash-${kind}`,
      ...crashAgents[kind],
      restartBackoff: 0,
      maxRestartAttempts: 1_000_000
    })
    const events = yield* agent.subscribe
    const escaped: Array<number> = []
    yield* Effect.addFinalizer(() => Effect.sync(() => escaped.forEach(killQuietly)))
    // Up and answering; the escaped grandchild of the incarnation, if any, noted to be killed.
    const answered = Effect.map(agent.handleEvent({}), (answer) => {
      if (kind === "node_grandchild_escaped") escaped.push((answer as { readonly grandchild: number }).grandchild)
    })
    const times: Array<number> = []
    for (let i = 0; i < CRASH_ROUNDS; i++) {
      yield* answered
      yield* Effect.sleep("20 millis")
      const pid = Option.getOrThrow((yield* agent.metadata).pid)
      const start = performance.now()
      process.kill(pid, "SIGKILL")
      yield* Queue.take(events).pipe(Effect.repeat({ until: (e) => e._tag === "Exited" }))
      times.push(performance.now() - start)
      escaped.forEach(killQuietly)
      yield* Queue.take(events).pipe(Effect.repeat({ until: (e) => e._tag === "StateChanged" && e.to === "RUNNING" }))
    }
    yield* answered
    const p50 = percentile(times, 0.5)
    return {
      sigkill_to_exited_ms_p50: p50,
      sigkill_to_exited_ms_p90: percentile(times, 0.9),
      target_met: p50 < CRASH_TARGET_P50_MS
    }
  }))

/** The crash section: SIGKILL to `Exited` for each kind of agent. */
const crash = Effect.gen(function*() {
  const report: Record<string, unknown> = { rounds: CRASH_ROUNDS, target_p50_ms: CRASH_TARGET_P50_MS }
  for (const kind of Object.keys(crashAgents) as Array<keyof typeof crashAgents>) {
    report[kind] = yield* crashDetection(kind)
  }
  return report
})

/** The lifecycle section of the benchmark report. */
export const lifecycle = Effect.gen(function*() {
  if (process.env.BENCH_LIFECYCLE_ONLY === "crash") return { crash: yield* crash }
  return {
    rounds: ROUNDS,
    node: yield* recovery("node"),
    python: yield* recovery("python"),
    stop_node: yield* stopDuration,
    crash: yield* crash
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

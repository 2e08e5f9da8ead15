/**
 * `npm start`: supervises a real Python agent and a real Node agent on a SQLite store, sends them requests, kills
 * one from the outside with SIGKILL, and shows it come back under its restart policy. The store file stays in
 * `.data/` (git-ignored): run the demo twice to see the second run read back what the first one left.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { AgentSupervisor, Store } from "../src/index.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const storeFile = path.join(root, ".data", "demo.sqlite")
fs.mkdirSync(path.dirname(storeFile), { recursive: true })

const python = AgentSupervisor.make({
  name: "summarizer",
  command: "python3",
  args: [
    path.join(root, "adapters", "python", "supervisor_adapter.py"),
    `${root}/examples/agents/summarize.py:handle_request`
  ],
  restartBackoff: "200 millis",
  heartbeatInterval: "2 seconds"
})

const node = AgentSupervisor.make({
  name: "classifier",
  command: process.execPath,
  args: [path.join(root, "dist", "Adapter", "node.js"), path.join(root, "examples", "agents", "classify.mjs")],
  restartBackoff: "200 millis",
  heartbeatInterval: "2 seconds"
})

const text = "Supervisors keep agents alive: a crash is restarted with backoff, a hung agent is killed and replaced."

const program = Effect.gen(function*() {
  const store = yield* Store.Store
  const startedAt = Date.now()
  yield* Console.log(`store: SQLite at ${storeFile}`)
  // Read before the agents start: starting them writes new states.
  for (const name of ["summarizer", "classifier"]) {
    const previous = yield* Store.restore(name)
    yield* Option.match(previous.state, {
      onNone: () => Console.log(`  ${name}: nothing stored yet (first run)`),
      onSome: (s) =>
        Console.log(
          `  ${name}: last run ended ${s.state} at ${new Date(s.updated_at).toISOString()} after ` +
            `${previous.restartCount} restart(s); ${previous.history.length} restart(s) on record`
        )
    })
  }
  const summarizer = yield* python
  const classifier = yield* node
  const pidOf = (agent: AgentSupervisor.AgentSupervisor) =>
    Effect.map(agent.metadata, (m) => Option.getOrElse(m.pid, () => 0))
  yield* Console.log(
    `started ${summarizer.name} (pid ${yield* pidOf(summarizer)}) and ${classifier.name} (pid ${yield* pidOf(
      classifier
    )})`
  )

  // Print every lifecycle change as it happens.
  const events = yield* Queue.unbounded<AgentSupervisor.AgentEvent>()
  for (const agent of [summarizer, classifier]) {
    const subscription = yield* agent.subscribe
    yield* Queue.take(subscription).pipe(
      Effect.flatMap((e) => Queue.offer(events, e)),
      Effect.forever,
      Effect.forkScoped
    )
  }
  const printer = yield* Queue.take(events).pipe(
    Effect.flatMap((e) =>
      e._tag === "StateChanged"
        ? Console.log(`  [event] ${e.agent}: ${e.from} -> ${e.to}`)
        : e._tag === "Exited"
        ? Console.log(`  [event] ${e.agent}: pid ${e.pid} exited (${e.signal ?? `code ${e.exitCode}`}, ${e.exitClass})`)
        : e._tag === "RestartScheduled"
        ? Console.log(`  [event] ${e.agent}: restart #${e.attempt} in ${Math.round(e.delayMillis)} ms`)
        : Effect.void
    ),
    Effect.forever,
    Effect.forkScoped
  )

  yield* Console.log("\n1. requests to both agents, concurrently")
  const [summary, sentiment] = yield* Effect.all([
    summarizer.handleEvent({ type: "data", payload: { text } }),
    classifier.handleEvent({ type: "data", payload: { text: "fast and reliable, I love it" } })
  ], { concurrency: 2 })
  yield* Console.log(`  summarizer -> ${JSON.stringify(summary)}`)
  yield* Console.log(`  classifier -> ${JSON.stringify(sentiment)}`)

  yield* Console.log("\n2. kill -9 the Python agent from outside; the supervisor restarts it")
  const oldPid = yield* pidOf(summarizer)
  const watch = yield* summarizer.subscribe
  process.kill(oldPid, "SIGKILL")
  // Wait until it runs again (a request sent before the supervisor saw the kill fails with AgentCrashError:
  // requests are never replayed unless the caller asks with `replayOnCrash`).
  yield* Queue.take(watch).pipe(
    Effect.repeat({ until: (e) => e._tag === "StateChanged" && e.to === "RUNNING" }),
    Effect.timeout("20 seconds")
  )
  const again = yield* summarizer.handleEvent({ type: "data", payload: { text: "back again after a crash" } })
  yield* Console.log(`  summarizer (new pid ${yield* pidOf(summarizer)}, was ${oldPid}) -> ${JSON.stringify(again)}`)

  yield* Console.log("\n3. health, as the supervisor sees it")
  for (const agent of [summarizer, classifier]) {
    const health = yield* agent.health
    yield* Console.log(
      `  ${agent.name}: ping ${health.latencyMillis.toFixed(2)} ms, rss ${
        Option.getOrElse(health.memoryMb, () => 0).toFixed(1)
      } MiB, ${(yield* agent.metadata).restartCount} restart(s)`
    )
  }

  yield* Console.log(`\n4. what the store recorded in this run (${storeFile})`)
  const restarts = (yield* Effect.orDie(store.restartHistory())).filter((r) => r.timestamp >= startedAt)
  for (const r of restarts) {
    yield* Console.log(`  restart: ${r.agent_name} attempt ${r.attempt} after ${r.reason} (signal ${r.signal})`)
  }
  const changes = yield* Effect.orDie(store.listMetrics({ event: "agent_state_change", since: startedAt }))
  yield* Console.log(`  ${changes.length} state changes stored`)

  yield* Console.log("\n5. shutting down (shutdown message, then SIGTERM, then SIGKILL if needed)")
  yield* Fiber.interrupt(printer)
})

// runMain: Ctrl-C (SIGINT) or SIGTERM interrupts the program, and the scope's close stops the agents as step 5
// does (shutdown message, SIGTERM, SIGKILL), their last state stored; exit 0. A failure exits 1.
program.pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(NodeContext.layer, Store.layerSqlite({ filename: storeFile }))),
  // Said once the agents have stopped and the store has taken its last writes
  Effect.zipRight(Console.log(`done: every agent stopped, nothing left running; the store is kept in ${storeFile}`)),
  Effect.onInterrupt(() => Console.log(`interrupted: every agent stopped; the store is kept in ${storeFile}`)),
  Logger.withMinimumLogLevel(LogLevel.Warning),
  NodeRuntime.runMain
)

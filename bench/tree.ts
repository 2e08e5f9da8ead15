/**
 * Supervision tree benchmarks: 500 tiny agents started and stopped under one supervisor (time and supervisor
 * memory per child), and the time for one-for-all to restart a group of 50. Exported for `bench/index.ts`;
 * runnable alone with `tsx bench/tree.ts`.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Store from "../dist/Store/Store.js"
import * as Supervisor from "../dist/Supervisor.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const tinyAgent = path.join(root, "test", "fixtures", "agents", "tiny.sh")
const echoAgent = [path.join(root, "dist", "Adapter", "node.js"), path.join(root, "bench", "agents", "echo.mjs")]
const CHILDREN = Number(process.env.BENCH_TREE_CHILDREN ?? 500)
const GROUP = Number(process.env.BENCH_TREE_GROUP ?? 50)

const tiny = (id: string) =>
  Supervisor.agent({ id, config: { name: id, command: "/bin/sh", args: [tinyAgent], heartbeatInterval: "1 hour" } })

const rssMb = () => process.memoryUsage().rss / (1024 * 1024)
const heapMb = () => process.memoryUsage().heapUsed / (1024 * 1024)

const manyChildren = Effect.gen(function*() {
  globalThis.gc?.()
  const rssBefore = rssMb()
  const heapBefore = heapMb()
  const scope = yield* Scope.make()
  const sup = yield* Supervisor.make({}).pipe(Scope.extend(scope))
  const start = performance.now()
  for (let i = 0; i < CHILDREN; i++) yield* sup.startChild(tiny(`t${i}`))
  const startMs = performance.now() - start
  globalThis.gc?.()
  const rssPerChild = (rssMb() - rssBefore) / CHILDREN
  const heapPerChild = (heapMb() - heapBefore) / CHILDREN
  const stopStart = performance.now()
  yield* Scope.close(scope, Exit.void)
  const stopMs = performance.now() - stopStart
  return {
    children: CHILDREN,
    start_all_ms: Math.round(startMs),
    start_ms_per_child: Number((startMs / CHILDREN).toFixed(2)),
    stop_all_ms: Math.round(stopMs),
    supervisor_rss_kb_per_child: Math.round(rssPerChild * 1024),
    supervisor_heap_kb_per_child: Math.round(heapPerChild * 1024)
  }
})

const groupRestart = Effect.scoped(Effect.gen(function*() {
  const children = Array.from({ length: GROUP }, (_, i) =>
    Supervisor.agent({
      id: `g${i}`,
      config: {
        name: `g${i}`,
        command: process.execPath,
        args: echoAgent,
        restartBackoff: 0,
        heartbeatInterval: "1 hour"
      }
    }))
  const sup = yield* Supervisor.make({
    strategy: "one-for-all",
    intensity: { maxRestarts: 100, window: "1 minute" },
    children
  })
  const events = yield* sup.subscribe
  const last = `g${GROUP - 1}`
  const start = performance.now()
  const first = yield* sup.whichChildren.pipe(Effect.map((children) => children.find((c) => c.id === "g0")!))
  process.kill(Option.getOrThrow(first.pid), "SIGKILL")
  // the group is back when its last child has started again
  yield* Queue.take(events).pipe(
    Effect.repeat({
      until: (e) =>
        e._tag === "Agent" && e.child === last && e.event._tag === "StateChanged" && e.event.to === "RUNNING"
    })
  )
  return { group: GROUP, one_for_all_restart_ms: Math.round(performance.now() - start) }
}))

/** The tree section of the benchmark report. */
export const tree = Effect.gen(function*() {
  return { many_children: yield* manyChildren, group_restart: yield* groupRestart }
})

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(
    tree.pipe(
      Effect.provide(Layer.merge(NodeContext.layer, Store.layerMemory)),
      Logger.withMinimumLogLevel(LogLevel.Error)
    )
  ).then(
    (report) => console.log(JSON.stringify({ tree: report }, null, 2)),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

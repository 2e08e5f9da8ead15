/**
 * What the admin API costs the agents' traffic: request latency under a steady 1,000 requests/s to a tree's
 * agent, in windows without the admin API and windows with it serving a client that reads the tree, scrapes
 * `/metrics` and follows the event stream, in turn (A, B, A, B, ...), so that both see the same machine. The ratio
 * of the two is the cost, judged against the spread between the windows without it (`verdict`). Exported for
 * `bench/index.ts`; runnable alone with `tsx --expose-gc bench/admin.ts`.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Scope from "effect/Scope"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as AdminApi from "../dist/AdminApi.js"
import * as Store from "../dist/Store/Store.js"
import * as Supervisor from "../dist/Supervisor.js"
import { quantile } from "./stats.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const echo = [path.join(root, "dist", "Adapter", "node.js"), path.join(root, "bench", "agents", "echo.mjs")]

const RATE = Number(process.env.BENCH_ADMIN_RATE ?? 1000)
const WINDOW_MS = Number(process.env.BENCH_ADMIN_WINDOW_MS ?? 3000)
const ROUNDS = Number(process.env.BENCH_ADMIN_ROUNDS ?? 3)
/** The admin client's calls per second while the API is up: tree reads and metrics scrapes, in turn. */
const ADMIN_CALLS_PER_S = Number(process.env.BENCH_ADMIN_CALLS ?? 20)
const TICK_MS = 10

const round = (n: number, digits = 2) => Number(n.toFixed(digits))

/** Requests at `RATE` per second for `WINDOW_MS`, a batch every tick, each timed alone; their latencies in µs. */
const steadyTraffic = (sup: Supervisor.Supervisor) =>
  Effect.gen(function*() {
    const micros: Array<number> = []
    const perTick = Math.max(1, Math.round(RATE * TICK_MS / 1000))
    const one = Effect.suspend(() => {
      const start = performance.now()
      return Effect.map(sup.call("echo", { n: 1 }), () => void micros.push((performance.now() - start) * 1000))
    })
    const fibers: Array<Fiber.RuntimeFiber<void, unknown>> = []
    const end = performance.now() + WINDOW_MS
    let next = performance.now()
    while (performance.now() < end) {
      for (let i = 0; i < perTick; i++) fibers.push(yield* Effect.fork(one))
      next += TICK_MS
      yield* Effect.sleep(Math.max(0, next - performance.now()))
    }
    yield* Fiber.joinAll(fibers)
    return micros.sort((a, b) => a - b)
  })

/** A client of the admin API: an event stream open the whole time, and tree reads and scrapes in turn. */
const adminClient = (url: string) =>
  Effect.gen(function*() {
    const controller = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => controller.abort()))
    const events = yield* Effect.promise(() => fetch(`${url}/api/events`, { signal: controller.signal }))
    const reader = events.body!.getReader()
    let eventBytes = 0
    const drain = async () => {
      while (true) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }))
        if (done) return
        eventBytes += value?.length ?? 0
      }
    }
    void drain()
    let calls = 0
    const call = Effect.promise(() =>
      fetch(`${url}${calls++ % 2 === 0 ? "/api/tree" : "/metrics"}`, { signal: controller.signal }).then((r) =>
        r.text()
      )
    )
    yield* call.pipe(Effect.zipRight(Effect.sleep(1000 / ADMIN_CALLS_PER_S)), Effect.forever, Effect.forkScoped)
    return { calls: () => calls, eventBytes: () => eventBytes }
  })

const summary = (micros: ReadonlyArray<number>) => ({
  requests: micros.length,
  p50_us: Math.round(quantile(micros, 0.5)),
  p99_us: Math.round(quantile(micros, 0.99))
})

/**
 * Whether the API's cost is measurable for one percentile: the windows without it set the noise (how much slower
 * the slowest of them was than the fastest, with nothing changed), and the windows with it must stay within it:
 * their median inside the range of the windows without, or the median of the same-round ratios no further above 1
 * than that noise.
 */
const verdictOf = (without: ReadonlyArray<number>, withAdmin: ReadonlyArray<number>) => {
  const sorted = [...without].sort((a, b) => a - b)
  const [fastest, slowest] = [sorted[0], sorted[sorted.length - 1]]
  const ratios = withAdmin.map((w, i) => round(w / without[i])).sort((a, b) => a - b)
  const ratio = ratios[Math.floor(ratios.length / 2)]
  const withMedian = [...withAdmin].sort((a, b) => a - b)[Math.floor(withAdmin.length / 2)]
  const noise = round(slowest / fastest - 1)
  const ratioLimit = round(1 + noise)
  const withinRange = withMedian <= slowest
  const withinNoise = ratio <= ratioLimit
  return {
    /** The spread between the windows without the API: fastest and slowest. */
    without_us: [fastest, slowest],
    with_us_median: withMedian,
    noise,
    ratio,
    ratio_limit: ratioLimit,
    within_range: withinRange,
    within_noise: withinNoise,
    met: withinRange || withinNoise
  }
}

/** The admin section of the benchmark report. */
export const admin = Effect.scoped(Effect.gen(function*() {
  const sup = yield* Supervisor.make({
    children: [Supervisor.agent({ id: "echo", config: { name: "echo", command: process.execPath, args: echo } })]
  })
  // Warm-up: the first requests pay for compilation.
  yield* steadyTraffic(sup)
  const rounds: Array<{ without: ReturnType<typeof summary>; with: ReturnType<typeof summary>; calls: number }> = []
  for (let i = 0; i < ROUNDS; i++) {
    const without = summary(yield* steadyTraffic(sup))
    const scope = yield* Scope.make()
    const server = yield* AdminApi.make({ port: 0 }).pipe(
      Effect.provideService(Supervisor.RootSupervisor, sup),
      Scope.extend(scope)
    )
    const client = yield* adminClient(server.url).pipe(Scope.extend(scope))
    const withAdmin = summary(yield* steadyTraffic(sup))
    rounds.push({ without, with: withAdmin, calls: client.calls() })
    yield* Scope.close(scope, Exit.void)
  }
  const p50 = verdictOf(rounds.map((r) => r.without.p50_us), rounds.map((r) => r.with.p50_us))
  const p99 = verdictOf(rounds.map((r) => r.without.p99_us), rounds.map((r) => r.with.p99_us))
  return {
    settings: { requests_per_s: RATE, window_ms: WINDOW_MS, rounds: ROUNDS, admin_calls_per_s: ADMIN_CALLS_PER_S },
    rounds,
    p50_with_vs_without: p50.ratio,
    p99_with_vs_without: p99.ratio,
    target: "no measurable cost: for p50 and p99 each, the median window with the API within the range of the " +
      "windows without it, or its median ratio to them <= 1 + their own noise (slowest / fastest - 1)",
    verdict: { p50, p99, met: p50.met && p99.met }
  }
}))

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(
    admin.pipe(
      Effect.provide(Layer.merge(NodeContext.layer, Store.layerMemory)),
      Logger.withMinimumLogLevel(LogLevel.Error)
    )
  ).then(
    (report) => console.log(JSON.stringify({ admin: report }, null, 2)),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

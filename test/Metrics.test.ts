/**
 * The supervisor's metrics, moved by real agents: requests by outcome with their latency and those in flight,
 * time to ready, restarts (decided by an agent or by its tree), the heartbeat's latency, misses, CPU and RSS, and
 * the store's failures and drops. Metrics are global: every test uses agents named for it alone, and the store's
 * (not per agent) are read as differences.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import { StoreError } from "../src/Errors.js"
import * as Hooks from "../src/internal/metrics/hooks.js"
import * as Spans from "../src/internal/metrics/spans.js"
import * as Metrics from "../src/Metrics.js"
import * as Writer from "../src/Store/internal/writer.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, takeUntil, TestLive } from "./support.js"

let agents = 0
/** A name no other test uses, so that the metrics' `agent` tag keeps each test's series apart. */
const unique = (what: string) => `metrics-${what}-${process.pid}-${++agents}`

const tagged = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  agent: string,
  tags: ReadonlyArray<readonly [string, string]>
) => tags.reduce((m, [key, value]) => Metric.tagged(m, key, value), Metrics.forAgent(metric, agent))

const count = (metric: Metric.Metric.Counter<number>, agent: string, ...tags: Array<readonly [string, string]>) =>
  Effect.map(Metric.value(tagged(metric, agent, tags)), (state) => state.count)

const gauge = (metric: Metric.Metric.Gauge<number>, agent: string) =>
  Effect.map(Metric.value(Metrics.forAgent(metric, agent)), (state) => state.value)

const histogram = (metric: Metric.Metric.Histogram<number>, agent: string) =>
  Metric.value(Metrics.forAgent(metric, agent))

/** Every outcome's count for `agent`, those at 0 left out. */
const outcomes = (agent: string) =>
  Effect.map(
    Effect.forEach(Metrics.requestOutcomes, (outcome) =>
      Effect.map(count(Metrics.requests, agent, ["outcome", outcome]), (n) => [outcome, n] as const)),
    (pairs) =>
      Object.fromEntries(pairs.filter(([, n]) => n > 0))
  )

/** Waits until `fiber` is suspended: a request is then registered with its process (written, below maxInFlight). */
const suspended = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function*() {
    while ((yield* Fiber.status(fiber))._tag !== "Suspended") yield* Effect.yieldNow()
  })

const isEntered = (state: string) => (event: AgentSupervisor.AgentEvent) =>
  event._tag === "StateChanged" && event.to === state

const defaultTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/** The names of the registry's series tagged with the agent `agent`. */
const seriesOf = (agent: string) =>
  Metric.globalMetricRegistry.snapshot()
    .filter((pair) => [...pair.metricKey.tags].some((tag) => tag.key === "agent" && tag.value === agent))
    .map((pair) => pair.metricKey.name)
    .sort()

describe.sequential("Metrics", () => {
  it.scopedLive("requests by outcome, their latency and those in flight; time to ready; a restart", () =>
    Effect.gen(function*() {
      const name = unique("requests")
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { name, restartBackoff: 0 }))
      assert.strictEqual((yield* histogram(Metrics.timeToReady, name)).count, 1)

      yield* agent.handleEvent({ echo: 1 })
      yield* agent.handleEvent({ echo: 2 })
      assert.strictEqual((yield* Effect.flip(agent.handleEvent({ fail: "no" })))._tag, "AgentTaskError")
      const timedOut = yield* Effect.flip(agent.handleEvent({ sleep: 30_000 }, { timeout: "100 millis" }))
      assert.strictEqual(timedOut._tag, "AgentTimeoutError")
      const badTimeout = yield* Effect.flip(agent.handleEvent({}, { timeout: "soon" as never }))
      assert.strictEqual(badTimeout._tag, "ConfigError")
      const unencodable = yield* Effect.flip(agent.handleEvent({ n: BigInt(1) }))
      assert.strictEqual(unencodable._tag, "ProtocolError")
      // The timed-out task was forgotten: nothing is in flight.
      assert.strictEqual(yield* gauge(Metrics.requestsInFlight, name), 0)

      // A task that sleeps is in flight once its caller waits; one written after it is answered meanwhile.
      const slow = yield* Effect.fork(agent.handleEvent({ sleep: 60_000 }))
      yield* suspended(slow)
      assert.strictEqual(yield* gauge(Metrics.requestsInFlight, name), 1)
      yield* agent.handleEvent({ echo: 3 })
      assert.strictEqual(yield* gauge(Metrics.requestsInFlight, name), 1)
      // Its caller goes away: no longer in flight, counted as interrupted, no latency.
      yield* Fiber.interrupt(slow)
      assert.strictEqual(yield* gauge(Metrics.requestsInFlight, name), 0)

      assert.deepStrictEqual(yield* outcomes(name), {
        ok: 3,
        task_error: 1,
        timeout: 1,
        config_error: 1,
        protocol_error: 1,
        interrupted: 1
      })
      const latency = yield* histogram(Metrics.requestDuration, name)
      assert.strictEqual(latency.count, 7)
      // The timeout alone took 100 ms.
      assert.isAtLeast(latency.sum, 0.1)
      assert.isAtLeast(latency.max, 0.1)
      assert.deepStrictEqual(
        latency.buckets.map(([bound]) => bound).filter(Number.isFinite),
        [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
      )

      // A crash: the request fails with it, the agent restarts (counted once, with its exit's class and reason),
      // and its new incarnation's start is timed.
      const events = yield* agent.subscribe
      assert.strictEqual((yield* Effect.flip(agent.handleEvent({ crash: 3 })))._tag, "AgentCrashError")
      yield* takeUntil(events, isEntered("RUNNING"))
      assert.strictEqual(yield* count(Metrics.requests, name, ["outcome", "crash"]), 1)
      assert.strictEqual(yield* count(Metrics.restarts, name, ["exit_class", "abnormal"], ["reason", "exit"]), 1)
      assert.strictEqual((yield* histogram(Metrics.timeToReady, name)).count, 2)
      yield* agent.handleEvent({ echo: 4 })
      assert.strictEqual(yield* count(Metrics.requests, name, ["outcome", "ok"]), 4)

      yield* agent.stop
      assert.strictEqual((yield* Effect.flip(agent.handleEvent({ echo: 5 })))._tag, "AgentStoppedError")
      assert.strictEqual(yield* count(Metrics.requests, name, ["outcome", "stopped"]), 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("requests to an agent that is not running: waiting for a restart, and parked", () =>
    Effect.gen(function*() {
      const waiting = unique("backoff")
      const backingOff = yield* AgentSupervisor.make(
        agentConfig("echo", { name: waiting, restartBackoff: "10 minutes" })
      )
      const events = yield* backingOff.subscribe
      yield* Effect.flip(backingOff.handleEvent({ crash: 1 }))
      yield* takeUntil(events, isEntered("RESTARTING"))
      const timedOut = yield* Effect.flip(backingOff.handleEvent({ echo: 1 }, { timeout: "50 millis" }))
      assert.strictEqual(timedOut._tag, "AgentTimeoutError")
      assert.deepStrictEqual(yield* outcomes(waiting), { crash: 1, start_timeout: 1 })
      // A caller interrupted while it waits for the restart is counted too.
      const caller = yield* Effect.fork(backingOff.handleEvent({ echo: 2 }))
      yield* suspended(caller)
      yield* Fiber.interrupt(caller)
      assert.strictEqual(yield* count(Metrics.requests, waiting, ["outcome", "interrupted"]), 1)

      const parkedName = unique("parked")
      const parked = yield* AgentSupervisor.make(agentConfig("echo", { name: parkedName, maxRestartAttempts: 0 }))
      const parkedEvents = yield* parked.subscribe
      yield* Effect.flip(parked.handleEvent({ crash: 1 }))
      yield* takeUntil(parkedEvents, (event) => event._tag === "CircuitOpened")
      const refused = yield* Effect.flip(parked.handleEvent({ echo: 1 }))
      assert.strictEqual(refused._tag, "AgentCrashError")
      assert.deepStrictEqual(yield* outcomes(parkedName), { crash: 1, circuit_open: 1 })
      assert.strictEqual(yield* count(Metrics.restarts, parkedName, ["exit_class", "abnormal"], ["reason", "exit"]), 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the heartbeat: its latency, CPU and RSS from each sample (0 once stopped), and misses", () =>
    Effect.gen(function*() {
      const name = unique("heartbeat")
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { name, heartbeatInterval: "1 second" }))
      const events = yield* agent.subscribe
      const seen = yield* takeUntil(events, (event) => event._tag === "HealthChecked")
      const last = seen[seen.length - 1]
      assert(last._tag === "HealthChecked")
      const sample = last.sample
      const latency = yield* histogram(Metrics.heartbeatLatency, name)
      assert.strictEqual(latency.count, 1)
      assert.strictEqual(latency.sum, sample.latencyMillis / 1000)
      // The supervisor's reading of the process group, else the agent's own report (the fixture says 1% and 30 MiB).
      const cpu = Option.isSome(sample.cpuPercent) ? sample.cpuPercent.value : 1
      const memoryMb = Option.getOrElse(sample.memoryMb, () => 30)
      assert.strictEqual(yield* gauge(Metrics.cpuPercent, name), cpu)
      assert.strictEqual(yield* gauge(Metrics.memoryRss, name), Math.round(memoryMb * 1024 * 1024))
      assert.isAbove(yield* gauge(Metrics.memoryRss, name), 0)
      yield* agent.stop
      assert.strictEqual(yield* gauge(Metrics.cpuPercent, name), 0)
      assert.strictEqual(yield* gauge(Metrics.memoryRss, name), 0)

      const silent = unique("no-pong")
      const mute = yield* AgentSupervisor.make(
        agentConfig("no-pong", { name: silent, heartbeatInterval: "200 millis", pingTimeout: "100 millis" })
      )
      const muteEvents = yield* mute.subscribe
      yield* takeUntil(muteEvents, (event) => event._tag === "HealthCheckFailed")
      assert.strictEqual(yield* count(Metrics.heartbeatMisses, silent), 1)
      assert.strictEqual((yield* histogram(Metrics.heartbeatLatency, silent)).count, 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a tree's restart is counted once, by the tree, with its exit's class and reason", () =>
    Effect.gen(function*() {
      const name = unique("tree")
      const sup = yield* Supervisor.make({
        children: [Supervisor.agent({ id: "child", config: agentConfig("echo", { name, restartBackoff: 0 }) })]
      })
      const events = yield* sup.subscribe
      yield* Effect.exit(sup.call("child", { crash: 2 }))
      yield* takeUntil(events, (event) => event._tag === "RestartScheduled" && event.record.child === "child")
      assert.strictEqual(yield* count(Metrics.restarts, name, ["exit_class", "abnormal"], ["reason", "exit"]), 1)
      yield* takeUntil(
        events,
        (event) => event._tag === "Agent" && event.event._tag === "StateChanged" && event.event.to === "RUNNING"
      )
      yield* sup.call("child", { echo: 1 })
      assert.strictEqual(yield* count(Metrics.restarts, name, ["exit_class", "abnormal"], ["reason", "exit"]), 1)
      assert.deepStrictEqual(yield* outcomes(name), { ok: 1, crash: 1 })
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("an agent's series leave the registry with the agent: deleted, or its tree closed; not when stopped", () =>
    Effect.gen(function*() {
      // At the release itself (the delay's own test is below)
      yield* Effect.acquireRelease(
        Effect.sync(() => Hooks.setRemovalDelay(0)),
        (before) => Effect.sync(() => Hooks.setRemovalDelay(before))
      )
      const name = unique("gone")
      const spec = Supervisor.agent({ id: "child", config: agentConfig("echo", { name, restartBackoff: 0 }) })
      const sup = yield* Supervisor.make({ children: [spec] })
      const events = yield* sup.subscribe
      yield* sup.call("child", { echo: 1 })
      // A restart, so that the tree's own series of the agent (its restarts) is there too
      yield* Effect.exit(sup.call("child", { crash: 2 }))
      yield* takeUntil(
        events,
        (event) => event._tag === "Agent" && event.event._tag === "StateChanged" && event.event.to === "RUNNING"
      )
      const made = seriesOf(name)
      assert.includeMembers(made, [
        "agent_supervisor_requests_total",
        "agent_supervisor_request_duration_seconds",
        "agent_supervisor_requests_in_flight",
        "agent_supervisor_time_to_ready_seconds",
        "agent_supervisor_restarts_total"
      ])
      // Stopped, the agent is still the tree's: its series stay, with their counts
      yield* sup.terminateChild("child")
      assert.deepStrictEqual(seriesOf(name), made)
      assert.strictEqual(yield* count(Metrics.restarts, name, ["exit_class", "abnormal"], ["reason", "exit"]), 1)
      // Deleted, it is gone: so are its series
      yield* sup.deleteChild("child")
      assert.deepStrictEqual(seriesOf(name), [])

      // Two trees with an agent of one name share its series; they go with the last of them
      const shared = unique("shared")
      const sharedSpec = Supervisor.agent({ id: "child", config: agentConfig("echo", { name: shared }) })
      const firstScope = yield* Scope.make()
      const first = yield* Supervisor.make({ children: [sharedSpec] }).pipe(Scope.extend(firstScope))
      const secondScope = yield* Scope.make()
      const second = yield* Supervisor.make({ children: [sharedSpec] }).pipe(Scope.extend(secondScope))
      yield* first.call("child", { echo: 1 })
      yield* second.call("child", { echo: 2 })
      assert.strictEqual(
        yield* count(Metrics.requests, shared, ["outcome", "ok"]),
        2,
        "one series for both agents"
      )
      yield* Scope.close(secondScope, Exit.void)
      assert.strictEqual(yield* count(Metrics.requests, shared, ["outcome", "ok"]), 2)
      // Read through Effect's own API, a series is made again in the registry: it goes too
      assert.strictEqual(yield* count(Metrics.requests, shared, ["outcome", "task_error"]), 0)
      assert.include(seriesOf(shared), "agent_supervisor_requests_total")
      yield* Scope.close(firstScope, Exit.void)
      assert.deepStrictEqual(seriesOf(shared), [])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a nested tree restarted: its agents' series stay, with their counts; gone a delay after the tree", () =>
    Effect.gen(function*() {
      const before = Hooks.setRemovalDelay(300)
      yield* Effect.addFinalizer(() => Effect.sync(() => Hooks.setRemovalDelay(before)))
      const name = unique("nested")
      const inner = Supervisor.supervisor({
        id: "inner",
        children: [Supervisor.agent({ id: "a", config: agentConfig("echo", { name }) })]
      })
      const treeScope = yield* Scope.make()
      const sup = yield* Supervisor.make({ children: [inner] }).pipe(Scope.extend(treeScope))
      const nested = yield* sup.childSupervisor("inner")
      yield* nested.call("a", { echo: 1 })
      // The nested tree is stopped and started again: its agents are made again under the same names
      yield* sup.terminateChild("inner")
      yield* sup.restartChild("inner")
      const again = yield* sup.childSupervisor("inner")
      yield* again.call("a", { echo: 2 })
      assert.strictEqual(yield* count(Metrics.requests, name, ["outcome", "ok"]), 2)
      yield* Scope.close(treeScope, Exit.void)
      // Within the delay, still there; then gone
      assert.include(seriesOf(name), "agent_supervisor_requests_total")
      const gone = yield* Effect.promise(() =>
        new Promise<boolean>((resolve) => {
          const started = Date.now()
          const poll = () => {
            if (seriesOf(name).length === 0) return resolve(true)
            if (Date.now() - started > 10_000) return resolve(false)
            setTimeout(poll, 50)
          }
          poll()
        })
      )
      assert.isTrue(gone, "the series were not removed within 10 s of the delay's end")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the store: failed and timed-out operations, and writes given up (buffer full, flush timeout, closed)", () =>
    Effect.gen(function*() {
      const storeCount = (metric: Metric.Metric.Counter<number>, ...tags: Array<readonly [string, string]>) =>
        Effect.map(
          Metric.value(tags.reduce((m, [key, value]) => Metric.tagged(m, key, value), metric)),
          (state) => state.count
        )
      const failures = (operation: string, reason: string) =>
        storeCount(Metrics.storeFailures, ["operation", operation], ["reason", reason])
      const drops = (reason: string) => storeCount(Metrics.storeDrops, ["reason", reason])
      const before = {
        failed: yield* failures("saveState", "failure"),
        timedOut: yield* failures("saveMetric", "timeout"),
        full: yield* drops("buffer_full"),
        flush: yield* drops("flush_timeout"),
        closed: yield* drops("closed")
      }
      const broken: Store.Store["Type"] = {
        saveState: () =>
          Effect.fail(new StoreError({ operation: "saveState", reason: "failure", detail: "disk on fire" })),
        saveMetric: () => Effect.never,
        recordRestart: () => Effect.void,
        getState: () => Effect.succeedNone,
        listMetrics: () => Effect.succeed([]),
        restartHistory: () => Effect.succeed([])
      }
      const state: Store.StateRecord = {
        agent_name: "metrics-store",
        state: "RUNNING",
        restart_count: 0,
        updated_at: 1
      }
      const metric = Store.stateChange({
        agent_name: "metrics-store",
        old_state: "IDLE",
        new_state: "STARTING",
        timestamp: 1
      })

      const writer = yield* Writer.make(yield* Store.resilient(broken, { timeout: "50 millis" }), { capacity: 1 })
      yield* writer.saveState(state)
      yield* writer.flush
      assert.strictEqual((yield* failures("saveState", "failure")) - before.failed, 1)
      yield* writer.saveMetric(metric)
      yield* writer.flush
      assert.strictEqual((yield* failures("saveMetric", "timeout")) - before.timedOut, 1)
      // A buffer of one: of three metrics written at once, the two oldest are dropped.
      yield* writer.saveMetric(metric)
      yield* writer.saveMetric(metric)
      yield* writer.saveMetric(metric)
      assert.strictEqual((yield* drops("buffer_full")) - before.full, 2)
      assert.strictEqual(yield* writer.dropped, 2)

      // A store that never answers: closing gives up on what is still buffered, and a write after that is lost.
      const hung: Store.Store["Type"] = { ...broken, saveState: () => Effect.never }
      const scope = yield* Scope.make()
      const closing = yield* Writer.make(yield* Store.resilient(hung, { timeout: "1 minute" }), {
        flushTimeout: "50 millis"
      })
        .pipe(
          Scope.extend(scope)
        )
      yield* closing.saveState(state)
      yield* closing.saveState(state)
      yield* Scope.close(scope, Exit.void)
      const gaveUp = yield* closing.dropped
      assert.isAtLeast(gaveUp, 1)
      assert.strictEqual((yield* drops("flush_timeout")) - before.flush, gaveUp)
      yield* closing.saveState(state)
      assert.strictEqual((yield* drops("closed")) - before.closed, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a request span only under a tracer of the application's, with the agent and the request's id", () =>
    Effect.gen(function*() {
      const name = unique("spans")
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { name }))
      const spans: Array<Tracer.Span> = []
      const recording = Tracer.make({
        span: (...args) => {
          const span = defaultTracer.span(...args)
          spans.push(span)
          return span
        },
        context: (f) => f()
      })
      // Under Effect's default tracer, requests go without a span (it would go nowhere); so under the default
      // tracer of another copy of `effect` (another object, the same code).
      const tracing = Effect.withFiberRuntime((fiber) => Effect.succeed(Spans.isTracing(fiber)))
      const otherCopysDefault = Tracer.make({ span: defaultTracer.span, context: defaultTracer.context })
      assert.isFalse(yield* tracing)
      assert.isFalse(yield* Effect.withTracer(tracing, otherCopysDefault))
      assert.isTrue(yield* Effect.withTracer(tracing, recording))
      // Under the application's tracer: one span per request, named, with the agent and the id it was sent under;
      // the caller's own span gets no request id.
      yield* agent.handleEvent({ echo: 2 }).pipe(Effect.withSpan("caller"), Effect.withTracer(recording))
      const request = spans.find((span) => span.name === "AgentSupervisor.handleEvent")
      assert.isDefined(request)
      assert.strictEqual(request!.attributes.get("agent"), name)
      assert.match(String(request!.attributes.get("request.id")), /^\d+$/)
      assert.strictEqual(request!.status._tag, "Ended")
      const caller = spans.find((span) => span.name === "caller")!
      assert.strictEqual(Option.getOrUndefined(request!.parent)?.spanId, caller.spanId)
      assert.isFalse(caller.attributes.has("request.id"))
      // A failed request's span ends failed.
      yield* Effect.flip(agent.handleEvent({ fail: "no" })).pipe(Effect.withTracer(recording))
      const failed = spans.filter((span) => span.name === "AgentSupervisor.handleEvent")[1]
      assert(failed.status._tag === "Ended")
      assert.isTrue(Exit.isFailure(failed.status.exit))
    }).pipe(Effect.provide(TestLive)))
})

import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import type { AgentState } from "../../src/Agent/State.js"
import * as Store from "../../src/Store/Store.js"
import {
  adjustUntilDone,
  agentConfig,
  closeableScope,
  drain,
  eventually,
  failureOf,
  groupMembers,
  isAlive,
  TestLive
} from "../support.js"

type Event = AgentSupervisor.AgentEvent

/** Takes events until one matches; returns it and everything seen on the way. */
const waitFor = <E extends Event>(
  queue: Queue.Dequeue<Event>,
  match: (event: Event) => event is E,
  seen: Array<Event> = []
): Effect.Effect<E> =>
  Effect.gen(function*() {
    while (true) {
      const event = yield* Queue.take(queue)
      seen.push(event)
      if (match(event)) return event
    }
  })

const isState = (to: AgentState) => (event: Event): event is Extract<Event, { _tag: "StateChanged" }> =>
  event._tag === "StateChanged" && event.to === to

const transitionsOf = (events: ReadonlyArray<Event>) =>
  events.flatMap((event) => event._tag === "StateChanged" ? [`${event.from}->${event.to}`] : [])

const pidOf = (agent: AgentSupervisor.AgentSupervisor) => Effect.map(agent.metadata, (m) => Option.getOrThrow(m.pid))

describe.sequential("AgentSupervisor", () => {
  it.scopedLive("make starts the agent: IDLE -> STARTING -> RUNNING, persisted in the store", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      const agent = yield* AgentSupervisor.make(agentConfig("echo"))
      assert.strictEqual(yield* agent.state, "RUNNING")
      assert.deepStrictEqual(yield* agent.handleEvent({ echo: "hi" }), "hi")
      const meta = yield* agent.metadata
      assert.isTrue(isAlive(Option.getOrThrow(meta.pid)))
      assert.strictEqual(meta.restartCount, 0)
      yield* eventually("the state change is written", () => {
        const state = Effect.runSync(Effect.orDie(store.getState(agent.name)))
        return Option.isSome(state) && state.value.state === "RUNNING"
      })
      const changes = yield* store.listMetrics({ agent: agent.name, event: "agent_state_change" })
      assert.deepStrictEqual(
        changes.map((m) => `${m.old_state}->${m.new_state}`).reverse(),
        ["IDLE->STARTING", "STARTING->RUNNING"]
      )
    }).pipe(Effect.provide(Layer.merge(TestLive, Store.layerMemory))))

  it.scopedLive("stop: RUNNING -> STOPPING -> STOPPED, the group is gone, requests fail with AgentStoppedError", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo"))
      const events = yield* agent.subscribe
      const pid = yield* pidOf(agent)
      const pending = yield* Effect.fork(agent.handleEvent({ sleep: 60_000 }))
      yield* eventually("the request is in flight", () => Effect.runSync(agent.metadata).inFlight === 1)
      yield* agent.stop
      assert.strictEqual(yield* agent.state, "STOPPED")
      const seen: Array<Event> = []
      yield* waitFor(events, isState("STOPPED"), seen)
      assert.deepStrictEqual(transitionsOf(seen), ["RUNNING->STOPPING", "STOPPING->STOPPED"])
      assert.deepStrictEqual(groupMembers(pid), [])
      assert.strictEqual(failureOf(yield* Fiber.await(pending))._tag, "AgentStoppedError")
      assert.strictEqual(failureOf(yield* Effect.exit(agent.handleEvent({})))._tag, "AgentStoppedError")
      // and it can start again
      yield* agent.start
      assert.strictEqual(yield* agent.state, "RUNNING")
      assert.notStrictEqual(yield* pidOf(agent), pid)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("crash: RUNNING -> CRASHED -> RESTARTING -> STARTING -> RUNNING with a new process", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { restartBackoff: 0 }))
      const events = yield* agent.subscribe
      const pid = yield* pidOf(agent)
      const crash = failureOf(yield* Effect.exit(agent.handleEvent({ crash: 9 })))
      assert.strictEqual(crash._tag, "AgentCrashError")
      const seen: Array<Event> = []
      yield* waitFor(events, isState("RUNNING"), seen)
      assert.deepStrictEqual(transitionsOf(seen), [
        "RUNNING->CRASHED",
        "CRASHED->RESTARTING",
        "RESTARTING->STARTING",
        "STARTING->RUNNING"
      ])
      const exited = seen.find((e) => e._tag === "Exited")
      assert.deepStrictEqual(exited && exited._tag === "Exited" ? [exited.exitCode, exited.exitClass] : [], [
        9,
        "abnormal"
      ])
      assert.notStrictEqual(yield* pidOf(agent), pid)
      assert.strictEqual((yield* agent.metadata).restartCount, 1)
      assert.strictEqual(yield* agent.handleEvent({ echo: "back" }), "back")
    }).pipe(Effect.provide(TestLive)))

  it.scoped("restart waits its backoff on the Clock: nothing starts before the delay passes", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { restartBackoff: "10 seconds", jitter: 0 }))
      const events = yield* agent.subscribe
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      const scheduled = yield* waitFor(
        events,
        (e): e is Extract<Event, { _tag: "RestartScheduled" }> => e._tag === "RestartScheduled"
      )
      assert.strictEqual(scheduled.delayMillis, 10_000)
      assert.strictEqual(scheduled.attempt, 1)
      yield* TestClock.adjust("9999 millis")
      assert.strictEqual(yield* agent.state, "RESTARTING")
      yield* TestClock.adjust("1 millis")
      yield* waitFor(events, isState("RUNNING"))
    }).pipe(Effect.provide(TestLive)))

  it.scoped("backoff doubles on consecutive failures and resets after a stable period of resetAfter", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(
        agentConfig("echo", { restartBackoff: "1 second", jitter: 0, resetAfter: "1 minute", maxRestartAttempts: 10 })
      )
      const events = yield* agent.subscribe
      const crashAndRestart = Effect.gen(function*() {
        yield* Effect.exit(agent.handleEvent({ crash: 1 }))
        const scheduled = yield* waitFor(
          events,
          (e): e is Extract<Event, { _tag: "RestartScheduled" }> => e._tag === "RestartScheduled"
        )
        yield* TestClock.adjust(scheduled.delayMillis)
        yield* waitFor(events, isState("RUNNING"))
        return [scheduled.attempt, scheduled.delayMillis]
      })
      assert.deepStrictEqual(yield* crashAndRestart, [1, 1000])
      assert.deepStrictEqual(yield* crashAndRestart, [2, 2000])
      assert.deepStrictEqual(yield* crashAndRestart, [3, 4000])
      yield* TestClock.adjust("59 seconds") // not yet stable for a minute
      assert.deepStrictEqual(yield* crashAndRestart, [4, 8000])
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* crashAndRestart, [1, 1000])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the circuit opens after maxRestartAttempts; requests fail at once; a manual restart closes it", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agent-circuit-"))
      const fixed = path.join(dir, "fixed")
      const config = agentConfig("crash-unless", { restartBackoff: 0, maxRestartAttempts: 2 })
      // The first start must succeed, so the file exists at first and goes away once the agent runs.
      fs.writeFileSync(fixed, "")
      const agent = yield* AgentSupervisor.make({ ...config, args: [...config.args!, fixed] })
      const events = yield* agent.subscribe
      fs.rmSync(fixed)
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      const seen: Array<Event> = []
      const opened = yield* waitFor(
        events,
        (e): e is Extract<Event, { _tag: "CircuitOpened" }> => e._tag === "CircuitOpened",
        seen
      )
      assert.strictEqual(opened.failures, 3)
      assert.strictEqual(seen.filter((e) => e._tag === "RestartScheduled").length, 2)
      assert.strictEqual(yield* agent.state, "CRASHED")
      const meta = yield* agent.metadata
      assert.isTrue(meta.circuitOpen)
      const error = failureOf(yield* Effect.exit(agent.handleEvent({ echo: 1 }, { timeout: "1 minute" })))
      assert.strictEqual(error._tag, "AgentCrashError")
      if (error._tag === "AgentCrashError") assert.strictEqual(error.reason, "circuit_open")
      fs.writeFileSync(fixed, "")
      yield* agent.restart
      const after = yield* agent.metadata
      assert.deepStrictEqual([after.state, after.circuitOpen, after.consecutiveFailures], ["RUNNING", false, 0])
      assert.strictEqual(yield* agent.handleEvent({ echo: 1 }), 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a hung agent (answers no pings) is killed and restarted with reason heartbeat", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(
        agentConfig("no-pong", {
          heartbeatInterval: "100 millis",
          pingTimeout: "100 millis",
          unhealthyAfter: 2,
          restartBackoff: 0
        })
      )
      const events = yield* agent.subscribe
      const pid = yield* pidOf(agent)
      const seen: Array<Event> = []
      const exited = yield* waitFor(events, (e): e is Extract<Event, { _tag: "Exited" }> => e._tag === "Exited", seen)
      assert.deepStrictEqual([exited.reason, exited.signal, exited.pid], ["heartbeat", "SIGKILL", pid])
      assert.deepStrictEqual(seen.filter((e) => e._tag === "HealthCheckFailed").map((e) => (e as any).missed), [1, 2])
      yield* waitFor(events, isState("RUNNING"))
      assert.notStrictEqual(yield* pidOf(agent), pid)
      assert.strictEqual(yield* agent.handleEvent({ echo: "alive" }), "alive")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a busy agent that answers pings stays healthy, with latency and /proc readings", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(
        agentConfig("echo", { heartbeatInterval: "50 millis", pingTimeout: "1 second", unhealthyAfter: 1 })
      )
      const events = yield* agent.subscribe
      const busy = yield* Effect.fork(
        Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], () => agent.handleEvent({ sleep: 400 }), { concurrency: "unbounded" })
      )
      const checks: Array<Extract<Event, { _tag: "HealthChecked" }>> = []
      while (checks.length < 3) {
        checks.push(
          yield* waitFor(events, (e): e is Extract<Event, { _tag: "HealthChecked" }> => e._tag === "HealthChecked")
        )
      }
      yield* Fiber.join(busy)
      const last = checks[checks.length - 1].sample
      assert.isTrue(Option.isSome(last.memoryMb) && last.memoryMb.value > 1)
      assert.isTrue(Option.isSome(last.cpuPercent))
      // from the first beat on (its average since the spawn): `status` has a CPU% for a fresh agent
      assert.isTrue(checks.every((check) => Option.isSome(check.sample.cpuPercent)))
      assert.isTrue(Option.isSome(last.report))
      assert.strictEqual((yield* agent.metadata).restartCount, 0)
      const now = yield* agent.health
      assert.isAtLeast(now.latencyMillis, 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("lastHealth is the running incarnation's: none once stopped, the new pid's after a start", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { heartbeatInterval: "50 millis" }))
      const events = yield* agent.subscribe
      const beat = waitFor(events, (e): e is Extract<Event, { _tag: "HealthChecked" }> => e._tag === "HealthChecked")
      const first = (yield* beat).sample
      assert.strictEqual(Option.getOrThrow((yield* agent.metadata).lastHealth).pid, first.pid)
      yield* agent.stop
      assert.isTrue(Option.isNone((yield* agent.metadata).lastHealth))
      yield* agent.start
      const pid = yield* pidOf(agent)
      assert.notStrictEqual(pid, first.pid)
      // Until the new incarnation's first beat: none, never the old process's
      const before = (yield* agent.metadata).lastHealth
      assert.isTrue(Option.isNone(before) || before.value.pid === pid, String(before))
      while ((yield* beat).sample.pid !== pid);
      assert.strictEqual(Option.getOrThrow((yield* agent.metadata).lastHealth).pid, pid)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("many callers on a crashed agent: one new process, and they all get answers", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { restartBackoff: "300 millis", jitter: 0 }))
      const events = yield* agent.subscribe
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      yield* waitFor(events, isState("RESTARTING"))
      const results = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => agent.handleEvent({ echo: i }),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(results, Array.from({ length: 50 }, (_, i) => i))
      // Concurrent manual starts on a running agent change nothing.
      yield* Effect.all([agent.start, agent.start, agent.start], { concurrency: "unbounded" })
      yield* drain(events)
      yield* Effect.all(Array.from({ length: 3 }, () => agent.stop), { concurrency: "unbounded" })
      yield* Effect.all(Array.from({ length: 10 }, () => agent.start), { concurrency: "unbounded" })
      const seen = yield* drain(events)
      assert.deepStrictEqual(transitionsOf(seen), [
        "RUNNING->STOPPING",
        "STOPPING->STOPPED",
        "STOPPED->STARTING",
        "STARTING->RUNNING"
      ])
      assert.strictEqual(groupMembers(yield* pidOf(agent)).length, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a start that a stop ends fails with AgentStoppedError saying its start did not complete", () =>
    Effect.gen(function*() {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "start-stop-")), "ready")
      fs.writeFileSync(file, "")
      const config = agentConfig("no-ready-unless")
      const agent = yield* AgentSupervisor.make({ ...config, args: [...config.args!, file] })
      const events = yield* agent.subscribe
      yield* agent.stop
      fs.rmSync(file) // the next start hangs before ready
      const starting = yield* Effect.fork(agent.start)
      yield* waitFor(events, isState("STARTING"))
      yield* agent.stop
      const error = failureOf(yield* Fiber.await(starting))
      assert.deepInclude(error, { _tag: "AgentStoppedError", during: "start" })
      assert.strictEqual(
        error.message,
        `Agent "test-no-ready-unless" was stopped while it started: its start did not complete`
      )
      assert.include(error.remediation, "start it again if it should run")
      fs.rmSync(path.dirname(file), { recursive: true })
    }).pipe(Effect.provide(TestLive)))

  it.scoped("stop during a restart backoff: STOPPED at once and nothing starts later", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { restartBackoff: "1 minute" }))
      const events = yield* agent.subscribe
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      yield* waitFor(events, isState("RESTARTING"))
      const waiting = yield* Effect.fork(agent.handleEvent({ echo: 1 }, { timeout: "10 minutes" }))
      yield* agent.stop
      assert.strictEqual(yield* agent.state, "STOPPED")
      assert.strictEqual(failureOf(yield* Fiber.await(waiting))._tag, "AgentStoppedError")
      yield* TestClock.adjust("5 minutes")
      assert.strictEqual(yield* agent.state, "STOPPED")
      assert.isTrue(Option.isNone((yield* agent.metadata).pid))
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a request during a restart waits for RUNNING, bounded by its own timeout", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { restartBackoff: "1 minute", jitter: 0 }))
      const events = yield* agent.subscribe
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      yield* waitFor(events, isState("RESTARTING"))
      const short = yield* Effect.fork(agent.handleEvent({ echo: "short" }, { timeout: "10 seconds" }))
      const long = yield* Effect.fork(agent.handleEvent({ echo: "long" }, { timeout: "2 minutes" }))
      yield* TestClock.adjust("10 seconds")
      const error = failureOf(yield* Fiber.await(short))
      assert.strictEqual(error._tag, "AgentTimeoutError")
      yield* TestClock.adjust("50 seconds")
      assert.strictEqual(yield* Fiber.join(long), "long")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("replayOnCrash sends the request again to the next incarnation; by default it is not replayed", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { restartBackoff: 0 }))
      const events = yield* agent.subscribe
      const first = failureOf(yield* Effect.exit(agent.handleEvent({ crash: 1 })))
      assert.strictEqual(first._tag, "AgentCrashError")
      yield* waitFor(events, isState("RUNNING"))
      const pid = yield* pidOf(agent)
      const replayed = yield* Effect.fork(agent.handleEvent({ echo: "again", sleep: 200 }, { replayOnCrash: true }))
      yield* eventually("the request is in flight", () => Effect.runSync(agent.metadata).inFlight === 1)
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      assert.strictEqual(yield* Fiber.join(replayed), "again")
      assert.notStrictEqual(yield* pidOf(agent), pid)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a first start that fails fails make with AgentStartupError and leaves nothing running", () =>
    Effect.gen(function*() {
      const error = failureOf(yield* Effect.exit(AgentSupervisor.make(agentConfig("exit-at-start"))))
      assert.strictEqual(error._tag, "AgentStartupError")
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a store that hangs never slows supervision; closing waits for it only up to the flush bound", () =>
    Effect.gen(function*() {
      const called = yield* Deferred.make<void>()
      const hang = () => Deferred.succeed(called, void 0).pipe(Effect.zipRight(Effect.never))
      const hanging = Layer.succeed(Store.Store, {
        saveState: hang,
        saveMetric: hang,
        recordRestart: hang,
        getState: hang,
        listMetrics: hang,
        restartHistory: hang
      })
      const scope = yield* closeableScope
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { restartBackoff: 0 })).pipe(
        Effect.provide(hanging),
        Scope.extend(scope)
      )
      yield* Deferred.await(called) // the store is being written to, and hangs
      assert.strictEqual(yield* agent.handleEvent({ echo: 1 }), 1)
      const events = yield* agent.subscribe
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      yield* waitFor(events, isState("RUNNING"))
      assert.strictEqual(yield* agent.handleEvent({ echo: 2 }), 2)
      // closing waits at most the flush bound for the hanging store
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* adjustUntilDone(closing)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a store that throws never fails supervision", () =>
    Effect.gen(function*() {
      const boom = () => {
        throw new Error("store exploded")
      }
      const throwing = Layer.succeed(Store.Store, {
        saveState: boom,
        saveMetric: boom,
        recordRestart: boom,
        getState: boom,
        listMetrics: boom,
        restartHistory: boom
      })
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { restartBackoff: 0 })).pipe(
        Effect.provide(throwing)
      )
      const events = yield* agent.subscribe
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      yield* waitFor(events, isState("RUNNING"))
      assert.strictEqual(yield* agent.handleEvent({ echo: 3 }), 3)
    }).pipe(Effect.provide(TestLive)))
})

/**
 * Regression tests for issue 16 (hardening): each test is written from the description of what went
 * wrong, with real agent processes, and synchronised on events, Deferreds and the agent's own log file.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as path from "node:path"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as Config from "../../src/Agent/Config.js"
import * as Owned from "../../src/Agent/internal/owned.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import * as RestartPolicy from "../../src/Agent/RestartPolicy.js"
import type { AgentState } from "../../src/Agent/State.js"
import type { AgentTimeoutError } from "../../src/Errors.js"
import * as Store from "../../src/Store/Store.js"
import {
  agentConfig,
  closeableScope,
  eventually,
  eventuallyEffect,
  failStartUnless,
  failureOf,
  fixture,
  groupMembers,
  isAlive,
  sleepLive,
  tempDir,
  TestLive
} from "../support.js"

type Event = AgentSupervisor.AgentEvent
type EventOf<Tag extends Event["_tag"]> = Extract<Event, { _tag: Tag }>

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

const is = <Tag extends Event["_tag"]>(tag: Tag) => (event: Event): event is EventOf<Tag> => event._tag === tag

const isState = (to: AgentState) => (event: Event): event is EventOf<"StateChanged"> =>
  event._tag === "StateChanged" && event.to === to

const pidOf = (agent: AgentSupervisor.AgentSupervisor) => Effect.map(agent.metadata, (m) => Option.getOrThrow(m.pid))

/**
 * The hardening fixture (test/fixtures/agents/hardening.mjs): cancellable tasks, a draining shutdown, and every
 * message it receives appended to `log` as "PID WHAT".
 */
const hardeningAgent = (
  mode: string,
  log: string,
  overrides: Partial<Config.AgentConfigInput> = {},
  extraArgs: ReadonlyArray<string> = []
): Config.AgentConfigInput => ({
  ...agentConfig(mode, overrides),
  name: `hardening-${mode}`,
  args: [fixture("agents", "hardening.mjs"), mode, log, ...extraArgs],
  ...overrides
})

/** What the fixture logged: [pid, what] per line. */
const logged = (log: string): Array<readonly [pid: number, what: string]> =>
  fs.existsSync(log)
    ? fs.readFileSync(log, "utf8").split("\n").filter((line) => line !== "").map((line) => {
      const space = line.indexOf(" ")
      return [Number(line.slice(0, space)), line.slice(space + 1)] as const
    })
    : []

/** A synchronous busy loop: the host's event loop is blocked (a GC pause, a big parse) for `millis`. */
const busy = (millis: number): void => {
  const until = performance.now() + millis
  while (performance.now() < until) {
    // spin
  }
}

/** A small seeded PRNG (mulberry32): the random test draws the same moments in every run, scheduling aside. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Live processes whose command line contains `marker`. */
const processesWith = (marker: string): Array<number> =>
  fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker) && isAlive(pid)
    } catch {
      return false
    }
  })

/** Lets Node deliver what is already queued (I/O callbacks, error events of failed writes) before looking. */
const settleEventLoop = Effect.promise(() =>
  new Promise<void>((resolve) => setImmediate(() => setImmediate(() => setTimeout(resolve, 50))))
)

interface LogLine {
  readonly level: string
  readonly message: string
  readonly agent: unknown
}

/** A logger that keeps every line (all levels) with its `agent` annotation, and the layer that installs it. */
const collectLogs = () => {
  const lines: Array<LogLine> = []
  const collector = Logger.make(({ annotations, logLevel, message }) => {
    lines.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message.map(String).join(" ") : String(message),
      agent: Option.getOrUndefined(HashMap.get(annotations, "agent"))
    })
  })
  const layer = Layer.mergeAll(
    NodeContext.layer,
    Logger.replace(Logger.defaultLogger, collector),
    Logger.minimumLogLevel(LogLevel.All)
  )
  return { lines, layer }
}

const hangingStore = (called: Deferred.Deferred<void>) => {
  const hang = () => Deferred.succeed(called, void 0).pipe(Effect.zipRight(Effect.never))
  return Layer.succeed(Store.Store, {
    saveState: hang,
    saveMetric: hang,
    recordRestart: hang,
    getState: hang,
    listMetrics: hang,
    restartHistory: hang
  })
}

describe.sequential("hardening (issue 16)", () => {
  // ---- 1: nothing the library does may crash the host process ----

  it.scopedLive(
    "1: hundreds of agents that die right after ready, restarted every 10 ms, stopped at random moments under " +
      "busy loops: no uncaught exception, no process left",
    () =>
      Effect.gen(function*() {
        // Counted on `uncaughtExceptionMonitor`: it fires for every uncaught exception, before any handler (vitest's
        // own, or a capture callback that would keep `uncaughtException` listeners from being called).
        const uncaught: Array<unknown> = []
        const onUncaught = (error: unknown) => void uncaught.push(error)
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            process.on("uncaughtExceptionMonitor", onUncaught)
            process.on("unhandledRejection", onUncaught)
          }),
          () =>
            Effect.sync(() => {
              process.off("uncaughtExceptionMonitor", onUncaught)
              process.off("unhandledRejection", onUncaught)
            })
        )
        const dir = yield* tempDir("epipe")
        // In every agent's command line, so that whatever it leaves behind can be found in /proc.
        const marker = `epipe-${process.pid}-${Date.now()}`
        const ready = `printf '%s\\n' '{"type":"ready","protocol":1}'`
        /**
         * A shell agent (starts in a few ms, so hundreds fit in the test): its first incarnation is ready and
         * exits 20 ms later; each later one, by its pid's parity, either does the same or exits 10 ms after the
         * spawn, before ready (a restart attempt that fails). It never reads stdin: whatever is written to it after
         * its exit is written to a dead pipe.
         */
        const config = (name: string): Config.AgentConfigInput => {
          const first = path.join(dir, name)
          return {
            name,
            command: "/bin/sh",
            args: [
              "-c",
              `# ${marker}\n` +
              `if [ ! -e '${first}' ]; then : > '${first}'; ${ready}; sleep 0.02; exit 1; fi\n` +
              `if [ $(($$ % 2)) = 0 ]; then ${ready}; sleep 0.02; else sleep 0.01; fi\n` +
              `exit 1`
            ],
            restartBackoff: "10 millis",
            backoffFactor: 1,
            jitter: 0,
            maxRestartAttempts: 1_000_000,
            startupTimeout: "10 seconds",
            gracefulTimeout: "2 seconds",
            sigtermTimeout: "2 seconds"
          }
        }
        const seed = 0x16_0001
        const random = prng(seed)
        const rounds = 10
        const perRound = 10
        let spawned = 0
        for (let round = 0; round < rounds; round++) {
          const scope = yield* closeableScope
          const agents = yield* Effect.forEach(
            Array.from({ length: perRound }, (_, i) => `epipe-${round}-${i}`),
            (name) => AgentSupervisor.make(config(name)).pipe(Scope.extend(scope)),
            { concurrency: "unbounded" }
          )
          const subscriptions = yield* Effect.forEach(agents, (agent) => agent.subscribe.pipe(Scope.extend(scope)))
          // Let them crash-loop for a random while, then block the event loop: meanwhile processes exit, and their
          // exits (and their pipes' errors) wait unseen until the loop is free again.
          yield* sleepLive(50 + Math.floor(random() * 150))
          const blockFor = round % 4 === 0 ? 1000 : 50 + Math.floor(random() * 200)
          const how = round % 3
          if (how === 0) {
            // The scope closes right after the busy loop (each agent stopped in turn, as an application exits).
            yield* Effect.sync(() => busy(blockFor)).pipe(Effect.zipRight(Scope.close(scope, Exit.void)))
          } else if (how === 1) {
            // Every agent stopped at once right after the busy loop: all of them write `shutdown` before Node has
            // seen any of their exits.
            yield* Effect.sync(() => busy(blockFor)).pipe(
              Effect.zipRight(Effect.forEach(agents, (agent) => agent.stop, { concurrency: "unbounded" }))
            )
            yield* Scope.close(scope, Exit.void)
          } else {
            // Each agent stopped right after a restart attempt whose process exits before ready: wait for such a
            // spawn (odd pid), block past its death, stop.
            yield* Effect.forEach(
              agents,
              (agent, i) =>
                Effect.gen(function*() {
                  yield* waitFor(
                    subscriptions[i],
                    (e): e is EventOf<"Spawned"> => e._tag === "Spawned" && e.pid % 2 === 1
                  ).pipe(Effect.timeoutOption("5 seconds"))
                  yield* Effect.sync(() => busy(15 + Math.floor(random() * 20))).pipe(Effect.zipRight(agent.stop))
                }),
              { concurrency: "unbounded" }
            )
            yield* Effect.sync(() => busy(blockFor))
            yield* Scope.close(scope, Exit.void)
          }
          for (const agent of agents) {
            assert.strictEqual(yield* agent.state, "STOPPED")
            spawned += (yield* agent.metadata).incarnations
          }
        }
        yield* eventually("no agent process is left", () => processesWith(marker).length === 0)
        yield* settleEventLoop
        const described = uncaught.slice(0, 3).map((e) => e instanceof Error ? e.stack : String(e)).join("\n")
        assert.strictEqual(uncaught.length, 0, `seed ${seed}: uncaught exceptions:\n${described}`)
        // The load the test claims did happen: agents were restarted (about 2 to 4 processes per agent, fewer on a
        // loaded machine, where restarts are slower).
        assert.isAtLeast(spawned, rounds * perRound * 1.5, `only ${spawned} processes spawned`)
      }).pipe(Effect.provide(TestLive)),
    { timeout: 60_000 }
  )

  // ---- 3: a retry right after a crash reaches the new incarnation ----

  it.scopedLive("3: a retry at once after a crash waits for the restart and succeeds on the new incarnation", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("retry")
      const agent = yield* AgentSupervisor.make(
        hardeningAgent("crash-first-task-unless", "-", { restartBackoff: "50 millis", jitter: 0 }, [
          path.join(dir, "crashed")
        ])
      )
      const firstPid = yield* pidOf(agent)
      let attempts = 0
      const failures: Array<string> = []
      const result = yield* Effect.suspend(() => {
        attempts++
        return agent.handleEvent({ echo: "again" })
      }).pipe(
        Effect.tapError((error) => Effect.sync(() => failures.push(error._tag))),
        Effect.retry({ times: 1000 })
      )
      const reply = result as { pid: number; echo: string }
      assert.strictEqual(reply.echo, "again")
      assert.notStrictEqual(reply.pid, firstPid)
      assert.strictEqual(reply.pid, yield* pidOf(agent))
      // The crash itself is the only failure: the retries wait for the new incarnation instead of being refused.
      assert.strictEqual(failures[0], "AgentCrashError")
      assert.isBelow(attempts, 1000)
      assert.isAtMost(attempts, 3, `attempts: ${attempts}, failures: ${failures.join(", ")}`)
    }).pipe(Effect.provide(TestLive)))

  // ---- 13: a reply longer than maxMessageBytes fails its request at once ----

  it.scoped("13: a 2 MiB reply over maxMessageBytes 1 MiB fails its request at once with ProtocolError too_long", () =>
    Effect.gen(function*() {
      // Under TestClock, the 30 s requestTimeout cannot fire: the request can only end by the over-long reply.
      const agent = yield* AgentSupervisor.make(
        agentConfig("echo", { maxMessageBytes: 1024 * 1024, requestTimeout: "30 seconds" })
      )
      const started = yield* Clock.currentTimeMillis
      const request = yield* Effect.fork(Effect.exit(agent.handleEvent({ bytes: 2 * 1024 * 1024 })))
      // The live sleep is only a guard, so that a regression fails with a message rather than at the test's timeout.
      const settled = yield* Fiber.await(request).pipe(
        Effect.as(true),
        Effect.race(Effect.as(sleepLive("20 seconds"), false))
      )
      assert.isTrue(settled, "the request was not failed at once: it waits for its requestTimeout")
      assert.strictEqual(yield* Clock.currentTimeMillis, started) // no timeout could have fired
      const error = failureOf(yield* Fiber.join(request))
      assert.strictEqual(error._tag, "ProtocolError")
      if (error._tag !== "ProtocolError") return
      assert.strictEqual(error.reason, "too_long")
      assert.include(error.message, String(1024 * 1024))
      const size = Number(/ is (\d+) bytes/.exec(error.message)?.[1])
      assert.isAtLeast(size, 2 * 1024 * 1024, error.message)
      assert.isBelow(size, 2 * 1024 * 1024 + 100, error.message)
      // The agent goes on serving; the discarded line is counted.
      assert.strictEqual(yield* agent.handleEvent({ echo: "still here" }), "still here")
      assert.strictEqual((yield* agent.metadata).protocolErrors, 1)
    }).pipe(Effect.provide(TestLive)))

  // ---- 14: stopping a busy agent tells it to drop its work ----

  it.scopedLive("14: stopping a busy agent sends cancel for each request in flight before shutdown: a graceful exit", () =>
    Effect.gen(function*() {
      const log = path.join(yield* tempDir("busy-stop"), "agent.log")
      // The fixture drains its tasks on shutdown, as the adapters do: uncancelled 30 s tasks would outlast the
      // 10 s graceful period and end in SIGTERM.
      const agent = yield* AgentSupervisor.make(
        hardeningAgent("serve", log, { gracefulTimeout: "10 seconds", sigtermTimeout: "5 seconds" })
      )
      const events = yield* agent.subscribe
      const pid = yield* pidOf(agent)
      const tasks = yield* Effect.fork(
        Effect.forEach(
          [1, 2, 3],
          (i) => Effect.exit(agent.handleEvent({ sleep: 30_000, marker: `long-${i}` })),
          { concurrency: "unbounded" }
        )
      )
      const taskIds = () => logged(log).flatMap(([, what]) => what.startsWith("task ") ? [what.split(" ")[1]] : [])
      yield* eventually("the agent has the three tasks", () => taskIds().length === 3)
      yield* agent.stop
      const exited = yield* waitFor(events, is("Exited"))
      assert.deepStrictEqual(
        [exited.pid, exited.exitCode, exited.signal, exited.exitClass],
        [pid, 0, null, "shutdown"],
        "the agent was not left to exit gracefully"
      )
      for (const exit of yield* Fiber.join(tasks)) assert.strictEqual(failureOf(exit)._tag, "AgentStoppedError")
      // What the agent got, in order: its three tasks, a cancel for each, then shutdown with nothing left to drain.
      const seen = logged(log).map(([, what]) => what).filter((what) => what !== "ready" && !what.startsWith("task "))
      const cancels = seen.slice(0, 3)
      assert.deepStrictEqual([...cancels].sort(), taskIds().map((id) => `cancel ${id}`).sort(), seen.join("\n"))
      assert.deepStrictEqual(seen.slice(3), ["shutdown 0", "exit 0"], seen.join("\n"))
    }).pipe(Effect.provide(TestLive)))

  // ---- 15: views never disagree with decisions ----

  it.scoped("15: metadata.consecutiveFailures reads 0 once the agent has run resetAfter, as the next decision does", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(
        agentConfig("echo", { restartBackoff: "1 second", jitter: 0, resetAfter: "1 minute", maxRestartAttempts: 10 })
      )
      const events = yield* agent.subscribe
      const crashAndRestart = Effect.gen(function*() {
        yield* Effect.exit(agent.handleEvent({ crash: 1 }))
        const scheduled = yield* waitFor(events, is("RestartScheduled"))
        yield* TestClock.adjust(scheduled.delayMillis)
        yield* waitFor(events, isState("RUNNING"))
        return scheduled.attempt
      })
      const failures = Effect.map(agent.metadata, (m) => m.consecutiveFailures)
      assert.strictEqual(yield* failures, 0)
      assert.strictEqual(yield* crashAndRestart, 1)
      assert.strictEqual(yield* crashAndRestart, 2)
      assert.strictEqual(yield* failures, 2)
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual(yield* failures, 2) // not stable for resetAfter yet
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* failures, 0)
      // ... and the next decision agrees: a first failure again, with the base delay.
      assert.strictEqual(yield* crashAndRestart, 1)
      assert.strictEqual(yield* failures, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scoped("15: an exit that ends a stable run reads 0 failures while its owner decides, as the owner computes", () =>
    Effect.gen(function*() {
      const settings = yield* Config.make(
        agentConfig("echo", { restartBackoff: "1 second", jitter: 0, resetAfter: "1 minute", maxRestartAttempts: 10 })
      )
      // The standalone policy for the first two exits; the third is held, so that the view can be read between
      // the exit and the decision (a tree's owner may take a while: it stops bystanders first).
      const policy = Owned.restartPolicyOwner(settings)
      const held = yield* Deferred.make<Owned.ChildExit>()
      let exits = 0
      const owner: Owned.Owner = (exit, controls) =>
        ++exits <= 2 ? policy(exit, controls) : Deferred.succeed(held, exit).pipe(Effect.zipRight(Effect.never))
      const agent = yield* Owned.makeOwned(settings, owner)
      const events = yield* agent.subscribe
      for (let i = 0; i < 2; i++) {
        yield* Effect.exit(agent.handleEvent({ crash: 1 }))
        const scheduled = yield* waitFor(events, is("RestartScheduled"))
        yield* TestClock.adjust(scheduled.delayMillis)
        yield* waitFor(events, isState("RUNNING"))
      }
      assert.strictEqual((yield* agent.metadata).consecutiveFailures, 2)
      yield* TestClock.adjust("1 minute")
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      const exit = yield* Deferred.await(held)
      assert.isAtLeast(exit.uptimeMillis, 60_000)
      const meta = yield* agent.metadata
      assert.strictEqual(meta.state, "CRASHED")
      const decidedFrom = RestartPolicy.failuresAfterRun(settings, 2, exit.uptimeMillis)
      assert.strictEqual(meta.consecutiveFailures, decidedFrom, "the view disagrees with what the owner decides from")
      assert.strictEqual(meta.consecutiveFailures, 0)
    }).pipe(Effect.provide(TestLive)))

  // ---- 16: a hung store holds up closing only for storeFlushTimeout ----

  const closesWithin = (flushMillis: number, options: AgentSupervisor.Options | undefined) =>
    Effect.gen(function*() {
      const called = yield* Deferred.make<void>()
      const scope = yield* closeableScope
      yield* AgentSupervisor.make(agentConfig("echo"), options).pipe(
        Effect.provide(hangingStore(called)),
        Scope.extend(scope)
      )
      yield* Deferred.await(called) // the store is being written to, and hangs
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      // The agent stops (real time), then the flush waits for the store on the Clock: once that wait has begun,
      // the scope closes exactly flushMillis later.
      const now = yield* Clock.currentTimeMillis
      yield* eventuallyEffect(
        "closing waits for the store",
        Effect.map(TestClock.sleeps(), (sleeps) => [...sleeps].includes(now + flushMillis))
      )
      yield* TestClock.adjust(flushMillis - 1)
      yield* sleepLive("20 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(closing)), "closed before storeFlushTimeout passed")
      yield* TestClock.adjust(1)
      const closed = yield* Fiber.await(closing).pipe(
        Effect.as(true),
        Effect.race(Effect.as(sleepLive("10 seconds"), false))
      )
      assert.isTrue(closed, `the scope did not close ${flushMillis} ms after the flush began`)
    })

  it.scoped("16: closing an agent whose store hangs returns after storeFlushTimeout (200 millis)", () =>
    closesWithin(200, { storeFlushTimeout: "200 millis" }).pipe(Effect.provide(TestLive)))

  it.scoped("16: ... and after 1 second by default", () => closesWithin(1000, undefined).pipe(Effect.provide(TestLive)))

  it.effect("16: a bad storeFlushTimeout fails make with ConfigError", () =>
    Effect.gen(function*() {
      const error = failureOf(
        yield* Effect.exit(
          Effect.scoped(AgentSupervisor.make(agentConfig("echo"), {
            storeFlushTimeout: "soon" as unknown as Duration.DurationInput
          }))
        )
      )
      assert.strictEqual(error._tag, "ConfigError")
      if (error._tag === "ConfigError") assert.strictEqual(error.field, "storeFlushTimeout")
    }).pipe(Effect.provide(TestLive)))

  // ---- 17: an exit is reported on the exit event, whatever holds the pipes ----

  it.scopedLive("17: a SIGKILLed agent whose grandchild holds its pipes is reported at once", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("pipes")
      const log = path.join(dir, "agent.log")
      const grandchildren = () =>
        logged(log).flatMap(([, what]) => what.startsWith("grandchild ") ? [Number(what.split(" ")[1])] : [])
      // The escaped grandchild is out of reach of the group kill: it is the test's to kill.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const pid of grandchildren()) {
            try {
              process.kill(pid, "SIGKILL")
            } catch {
              // already gone
            }
          }
        })
      )
      const cases = [
        // in the agent's group: swept when the agent dies, though it may close the pipes a little later
        { config: agentConfig("grandchild-holds-pipes", { restartBackoff: "1 minute" }), escaped: false },
        // in a session of its own: holds the pipes open for as long as it lives
        { config: hardeningAgent("escaped-grandchild", log, { restartBackoff: "1 minute" }), escaped: true }
      ]
      for (const { config, escaped } of cases) {
        const agent = yield* AgentSupervisor.make(config)
        const events = yield* agent.subscribe
        const pid = yield* pidOf(agent)
        if (escaped) {
          assert.strictEqual(grandchildren().length, 1)
          assert.isTrue(isAlive(grandchildren()[0]))
        } else {
          assert.isAtLeast(groupMembers(pid).length, 2)
        }
        const killedAt = performance.now()
        process.kill(pid, "SIGKILL")
        const exited = yield* waitFor(events, is("Exited"))
        const elapsed = performance.now() - killedAt
        assert.deepStrictEqual([exited.pid, exited.signal, exited.reason], [pid, "SIGKILL", "exit"])
        // Tens of milliseconds on a quiet machine; the bound leaves room for a loaded one.
        assert.isBelow(elapsed, 1000, `the exit was reported ${Math.round(elapsed)} ms after the kill`)
        if (escaped) assert.isTrue(isAlive(grandchildren()[0]), "the escaped grandchild still holds the pipes")
        else yield* eventually("the group is gone", () => groupMembers(pid).length === 0)
      }
    }).pipe(Effect.provide(TestLive)))

  it.live("17: what a descendant writes to the pipes after the agent's exit is still logged and counted", () => {
    const { layer: logging, lines } = collectLogs()
    return Effect.gen(function*() {
      const log = path.join(yield* tempDir("late-output"), "agent.log")
      const grandchild = () =>
        logged(log).flatMap(([, what]) => what.startsWith("grandchild ") ? [Number(what.split(" ")[1])] : [])[0]
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          try {
            process.kill(grandchild(), "SIGKILL")
          } catch {
            // already gone
          }
        })
      )
      const agent = yield* AgentSupervisor.make(
        hardeningAgent("escaped-grandchild", log, { name: "late-output", restartBackoff: "1 minute" })
      )
      const events = yield* agent.subscribe
      process.kill(yield* pidOf(agent), "SIGKILL")
      yield* waitFor(events, is("Exited"))
      yield* eventually(
        "the grandchild listens for SIGUSR1",
        () => logged(log).some(([, what]) => what === "grandchild-listening")
      )
      const before = (yield* agent.metadata).stderrLines
      process.kill(grandchild(), "SIGUSR1")
      yield* eventuallyEffect(
        "the late line is counted",
        Effect.map(agent.metadata, (m) => m.stderrLines === before + 1),
        "5 seconds"
      )
      yield* eventually(
        "the late line is logged, with the agent's name",
        () => lines.some((line) => line.message.includes("late line from the grandchild") && line.agent === agent.name)
      )
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(logging, Store.layerMemory)))
  })

  // ---- 18: every incarnation is announced, and the process counters add up over incarnations ----

  it.scopedLive("18: a Spawned event (pid, incarnation) before each RUNNING; metadata sums every incarnation", () =>
    Effect.gen(function*() {
      // `onEvent` sees every event from the first spawn on (a subscription made after `make` would miss it).
      const seen: Array<Event> = []
      const settings = yield* Config.make(agentConfig("echo", { restartBackoff: 0, maxMessageBytes: 64 * 1024 }))
      const agent = yield* Owned.makeOwned(settings, Owned.restartPolicyOwner(settings), {
        onEvent: (event) => Effect.sync(() => void seen.push(event))
      })
      const events = yield* agent.subscribe
      assert.strictEqual((yield* agent.metadata).incarnations, 1)
      const misbehaveAndCrash = Effect.gen(function*() {
        // 2 protocol errors (invalid UTF-8, over-long), 5 stray lines, 1 unknown id (a late response)
        assert.strictEqual(yield* agent.handleEvent({ stdout: 100_000 }), "€uro ✓")
        // a late response: its request timed out first
        const late = failureOf(yield* Effect.exit(agent.handleEvent({ sleep: 300, echo: 1 }, { timeout: "30 millis" })))
        assert.strictEqual(late._tag, "AgentTimeoutError")
        const lateBefore = (yield* agent.metadata).lateResponses
        yield* eventuallyEffect(
          "the late response came",
          Effect.map(agent.metadata, (m) => m.lateResponses > lateBefore)
        )
        // two stderr lines: "cancel N" (the timed-out request's cancel), "crashing with code 1 as asked"; the exit
        yield* Effect.exit(agent.handleEvent({ crash: 1 }))
        yield* waitFor(events, isState("RUNNING"))
      })
      yield* misbehaveAndCrash
      yield* misbehaveAndCrash
      const meta = yield* agent.metadata
      assert.deepStrictEqual(
        {
          incarnations: meta.incarnations,
          protocolErrors: meta.protocolErrors,
          outputLines: meta.outputLines,
          lateResponses: meta.lateResponses,
          stderrLines: meta.stderrLines
        },
        { incarnations: 3, protocolErrors: 4, outputLines: 10, lateResponses: 4, stderrLines: 4 }
      )
      // One Spawned per incarnation, numbered from 1, each before that incarnation's RUNNING and after the one before.
      const spawned = seen.flatMap((e, i) => e._tag === "Spawned" ? [[i, e] as const] : [])
      const running = seen.flatMap((e, i) => isState("RUNNING")(e) ? [i] : [])
      const exits = seen.flatMap((e) => e._tag === "Exited" ? [e.pid] : [])
      assert.deepStrictEqual(spawned.map(([, e]) => e.incarnation), [1, 2, 3])
      assert.deepStrictEqual(spawned.map(([, e]) => e.pid), [...exits, meta.pid.pipe(Option.getOrThrow)])
      assert.strictEqual(running.length, 3)
      spawned.forEach(([at], n) => {
        assert.isBelow(at, running[n], `Spawned ${n + 1} after its RUNNING`)
        if (n > 0) assert.isAbove(at, running[n - 1], `Spawned ${n + 1} before the previous RUNNING`)
      })
      assert.isTrue(spawned.every(([, e]) => e.agent === agent.name && e.pid > 0))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("18: the counters include the incarnations whose start failed (their stderr explains why)", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir("failed-starts"), "present")
      fs.writeFileSync(file, "")
      const agent = yield* AgentSupervisor.make(failStartUnless(file))
      const events = yield* agent.subscribe
      // From now on each start fails, with one line on stderr ("cannot start: the file I need is missing").
      fs.rmSync(file)
      yield* Effect.exit(agent.handleEvent({ crash: 1 })) // one line too: "crashing with code 1 as asked"
      const seen: Array<Event> = []
      for (let failed = 0; failed < 2;) {
        const scheduled = yield* waitFor(events, is("RestartScheduled"), seen)
        if (scheduled.reason === "start_failed") failed++
      }
      fs.writeFileSync(file, "")
      yield* waitFor(events, isState("RUNNING"), seen)
      const failedStarts = seen.filter((e) => e._tag === "RestartScheduled" && e.reason === "start_failed").length
      const meta = yield* agent.metadata
      // the first incarnation, one per failed start, the one running now
      assert.strictEqual(meta.incarnations, failedStarts + 2)
      assert.strictEqual(meta.stderrLines, 1 + failedStarts, "the failed starts' stderr lines are not counted")
    }).pipe(Effect.provide(TestLive)))

  // ---- 19: a request that waited through a restart ----

  it.scoped("19: a request whose deadline passes while it waits for a restart names the caller's timeout and is never sent", () =>
    Effect.gen(function*() {
      const log = path.join(yield* tempDir("expired"), "agent.log")
      const agent = yield* AgentSupervisor.make(
        hardeningAgent("serve", log, { restartBackoff: "10 seconds", jitter: 0 })
      )
      const events = yield* agent.subscribe
      yield* Effect.exit(agent.handleEvent({ crash: 1 }))
      yield* waitFor(events, is("RestartScheduled"))
      const waiting = yield* Effect.fork(agent.handleEvent({ marker: "expired" }, { timeout: "2 seconds" }))
      yield* TestClock.adjust("2 seconds")
      const error = failureOf(yield* Fiber.await(waiting))
      assert.strictEqual(error._tag, "AgentTimeoutError")
      if (error._tag !== "AgentTimeoutError") return
      assert.strictEqual(error.timeoutMillis, 2000)
      assert.strictEqual(error.waitedForStartMillis, 2000)
      assert.include(error.message, "2000 ms")
      assert.notInclude(error.message, "within 0 ms")
      yield* TestClock.adjust("8 seconds")
      yield* waitFor(events, isState("RUNNING"))
      // The new incarnation reads its stdin in order: the expired request would be logged before this one.
      yield* agent.handleEvent({ marker: "after" })
      const markers = logged(log).flatMap(([, what]) => what.startsWith("task ") ? [what.split(" ")[2]] : [])
      assert.deepStrictEqual(markers, ["-", "after"]) // the crash, then "after": never "expired"
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("19: a request that never waited for a start names the caller's timeout and claims no wait", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo"))
      // A clock that moves on at every reading: time passes between the call and its dispatch, as it does on a
      // busy machine, though nothing was waited for.
      const live = Clock.make()
      let ticks = 0
      const ticking: Clock.Clock = {
        ...live,
        unsafeCurrentTimeMillis: () => live.unsafeCurrentTimeMillis() + ticks++,
        currentTimeMillis: Effect.sync(() => live.unsafeCurrentTimeMillis() + ticks++)
      }
      const error = failureOf(
        yield* Effect.exit(agent.handleEvent({ sleep: 2000 }, { timeout: "50 millis" }).pipe(Effect.withClock(ticking)))
      )
      assert.strictEqual(error._tag, "AgentTimeoutError")
      if (error._tag !== "AgentTimeoutError") return
      assert.strictEqual(error.operation, "task")
      assert.strictEqual(error.timeoutMillis, 50)
      assert.isUndefined(error.waitedForStartMillis, error.message)
      assert.notInclude(error.message, "restart")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive(
    "19: requests (2 s timeout) that wait through a slow restart either succeed or time out naming 2000 ms and " +
      "their wait; an expired one is never written",
    () =>
      Effect.gen(function*() {
        const log = path.join(yield* tempDir("restart-wait"), "agent.log")
        const agent = yield* AgentSupervisor.make(
          hardeningAgent("serve", log, { restartBackoff: "2 seconds", jitter: 0, maxRestartAttempts: 10 })
        )
        const events = yield* agent.subscribe
        yield* Effect.exit(agent.handleEvent({ crash: 1 }))
        yield* waitFor(events, is("RestartScheduled"))
        // Sent every 25 ms from the start of the backoff on: the first expire waiting, the last are answered, and
        // those in between reach the new incarnation with little of their 2 s left.
        const outcomes = yield* Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) =>
            sleepLive(i * 25).pipe(
              Effect.zipRight(Effect.exit(agent.handleEvent({ marker: `r${i}` }, { timeout: "2 seconds" }))),
              Effect.map((exit) => [`r${i}`, exit] as const)
            ),
          { concurrency: "unbounded" }
        )
        yield* agent.handleEvent({ marker: "last" })
        const written = new Set(logged(log).flatMap(([, what]) => what.startsWith("task ") ? [what.split(" ")[2]] : []))
        const timedOut: Array<AgentTimeoutError> = []
        for (const [marker, exit] of outcomes) {
          if (Exit.isSuccess(exit)) continue
          const error = failureOf(exit)
          assert.strictEqual(error._tag, "AgentTimeoutError", `${marker}: ${error.message}`)
          if (error._tag !== "AgentTimeoutError") continue
          timedOut.push(error)
          assert.strictEqual(error.timeoutMillis, 2000, error.message)
          assert.notInclude(error.message, "within 0 ms")
          assert.isDefined(error.waitedForStartMillis, error.message)
          assert.isAbove(error.waitedForStartMillis!, 0, error.message)
          if (error.operation === "start") {
            assert.isFalse(written.has(marker), `${marker} expired waiting, yet the agent got it: ${error.message}`)
          } else {
            assert.include(error.message, "waiting for a restart", error.message)
          }
        }
        // The scenario happened: some requests expired waiting for the restart, and some were answered after it.
        assert.isAbove(timedOut.length, 0)
        assert.isAbove(outcomes.filter(([, exit]) => Exit.isSuccess(exit)).length, 0)
      }).pipe(Effect.provide(TestLive)),
    { timeout: 30_000 }
  )

  // ---- 20: every log line names its agent ----

  it.live("20: every log line of a scenario (start, requests, missed heartbeats, kill, restart, stop) names the agent", () => {
    const { layer: logging, lines } = collectLogs()
    const name = "logged-agent"
    const texts = (from: number, to?: number) => lines.slice(from, to).map((line) => `${line.level} ${line.message}`)
    const marks: Record<string, number> = {}
    return Effect.gen(function*() {
      const log = path.join(yield* tempDir("logged"), "agent.log")
      const agent = yield* AgentSupervisor.make(
        hardeningAgent("serve", log, {
          name,
          heartbeatInterval: "100 millis",
          pingTimeout: "100 millis",
          unhealthyAfter: 2,
          restartBackoff: "50 millis",
          jitter: 0,
          gracefulTimeout: "200 millis"
        })
      )
      const events = yield* agent.subscribe
      // requests: answered, one with a line on stderr, one timed out
      assert.deepStrictEqual(yield* agent.handleEvent({ echo: 1 }), { pid: yield* pidOf(agent), echo: 1 })
      yield* agent.handleEvent({ stderr: "a line on stderr" })
      yield* Effect.exit(agent.handleEvent({ sleep: 1000 }, { timeout: "20 millis" }))
      // the first incarnation stops answering pings: missed heartbeats, killed as hung, restarted
      yield* agent.handleEvent({ noPong: true })
      const exited = yield* waitFor(events, is("Exited"))
      assert.strictEqual(exited.reason, "heartbeat")
      marks.firstIncarnation = lines.length
      yield* waitFor(events, isState("RUNNING"))
      yield* waitFor(events, is("HealthChecked"))
      // a manual stop and start, then a last incarnation that ignores shutdown: the scope's close ends in SIGTERM
      yield* agent.stop
      yield* agent.start
      yield* agent.handleEvent({ ignoreShutdown: true })
      marks.beforeClose = lines.length
    }).pipe(
      Effect.scoped, // closed here, under the test logger: the lines of the last stop are collected too
      Effect.provide(Layer.merge(logging, Store.layerMemory)),
      Effect.map(() => {
        assert.deepStrictEqual(
          lines.filter((line) => line.agent !== name),
          [],
          `log lines without the agent's name:\n${texts(0).join("\n")}`
        )
        const first = texts(0, marks.firstIncarnation)
        assert.isTrue(first.some((m) => m.includes("a line on stderr")), first.join("\n"))
        assert.isTrue(first.some((m) => m.startsWith("WARN agent missed heartbeat 1 of 2")), first.join("\n"))
        assert.isTrue(first.some((m) => m.startsWith("ERROR") && m.includes("hung, killing it")), first.join("\n"))
        const closing = texts(marks.beforeClose)
        assert.isTrue(closing.some((m) => m.includes("ignored shutdown")), closing.join("\n"))
      })
    )
  })

  // ---- a bad per-call timeout is a ConfigError, never a throw ----

  it.scopedLive("a bad per-call timeout fails with ConfigError, from handleEvent and from AgentProcess.request", () =>
    Effect.gen(function*() {
      const bad = "5 secs" as unknown as Duration.DurationInput
      const agent = yield* AgentSupervisor.make(agentConfig("echo"))
      for (const timeout of [bad, -1, Number.NaN, "soon" as unknown as Duration.DurationInput]) {
        const error = failureOf(yield* Effect.exit(agent.handleEvent({ echo: 1 }, { timeout })))
        assert.strictEqual(error._tag, "ConfigError", String(timeout))
        if (error._tag === "ConfigError") assert.strictEqual(error.field, "timeout")
      }
      const proc = yield* AgentProcess.make(agentConfig("echo"))
      const fromRequest = failureOf(yield* Effect.exit(proc.request({ echo: 1 }, { timeout: bad })))
      assert.strictEqual(fromRequest._tag, "ConfigError")
      if (fromRequest._tag === "ConfigError") assert.strictEqual(fromRequest.field, "timeout")
      const fromPing = failureOf(yield* Effect.exit(proc.ping({ timeout: bad })))
      assert.strictEqual(fromPing._tag, "ConfigError")
      // Neither agent was disturbed.
      assert.strictEqual(yield* agent.handleEvent({ echo: 2 }), 2)
      assert.strictEqual(yield* proc.request({ echo: 3 }), 3)
    }).pipe(Effect.provide(TestLive)))
})

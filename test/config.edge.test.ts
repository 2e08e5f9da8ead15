/**
 * Configuration decoded at the edge, once: one source for each default (a child's restart type, its stop
 * timeouts), every problem of one decode reported at once with its path in the tree, OTP's rule on significant
 * children, and defaults under which a child that never starts makes the tree escalate (with a warning when a
 * configuration makes that impossible).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import * as Config from "../src/Agent/Config.js"
import * as AgentProcess from "../src/Agent/Process.js"
import * as RestartPolicy from "../src/Agent/RestartPolicy.js"
import { ConfigError } from "../src/Errors.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, configErrorOf, failureOf, fixture, takeUntil, TestLive } from "./support.js"

type Event = Supervisor.SupervisorEvent

const tiny = (name: string, overrides: Partial<Config.AgentConfigInput> = {}): Config.AgentConfigInput => ({
  name,
  command: "/bin/sh",
  args: [fixture("agents", "tiny.sh")],
  ...overrides
})

/** The ConfigError a failed effect ends with (the test fails on anything else). */
const fields = (error: ConfigError) => error.problems.map((p) => p.field)

/** Log lines at Warning and above, captured while `effect` runs (the test layer keeps them out of the output). */
const warningsOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
        lines.push(Array.isArray(message) ? message.join(" ") : String(message))
      }
    })
    const exit = yield* Effect.exit(effect).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.Warning)
    )
    return { lines: lines.filter((line) => line.includes("would be parked")), exit }
  })

describe("one source for each default of a child", () => {
  it.scopedLive("Supervisor.agent keeps the configuration's restart type: a transient agent is not restarted", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        children: [Supervisor.agent({ id: "job", config: agentConfig("echo", { name: "job", restart: "transient" }) })]
      })
      const events = yield* sup.subscribe
      yield* Effect.exit(sup.call("job", { crash: 0 }))
      yield* takeUntil(events, (e) => e._tag === "ChildExited" && e.child === "job")
      // Stopped for good, or (the restart type lost) scheduled for a restart.
      yield* takeUntil(
        events,
        (e) =>
          e._tag === "RestartScheduled" ||
          (e._tag === "Agent" && e.event._tag === "StateChanged" && e.event.to === "STOPPED")
      )
      assert.deepStrictEqual((yield* sup.whichChildren).map((c) => [c.id, c.state, c.status]), [
        ["job", "STOPPED", "stopped"]
      ])
      assert.deepStrictEqual(yield* sup.restartHistory, [])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a decoded configuration's restart type is kept too; the spec's applies when given alone", () =>
    Effect.gen(function*() {
      const decoded = yield* Config.make(tiny("kept", { restart: "temporary" }))
      const sup = yield* Supervisor.make({
        children: [
          Supervisor.agent({ id: "kept", config: decoded }),
          Supervisor.agent({ id: "spec", config: tiny("spec"), restart: "transient" }),
          Supervisor.agent({ id: "plain", config: tiny("plain") })
        ]
      })
      const restarts = yield* Effect.forEach(
        ["kept", "spec", "plain"],
        (id) => Effect.map(sup.child(id), (agent) => agent.config.restart)
      )
      assert.deepStrictEqual(restarts, ["temporary", "transient", "permanent"])
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a restart type given in the spec and the configuration with different values is a ConfigError naming both", () =>
    Effect.gen(function*() {
      const error = yield* configErrorOf(Supervisor.make({
        children: [
          Supervisor.agent({ id: "a", config: tiny("a", { restart: "transient" }), restart: "permanent" })
        ]
      }))
      assert.deepStrictEqual(fields(error), ["children[0].restart"])
      assert.include(error.rule, "children[0].config.restart")
      assert.include(error.rule, "\"transient\"")
      assert.strictEqual(error.value, "\"permanent\"")
      // The same value in both places is no conflict.
      const same = yield* Effect.exit(
        Supervisor.make({
          children: [Supervisor.agent({ id: "a", config: tiny("a", { restart: "temporary" }), restart: "temporary" })]
        }).pipe(Effect.provide(TestLive))
      )
      assert.isTrue(Exit.isSuccess(same))
    }).pipe(Effect.provide(TestLive)))

  it.scoped("shutdown and the configuration's stop timeouts: one place, or a ConfigError naming both", () =>
    Effect.gen(function*() {
      const brutal = yield* configErrorOf(Supervisor.make({
        children: [
          Supervisor.agent({ id: "a", config: tiny("a", { sigtermTimeout: "1 minute" }), shutdown: "brutal-kill" })
        ]
      }))
      assert.deepStrictEqual(fields(brutal), ["children[0].shutdown"])
      assert.include(brutal.rule, "children[0].config.sigtermTimeout")
      const decoded = yield* Config.make(tiny("b", { gracefulTimeout: "1 minute" }))
      const timed = yield* configErrorOf(Supervisor.make({
        children: [Supervisor.agent({ id: "b", config: decoded, shutdown: "10 seconds" })]
      }))
      assert.deepStrictEqual(fields(timed), ["children[0].shutdown"])
      assert.include(timed.rule, "children[0].config.gracefulTimeout")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("shutdown alone sets the stop timeouts; the configuration's apply when it is left out", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        children: [
          Supervisor.agent({ id: "brutal", config: tiny("brutal"), shutdown: "brutal-kill" }),
          Supervisor.agent({ id: "timed", config: tiny("timed", { gracefulTimeout: "3 seconds" }), shutdown: 3000 }),
          Supervisor.agent({ id: "own", config: tiny("own", { gracefulTimeout: "7 seconds" }) })
        ]
      })
      const timeouts = yield* Effect.forEach(
        ["brutal", "timed", "own"],
        (id) =>
          Effect.map(
            sup.child(id),
            (agent) => [agent.config.gracefulTimeout, agent.config.sigtermTimeout].map(Duration.toMillis)
          )
      )
      assert.deepStrictEqual(timeouts, [[0, 0], [3000, 5000], [7000, 5000]])
    }).pipe(Effect.provide(TestLive)))
})

describe("every problem of one decode, each with its path", () => {
  it.effect("Config.make lists every bad field, the first as field/rule/value", () =>
    Effect.gen(function*() {
      const error = yield* configErrorOf(Config.decodeConfig({ name: "", command: "x", requestTimeout: -1, jitter: 3 }))
      assert.deepStrictEqual(fields(error), ["name", "requestTimeout", "jitter"])
      assert.deepStrictEqual([error.field, error.value], ["name", "\"\""])
      for (const field of fields(error)) assert.include(error.message, `at ${field}: `)
      assert.include(error.message, "3 problems")
      assert.include(error.remediation, "requestTimeout")
    }))

  it.effect("a value of the wrong type: what it must be, in words, and the value given once", () =>
    Effect.gen(function*() {
      const error = yield* configErrorOf(
        Config.decodeConfig({ name: "a", command: "x", maxInFlight: "ten", inheritEnv: "yes" })
      )
      assert.deepStrictEqual(error.problems.map((p) => `${p.field}: ${p.rule} (got ${p.value})`), [
        `inheritEnv: must be true, false or a list of variable names (got "yes")`,
        `maxInFlight: must be a number (got "ten")`
      ])
      const one = yield* configErrorOf(Config.decodeConfig({ name: "a", command: "x", maxInFlight: "ten" }))
      assert.strictEqual(one.message, `Invalid configuration at maxInFlight: must be a number (got "ten")`)
      assert.strictEqual(one.remediation, `maxInFlight must be a number.`)
      const misspelt = yield* configErrorOf(Config.decodeConfig({ name: "a", command: "x", requestTimout: "1s" }))
      assert.strictEqual(misspelt.remediation, `requestTimout is not a known setting: did you mean "requestTimeout"?`)
    }))

  it.scoped("Supervisor.make reports every problem in every child at once, by position", () =>
    Effect.gen(function*() {
      const error = yield* configErrorOf(Supervisor.make({
        intensity: { maxRestarts: 1, window: "5 secs" as any },
        children: [
          Supervisor.agent({ id: "fine", config: tiny("fine") }),
          Supervisor.agent({ id: "slow", config: tiny("slow", { requestTimeout: "5 secs" as any }) }),
          Supervisor.supervisor({
            id: "workers",
            children: [
              Supervisor.agent({ id: "w0", config: tiny("w0") }),
              Supervisor.agent({ id: "w1", config: tiny("w1") }),
              Supervisor.agent({ id: "w2", config: tiny("") })
            ]
          }),
          Supervisor.agent({ id: "fine", config: tiny("again", { maxInFlight: 0 }) })
        ]
      }))
      assert.deepStrictEqual(fields(error), [
        "intensity.window",
        "children[1].config.requestTimeout",
        "children[2].children[2].config.name",
        "children[3].id",
        "children[3].config.maxInFlight"
      ])
      assert.deepStrictEqual([error.field, error.value], ["intensity.window", "\"5 secs\""])
      assert.include(error.problems[3].rule, "children[0]")
      for (const field of fields(error)) assert.include(error.message, `at ${field}: `)
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a batch with many problems: all in `problems`, the first 20 in the message and remediation, then how many more", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({})
      const batch = Array.from(
        { length: 25 },
        (_, i) => Supervisor.agent({ id: `a${i}`, config: tiny(`a${i}`, { maxInFlight: 0 }) })
      )
      const error = yield* configErrorOf(sup.startChildren(batch))
      assert.strictEqual(error.problems.length, 25)
      const lines = error.message.split("\n")
      assert.strictEqual(lines[0], "Invalid configuration: 25 problems")
      assert.deepStrictEqual(lines.slice(1, 21).map((line) => /^ {2}at children\[(\d+)\]/.exec(line)?.[1]), [
        ...Array.from({ length: 20 }, (_, i) => String(i))
      ])
      assert.deepStrictEqual(lines.slice(21), ["  and 5 more (every one is in the error's `problems`)"])
      assert.include(error.remediation, `children[19].config.maxInFlight, and 5 more.`)
      assert.notInclude(error.remediation, "children[20]")
    }).pipe(Effect.provide(TestLive)))

  it.scoped("startChild names the position the child would take", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({ children: [Supervisor.agent({ id: "a", config: tiny("a") })] })
      const error = yield* configErrorOf(sup.startChild(Supervisor.supervisor({
        id: "s",
        intensity: { maxRestarts: -1, window: 0 },
        children: [Supervisor.agent({ id: "x", config: tiny("x", { restartBackoff: "soon" as any }) })]
      })))
      assert.deepStrictEqual(fields(error), [
        "children[1].intensity.maxRestarts",
        "children[1].children[0].config.restartBackoff"
      ])
      assert.strictEqual((yield* sup.countChildren).specs, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a key no setting has, at any level, is a problem with the key meant: none is dropped without a word", () =>
    Effect.gen(function*() {
      // As JavaScript (or a configuration built at run time) can give them: TypeScript would refuse these keys
      const loose = (spec: object) => spec as any
      const error = yield* configErrorOf(Supervisor.make(loose({
        stratgy: "one-for-all",
        intensity: { maxRestarts: 1, window: "5 seconds", windw: "1 second" },
        children: [
          Supervisor.agent(loose({ id: "a", restrat: "transient", config: tiny("a", loose({ requestTimout: 5 })) })),
          Supervisor.supervisor(loose({ id: "s", stratgy: "one-for-all", children: [] })),
          Supervisor.pool(
            loose({ id: "p", size: 1, routng: "least-loaded", config: tiny("p", loose({ limits: { memry: 1 } })) })
          )
        ]
      })))
      assert.deepStrictEqual(error.problems.map((p) => [p.field, p.rule]), [
        ["stratgy", `is not a known setting: did you mean "strategy"?`],
        ["intensity.windw", `is not a known setting: did you mean "window"?`],
        ["children[0].restrat", `is not a known setting: did you mean "restart"?`],
        ["children[0].config.requestTimout", `is not a known setting: did you mean "requestTimeout"?`],
        ["children[1].stratgy", `is not a known setting: did you mean "strategy"?`],
        ["children[2].routng", `is not a known setting: did you mean "routing"?`],
        ["children[2].config.limits.memry", `is not a known setting: did you mean "memory"?`]
      ])
      // Far from every key: no guess, the keys known there listed (before, "check its spelling" alone); a key set
      // to undefined counts as absent (options typed `?: T | undefined`)
      const far = yield* configErrorOf(Supervisor.make(loose({ zzzzzz: 1, restore: undefined, children: [] })))
      assert.deepStrictEqual(far.problems, [{
        field: "zzzzzz",
        rule: `is not a known setting here (known: "name", "strategy", "intensity", "children", "autoShutdown", ` +
          `"onEvent", "storeFlushTimeout", "restore", "logs" or "topics")`,
        value: "1"
      }])
      // An agent's configuration too (a trial's agentDirectory, meant for cwd, got no hint)
      const agent = yield* configErrorOf(Config.make(loose({ name: "a", command: "b", agentDirectory: "." })))
      assert.match(
        agent.problems[0].rule,
        /^is not a known setting here \(known: "name", "command", "args", "env", "cwd",/
      )
      // startChild too, at the position it would take
      const sup = yield* Supervisor.make({ children: [] })
      const added = yield* configErrorOf(
        sup.startChild(Supervisor.agent(loose({ id: "x", config: tiny("x"), topcis: [] })))
      )
      assert.deepStrictEqual(fields(added), ["children[0].topcis"])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a call's option that no setting has fails the call with a ConfigError, nothing sent", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        children: [Supervisor.agent({ id: "echo", config: agentConfig("echo") })]
      })
      const agent = yield* sup.child("echo")
      const handled = yield* configErrorOf(agent.handleEvent({ echo: 1 }, { timout: 5 } as any))
      assert.deepStrictEqual(handled.problems, [{
        field: "timout",
        rule: `is not a known setting: did you mean "timeout"?`,
        value: "5"
      }])
      const streamed = yield* configErrorOf(
        Stream.runDrain(agent.handleEventStream({ echo: 1 }, { idelTimeout: 5 } as any))
      )
      assert.deepStrictEqual(fields(streamed), ["idelTimeout"])
      // through the process itself as well (request, ping)
      const process = yield* AgentProcess.make(agentConfig("echo"))
      assert.deepStrictEqual(fields(yield* configErrorOf(process.request({ echo: 1 }, { timeOut: 5 } as any))), [
        "timeOut"
      ])
      assert.deepStrictEqual(fields(yield* configErrorOf(process.ping({ timout: 5 } as any))), ["timout"])
      // and nothing was sent: known options, and undefined ones, go through
      assert.deepStrictEqual(
        yield* process.request({ echo: 2 }, { timeout: "5 seconds", idempotencyKey: undefined }),
        2
      )
      assert.deepStrictEqual(yield* agent.handleEvent({ echo: 3 }, { timeout: 5000 }), 3)
      assert.strictEqual((yield* process.stats).requests, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("options that are no plain object, reused across calls, or of a pool: an answer, never a throw", () =>
    Effect.gen(function*() {
      const process = yield* AgentProcess.make(agentConfig("echo"))
      // Not an object: a ConfigError (it was ignored); nothing thrown
      for (const options of ["5 seconds", ["a"], 5]) {
        const error = yield* configErrorOf(Effect.suspend(() => process.request({ echo: 1 }, options as any)))
        assert.deepStrictEqual(fields(error), ["(options)"], String(options))
        assert.include(error.rule, "must be an object of options (timeout, idempotencyKey)")
      }
      // Keys of its prototype are not its own: not read, not refused
      assert.strictEqual(yield* process.request({ echo: 2 }, Object.create({ extra: 1 })), 2)

      const sup = yield* Supervisor.make({
        children: [
          Supervisor.agent({ id: "echo", config: agentConfig("echo", { name: "opts-echo" }) }),
          Supervisor.pool({ id: "empty", size: 0, config: agentConfig("echo", { name: "opts-empty" }) })
        ]
      })
      // handleEvent's options given to a streaming call: its idempotencyKey is taken (and sent), replayOnCrash says why not
      const handle: AgentSupervisor.HandleOptions = { timeout: "30 seconds", idempotencyKey: "k" }
      yield* Stream.runDrain(sup.callStream("echo", { echo: 3 }, handle))
      const replay = yield* configErrorOf(
        Stream.runDrain(sup.callStream("echo", { echo: 3 }, { replayOnCrash: true } as any))
      )
      assert.deepStrictEqual(fields(replay), ["replayOnCrash"])
      assert.include(replay.rule, "is handleEvent's, not a streaming call's")
      // A pool with no member running: a misspelt option at once, not after the call's timeout
      const started = Date.now()
      const pooled = yield* configErrorOf(sup.call("empty", { echo: 4 }, { timeout: "20 seconds", timout: 5 } as any))
      assert.deepStrictEqual(fields(pooled), ["timout"])
      assert.isBelow(Date.now() - started, 10_000)
      // reload, startChildren and publish options too
      assert.deepStrictEqual(fields(yield* configErrorOf(sup.reload("echo", { confg: {} } as any))), ["confg"])
      assert.deepStrictEqual(
        fields(yield* configErrorOf(sup.startChildren([], { concurency: 2 } as any))),
        ["concurency"]
      )
      const published = yield* configErrorOf(sup.publish("jobs", { echo: 5 }, { fanOut: true } as any))
      assert.deepStrictEqual(published.problems.map((p) => [p.field, p.rule]), [
        ["fanOut", `is not a known setting: did you mean "fanout"?`]
      ])
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a spec given as a class instance: its getters are read", () =>
    Effect.gen(function*() {
      class Worker {
        readonly id = "w"
        get config() {
          return tiny("w")
        }
      }
      const sup = yield* Supervisor.make({ children: [Supervisor.agent(new Worker())] })
      assert.deepStrictEqual((yield* sup.whichChildren).map((c) => c.id), ["w"])
    }).pipe(Effect.provide(TestLive)))

  it("a ConfigError made with one problem lists it, as before", () => {
    const error = new ConfigError({ field: "timeout", rule: "must be a duration", value: "\"soon\"" })
    assert.deepStrictEqual(error.problems, [{ field: "timeout", rule: "must be a duration", value: "\"soon\"" }])
    assert.strictEqual(error.message, `Invalid configuration at timeout: must be a duration (got "soon")`)
    assert.strictEqual(error.remediation, `timeout must be a duration.`)
  })
})

describe("significant children need a supervisor that shuts down for them (OTP)", () => {
  const significant = (id: string) =>
    Supervisor.agent({ id, config: tiny(id, { restart: "transient" }), significant: true })

  it.scoped("with autoShutdown \"never\" (the default) make fails, naming the child and the setting", () =>
    Effect.gen(function*() {
      const root = yield* configErrorOf(Supervisor.make({ children: [significant("main")] }))
      assert.deepStrictEqual(fields(root), ["children[0].significant"])
      assert.include(root.rule, "autoShutdown")
      assert.include(root.rule, "\"never\"")
      const nested = yield* configErrorOf(Supervisor.make({
        autoShutdown: "any-significant",
        children: [Supervisor.supervisor({ id: "s", restart: "transient", children: [significant("inner")] })]
      }))
      assert.deepStrictEqual(fields(nested), ["children[0].children[0].significant"])
      assert.include(nested.rule, "children[0].autoShutdown")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("startChild refuses one under a supervisor that never shuts down, and accepts it under one that does", () =>
    Effect.gen(function*() {
      const never = yield* Supervisor.make({})
      const error = yield* configErrorOf(never.startChild(significant("late")))
      assert.deepStrictEqual(fields(error), ["children[0].significant"])
      assert.strictEqual((yield* never.countChildren).specs, 0)
      const any = yield* Supervisor.make({ autoShutdown: "any-significant" })
      yield* any.startChild(significant("late"))
      assert.strictEqual((yield* any.countChildren).specs, 1)
    }).pipe(Effect.provide(TestLive)))
})

describe("defaults and escalation", () => {
  it.scoped("with the defaults, a child that never starts makes the tree escalate before its circuit opens", () =>
    Effect.gen(function*() {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edge-")), "ok")
      fs.writeFileSync(file, "")
      // Every restart setting and the intensity at their defaults; only the test agent's own timeouts are set.
      const config = agentConfig("fail-start-unless", { name: "never" })
      const sup = yield* Supervisor.make({
        children: [Supervisor.agent({ id: "never", config: { ...config, args: [...config.args!, file] } })]
      })
      const events = yield* sup.subscribe
      fs.rmSync(file)
      yield* Effect.exit(sup.call("never", { crash: 1 }))
      const seen: Array<Event> = []
      // Time moves by exactly each backoff: a failed start itself takes no time on the TestClock (the best case).
      while (true) {
        const event = yield* Queue.take(events)
        seen.push(event)
        if (event._tag === "Escalated" || event._tag === "ChildParked") break
        if (event._tag === "RestartScheduled") yield* TestClock.adjust(event.record.delayMillis)
      }
      assert.deepStrictEqual(seen.filter((e) => e._tag === "ChildParked"), [])
      const error = failureOf(yield* Effect.exit(sup.await))
      assert.strictEqual(error._tag, "SupervisorIntensityError")
      const scheduled = seen.flatMap((e) => e._tag === "RestartScheduled" ? [e.record] : [])
      assert.deepStrictEqual(scheduled.map((r) => r.reason), ["exit"])
      assert.isAtMost(scheduled[0].delayMillis, 1100)
    }).pipe(Effect.provide(TestLive)))

  it("the defaults: 1 restart in 5 s, a 1 s backoff doubling, 3 restarts before the circuit opens", () => {
    const config = new Config.AgentConfig({ name: "a", command: "x" })
    assert.deepStrictEqual(
      [Duration.toMillis(config.restartBackoff), config.backoffFactor, config.jitter, config.maxRestartAttempts],
      [1000, 2, 0.1, 3]
    )
    assert.deepStrictEqual(RestartPolicy.reach(config, { maxRestarts: 1, window: Duration.seconds(5) }), {
      _tag: "Escalates",
      afterMillis: 1100
    })
    // What the defaults were: the second restart came after 5 to 5.5 s, outside the window.
    assert.strictEqual(
      RestartPolicy.reach({ ...config, restartBackoff: Duration.seconds(5) }, {
        maxRestarts: 1,
        window: Duration.seconds(5)
      })._tag,
      "TooSlow"
    )
  })

  it("reach: never restarted, parked first, too slow", () => {
    const config = new Config.AgentConfig({ name: "a", command: "x" })
    const window = Duration.seconds(10)
    assert.deepStrictEqual(RestartPolicy.reach({ ...config, restart: "temporary" }, { maxRestarts: 1, window }), {
      _tag: "NeverRestarted"
    })
    assert.deepStrictEqual(RestartPolicy.reach(config, { maxRestarts: 5, window }), {
      _tag: "ParkedFirst",
      restarts: 3,
      needed: 6
    })
    assert.deepStrictEqual(RestartPolicy.reach({ ...config, maxRestartAttempts: 0 }, { maxRestarts: 0, window }), {
      _tag: "ParkedFirst",
      restarts: 0,
      needed: 1
    })
    assert.strictEqual(RestartPolicy.reach(config, { maxRestarts: 2, window: Duration.seconds(3) })._tag, "TooSlow")
  })

  const arbSettings = FastCheck.record({
    maxRestartAttempts: FastCheck.integer({ min: 0, max: 8 }),
    restartBackoff: FastCheck.integer({ min: 0, max: 5_000 }),
    backoffFactor: FastCheck.constantFrom(1, 2, 3),
    maxBackoff: FastCheck.integer({ min: 0, max: 20_000 })
  })

  it.effect.prop(
    "reach agrees with the rules it sums up: decide and the intensity, a start that fails at once, no jitter",
    [arbSettings, FastCheck.integer({ min: 0, max: 6 }), FastCheck.integer({ min: 0, max: 30_000 })],
    ([raw, maxRestarts, windowMillis]) =>
      Effect.gen(function*() {
        const settings: RestartPolicy.Settings = {
          restartOnExit: true,
          restart: "permanent",
          maxRestartAttempts: raw.maxRestartAttempts,
          restartBackoff: Duration.millis(raw.restartBackoff),
          backoffFactor: raw.backoffFactor,
          jitter: 0,
          maxBackoff: Duration.millis(raw.maxBackoff),
          resetAfter: Duration.minutes(1)
        }
        const window = Duration.millis(windowMillis)
        const intensity = yield* RestartPolicy.makeIntensity({ maxRestarts, window })
        let failures = 0
        let escalated = false
        while (true) {
          const decision = RestartPolicy.decide(settings, "abnormal", failures)
          if (decision._tag !== "Restart") break
          failures = decision.failures
          if (yield* intensity.record) {
            escalated = true
            break
          }
          yield* TestClock.adjust(RestartPolicy.baseDelay(settings, failures))
        }
        assert.strictEqual(RestartPolicy.reach(settings, { maxRestarts, window })._tag === "Escalates", escalated)
      }),
    { fastCheck: { numRuns: 200 } }
  )

  it.scoped("make warns once when a child that never starts would be parked instead; the defaults do not", () =>
    Effect.gen(function*() {
      const quiet = yield* warningsOf(Supervisor.make({ children: [Supervisor.agent({ id: "a", config: tiny("a") })] }))
      assert.deepStrictEqual(quiet.lines, [])
      const loud = yield* warningsOf(Supervisor.make({
        intensity: { maxRestarts: 5, window: "10 seconds" },
        children: [
          Supervisor.agent({ id: "a", config: tiny("a") }),
          Supervisor.agent({ id: "fine", config: tiny("fine", { maxRestartAttempts: 10, restartBackoff: 0 }) }),
          Supervisor.supervisor({
            id: "s",
            children: [Supervisor.agent({ id: "slow", config: tiny("slow", { restartBackoff: "5 seconds" }) })]
          }),
          Supervisor.agent({ id: "temp", config: tiny("temp", { restart: "temporary", maxRestartAttempts: 0 }) })
        ]
      }))
      assert.isTrue(Exit.isSuccess(loud.exit))
      assert.strictEqual(loud.lines.length, 1)
      const [line] = loud.lines
      assert.include(line, `children[0] ("a"): its circuit opens after 3 restarts`)
      assert.include(line, `children[2].children[0] ("s/slow"): its backoff spreads the 2 restarts`)
      assert.notInclude(line, `"fine"`)
      assert.notInclude(line, `"temp"`)
    }).pipe(Effect.provide(TestLive)))

  // With the tree's logger: a supervisor's operations log as the supervisor, whoever asks for them.
  it.scoped("startChild warns once for the child it adds, and not for one that escalates", () => {
    const lines: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
        lines.push(Array.isArray(message) ? message.join(" ") : String(message))
      }
    })
    const parked = () => lines.splice(0).filter((line) => line.includes("would be parked"))
    return Effect.gen(function*() {
      const sup = yield* Supervisor.make({ intensity: { maxRestarts: 3, window: "1 minute" } })
      yield* sup.startChild(Supervisor.agent({ id: "a", config: tiny("a") }))
      const first = parked()
      assert.strictEqual(first.length, 1)
      assert.include(first[0], `children[0] ("a")`)
      yield* sup.startChild(Supervisor.agent({ id: "b", config: tiny("b", { maxRestartAttempts: 4 }) }))
      assert.deepStrictEqual(parked(), [])
      assert.strictEqual((yield* sup.countChildren).specs, 2)
    }).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.Warning),
      Effect.provide(TestLive)
    )
  })
})

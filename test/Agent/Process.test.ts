import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Callers from "../../src/Agent/internal/callers.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import {
  agentConfig,
  closeableScope,
  eventually,
  failureOf,
  fixture,
  groupMembers,
  isAlive,
  logMessages,
  openFileDescriptors,
  TestLive
} from "../support.js"

/** Starts an agent in its own scope, so a test can close it and look at what is left. */
const startIn = (mode: string, overrides: Parameters<typeof agentConfig>[1] = {}) =>
  Effect.gen(function*() {
    const scope = yield* closeableScope
    const agent = yield* AgentProcess.make(agentConfig(mode, overrides)).pipe(Scope.extend(scope))
    return { agent, scope }
  })

const assertGroupGone = (pgid: number) =>
  eventually(
    `process group ${pgid} is gone (members: ${groupMembers(pgid).join(",")})`,
    () => groupMembers(pgid).length === 0
  )

/** The echo fixture logs each `cancel` it receives to stderr. */
const gotCancel = (agent: AgentProcess.AgentProcess) =>
  eventually(
    "the agent got a cancel",
    () => Effect.runSync(agent.recentStderr).some((line) => /\[echo\] cancel \d+/.test(line))
  )

describe.sequential("AgentProcess", () => {
  it.scopedLive("echo: answers requests, concurrently, and pings with the agent's health report", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      assert.isTrue(isAlive(agent.pid))
      assert.deepStrictEqual(yield* agent.request({ echo: { hello: "world" } }), { hello: "world" })
      const results = yield* Effect.forEach(
        Chunk.range(1, 100),
        (n) => agent.request({ echo: n, sleep: (n % 5) * 3 }),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(results, Array.from(Chunk.range(1, 100)))
      const pong = yield* agent.ping()
      assert.isTrue(Option.isSome(pong.report))
      assert.strictEqual(Option.getOrThrow(pong.report).total_requests, 101)
      assert.isTrue(pong.latencyMillis >= 0)
      const stats = yield* agent.stats
      assert.strictEqual(stats.responses, 102)
      assert.strictEqual(stats.inFlight, 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("scope close runs phase 1: the agent exits 0 on shutdown and the group is gone", () =>
    Effect.gen(function*() {
      const { agent, scope } = yield* startIn("echo")
      const grandchild = (yield* agent.request({ grandchild: true })) as { pid: number }
      assert.isTrue(isAlive(grandchild.pid))
      yield* Scope.close(scope, Exit.void)
      const info = Option.getOrThrow(yield* agent.exitInfo)
      assert.deepStrictEqual([info.exitCode, info.signal, info.requested], [0, null, true])
      yield* assertGroupGone(agent.pid)
      assert.isFalse(isAlive(grandchild.pid))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("ignores shutdown: SIGTERM after gracefulTimeout ends it", () =>
    Effect.gen(function*() {
      const { agent, scope } = yield* startIn("ignore-shutdown", { gracefulTimeout: "200 millis" })
      yield* Scope.close(scope, Exit.void)
      const info = Option.getOrThrow(yield* agent.exitInfo)
      assert.strictEqual(info.signal, "SIGTERM")
      yield* assertGroupGone(agent.pid)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive(
    "a stop that the agent fails (not 0 after shutdown, a signal the stop did not send) is warned of, as OTP " +
      "reports a shutdown_error; the exit is still the stop's",
    () =>
      Effect.gen(function*() {
        const warnings: Array<string> = []
        const capture = Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") warnings.push([message].flat().map(String).join(" "))
        })
        const stopped = (mode: string, overrides: Parameters<typeof agentConfig>[1] = {}) =>
          Effect.gen(function*() {
            warnings.length = 0
            const { agent, scope } = yield* startIn(mode, overrides)
            yield* Scope.close(scope, Exit.void)
            const info = Option.getOrThrow(yield* agent.exitInfo)
            return { info: [info.exitCode, info.signal, info.requested], warnings: [...warnings] }
          }).pipe(
            Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
            Logger.withMinimumLogLevel(LogLevel.Warning)
          )
        assert.deepStrictEqual(yield* stopped("fail-shutdown"), {
          info: [3, null, true],
          warnings: [
            "agent exited with code 3 as it stopped: asked to shut down, it did not exit 0 (its shutdown failed?): " +
            "see its stderr"
          ]
        })
        assert.deepStrictEqual(yield* stopped("die-in-shutdown"), {
          info: [null, "SIGUSR2", true],
          warnings: [
            "agent was killed by SIGUSR2 as it stopped, a signal the stop did not send (a crash in its shutdown?): " +
            "see its stderr"
          ]
        })
        // exit 0 on shutdown, and an exit by the SIGTERM the stop sent: nothing to say
        assert.deepStrictEqual(yield* stopped("echo"), { info: [0, null, true], warnings: [] })
        // the code of a SIGTERM sent by another (systemd stopping the unit signals its whole cgroup): no failure
        assert.deepStrictEqual(yield* stopped("exit-143-in-shutdown"), { info: [143, null, true], warnings: [] })
        // an agent that never sent ready, stopped as its start times out: the start's error says how it ended
        warnings.length = 0
        const start = yield* Effect.exit(
          AgentProcess.make(agentConfig("no-ready-dies-on-term", { startupTimeout: "2 seconds" })).pipe(
            Effect.scoped,
            Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
            Logger.withMinimumLogLevel(LogLevel.Warning)
          )
        )
        // (how it ended, as the start's error says it, depends on when the timeout came: before its SIGTERM handler,
        // or after)
        assert.strictEqual(failureOf(start)._tag, "AgentStartupError")
        assert.deepStrictEqual(warnings, [])
        assert.deepStrictEqual(yield* stopped("ignore-shutdown", { gracefulTimeout: "200 millis" }), {
          info: [null, "SIGTERM", true],
          warnings: ["agent ignored shutdown for 200ms: SIGTERM"]
        })
        // No time given (OTP's brutal_kill sets both timeouts to 0): no phase was ignored, nothing to warn of
        assert.deepStrictEqual(yield* stopped("ignore-sigterm", { gracefulTimeout: 0, sigtermTimeout: 0 }), {
          info: [null, "SIGKILL", true],
          warnings: []
        })
      }).pipe(Effect.provide(TestLive))
  )

  it.scopedLive("ignores shutdown and SIGTERM: SIGKILL after sigtermTimeout; the scope still closes", () =>
    Effect.gen(function*() {
      const { agent, scope } = yield* startIn("ignore-sigterm", {
        gracefulTimeout: "200 millis",
        sigtermTimeout: "200 millis"
      })
      const pending = yield* Effect.fork(agent.request({ sleep: 60_000 }))
      yield* Scope.close(scope, Exit.void)
      const info = Option.getOrThrow(yield* agent.exitInfo)
      assert.strictEqual(info.signal, "SIGKILL")
      const error = failureOf(yield* Fiber.await(pending))
      assert.strictEqual(error._tag, "AgentStoppedError")
      yield* assertGroupGone(agent.pid)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a stopped process (SIGSTOP) is woken by SIGCONT after its SIGTERM: it dies of SIGTERM at once", () => {
    const logs = logMessages()
    return Effect.gen(function*() {
      // Without the SIGCONT its SIGTERM stays pending: SIGKILL after sigtermTimeout (10 s)
      const { agent, scope } = yield* startIn("echo", { gracefulTimeout: "200 millis", sigtermTimeout: "10 seconds" })
      process.kill(agent.pid, "SIGSTOP")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(Option.getOrThrow(yield* agent.exitInfo).signal, "SIGTERM")
      yield* assertGroupGone(agent.pid)
      // Said as what it is, not as a shutdown ignored
      assert.include(logs.lines.join("\n"), "agent is stopped (SIGSTOP, a debugger or job control: state T)")
    }).pipe(logs.provide, Effect.provide(TestLive))
  })

  it.scopedLive("crash mid-request: every pending request fails at once with exit code and stderr", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const slow = yield* Effect.fork(
        Effect.forEach([1, 2, 3], () => Effect.exit(agent.request({ sleep: 60_000 })), { concurrency: "unbounded" })
      )
      const crash = failureOf(yield* Effect.exit(agent.request({ crash: 7 })))
      assert.strictEqual(crash._tag, "AgentCrashError")
      if (crash._tag !== "AgentCrashError") return
      assert.strictEqual(crash.exitCode, 7)
      assert.isTrue(crash.stderr.some((line) => line.includes("crashing with code 7")), crash.stderr.join("\n"))
      assert.include(crash.message, "exited with code 7")
      for (const exit of yield* Fiber.join(slow)) assert.strictEqual(failureOf(exit)._tag, "AgentCrashError")
      // later calls fail at once too
      assert.strictEqual(failureOf(yield* Effect.exit(agent.request({})))._tag, "AgentCrashError")
      assert.strictEqual(failureOf(yield* Effect.exit(agent.ping()))._tag, "AgentCrashError")
      yield* assertGroupGone(agent.pid)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a caller that outlives its agent keeps no hold on it: answered, timed out or crashed", () =>
    Effect.gen(function*() {
      // The request path tells its caller's fiber what it waits on (to see an interruption: `callers.ts`); every
      // way a request ends must empty that again, or a long-lived caller would keep every dead incarnation alive.
      // The fiber gets one observer for its life, not one per request.
      const self = yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((fiber) =>
        Effect.succeed(fiber as Fiber.RuntimeFiber<unknown, unknown>)
      )
      const observers = () => (self as unknown as { readonly _observers: ReadonlyArray<unknown> })._observers.length
      const before = observers()
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      yield* agent.request({ echo: 1 })
      assert.isUndefined(Callers.waitingOf(self))
      yield* agent.ping()
      yield* agent.request({ echo: 2 })
      yield* Effect.exit(agent.request({ sleep: 60_000 }, { timeout: "20 millis" }))
      assert.isUndefined(Callers.waitingOf(self))
      assert.strictEqual(observers(), before + 1)
      assert.strictEqual(failureOf(yield* Effect.exit(agent.request({ crash: 3 })))._tag, "AgentCrashError")
      assert.isUndefined(Callers.waitingOf(self))
      assert.strictEqual(observers(), before + 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("killed by a signal: the crash names the signal", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const error = failureOf(yield* Effect.exit(agent.request({ signal: "SIGKILL" })))
      assert.strictEqual(error._tag, "AgentCrashError")
      if (error._tag === "AgentCrashError") assert.strictEqual(error.signal, "SIGKILL")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("exits at start: AgentStartupError with the exit code and its stderr", () =>
    Effect.gen(function*() {
      const error = failureOf(yield* Effect.exit(AgentProcess.make(agentConfig("exit-at-start"))))
      assert.strictEqual(error._tag, "AgentStartupError")
      if (error._tag !== "AgentStartupError") return
      assert.strictEqual(error.reason, "exited_before_ready")
      assert.strictEqual(error.exitCode, 3)
      assert.isTrue(error.stderr.some((line) => line.includes("missing API key")))
      assert.isString(error.remediation)
    }).pipe(Effect.provide(TestLive)))

  it.scoped("never sends ready: AgentStartupError after startupTimeout, with the stderr written before it", () =>
    Effect.gen(function*() {
      // The timeout fires (TestClock) only once the agent has written its stderr line: what the pipe holds then
      // must be in the error, however slowly the supervisor's event loop gets to it on a loaded machine.
      const marker = path.join(os.tmpdir(), `no-ready-${process.pid}-${Date.now()}`)
      const config = agentConfig("no-ready-marker", { startupTimeout: "30 seconds" })
      const started = yield* Effect.fork(
        Effect.exit(AgentProcess.make({ ...config, args: [...config.args!, marker] }))
      )
      yield* eventually("the agent wrote its stderr line", () => fs.existsSync(marker)).pipe(
        Effect.withClock(Clock.make())
      )
      fs.rmSync(marker)
      yield* TestClock.adjust("30 seconds")
      const error = failureOf(yield* Fiber.join(started))
      assert.strictEqual(error._tag, "AgentStartupError")
      if (error._tag !== "AgentStartupError") return
      assert.strictEqual(error.reason, "no_ready_in_time")
      assert.isTrue(error.stderr.some((line) => line.includes("loading forever")), JSON.stringify(error.stderr))
      yield* assertGroupGone(error.pid!).pipe(Effect.withClock(Clock.make()))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("spawn failure: a missing program gives AgentStartupError, not a defect", () =>
    Effect.gen(function*() {
      const error = failureOf(
        yield* Effect.exit(AgentProcess.make({ name: "missing", command: "/nonexistent/agent-binary" }))
      )
      assert.strictEqual(error._tag, "AgentStartupError")
      if (error._tag === "AgentStartupError") assert.strictEqual(error.reason, "spawn_failed")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("bad config: ConfigError naming the field", () =>
    Effect.gen(function*() {
      const error = failureOf(
        yield* Effect.exit(AgentProcess.make({ name: "x", command: "node", requestTimeout: "soon" } as never))
      )
      assert.strictEqual(error._tag, "ConfigError")
      if (error._tag === "ConfigError") assert.strictEqual(error.field, "requestTimeout")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("grandchild that keeps the pipes open: the agent's exit is still seen at once", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("grandchild-holds-pipes"))
      const members = groupMembers(agent.pid)
      assert.isAtLeast(members.length, 2)
      const error = failureOf(yield* Effect.exit(agent.request({ crash: 1 })))
      assert.strictEqual(error._tag, "AgentCrashError")
      yield* assertGroupGone(agent.pid)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("agent exits 0 by itself: its grandchildren are swept too", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const grandchild = (yield* agent.request({ grandchild: true })) as { pid: number }
      const error = failureOf(yield* Effect.exit(agent.request({ crash: 0 })))
      assert.strictEqual(error._tag, "AgentCrashError")
      yield* eventually("the grandchild is dead", () => !isAlive(grandchild.pid))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("garbage, invalid UTF-8, non-objects and over-long lines on stdout are counted, never fatal", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo", { maxMessageBytes: 64 * 1024 }))
      const result = yield* agent.request({ stdout: 200_000 })
      assert.strictEqual(result, "€uro ✓")
      const stats = yield* agent.stats
      assert.strictEqual(stats.protocolErrors, 2) // invalid UTF-8, over-long
      assert.strictEqual(stats.outputLines, 5) // not json, [1,2,3], 42, "a string", {"no":"protocol"}
      assert.strictEqual(stats.lateResponses, 1) // unknown-id
      assert.deepStrictEqual(yield* agent.request({ echo: "still fine" }), "still fine")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("replies of several MiB work, both ways", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const big = "z".repeat(6 * 1024 * 1024)
      assert.strictEqual(((yield* agent.request({ bytes: 8 * 1024 * 1024 })) as string).length, 8 * 1024 * 1024)
      assert.strictEqual(yield* agent.request({ echo: big }), big)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a task over maxMessageBytes or not JSON fails with ProtocolError and sends nothing", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo", { maxMessageBytes: 4096 }))
      const tooLong = failureOf(yield* Effect.exit(agent.request({ echo: "q".repeat(5000) })))
      assert.strictEqual(tooLong._tag, "ProtocolError")
      // the limit is in bytes: 3000 two-byte characters are 6000 bytes
      const multibyte = failureOf(yield* Effect.exit(agent.request({ echo: "é".repeat(3000) })))
      assert.strictEqual(multibyte._tag, "ProtocolError")
      const bigint = failureOf(yield* Effect.exit(agent.request({ n: 1n })))
      assert.strictEqual(bigint._tag, "ProtocolError")
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      assert.strictEqual(failureOf(yield* Effect.exit(agent.request(cyclic)))._tag, "ProtocolError")
      // What JSON would change without a word (before, the agent got {}): refused, named
      const map = failureOf(yield* Effect.exit(agent.request({ echo: { tags: new Map([["a", 1]]) } })))
      assert.deepInclude(map, { _tag: "ProtocolError", reason: "unencodable" })
      assert.include(
        map.message,
        "payload cannot be sent as JSON: payload.echo.tags is a Map, which JSON sends as {} (convert it: " +
          "Object.fromEntries(map))"
      )
      assert.strictEqual(yield* agent.request({ echo: 1 }), 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a line that is no response but carries its id is ignored: the request times out, the reader goes on", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const error = failureOf(yield* Effect.exit(agent.request({ weird: true }, { timeout: "300 millis" })))
      assert.strictEqual(error._tag, "AgentTimeoutError")
      assert.strictEqual(yield* agent.request({ echo: "still read" }), "still read")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("closing the scope fails the requests in flight and waiting at once, before the agent has exited", () =>
    Effect.gen(function*() {
      const scope = yield* closeableScope
      const agent = yield* AgentProcess.make(
        agentConfig("ignore-shutdown", { maxInFlight: 1, gracefulTimeout: "5 seconds", sigtermTimeout: "1 second" })
      ).pipe(Scope.extend(scope))
      const inFlight = yield* Effect.fork(Effect.exit(agent.request({ sleep: 60_000 })))
      const waiting = yield* Effect.fork(Effect.exit(agent.request({ echo: "queued" })))
      yield* eventually("one in flight, one waiting", () => {
        const stats = Effect.runSync(agent.stats)
        return stats.inFlight === 1 && stats.waiting === 1
      })
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      for (const fiber of [inFlight, waiting]) {
        assert.strictEqual(failureOf(yield* Fiber.join(fiber))._tag, "AgentStoppedError")
      }
      // the agent ignores shutdown: it is still in its graceful period, so nobody waited for its exit
      assert.isTrue(Option.isNone(yield* agent.exitInfo))
      assert.strictEqual(failureOf(yield* Effect.exit(agent.request({ echo: "late" })))._tag, "AgentStoppedError")
      yield* Fiber.join(closing)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("stderr floods with lines over 64 KiB are drained, truncated in the log and kept in the ring", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      assert.strictEqual(yield* agent.request({ stderr: { lines: 200, length: 100_000 } }), "flooded")
      assert.strictEqual(yield* agent.request({ echo: "after" }), "after")
      // stderr is its own pipe: its lines arrive independently of the replies on stdout.
      yield* eventually("all 200 stderr lines are read", () => Effect.runSync(agent.stats).stderrLines === 200)
      const recent = yield* agent.recentStderr
      assert.strictEqual(recent.length, 50)
      assert.isTrue(recent.every((line) => line.length < 20_000))
      assert.include(recent[recent.length - 1], "199:")
      assert.include(recent[recent.length - 1], "more bytes]")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("answers after the timeout: AgentTimeoutError, then the late answer is dropped and counted", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const error = failureOf(yield* Effect.exit(agent.request({ sleep: 300 }, { timeout: "50 millis" })))
      assert.strictEqual(error._tag, "AgentTimeoutError")
      if (error._tag === "AgentTimeoutError") assert.strictEqual(error.timeoutMillis, 50)
      yield* eventually("the late response is counted", () => Effect.runSync(agent.stats).lateResponses === 1)
      assert.strictEqual((yield* agent.stats).inFlight, 0)
      assert.strictEqual(yield* agent.request({ echo: "ok" }), "ok")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("an interrupted caller leaves no pending entry behind", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const fiber = yield* Effect.fork(agent.request({ sleep: 60_000 }))
      yield* eventually("the request is in flight", () => Effect.runSync(agent.stats).inFlight === 1)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual((yield* agent.stats).inFlight, 0)
      // and the agent is told to stop working on it
      yield* gotCancel(agent)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a caller that catches its interruption and asks again: the request it left is cancelled then", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      // Uninterruptible but for the first request: interrupted, the fiber catches it and goes on to a second,
      // long one. The first is cancelled when the second is asked, not when the fiber ends (after the second).
      const fiber = yield* Effect.fork(Effect.uninterruptible(
        Effect.zipRight(
          Effect.exit(Effect.interruptible(agent.request({ sleep: 60_000 }))),
          agent.request({ echo: "after", sleep: 60_000 })
        )
      ))
      yield* eventually("the first request is in flight", () => Effect.runSync(agent.stats).inFlight === 1)
      yield* Fiber.interruptFork(fiber)
      yield* eventually("the second request is sent", () => Effect.runSync(agent.stats).requests === 2)
      yield* gotCancel(agent)
      assert.strictEqual((yield* agent.stats).inFlight, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a caller interrupted by a timeout of its own (Effect.timeout) cancels its request too", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const result = yield* agent.request({ sleep: 60_000 }).pipe(Effect.timeoutOption("50 millis"))
      assert.isTrue(Option.isNone(result))
      assert.strictEqual((yield* agent.stats).inFlight, 0)
      yield* gotCancel(agent)
      assert.strictEqual(yield* agent.request({ echo: "still serving" }), "still serving")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("maxInFlight bounds concurrent requests; the others wait their turn", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo", { maxInFlight: 2 }))
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5], (n) => Effect.fork(agent.request({ echo: n, sleep: 100 })))
      yield* eventually("two requests are in flight", () => Effect.runSync(agent.stats).inFlight === 2)
      assert.strictEqual((yield* agent.stats).inFlight, 2)
      const results = yield* Effect.forEach(fibers, Fiber.join)
      assert.deepStrictEqual(results, [1, 2, 3, 4, 5])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("stops reading stdin: other callers and pings are bounded by their timeouts", () =>
    Effect.gen(function*() {
      const { agent, scope } = yield* startIn("stuck-stdin", { gracefulTimeout: "100 millis" })
      // The first task is read and never answered; the next ones fill the pipe and block the writer.
      const first = yield* Effect.fork(Effect.exit(agent.request({}, { timeout: "500 millis" })))
      yield* eventually(
        "the agent stopped reading",
        () => Effect.runSync(agent.recentStderr).some((line) => line.includes("no longer reading stdin"))
      )
      const fill = yield* Effect.fork(
        Effect.forEach(
          [1, 2, 3, 4],
          () => Effect.exit(agent.request({ echo: "f".repeat(1 << 20) }, { timeout: "1 second" })),
          {
            concurrency: "unbounded"
          }
        )
      )
      const ping = yield* Effect.exit(agent.ping({ timeout: "300 millis" }))
      assert.strictEqual(failureOf(ping)._tag, "AgentTimeoutError")
      assert.strictEqual(failureOf(yield* Fiber.join(first))._tag, "AgentTimeoutError")
      for (const exit of yield* Fiber.join(fill)) assert.strictEqual(failureOf(exit)._tag, "AgentTimeoutError")
      yield* Scope.close(scope, Exit.void)
      yield* assertGroupGone(agent.pid)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the agent's error response becomes AgentTaskError; the agent keeps serving", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const error = failureOf(yield* Effect.exit(agent.request({ fail: "bad input" })))
      assert.strictEqual(error._tag, "AgentTaskError")
      if (error._tag === "AgentTaskError") {
        assert.deepStrictEqual([error.errorType, error.errorMessage], ["ValueError", "bad input"])
      }
      assert.strictEqual(yield* agent.request({ echo: 2 }), 2)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("made in an uninterruptible region (as layers are built), the agent still stops on scope close", () =>
    Effect.gen(function*() {
      const scope = yield* closeableScope
      const agent = yield* Effect.uninterruptible(AgentProcess.make(agentConfig("echo")).pipe(Scope.extend(scope)))
      assert.strictEqual(yield* agent.request({ echo: 1 }), 1)
      yield* Scope.close(scope, Exit.void).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "hung" }))
      yield* assertGroupGone(agent.pid)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("file descriptors do not grow over 200 start/stop cycles", () =>
    Effect.gen(function*() {
      const cycle = Effect.scoped(
        AgentProcess.make({ name: "tiny", command: "/bin/sh", args: [fixture("agents", "tiny.sh")] })
      )
      yield* Effect.scoped(cycle) // warm up lazily created handles
      const before = openFileDescriptors()
      for (let i = 0; i < 200; i++) yield* cycle
      const after = openFileDescriptors()
      assert.isAtMost(after - before, 3, `fds before ${before}, after ${after}`)
    }).pipe(Effect.provide(TestLive)), 120_000)
})

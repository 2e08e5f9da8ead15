/**
 * A start that times out as its agent exits by itself: the start's error says how the agent ended, whatever the
 * order in which the timeout and the exit are seen. An exit seen in the instant after the timeout fired was reported
 * as `no_ready_in_time`, its code, signal and stderr in no error and no log. An exit the stop itself caused stays a
 * `no_ready_in_time`. Real processes: test/fixtures/agents/unready.mjs, and `sh` as a directory agent's check.
 *
 * The races are made, not waited for. The startup timeout is a clock's sleep that the test ends itself, in the
 * same synchronous step that saw the agent die (a zombie in /proc), so the event loop has not yet reported the
 * exit when the timeout fires. The callback check's timeout runs on the real clock: the event loop is held while
 * its program dies and its deadline passes, and the loop runs its timers before it reads the exit.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as Config from "../../src/Agent/Config.js"
import * as Check from "../../src/Agent/internal/directory/check.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import type { AgentStartupError } from "../../src/Errors.js"
import * as Store from "../../src/Store/Store.js"
import { eventually, failureOf, fixture, statFields, TestLive } from "../support.js"

/** The startup timeout of these agents: no other sleep of a start lasts exactly this long. */
const STARTUP_MILLIS = 7_777

/** The live clock, except that a sleep of `STARTUP_MILLIS` (the startup timeout) ends when the test calls `fire`. */
const startupTimer = () => {
  const live = Clock.make()
  let fire: (() => void) | undefined
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => live.unsafeCurrentTimeMillis(),
    currentTimeMillis: live.currentTimeMillis,
    unsafeCurrentTimeNanos: () => live.unsafeCurrentTimeNanos(),
    currentTimeNanos: live.currentTimeNanos,
    sleep: (duration) =>
      Duration.toMillis(duration) !== STARTUP_MILLIS ? live.sleep(duration) : Effect.async<void>((resume) => {
        fire = () => {
          fire = undefined
          resume(Effect.void)
        }
        return Effect.sync(() => {
          fire = undefined
        })
      })
  }
  return {
    clock,
    armed: () => fire !== undefined,
    fire: () => {
      if (fire === undefined) throw new Error("the startup timeout is not armed")
      fire()
    }
  }
}

type Timer = ReturnType<typeof startupTimer>

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "startup-race-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const unready = (
  mode: string,
  marker: string,
  overrides: Partial<Config.AgentConfigInput> = {}
): Config.AgentConfigInput => ({
  name: `unready-${mode}`,
  command: process.execPath,
  args: [fixture("agents", "unready.mjs"), mode, marker],
  startupTimeout: Duration.millis(STARTUP_MILLIS),
  // Were the stop to wait for either, the test would time out: the exits here come by themselves or by SIGTERM.
  gracefulTimeout: "1 hour",
  sigtermTimeout: "1 hour",
  ...overrides
})

/** The agent's pid, once its signal handler is in place and its startup timeout armed. */
const pidOnceArmed = (marker: string, timer: Timer) =>
  Effect.map(
    eventually("the agent is loading and its startup timeout armed", () => fs.existsSync(marker) && timer.armed()),
    () => Number(fs.readFileSync(marker, "utf8"))
  )

const procState = (pid: number): string | undefined => statFields(pid)?.[0]

/**
 * Waits, without letting the event loop turn, until the process is dead and not reaped (a zombie): its parent
 * has not seen its exit yet, and cannot before this returns.
 */
const spinUntilDead = (pid: number): void => {
  const deadline = Date.now() + 10_000
  for (let state = procState(pid); state !== "Z"; state = procState(pid)) {
    if (state === undefined || Date.now() > deadline) throw new Error(`process ${pid} is not a zombie: ${state}`)
  }
}

/** Runs `f` in a callback of its own of the event loop (its check phase), holding the loop while it runs. */
const holdingTheLoop = (f: () => void): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    setImmediate(() => {
      try {
        f()
        resume(Effect.void)
      } catch (error) {
        resume(Effect.die(error))
      }
    })
  })

const startupErrorOf = <A, E>(exit: Exit.Exit<A, E>): AgentStartupError => {
  const error = failureOf(exit) as unknown as AgentStartupError
  assert.strictEqual(error._tag, "AgentStartupError", String(error))
  return error
}

/** Warnings and errors logged, as their messages. */
const capturedLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
      lines.push(Array.isArray(message) ? message.join(" ") : String(message))
    }
  })
  return { lines, layer: Layer.mergeAll(Store.layerMemory, Logger.replace(Logger.defaultLogger, logger)) }
}

describe.sequential("a start that times out as its agent exits by itself", () => {
  it.scopedLive("the agent died just before its timeout fired, its exit not yet seen: exited_before_ready", () =>
    Effect.gen(function*() {
      const marker = path.join(yield* tempDir, "marker")
      const timer = startupTimer()
      const start = yield* Effect.fork(
        Effect.exit(Effect.scoped(AgentProcess.make(unready("exit-on-usr2", marker)))).pipe(
          Effect.withClock(timer.clock)
        )
      )
      const pid = yield* pidOnceArmed(marker, timer)
      // One synchronous step: the agent dies, and its timeout fires before the event loop could report the exit.
      process.kill(pid, "SIGUSR2")
      spinUntilDead(pid)
      timer.fire()
      const error = startupErrorOf(yield* Fiber.join(start))
      assert.deepStrictEqual([error.reason, error.pid, error.exitCode, error.signal], [
        "exited_before_ready",
        pid,
        7,
        null
      ])
      assert.include(error.stderr.join("\n"), "fatal: lost the model")
      assert.include(error.message, "exited with code 7")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("supervised: its failed start is logged once, with the exit and its stderr, not as an unexpected exit", () => {
    const logs = capturedLogs()
    return Effect.gen(function*() {
      const marker = path.join(yield* tempDir, "marker")
      const timer = startupTimer()
      const start = yield* Effect.fork(
        Effect.exit(Effect.scoped(AgentSupervisor.make(unready("exit-on-usr2", marker)))).pipe(
          Effect.withClock(timer.clock)
        )
      )
      const pid = yield* pidOnceArmed(marker, timer)
      process.kill(pid, "SIGUSR2")
      spinUntilDead(pid)
      timer.fire()
      const error = startupErrorOf(yield* Fiber.join(start))
      assert.deepStrictEqual([error.reason, error.exitCode], ["exited_before_ready", 7])
      assert.deepStrictEqual(logs.lines.filter((line) => line.includes("exited unexpectedly")), [])
      const failed = logs.lines.filter((line) => line.startsWith("agent failed to start"))
      assert.strictEqual(failed.length, 1, logs.lines.join("\n"))
      assert.include(failed[0], "exited with code 7")
      assert.include(failed[0], "fatal: lost the model")
    }).pipe(Effect.provide(logs.layer), Logger.withMinimumLogLevel(LogLevel.Warning))
  })

  it.scopedLive("killed by a signal the stop did not send, while the stop waits on its SIGTERM: exited_before_ready", () =>
    Effect.gen(function*() {
      const marker = path.join(yield* tempDir, "marker")
      const timer = startupTimer()
      const start = yield* Effect.fork(
        Effect.exit(Effect.scoped(AgentProcess.make(unready("ignore-term", marker)))).pipe(
          Effect.withClock(timer.clock)
        )
      )
      const pid = yield* pidOnceArmed(marker, timer)
      timer.fire()
      yield* eventually("the agent got the stop's SIGTERM", () => fs.existsSync(`${marker}.term`))
      // as the OOM killer would: the stop would send SIGKILL only after sigtermTimeout (an hour)
      process.kill(pid, "SIGKILL")
      const error = startupErrorOf(yield* Fiber.join(start))
      assert.deepStrictEqual([error.reason, error.exitCode, error.signal], ["exited_before_ready", null, "SIGKILL"])
      assert.include(error.stderr.join("\n"), "ignoring SIGTERM")
    }).pipe(Effect.provide(TestLive)))
})

describe.sequential("a start that times out and is ended by the stop stays no_ready_in_time", () => {
  it.scopedLive("it exits with a code from its SIGTERM handler", () =>
    Effect.gen(function*() {
      const marker = path.join(yield* tempDir, "marker")
      const timer = startupTimer()
      const start = yield* Effect.fork(
        Effect.exit(Effect.scoped(AgentProcess.make(unready("exit-on-term", marker)))).pipe(
          Effect.withClock(timer.clock)
        )
      )
      yield* pidOnceArmed(marker, timer)
      timer.fire()
      const error = startupErrorOf(yield* Fiber.join(start))
      assert.deepStrictEqual([error.reason, error.timeoutMillis, error.exitCode], [
        "no_ready_in_time",
        STARTUP_MILLIS,
        undefined
      ])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("it ignores SIGTERM and dies of the stop's SIGKILL", () =>
    Effect.gen(function*() {
      const marker = path.join(yield* tempDir, "marker")
      const timer = startupTimer()
      const start = yield* Effect.fork(
        Effect.exit(Effect.scoped(AgentProcess.make(unready("ignore-term", marker, { sigtermTimeout: "200 millis" }))))
          .pipe(Effect.withClock(timer.clock))
      )
      yield* pidOnceArmed(marker, timer)
      timer.fire()
      const error = startupErrorOf(yield* Fiber.join(start))
      assert.deepStrictEqual([error.reason, error.exitCode], ["no_ready_in_time", undefined])
      assert.isTrue(fs.existsSync(`${marker}.term`), "it was sent SIGTERM first")
    }).pipe(Effect.provide(TestLive)))
})

describe.sequential("a directory agent's callback check that times out as its program exits by itself", () => {
  // Reads its stdin to the end (closed by the check right before its timeout is armed), says it is there, and
  // exits with a message once the test creates the trigger file.
  const script = [
    "cat >/dev/null",
    `echo $$ > "$1.tmp" && mv "$1.tmp" "$1"`,
    `while [ ! -e "$2" ]; do sleep 0.01; done`,
    "echo 'boom: cannot load the module' >&2",
    "exit 3"
  ].join("\n")
  const check = (dir: string, timeout: Duration.Duration) =>
    Effect.flatMap(
      Config.make({
        name: "checked",
        command: "sh",
        args: ["-c", script, "sh", path.join(dir, "pid"), path.join(dir, "trigger")],
        cwd: dir
      }),
      (config) => Check.checkCallback({ config, timeout, module: "agent.py", callback: "handle_request" })
    )

  it.scopedLive("it exited before the timeout fired, its exit seen after: exited_before_ready with its code", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const timeout = Duration.seconds(1)
      const checking = yield* Effect.fork(Effect.exit(check(dir, timeout)))
      yield* eventually("the check's program read its stdin to the end", () => fs.existsSync(path.join(dir, "pid")))
      // The timeout was armed before the program could see the end of its stdin, so before now.
      const armedBefore = Date.now()
      const pid = Number(fs.readFileSync(path.join(dir, "pid"), "utf8"))
      yield* holdingTheLoop(() => {
        fs.writeFileSync(path.join(dir, "trigger"), "")
        spinUntilDead(pid)
        while (Date.now() <= armedBefore + Duration.toMillis(timeout) + 1) {
          // the deadline passes while the exit waits, unseen
        }
      })
      const error = startupErrorOf(yield* Fiber.join(checking))
      assert.deepStrictEqual([error.reason, error.exitCode], ["exited_before_ready", 3])
      assert.include(error.stderr.join("\n"), "boom: cannot load the module")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("it never finishes: killed by the check, no_ready_in_time", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const error = startupErrorOf(yield* Effect.exit(check(dir, Duration.millis(300))))
      assert.deepStrictEqual([error.reason, error.signal], ["no_ready_in_time", "SIGKILL"])
    }).pipe(Effect.provide(TestLive)))
})

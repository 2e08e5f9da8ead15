/**
 * Whose an exit was, and who reports it: `Shutdown.ownExit` (the process's own doing, or the stop's) and the exit
 * watch's `started` (an exit before the start's outcome is the start's to report, logged as unexpected only once
 * the start succeeded). `startupRace.test.ts` makes the races with real processes; the orders that the event loop
 * makes rare (an exit reported between the timeout and the stop, a `ready` that came with the exit) are here.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as ChildProcess from "node:child_process"
import * as Child from "../../../src/Agent/internal/child.js"
import * as ExitWatch from "../../../src/Agent/internal/exit.js"
import type * as Requests from "../../../src/Agent/internal/requests.js"
import * as Shutdown from "../../../src/Agent/internal/shutdown.js"
import type * as AgentProcess from "../../../src/Agent/Process.js"

/** Above any Linux pid_max (2^22): the exit handler's SIGKILL to its group reaches nobody. */
const NO_SUCH_PID = 2 ** 22 + 1

const exitedWith = (
  asked: ExitWatch.Status["asked"],
  exit: Pick<AgentProcess.ExitInfo, "exitCode" | "signal" | "requested">
): ExitWatch.Status => ({
  ...ExitWatch.makeStatus(),
  stopping: exit.requested,
  asked,
  exited: { pid: NO_SUCH_PID, at: 0, ...exit }
})

describe("Shutdown.ownExit", () => {
  it("an exit before the stop began, or before it did anything to the living process, is the process's own", () => {
    const before = exitedWith([], { exitCode: 3, signal: null, requested: false })
    assert.strictEqual(Shutdown.ownExit(before), before.exited)
    const dead = exitedWith([], { exitCode: 7, signal: null, requested: true })
    assert.strictEqual(Shutdown.ownExit(dead), dead.exited)
  })

  it("an exit by a signal the stop did not send is the process's own", () => {
    const oomKilled = exitedWith(["SIGTERM"], { exitCode: null, signal: "SIGKILL", requested: true })
    assert.strictEqual(Shutdown.ownExit(oomKilled), oomKilled.exited)
    const crashed = exitedWith(["shutdown"], { exitCode: null, signal: "SIGSEGV", requested: true })
    assert.strictEqual(Shutdown.ownExit(crashed), crashed.exited)
  })

  it("an exit by the stop's signal, or with a code after it asked or signalled, is the stop's", () => {
    const cases = [
      exitedWith(["SIGTERM"], { exitCode: null, signal: "SIGTERM", requested: true }),
      exitedWith(["SIGTERM", "SIGKILL"], { exitCode: null, signal: "SIGKILL", requested: true }),
      exitedWith(["SIGTERM"], { exitCode: 0, signal: null, requested: true }),
      exitedWith(["shutdown"], { exitCode: 0, signal: null, requested: true })
    ]
    for (const status of cases) assert.isUndefined(Shutdown.ownExit(status), JSON.stringify(status.asked))
  })

  it("no exit yet: none", () => {
    assert.isUndefined(Shutdown.ownExit(ExitWatch.makeStatus()))
  })
})

/** The messages an effect logs. */
const captured = (effect: Effect.Effect<void>): Array<string> => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    const text = Array.isArray(message) ? message.join(" ") : String(message)
    lines.push(logLevel.label === "WARN" ? text : `(${logLevel.label}) ${text}`)
  })
  Effect.runSync(Effect.provide(effect, Logger.replace(Logger.defaultLogger, logger)))
  return lines
}

/** An exit watch whose log writes each message logged into `lines`. */
const makeWatch = (status: ExitWatch.Status, lines: Array<string>) =>
  Effect.map(Deferred.make<AgentProcess.ExitInfo>(), (exitDeferred) =>
    ExitWatch.make({
      agent: "held",
      pid: NO_SUCH_PID,
      status,
      child: { exited: () => undefined, leaveBehind: () => {} },
      // No request waits before a start.
      table: { size: () => 0, checkpoints: () => undefined, failAll: () => {} } as unknown as Requests.Table,
      exitDeferred,
      now: () => 0,
      recentStderr: () => ["last words"],
      log: (effect) => {
        lines.push(...captured(effect))
      },
      limitHit: () => undefined,
      sweep: () => {}
    }))

describe("ExitWatch: an exit before the start's outcome", () => {
  it.effect("is not logged while the start is undecided, nor ever if the start fails: the start reports it", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const status = ExitWatch.makeStatus()
      const exit = yield* makeWatch(status, lines)
      exit.onExit({ exitCode: 3, signal: null })
      assert.deepStrictEqual(lines, [])
      assert.isFalse(status.exited!.requested)
    }))

  it.effect("is logged once as unexpected when the start succeeds all the same (its ready came with the exit)", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const exit = yield* makeWatch(ExitWatch.makeStatus(), lines)
      exit.onExit({ exitCode: 3, signal: null })
      exit.started()
      exit.started()
      assert.strictEqual(lines.length, 1, lines.join("\n"))
      assert.match(lines[0], /^agent exited unexpectedly: .*code 3/)
    }))

  it.effect("after the start succeeded, an exit not asked for is logged at once, and only once", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const exit = yield* makeWatch(ExitWatch.makeStatus(), lines)
      exit.started()
      exit.onExit({ exitCode: null, signal: "SIGSEGV" })
      assert.strictEqual(lines.length, 1, lines.join("\n"))
      assert.match(lines[0], /^agent exited unexpectedly: .*SIGSEGV/)
    }))

  it.effect("an exit by the SIGKILL of its own kill (a hung agent, a limit) is not logged as unexpected", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const exit = yield* makeWatch(ExitWatch.makeStatus(), lines)
      exit.started()
      exit.kill()
      exit.onExit({ exitCode: null, signal: "SIGKILL" })
      assert.deepStrictEqual(lines, [])
    }))

  it.effect("an exit with code 0 not asked for is said at level INFO, not warned of: a transient agent's is normal", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const exit = yield* makeWatch(ExitWatch.makeStatus(), lines)
      exit.started()
      exit.onExit({ exitCode: 0, signal: null })
      assert.strictEqual(lines.length, 1, lines.join("\n"))
      assert.match(lines[0], /^\(INFO\) agent exited by itself with code 0 \(not asked to\): .*code 0/)
    }))
})

describe("ExitWatch: giving up on a process after SIGKILL", () => {
  // A reviewer's finding: with the event loop stalled for the whole bound, the bound's timer runs before the poll
  // phase that delivers the exit, and a process that did die was reported left behind, its last output unread.
  it.live("a process dead when its bound passes (its exit not yet delivered) is reported as it ended", () =>
    Effect.gen(function*() {
      const child = ChildProcess.spawn("sh", ["-c", "exit 7"], { stdio: "ignore" })
      const pid = child.pid!
      // The loop stalls: Node cannot reap it, /proc says it is a zombie.
      const until = performance.now() + 5_000
      while (!Child.isDead(pid) && performance.now() < until) {
        // (busy: no turn of the loop)
      }
      assert.isTrue(Child.isDead(pid))
      const status = ExitWatch.makeStatus()
      const exitDeferred = yield* Deferred.make<AgentProcess.ExitInfo>()
      const lines: Array<string> = []
      let leftBehindCalled = false
      const watch = ExitWatch.make({
        agent: "stalled",
        pid,
        status,
        child: { exited: () => undefined, leaveBehind: () => (leftBehindCalled = true) },
        table: { size: () => 0, checkpoints: () => undefined, failAll: () => {} } as unknown as Requests.Table,
        exitDeferred,
        now: () => 0,
        recentStderr: () => [],
        log: (effect) => {
          lines.push(...captured(effect))
        },
        limitHit: () => undefined,
        sweep: () => {}
      })
      watch.started()
      child.once("exit", (exitCode, signal) => watch.onExit({ exitCode, signal }))
      // The bound passes now, in the same stalled turn.
      yield* Effect.async<void>((resume) => watch.leaveBehind(() => resume(Effect.void)))
      const info = yield* Deferred.await(exitDeferred)
      assert.deepStrictEqual([info.exitCode, info.signal, info.leftBehind], [7, null, undefined])
      assert.isFalse(leftBehindCalled)
      assert.isFalse(lines.some((line) => line.includes("outlived SIGKILL")), lines.join("\n"))
    }))
})

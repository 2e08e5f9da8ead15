/**
 * A process the kernel does not reap after SIGKILL (uninterruptible sleep on a hung filesystem or device) must not
 * hold a stop for ever: the stop waits a bounded time after its SIGKILL, leaves the process behind with a warning,
 * and its exit is still reported if it ever comes (systemd: "Processes still around after final SIGKILL").
 *
 * Such a process is made here by a tracer (`fixtures/ptrace/hold_exit.py`): a traced process that dies is a zombie
 * only its tracer sees, so Node's `waitpid` does not find it until the tracer ends.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as readline from "node:readline"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import { KILL_BOUND_MILLIS } from "../../src/Agent/internal/child.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import { agentConfig, closeableScope, eventually, fixture, groupMembers, logMessages, TestLive } from "../support.js"

/** The tracer's end: its stdin closed, and its exit. */
interface Tracer {
  readonly end: Effect.Effect<void>
}

/**
 * Attaches the tracer to `pid` for the life of the scope (or until `end`); `undefined`, with the reason printed,
 * where the kernel does not let it attach.
 */
const holdExit = (pid: number) =>
  Effect.acquireRelease(
    Effect.async<{ readonly child: ChildProcess.ChildProcess; readonly refused?: string }>((resume) => {
      const child = ChildProcess.spawn("python3", [fixture("ptrace", "hold_exit.py"), String(pid)], {
        stdio: ["pipe", "pipe", "inherit"]
      })
      child.on("error", (error) => resume(Effect.succeed({ child, refused: `python3: ${error.message}` })))
      readline.createInterface({ input: child.stdout! }).once("line", (line) =>
        resume(Effect.succeed(line === "seized" ? { child } : { child, refused: line })))
    }),
    ({ child }) =>
      end(child)
  ).pipe(Effect.map(({ child, refused }): Tracer | undefined => {
    if (refused === undefined) return { end: end(child) }
    if (process.env.REQUIRE_SERVICES === "1") throw new Error(`ptrace refused: ${refused}`)
    console.log(`skipped: the tracer could not attach (${refused})`)
    return undefined
  }))

const end = (child: ChildProcess.ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.stdin?.end()
  })

const timings = { gracefulTimeout: "100 millis", sigtermTimeout: "100 millis" } as const

describe.sequential("a process that outlives SIGKILL", () => {
  it.scopedLive(
    "AgentProcess: the stop ends after its bound, a warning says the process is left behind, its exit comes later",
    () => {
      const log = logMessages()
      return log.provide(Effect.gen(function*() {
        const scope = yield* closeableScope
        const agent = yield* AgentProcess.make(agentConfig("echo", timings)).pipe(Scope.extend(scope))
        const tracer = yield* holdExit(agent.pid)
        if (tracer === undefined) return
        assert.strictEqual(yield* agent.request({ echo: "traced" }), "traced")
        const started = performance.now()
        // (the old stop waited for the exit after SIGKILL without a bound: this never ended)
        yield* Scope.close(scope, Exit.void)
        const took = performance.now() - started
        assert.isAtLeast(took, KILL_BOUND_MILLIS)
        assert.isBelow(took, KILL_BOUND_MILLIS + 5_000)
        assert.isTrue(Option.isNone(yield* agent.exitInfo), "no exit was reported")
        const warning = log.lines.find((line) => line.includes("outlived SIGKILL"))
        assert.strictEqual(
          warning,
          `agent outlived SIGKILL for ${KILL_BOUND_MILLIS / 1000}s (in uninterruptible sleep: a hung filesystem or ` +
            `device?): left behind; its exit is reported if it comes`
        )
        // The tracer lets go: Node reaps the process, and its exit is reported to whoever still waits for it.
        const waiting = yield* Effect.fork(agent.awaitExit)
        yield* tracer.end
        const info = yield* Fiber.join(waiting)
        assert.strictEqual(info.requested, true)
        assert.strictEqual(info.pid, agent.pid)
        yield* eventually("the group is gone", () => groupMembers(agent.pid).length === 0)
      })).pipe(Effect.provide(TestLive))
    },
    30_000
  )

  it.scopedLive(
    "AgentSupervisor: stop ends STOPPED with the process left behind, and a start runs a new one meanwhile",
    () =>
      Effect.gen(function*() {
        const agent = yield* AgentSupervisor.make(agentConfig("echo", timings))
        const pid = Option.getOrThrow((yield* agent.metadata).pid)
        const tracer = yield* holdExit(pid)
        if (tracer === undefined) return
        yield* agent.stop
        assert.strictEqual(yield* agent.state, "STOPPED")
        yield* agent.start
        assert.strictEqual(yield* agent.state, "RUNNING")
        assert.notStrictEqual(Option.getOrThrow((yield* agent.metadata).pid), pid)
        assert.strictEqual(yield* agent.handleEvent({ echo: "again" }), "again")
        // The old one's exit, when it comes, is nobody's business any more: the new incarnation runs on.
        yield* tracer.end
        yield* eventually("the old group is gone", () => groupMembers(pid).length === 0)
        assert.strictEqual(yield* agent.handleEvent({ echo: "still" }), "still")
        assert.strictEqual((yield* agent.metadata).restartCount, 0)
        assert.strictEqual(yield* agent.state, "RUNNING")
      }).pipe(Effect.provide(TestLive)),
    30_000
  )
})

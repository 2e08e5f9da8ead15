/**
 * Crash detection (issue 10): a SIGKILLed agent's exit is reported on Node's `exit` event, without waiting for
 * its pipes to close (a descendant may hold them for ever), and yet after everything the agent wrote before
 * dying. Real processes; every assertion is about order and content, synchronised on the exit itself, never on
 * elapsed time.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import type * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as Config from "../../src/Agent/Config.js"
import * as ForkServer from "../../src/Agent/ForkServer.js"
import * as Child from "../../src/Agent/internal/child.js"
import * as Owned from "../../src/Agent/internal/owned.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import {
  agentConfig,
  eventually,
  eventuallyEffect,
  failureOf,
  fixture,
  groupMembers,
  isAlive,
  TestLive
} from "../support.js"

type Mode = "alone" | "grandchild" | "escaped"

/** The crash fixture (test/fixtures/crash/agent.mjs) in `mode`. */
const crashAgent = (mode: Mode): Config.AgentConfigInput => ({
  ...agentConfig(mode, { name: `crash-${mode}`, restartBackoff: "1 minute" }),
  args: [fixture("crash", "agent.mjs"), mode]
})

/** SIGKILLs `pid` when the scope closes: an escaped grandchild is out of reach of every group kill. */
const killOnClose = (pid: number): Effect.Effect<void, never, Scope.Scope> =>
  Effect.addFinalizer(() =>
    Effect.sync(() => {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        // already gone
      }
    })
  )

/** The fixture's pid and its grandchild's, asked with a task. */
const pids = (agent: AgentProcess.AgentProcess) =>
  Effect.map(agent.request({}), (result) => result as { readonly pid: number; readonly grandchild: number | null })

/** How the agents of a test are spawned: from this process, or through a fork server (`Agent.ForkServer`). */
type Spawning = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
const SPAWNING: ReadonlyArray<readonly [string, Spawning]> = [
  ["spawned here", (effect) => effect],
  ["through a fork server", (effect) => Effect.provide(effect, ForkServer.layer)]
]

/** More than a pipe's buffer and a stream's buffer hold: some of it is still in the kernel when the agent dies. */
const LINES = 2000
const LINE_BYTES = 100
const lastWords = { lines: LINES, bytes: LINE_BYTES, partial: "unterminated" }

describe.sequential("crash detection", () => {
  // Spawned from this process, and through a fork server (`Agent.ForkServer`: the exit is its message, the pipes
  // handed over).
  for (const [via, spawning] of SPAWNING) {
    for (const mode of ["alone", "grandchild", "escaped"] as const) {
      it.scopedLive(`${mode}, ${via}: what the agent wrote just before its SIGKILL is handed over before its exit is reported`, () =>
        Effect.gen(function*() {
          const agent = yield* AgentProcess.make(crashAgent(mode))
          const { grandchild, pid } = yield* pids(agent)
          if (grandchild !== null) yield* killOnClose(grandchild)
          if (mode === "grandchild") assert.include(groupMembers(pid), grandchild)
          yield* eventually("the grandchild has started", () => {
            const stderr = Effect.runSync(agent.recentStderr)
            return mode === "alone" || stderr.includes("grandchild listening")
          })
          const before = (yield* agent.stats).stderrLines
          // In flight when the agent dies, never answered: it fails with the exit as it is reported.
          const held = yield* Effect.fork(agent.request({ hold: true }))
          // Answered, then the agent SIGKILLs itself: the answer comes before the exit.
          assert.strictEqual(yield* agent.request({ lastWords }), "answered before dying")
          const error = failureOf(yield* Fiber.await(held).pipe(Effect.flatten, Effect.exit))
          assert.strictEqual(error._tag, "AgentCrashError")
          if (error._tag !== "AgentCrashError") return
          assert.deepStrictEqual([error.pid, error.exitCode, error.signal], [pid, null, "SIGKILL"])
          // The error was made as the exit was reported: its stderr is what had been read by then, the unterminated
          // last line included, whatever holds the pipes.
          assert.deepStrictEqual(error.stderr?.slice(-3), [
            `line ${LINES - 1} ${"x".repeat(LINE_BYTES)}`,
            "last words",
            "unterminated"
          ])
          assert.strictEqual((yield* agent.stats).stderrLines, before + LINES + 2)
          if (mode === "grandchild") {
            yield* eventually("the group kill at the exit swept the grandchild", () => groupMembers(pid).length === 0)
          }
          if (mode === "escaped") {
            // Out of reach of the group kill: the exit was reported while it still holds the pipes, and what it
            // writes there later is still read, as a line of its own.
            assert.isTrue(isAlive(grandchild!), "the escaped grandchild still holds the pipes")
            process.kill(grandchild!, "SIGUSR1")
            yield* eventually(
              "the grandchild's late line is read",
              () => Effect.runSync(agent.recentStderr).at(-1) === "late line from the grandchild"
            )
            assert.strictEqual((yield* agent.stats).stderrLines, before + LINES + 3)
          }
        }).pipe(spawning, Effect.provide(TestLive)))
    }
  }

  it.scopedLive("Exited is published after the last words are counted, while an escaped grandchild holds the pipes", () =>
    Effect.gen(function*() {
      const settings = yield* Config.make(crashAgent("escaped"))
      const atExited = yield* Deferred.make<{ readonly stderrLines: number; readonly grandchildAlive: boolean }>()
      // What `onEvent` reads: the supervisor made, and the grandchild asked for.
      const made: { supervisor?: AgentSupervisor.AgentSupervisor; grandchild?: number } = {}
      const supervisor = yield* Owned.makeOwned(settings, Owned.restartPolicyOwner(settings), {
        onEvent: (event) =>
          event._tag === "Exited" && made.supervisor !== undefined && made.grandchild !== undefined
            ? Effect.flatMap(made.supervisor.metadata, (metadata) =>
              Deferred.succeed(atExited, {
                stderrLines: metadata.stderrLines,
                grandchildAlive: isAlive(made.grandchild!)
              }))
            : Effect.void
      })
      made.supervisor = supervisor
      const { grandchild } = (yield* supervisor.handleEvent({})) as { readonly grandchild: number }
      made.grandchild = grandchild
      yield* killOnClose(grandchild)
      yield* eventuallyEffect(
        "the grandchild has started",
        Effect.map(supervisor.metadata, (metadata) => metadata.stderrLines >= 1)
      )
      const before = (yield* supervisor.metadata).stderrLines
      assert.strictEqual(yield* supervisor.handleEvent({ lastWords }), "answered before dying")
      const seen = yield* Deferred.await(atExited)
      assert.deepStrictEqual(seen, { stderrLines: before + LINES + 2, grandchildAlive: true })
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("an exit that came before the owner attached is delivered after all the output before it", () =>
    Effect.gen(function*() {
      const size = 150_000
      // Writes more than Node's stream buffers before the owner attaches (the rest stays in the kernel), then dies.
      const script = `const fs = require("node:fs"); const write = (fd, text) => { ` +
        `let buffer = Buffer.from(text); while (buffer.length > 0) buffer = buffer.subarray(fs.writeSync(fd, buffer)) }; ` +
        `write(1, "x".repeat(${size})); write(2, "on stderr\\nno newline"); process.kill(process.pid, "SIGKILL")`
      const child = yield* Child.spawn({ command: process.execPath, args: ["-e", script], env: process.env })
      yield* eventually("the child exited", () => child.exited() !== undefined, "10 seconds")
      const seen: Array<string> = []
      let stdoutBytes = 0
      let stderr = ""
      const exited = yield* Deferred.make<void>()
      child.attach({
        onStdout: (chunk) => void (stdoutBytes += chunk.length),
        onStderr: (chunk) => void (stderr += chunk.toString()),
        onPipesClosed: () => void seen.push(`pipes closed after ${stdoutBytes} bytes`),
        onExit: (exit) => {
          seen.push(`exit ${exit.signal} after ${stdoutBytes} bytes and ${JSON.stringify(stderr)}`)
          Deferred.unsafeDone(exited, Effect.void)
        },
        onStdinError: () => {}
      })
      yield* Deferred.await(exited)
      assert.deepStrictEqual(seen, [
        `pipes closed after ${size} bytes`,
        `exit SIGKILL after ${size} bytes and "on stderr\\nno newline"`
      ])
    }))
})

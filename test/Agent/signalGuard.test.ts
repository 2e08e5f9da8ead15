/**
 * A host that dies by a signal's default action leaves no agent behind: while agents run, the library listens
 * first to SIGINT, SIGTERM and SIGHUP, and a signal no other listener takes (here `NodeRuntime.runMain`'s second
 * Ctrl-C: its first removed runMain's listener) SIGKILLs every agent's process group before the process ends by
 * that signal. Before, an agent that outlives its stdin's end ran on, orphaned. A real application in a child
 * process (test/fixtures/apps/stubborn-app.mjs) and a real agent (test/fixtures/agents/agent.mjs ignore-sigterm).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as readline from "node:readline"
import { eventually, fixture, isAlive, root } from "../support.js"

const killGroup = (pid: number): void => {
  try {
    process.kill(-pid, "SIGKILL")
  } catch {
    // gone already
  }
}

describe("a host ended by a signal's default action", () => {
  it.scopedLive(
    "runMain's second SIGINT: the agent's group is SIGKILLed, the host dies of SIGINT",
    () =>
      Effect.gen(function*() {
        const child = yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn(process.execPath, [fixture("apps", "stubborn-app.mjs")], {
              cwd: root,
              stdio: ["ignore", "pipe", "pipe"]
            })
          ),
          (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
        )
        let output = ""
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
        const lines: Array<Record<string, unknown>> = []
        readline.createInterface({ input: child.stdout }).on("line", (line) => {
          output += line + "\n"
          if (line.startsWith("{")) lines.push(JSON.parse(line))
        })
        const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
          child.once("close", (code, signal) => resolve({ code, signal }))
        )
        yield* eventually(`the app's agent runs (${output})`, () => lines.some((l) => l.ready === true), "60 seconds")
        const pid = lines.find((l) => l.ready === true)!.pid as number
        // (a failed test leaves no agent behind either)
        yield* Effect.addFinalizer(() => Effect.sync(() => isAlive(pid) && killGroup(pid)))
        child.kill("SIGINT")
        yield* eventually(`the stop began (${output})`, () => lines.some((l) => l.stopping === true), "30 seconds")
        assert.isTrue(isAlive(pid), "the agent waits out its stop's graceful phase (a minute)")
        child.kill("SIGINT")
        const exit = yield* Effect.promise(() => closed).pipe(
          Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`the app did not end: ${output}`) })
        )
        assert.deepStrictEqual(exit, { code: null, signal: "SIGINT" }, output)
        yield* eventually(`agent ${pid} is gone`, () => !isAlive(pid), "10 seconds")
      }),
    120_000
  )
})

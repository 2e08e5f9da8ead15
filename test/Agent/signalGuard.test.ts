/**
 * A host that dies by a signal's default action leaves no agent behind: while agents run, the library listens
 * first to SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR2 (and the other signals that end a process), and a signal no other
 * listener takes (`NodeRuntime.runMain`'s second Ctrl-C: its first removed runMain's listener; a SIGQUIT, which
 * runMain does not take) SIGKILLs every agent's process group before the process ends by
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

/** The app running, its agent's pid, and how to read what it printed and how it ended. */
const startApp = Effect.gen(function*() {
  // `ulimit -c 0`: a signal whose default action dumps core (SIGQUIT) writes no core file into the repository
  const child = yield* Effect.acquireRelease(
    Effect.sync(() =>
      spawn("/bin/sh", ["-c", `ulimit -c 0; exec "$0" "$1"`, process.execPath, fixture("apps", "stubborn-app.mjs")], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"]
      })
    ),
    (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )
  const app = { output: "", lines: [] as Array<Record<string, unknown>> }
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (app.output += chunk))
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    app.output += line + "\n"
    if (line.startsWith("{")) app.lines.push(JSON.parse(line))
  })
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => resolve({ code, signal }))
  )
  yield* eventually(`the app's agent runs (${app.output})`, () => app.lines.some((l) => l.ready === true), "60 seconds")
  const pid = app.lines.find((l) => l.ready === true)!.pid as number
  // (a failed test leaves no agent behind either)
  yield* Effect.addFinalizer(() => Effect.sync(() => isAlive(pid) && killGroup(pid)))
  const exited = Effect.promise(() => closed).pipe(
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`the app did not end: ${app.output}`) })
  )
  return { app, child, exited, pid }
})

describe("a host ended by a signal's default action", () => {
  it.scopedLive(
    "runMain's second SIGINT: the agent's group is SIGKILLed, the host dies of SIGINT",
    () =>
      Effect.gen(function*() {
        const { app, child, exited, pid } = yield* startApp
        child.kill("SIGINT")
        yield* eventually(`the stop began (${app.output})`, () =>
          app.lines.some((l) => l.stopping === true), "30 seconds")
        assert.isTrue(isAlive(pid), "the agent waits out its stop's graceful phase (a minute)")
        child.kill("SIGINT")
        assert.deepStrictEqual(yield* exited, { code: null, signal: "SIGINT" }, app.output)
        yield* eventually(`agent ${pid} is gone`, () =>
          !isAlive(pid), "10 seconds")
      }),
    120_000
  )

  // Signals runMain does not listen to: their default action ends the host at the first
  for (const signal of ["SIGQUIT", "SIGUSR2"] as const) {
    it.scopedLive(
      `${signal}: the agent's group is SIGKILLed, the host dies of ${signal}`,
      () =>
        Effect.gen(function*() {
          const { app, child, exited, pid } = yield* startApp
          child.kill(signal)
          assert.deepStrictEqual(yield* exited, { code: null, signal }, app.output)
          yield* eventually(`agent ${pid} is gone`, () => !isAlive(pid), "10 seconds")
        }),
      120_000
    )
  }
})

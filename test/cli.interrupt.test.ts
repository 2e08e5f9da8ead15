/**
 * How the commands that talk to a running `up` end when something stops them (from a new user's trial: each
 * ended with exit 0 and nothing said). The built bin in child processes against `up` running real agents:
 * - a command that ends by itself, interrupted by SIGINT or SIGTERM: `error: interrupted: ...`, exit 130 or 143;
 * - a follower (`logs -f`, `events`) when `up` stops: the server's `end` event, said on stderr, exit 0;
 * - a follower when `up` is killed: the stream breaks off without its end: `error: Lost the admin API`, exit 1;
 * - a call in flight when `up` stops: the tree is stopping (up stops its tree before its admin API), not "start it"
 *   nor "cannot reach"; followers see the stop's events before the end;
 * - `status` answers while `up` stops its tree;
 * - SIGHUP, SIGQUIT, SIGUSR2 (any signal that would end it) to `up`, which `runMain` does not take: its tree
 *   stopped, its state file removed, exit 0 (the library's guard killed the agents and the process died of the
 *   signal, its state file left);
 * - a second SIGINT while `up` stops agents that ignore their stop: SIGKILL to every agent at once;
 * - a SIGINT while `up` starts its tree: said at once, what has started stops;
 * - a SIGINT or SIGTERM while the CLI's modules load (before any handler of its own is in place: Node's default
 *   ended the process, a shell read 130, nothing said): held until the command begins; `up` then ends before its
 *   start, exit 0, and a command that ends by itself says it was interrupted, 130 or 143.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import {
  agentConfig,
  type AppProcess,
  BIN,
  eventually,
  fixture,
  isAlive,
  nodeCallbackConfig,
  processesWith,
  spawnApp,
  startUp as startUpApp,
  tempDir
} from "./support.js"

/** `echo`, and `sleeper` (says `started ID` on stderr, answers after `ms`, `aborted ID` on a cancel). */
const writeTree = (dir: string) => {
  const file = path.join(dir, "tree.json")
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: "cli-stop",
      store: { type: "memory" },
      children: [
        { type: "agent", id: "echo", config: nodeCallbackConfig("stop-echo", "echo.mjs") },
        { type: "agent", id: "sleeper", config: nodeCallbackConfig("stop-sleeper", "sleeper.mjs") }
      ]
    })
  )
  return file
}

/** `up FILE` in the background, logging JSON lines; once its admin API listens (its state file is there). */
const startUp = (file: string) => Effect.map(startUpApp(file), ({ app }) => app)

/** A command of the bin against the tree of `file`, running in the background; `stdout()` what it printed. */
const command = (file: string, ...args: ReadonlyArray<string>) => {
  const lines: Array<string> = []
  return Effect.map(
    spawnApp(BIN, [...args, "--file", file], { onLine: (line) => lines.push(line) }),
    (app) => Object.assign(app, { stdout: () => lines.join("\n") })
  )
}

/** Until `app`'s stderr holds `text`. */
const said = (app: AppProcess, text: string, what: string) =>
  eventually(
    `${what} said ${JSON.stringify(text)} (stderr: ${app.stderr()})`,
    () => app.stderr().includes(text),
    "60 seconds"
  )

/** Until `sleeper` has started its `n`th task (its stderr line `started ID`, as up logs it). */
const sleeping = (up: AppProcess, n: number) =>
  eventually(
    `the sleeper's task ${n} (up's stderr: ${up.stderr()})`,
    () => up.stderr().split(`"message":"started `).length > n,
    "60 seconds"
  )

/**
 * `agent-supervisor ARGS` whose load of `module` (of `dist/`) stalls (`fixtures/cli/stallLoad.mjs`) until `signal`
 * has been sent to it; then how it ended and what it said.
 */
const signalledWhileLoading = (
  args: ReadonlyArray<string>,
  signal: NodeJS.Signals,
  module = "internal/cli/main.js"
) =>
  Effect.gen(function*() {
    const dir = yield* tempDir("cli-loading")
    const hook = `${pathToFileURL(fixture("cli", "stallLoad.mjs")).href}?dir=${encodeURIComponent(dir)}&module=${
      encodeURIComponent(module)
    }`
    // spawnApp runs `node SCRIPT ARGS`: Node's own flag first
    const app = yield* spawnApp("--import", [hook, BIN, ...args], { onLine: () => {} })
    yield* eventually("the CLI loading", () => fs.existsSync(path.join(dir, "loading")), "60 seconds")
    process.kill(app.pid, signal)
    fs.writeFileSync(path.join(dir, "go"), "")
    return { ...yield* app.exited, stderr: app.stderr() }
  })

describe.sequential("agent-supervisor: commands stopped, and an up that stops under them", () => {
  it.scopedLive(
    "a signal while the CLI loads is held until the command begins: up ends before its start (exit 0), a command " +
      "that ends by itself says it was interrupted (130, 143)",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-early")
        const file = writeTree(dir)
        const up = yield* signalledWhileLoading(["up", file, "--log-format", "json"], "SIGINT")
        assert.deepStrictEqual([up.code, up.signal], [0, null], up.stderr)
        assert.include(up.stderr, "SIGINT before the start: up ends, nothing started", up.stderr)
        assert.notInclude(up.stderr, "is running", "an agent started")
        assert.isFalse(fs.existsSync(path.join(dir, ".tree.json.admin.json")), "the admin API was started")
        // Later, once the CLI's own handlers are in place (`up`'s module loads when up begins): theirs, not held
        const later = yield* signalledWhileLoading(["up", file, "--log-format", "json"], "SIGINT", "internal/cli/up.js")
        assert.deepStrictEqual([later.code, later.signal], [0, null], later.stderr)
        assert.isFalse(fs.existsSync(path.join(dir, ".tree.json.admin.json")), "the admin API was started")
        for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
          const validate = yield* signalledWhileLoading(["validate", file], signal)
          assert.deepStrictEqual([validate.code, validate.signal], [code, null], validate.stderr)
          assert.strictEqual(validate.stderr, "error: interrupted: stopped before it was done\n", signal)
          // A command of the bundle (bin/remote.js): the signal held by the entry is the bundle's to take
          const status = yield* signalledWhileLoading(["status", "--file", file], signal, "bin/remote.js")
          assert.deepStrictEqual([status.code, status.signal], [code, null], status.stderr)
          assert.match(status.stderr, /^error: interrupted: /, signal)
        }
      }),
    120_000
  )

  it.scopedLive(
    "an interrupted call says so and exits 130 (143 on SIGTERM); followers end with up's stop, exit 0; a call in " +
      "flight is told the connection closed",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-stop")
        const file = writeTree(dir)
        const up = yield* startUp(file)

        const call = yield* command(file, "call", "sleeper", "{\"ms\": 60000}")
        yield* sleeping(up, 1)
        process.kill(call.pid, "SIGINT")
        const interrupted = yield* call.exited
        assert.deepStrictEqual(interrupted, { code: 130, signal: null }, call.stderr())
        assert.strictEqual(
          call.stderr(),
          "error: interrupted: the call was given up (its agent is sent a cancel)\n",
          "said once, alone"
        )
        yield* said(up, `"message":"aborted `, "the sleeper, sent a cancel,")

        const terminated = yield* command(file, "call", "sleeper", "{\"ms\": 60000}")
        yield* sleeping(up, 2)
        process.kill(terminated.pid, "SIGTERM")
        assert.strictEqual((yield* terminated.exited).code, 143, terminated.stderr())

        const logs = yield* command(file, "logs", "echo", "-f")
        const events = yield* command(file, "events")
        yield* said(logs, "Following echo's stderr", "logs -f")
        yield* said(events, "Following the tree's events", "events")
        const inFlight = yield* command(file, "call", "sleeper", "{\"ms\": 60000}")
        yield* sleeping(up, 3)

        process.kill(up.pid, "SIGTERM")
        assert.strictEqual((yield* up.exited).code, 0, up.stderr())
        for (const [follower, what] of [[logs, "logs -f"], [events, "events"]] as const) {
          assert.strictEqual((yield* follower.exited).code, 0, `${what}: ${follower.stderr()}`)
          assert.include(follower.stderr(), "closed: up is stopping (the stream ended)", what)
        }
        assert.strictEqual((yield* inFlight.exited).code, 1, inFlight.stderr())
        // The tree stops while the API serves: the call is answered, told why (not "start it first", nor that
        // the server cannot be reached)
        assert.match(
          inFlight.stderr(),
          /^error: Could not call "sleeper": the tree is stopping \(its host is shutting down\)/,
          inFlight.stderr()
        )
        // The follower saw the stop's own events (each child's, in reverse order) before the end
        const stops = [...events.stdout().matchAll(/^\S+ (echo|sleeper) ChildStopped why=shutdown$/gm)].map((m) => m[1])
        assert.deepStrictEqual(stops, ["sleeper", "echo"], events.stdout())
        assert.include(
          up.stderr(),
          `SIGTERM: stopping tree \\"cli-stop\\" (3-phase, in order; SIGTERM again to kill the agents at once)`
        )
      }),
    180_000
  )

  it.scopedLive(
    "followers of an up that is killed: the stream broke off without its end, exit 1",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-killed")
        const file = writeTree(dir)
        const up = yield* startUp(file)
        const logs = yield* command(file, "logs", "echo", "-f")
        const events = yield* command(file, "events")
        yield* said(logs, "Following echo's stderr", "logs -f")
        yield* said(events, "Following the tree's events", "events")

        process.kill(up.pid, "SIGKILL")
        for (const [follower, what] of [[logs, "logs -f"], [events, "events"]] as const) {
          assert.strictEqual((yield* follower.exited).code, 1, `${what}: ${follower.stderr()}`)
          assert.match(
            follower.stderr(),
            /\nerror: Lost the admin API at \S+: the stream broke off without its end \(up was killed/,
            `${what}: ${follower.stderr()}`
          )
        }
      }),
    120_000
  )

  it.scopedLive(
    "SIGHUP (its terminal closed), SIGQUIT (Ctrl-\\) and SIGUSR2 stop up as SIGTERM does: the tree stopped 3-phase, the state " +
      "file removed, exit 0",
    () =>
      Effect.gen(function*() {
        for (const signal of ["SIGHUP", "SIGQUIT", "SIGUSR2"] as const) {
          const dir = yield* tempDir("cli-hup")
          const marker = path.join(dir, "agent")
          const echo = (id: string) => ({
            type: "agent",
            id,
            config: agentConfig("echo", { name: id, args: [fixture("agents", "agent.mjs"), "echo", marker] })
          })
          const file = path.join(dir, "tree.json")
          fs.writeFileSync(
            file,
            JSON.stringify({ name: "cli-hup", store: { type: "memory" }, children: [echo("first"), echo("second")] })
          )
          const { app: up, stateFile } = yield* startUpApp(file)
          yield* eventually("both agents run", () => processesWith(marker).length === 2, "60 seconds")
          const agents = processesWith(marker)
          process.kill(up.pid, signal)
          const exited = yield* up.exited
          // Before, the library's guard killed the agents and the process died of the signal, its state file left
          assert.deepStrictEqual([exited.code, exited.signal], [0, null], `${signal}: ${up.stderr()}`)
          assert.include(
            up.stderr(),
            `${signal}: stopping tree \\"cli-hup\\" (3-phase, in order; ${signal} again to kill the agents at once)`,
            signal
          )
          assert.include(up.stderr(), `tree \\"cli-hup\\" stopped`, signal)
          // Each agent was asked to stop (the stop's phase 1), not killed
          assert.notInclude(up.stderr(), "SIGKILL", signal)
          assert.isFalse(fs.existsSync(stateFile), `${signal}: the state file was left`)
          assert.deepStrictEqual(agents.filter(isAlive), [], `${signal}: no agent left running`)
        }
      }),
    180_000
  )

  it.scopedLive(
    "a second SIGINT cuts the stop short: SIGKILL to the agent stopping and to those still to stop, no failure said",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-force")
        // In the agents' arguments, not in up's (whose holds the tree file's path)
        const marker = path.join(dir, "agent")
        // Two agents that ignore shutdown and SIGTERM, each given 90 s a phase: the stop would take 6 minutes.
        const deaf = (id: string) => ({
          type: "agent",
          id,
          config: agentConfig("ignore-sigterm", {
            name: id,
            args: [fixture("agents", "agent.mjs"), "ignore-sigterm", marker],
            gracefulTimeout: "90 seconds",
            sigtermTimeout: "90 seconds"
          })
        })
        const file = path.join(dir, "tree.json")
        fs.writeFileSync(
          file,
          JSON.stringify({ name: "cli-force", store: { type: "memory" }, children: [deaf("first"), deaf("second")] })
        )
        // Whatever happens, no agent outlives the test (they outlive a closed stdin).
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of processesWith(marker)) {
              try {
                process.kill(pid, "SIGKILL")
              } catch {
                // gone meanwhile
              }
            }
          })
        )
        const up = yield* startUp(file)
        yield* eventually("both agents run", () => processesWith(marker).length === 2, "60 seconds")
        const agents = processesWith(marker)

        process.kill(up.pid, "SIGINT")
        yield* said(
          up,
          `SIGINT: stopping tree \\"cli-force\\" (3-phase, in order; Ctrl-C again to kill the agents at once)`,
          "up"
        )
        // The last child stops first (reverse order): its stop is under way once it ignores the shutdown.
        yield* said(up, "ignoring shutdown", "the second agent")
        // up stops its tree before its admin API: status answers during the stop
        const status = yield* command(file, "status")
        assert.strictEqual((yield* status.exited).code, 0, status.stderr())
        assert.include(status.stdout(), "first", status.stdout())
        process.kill(up.pid, "SIGINT")
        const exited = yield* Effect.timeout(up.exited, "60 seconds").pipe(Effect.option)
        assert.isTrue(Option.isSome(exited), `up ended long before the agents' 90 s phases (stderr: ${up.stderr()})`)
        assert.strictEqual(Option.getOrThrow(exited).code, 0, up.stderr())
        assert.include(up.stderr(), "SIGINT again: the stop is cut short: SIGKILL to every agent (1 stopping now")
        assert.deepStrictEqual(agents.filter(isAlive), [], "every agent killed")
        // The first, stopped after the second SIGINT, was never asked: killed at once; neither is a failure's.
        assert.strictEqual(up.stderr().split("ignoring shutdown").length, 2, up.stderr())
        assert.notInclude(up.stderr(), "a signal the stop did not send")
        assert.notInclude(up.stderr(), "ignored shutdown for")
      }),
    180_000
  )

  it.scopedLive(
    "SIGINT during the tree's start is said at once, what had started stops, and the tree's stop is said: exit 0",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-start-sigint")
        const marker = path.join(dir, "unready")
        const file = path.join(dir, "tree.json")
        fs.writeFileSync(
          file,
          JSON.stringify({
            name: "cli-starting",
            store: { type: "memory" },
            children: [
              {
                type: "agent",
                id: "first",
                config: agentConfig("echo", { name: "first", args: [fixture("agents", "agent.mjs"), "echo", marker] })
              },
              {
                type: "agent",
                id: "never-ready",
                config: {
                  name: "never-ready",
                  command: process.execPath,
                  args: [fixture("agents", "unready.mjs"), "exit-on-term", marker],
                  startupTimeout: "120 seconds"
                }
              }
            ]
          })
        )
        const up = yield* spawnApp(BIN, ["up", file, "--no-admin", "--log-format", "json"], { onLine: () => {} })
        // The second agent runs (its marker is written once its handler is in place) and has not sent ready
        yield* eventually(`the unready agent runs (stderr: ${up.stderr()})`, () => fs.existsSync(marker), "60 seconds")
        const agents = processesWith(marker)
        assert.strictEqual(agents.length, 2, up.stderr())
        process.kill(up.pid, "SIGINT")
        const exited = yield* up.exited
        assert.strictEqual(exited.code, 0, up.stderr())
        const said = up.stderr()
        const line =
          `SIGINT during the start: stopping tree \\"cli-starting\\" (what has started, 3-phase, in order; ` +
          `Ctrl-C again to kill the agents at once)`
        assert.include(said, line)
        assert.include(said, `tree \\"cli-starting\\" stopped`)
        assert.isBelow(said.indexOf(line), said.indexOf("stopping on SIGTERM"), said)
        assert.deepStrictEqual(agents.filter(isAlive), [], "no agent left running")
      }),
    120_000
  )
})

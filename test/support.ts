/**
 * Shared helpers for tests that run real agent processes.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Supervisor from "effect/Supervisor"
import * as TestClock from "effect/TestClock"
import { type ChildProcessByStdio, execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import type { Readable, Writable } from "node:stream"
import { fileURLToPath } from "node:url"
import * as Adapters from "../src/Adapters.js"
import type * as Config from "../src/Agent/Config.js"
import { ConfigError } from "../src/Errors.js"
import * as Store from "../src/Store/Store.js"
export { freePort } from "./fixtures/net.js"

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
export const fixture = (...parts: Array<string>) => path.join(root, "test", "fixtures", ...parts)

/** Config of the raw-protocol test agent in the given mode. */
export const agentConfig = (
  mode: string,
  overrides: Partial<Config.AgentConfigInput> = {}
): Config.AgentConfigInput => ({
  name: `test-${mode}`,
  command: process.execPath,
  args: [fixture("agents", "agent.mjs"), mode],
  gracefulTimeout: "2 seconds",
  sigtermTimeout: "2 seconds",
  startupTimeout: "10 seconds",
  requestTimeout: "10 seconds",
  ...overrides
})

/**
 * An agent whose every start fails while `file` is missing (agent.mjs `fail-start-unless`: one line on stderr,
 * "cannot start: the file I need is missing"), restarted every 20 ms for up to 100 attempts: a start failure the test
 * turns on and off.
 */
export const failStartUnless = (
  file: string,
  overrides: Partial<Config.AgentConfigInput> = {}
): Config.AgentConfigInput => {
  const config = agentConfig("fail-start-unless", {
    restartBackoff: "20 millis",
    backoffFactor: 1,
    jitter: 0,
    maxRestartAttempts: 100,
    ...overrides
  })
  return { ...config, args: [...config.args!, file] }
}

/**
 * Real processes, the in-memory store (a supervisor requires a `Store`), and agent logs kept out of the test
 * output unless they are errors. A test of another store merges it after this one (`Layer.merge(TestLive,
 * store)`): the later layer's `Store` wins.
 */
export const TestLive = Layer.mergeAll(NodeContext.layer, Store.layerMemory, Logger.minimumLogLevel(LogLevel.Error))

/**
 * The log's messages from `minimum` up (Warning by default), each as one string in `lines` (and in `entries` with
 * its annotations), kept instead of printed: `provide` replaces the default logger and lowers the minimum for the
 * effect (provide `TestLive` after it: its Error minimum would hide them otherwise).
 */
export const logMessages = (minimum: LogLevel.LogLevel = LogLevel.Warning) => {
  const lines: Array<string> = []
  const entries: Array<{ readonly text: string; readonly annotations: Readonly<Record<string, unknown>> }> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    if (LogLevel.greaterThanEqual(logLevel, minimum)) {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      lines.push(text)
      entries.push({ text, annotations: Object.fromEntries(annotations) })
    }
  })
  return {
    lines,
    entries,
    provide: <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      effect.pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(minimum)
      )
  }
}

/**
 * The fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parentheses): `[0]` the state,
 * `[1]` the ppid, `[2]` the process group, `[11]` and `[12]` the user and system ticks; `undefined` once it is gone.
 */
export const statFields = (pid: number): ReadonlyArray<string> | undefined => {
  let stat: string
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  } catch {
    return undefined
  }
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
}

const processState = (pid: number): { readonly state: string; readonly pgrp: number } | undefined => {
  const fields = statFields(pid)
  return fields === undefined ? undefined : { state: fields[0], pgrp: Number(fields[2]) }
}

/** The parent of `pid` (`ppid`), from /proc; throws when there is no such process. */
export const parentOf = (pid: number): number => {
  const fields = statFields(pid)
  if (fields === undefined) throw new Error(`no process ${pid}`)
  return Number(fields[1])
}

/** A zombie is dead: only its parent's `wait` is missing, and in a container nobody may ever reap it. */
export const isAlive = (pid: number): boolean => {
  const s = processState(pid)
  return s !== undefined && s.state !== "Z" && s.state !== "X"
}

/** Live members of a process group, read from /proc. */
export const groupMembers = (pgid: number): Array<number> =>
  fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    const s = processState(pid)
    return s !== undefined && s.pgrp === pgid && s.state !== "Z" && s.state !== "X"
  })

export const openFileDescriptors = (): number => fs.readdirSync("/proc/self/fd").length

/**
 * Polls an observable condition (a process state in /proc, which the kernel updates asynchronously after a
 * signal) until it holds, failing with `what` after `within`.
 */
export const eventually = (
  what: string,
  condition: () => boolean,
  within: Duration.DurationInput = "5 seconds"
): Effect.Effect<void, Error> =>
  Effect.suspend(() => condition() ? Effect.void : Effect.fail(new Error(what))).pipe(
    Effect.retry(Schedule.spaced("10 millis")),
    Effect.timeoutFail({
      duration: within,
      onTimeout: () => new Error(`not within ${Duration.format(within)}: ${what}`)
    })
  )

/** Everything a subscription holds right now. */
export const drain = <A>(queue: Queue.Dequeue<A>): Effect.Effect<Array<A>> =>
  Effect.map(Queue.takeAll(queue), (chunk) => Chunk.toArray(chunk))

const liveClock = Clock.make()

/**
 * Under `TestClock`, keeps moving time forward until `fiber` is done. For work that mixes real processes (real
 * time) with Clock-driven timeouts registered only once that real work has happened.
 */
export const adjustUntilDone = <A, E>(fiber: Fiber.Fiber<A, E>, step: Duration.DurationInput = "1 second") =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      const done = yield* Fiber.poll(fiber)
      if (done._tag === "Some") return yield* Fiber.join(fiber)
      yield* TestClock.adjust(step)
      yield* Effect.withClock(Effect.sleep("10 millis"), liveClock)
    }
    return yield* Effect.dieMessage("the fiber did not finish")
  })

/** The typed failure of an exit; throws (failing the test) on a success or a defect. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

/** The `ConfigError` an effect fails with (the test fails on any other outcome). */
export const configErrorOf = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<ConfigError, never, R> =>
  Effect.map(Effect.exit(Effect.suspend(() => effect)), (exit) => {
    const error: unknown = failureOf(exit)
    return error instanceof ConfigError ? error : assert.fail(`not a ConfigError: ${String(error)}`)
  })

/** The problems of the `ConfigError` an effect fails with, as `field: rule` lines. */
export const problemLines = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<Array<string>, never, R> =>
  Effect.map(configErrorOf(effect), (error) => error.problems.map((p) => `${p.field}: ${p.rule}`))

/**
 * A scope the test closes itself, and that is also closed when the test ends: a failed assertion before the
 * test's own close must not leave agent processes behind.
 */
export const closeableScope: Effect.Effect<Scope.CloseableScope, never, Scope.Scope> = Effect.gen(function*() {
  const scope = yield* Scope.make()
  yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
  return scope
})

/** Sleeps on the real clock, also inside a test that runs under `TestClock`. */
export const sleepLive = (duration: Duration.DurationInput): Effect.Effect<void> =>
  Effect.withClock(Effect.sleep(duration), liveClock)

/**
 * Like {@link eventually} for a condition that is itself an effect (a `TestClock` reading, an agent's metadata),
 * polled on the real clock, so that it also works in a test that runs under `TestClock`.
 */
export const eventuallyEffect = <E, R>(
  what: string,
  condition: Effect.Effect<boolean, E, R>,
  within: Duration.DurationInput = "10 seconds"
): Effect.Effect<void, E | Error, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(within)
    while (!(yield* condition)) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`not within ${Duration.format(within)}: ${what}`))
      yield* sleepLive("10 millis")
    }
  })

/** A fresh temporary directory, removed when the test's scope closes. */
export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

/** Takes from a queue until an item matches; returns everything taken, the match last. */
export const takeUntil = <A>(queue: Queue.Dequeue<A>, match: (item: A) => boolean): Effect.Effect<Array<A>> =>
  Effect.gen(function*() {
    const seen: Array<A> = []
    while (true) {
      const item = yield* Queue.take(queue)
      seen.push(item)
      if (match(item)) return seen
    }
  })

/** A test application (a fixture script) running in a child process. */
export interface AppProcess {
  readonly child: ChildProcessByStdio<Writable | null, Readable, Readable>
  readonly pid: number
  /** Everything it wrote to stderr so far. */
  readonly stderr: () => string
  readonly exited: Effect.Effect<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/**
 * Runs `node script ...args` from the repository's root in a process group of its own, killed whole (SIGKILL) when
 * the scope closes; each stdout line goes to `onLine`. `stdin: true` gives it a stdin pipe (else none).
 */
export const spawnApp = (
  script: string,
  args: ReadonlyArray<string>,
  options: {
    readonly stdin?: boolean
    readonly onLine: (line: string) => void
    /** Its environment: this process's by default. */
    readonly env?: NodeJS.ProcessEnv
  }
): Effect.Effect<AppProcess, never, Scope.Scope> =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [script, ...args], {
          cwd: root,
          env: options.env ?? process.env,
          stdio: [options.stdin === true ? "pipe" : "ignore", "pipe", "pipe"],
          detached: true
        }) as ChildProcessByStdio<Writable | null, Readable, Readable>
      ),
      (child) =>
        Effect.sync(() => {
          try {
            process.kill(-child.pid!, "SIGKILL")
          } catch {
            // already gone
          }
        })
    )
    let stderr = ""
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (chunk: string) => (stderr += chunk))
    readline.createInterface({ input: child.stdout }).on("line", options.onLine)
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("close", (code, signal) => resolve({ code, signal }))
    )
    return { child, pid: child.pid!, stderr: () => stderr, exited: Effect.promise(() => closed) }
  })

/** The built `agent-supervisor` command. */
export const BIN = path.join(root, "dist", "bin", "agent-supervisor.js")

/** How a command of the built bin ended, and what it printed. */
export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `agent-supervisor ARGS` (the built bin) to its end: in `cwd` (the repository by default), with `env` over this
 * process's, without colour unless `env` gives `FORCE_COLOR` (Node warns when both are set, so neither is
 * inherited), killed after `timeout` ms (60 s). `code` is `null` when a signal ended it.
 */
export const runCli = (
  args: ReadonlyArray<string>,
  options: {
    readonly cwd?: string | undefined
    readonly env?: Record<string, string> | undefined
    readonly timeout?: number | undefined
    readonly maxBuffer?: number | undefined
  } = {}
): Effect.Effect<CliResult> =>
  Effect.async<CliResult>((resume) => {
    const { FORCE_COLOR: _, NO_COLOR: __, ...inherited } = process.env
    const colour = options.env?.FORCE_COLOR !== undefined ? {} : { NO_COLOR: "1" }
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: options.cwd ?? root,
        env: { ...inherited, ...colour, ...options.env },
        timeout: options.timeout ?? 60_000,
        ...(options.maxBuffer === undefined ? {} : { maxBuffer: options.maxBuffer })
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null
        resume(Effect.succeed({ code, stdout, stderr }))
      }
    )
  })

/**
 * `agent-supervisor up FILE --log-format json` (and `args`) in the background, once its admin API listens (its state
 * file is there, waited for `within`): the process, its state file, and its stdout lines as they come.
 */
export const startUp = (
  file: string,
  args: ReadonlyArray<string> = [],
  within: Duration.DurationInput = "60 seconds"
) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const app = yield* spawnApp(BIN, ["up", file, "--log-format", "json", ...args], { onLine: (l) => lines.push(l) })
    const stateFile = path.join(path.dirname(file), `.${path.basename(file)}.admin.json`)
    yield* eventually(`the state file of up (stderr: ${app.stderr()})`, () => upListens(stateFile), within)
    return { app, stateFile, lines }
  })

/**
 * Whether the state file at `stateFile` is a listening admin API's (`{ url, token, pid }`), not `up`'s claim on it
 * while it starts its tree (`{ pid, starting: true }`) nor missing.
 */
export const upListens = (stateFile: string): boolean => {
  try {
    return typeof JSON.parse(fs.readFileSync(stateFile, "utf8")).url === "string"
  } catch {
    return false
  }
}

/** A tree file's config of a Node callback agent `name` of `test/fixtures/node/FILE` (restarts at once). */
export const nodeCallbackConfig = (name: string, file: string) => ({
  name,
  ...Adapters.nodeCallback(fixture("node", file)),
  startupTimeout: "20 seconds",
  restartBackoff: 0
})

/** Counts the fibers started under it (`Effect.supervised(counter.supervisor)`): for "no fiber per ..." tests. */
export const forkCounter = () => {
  let started = 0
  const supervisor = new (class extends Supervisor.AbstractSupervisor<void> {
    value = Effect.void
    override onStart() {
      started++
    }
  })()
  return { supervisor, started: () => started }
}

/** Processes whose command line holds `marker` (a test's agents carry one in their arguments). */
export const processesWith = (marker: string): Array<number> =>
  fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker)
    } catch {
      return false
    }
  }).map(Number)

/** The cluster's test agent (test/fixtures/cluster/agent.mjs, which answers with its name and pid) named `name`. */
export const clusterAgent = (name: string): Config.AgentConfigInput => ({
  name,
  command: process.execPath,
  args: [fixture("cluster", "agent.mjs"), name],
  restartBackoff: "50 millis",
  jitter: 0,
  gracefulTimeout: "2 seconds",
  startupTimeout: "10 seconds"
})

/**
 * The teller agent (test/fixtures/cli/teller.mjs): `teller PID started`, `teller PID boot 0..2` on stderr as soon as
 * it runs, `teller PID mark K` on SIGUSR1; `overrides` over its settings.
 */
export const teller = (name: string, overrides: Partial<Config.AgentConfigInput> = {}): Config.AgentConfigInput => ({
  name,
  command: process.execPath,
  args: [fixture("cli", "teller.mjs")],
  gracefulTimeout: "2 seconds",
  sigtermTimeout: "2 seconds",
  startupTimeout: "10 seconds",
  restartBackoff: 0,
  ...overrides
})

/**
 * Runs test/fixtures/emfile/spawn.mjs in a process of its own whose descriptors run out (`ulimit -n 512`, so that no
 * other test is starved), with `env` added to its environment: the JSON line it prints (the start's error and the
 * uncaught exceptions seen).
 */
export const emfileHost = (env: Record<string, string> = {}): Effect.Effect<unknown, Error> =>
  Effect.map(
    Effect.async<string, Error>((resume) => {
      execFile(
        "sh",
        ["-c", `ulimit -n 512 && exec "${process.execPath}" "${fixture("emfile", "spawn.mjs")}"`],
        { timeout: 60_000, env: { ...process.env, ...env } },
        (error, stdout, stderr) =>
          resume(error ? Effect.fail(new Error(`${error.message}\n${stderr}`)) : Effect.succeed(stdout))
      )
    }),
    (output) => JSON.parse(output.trim().split("\n").pop()!)
  )

/**
 * The runner processes of `bench/cluster.ts`: `test/fixtures/cluster/runner.mjs` (built JS importing `dist/`), started
 * on a free port, with a marker in its environment that its agents inherit, so that the processes this benchmark
 * started, and only those, can be found in `/proc` afterwards (an agent's command line names neither its runner nor
 * the cluster's prefix, and other programs may run the same fixtures at the same time).
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { freePort } from "../test/fixtures/net.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
/** The cluster's fixtures: the runner and the echo agent. */
export const fixtures = path.join(root, "test", "fixtures", "cluster")
const runnerFile = path.join(fixtures, "runner.mjs")

/** The environment variable that marks this run's runners and, inherited, their agents. */
const MARKER_VARIABLE = "EAS_BENCH_CLUSTER"
const marker = `${MARKER_VARIABLE}=${process.pid}-${Date.now().toString(36)}`

/** How a process ended. */
export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** A runner process of the cluster. */
export interface Runner {
  readonly pid: number
  /** `host:port`, as `Status` names it. */
  readonly address: string
  readonly exited: Promise<Exit>
  readonly kill: (signal: NodeJS.Signals) => void
  /** The last lines of its stderr (a runner that fails to start says why there). */
  readonly stderr: () => string
}

const exitOf = (child: ChildProcess): Promise<Exit> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      return resolve({ code: child.exitCode, signal: child.signalCode })
    }
    child.once("exit", (code, signal) => resolve({ code, signal }))
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** A deadline that does not keep this process alive. */
const after = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref())

/** Every runner started and not yet seen to exit: SIGKILLed if this process exits first, whatever happens. */
const live = new Set<ChildProcess>()
const killAll = () => {
  for (const child of live) child.kill("SIGKILL")
}

const start = async (db: string, prefix: string, timing: string, agents: number): Promise<Runner> => {
  const port = await freePort()
  const child = spawn(process.execPath, [runnerFile, String(port), db, prefix, timing, String(agents)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, [MARKER_VARIABLE]: marker.slice(MARKER_VARIABLE.length + 1) }
  })
  if (live.size === 0) process.on("exit", killAll)
  live.add(child)
  const exited = exitOf(child)
  void exited.then(() => {
    live.delete(child)
    if (live.size === 0) process.removeListener("exit", killAll)
  })
  let stderr = ""
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (text: string) => void (stderr = (stderr + text).slice(-4000)))
  let stdout = ""
  child.stdout!.setEncoding("utf8")
  const ready = new Promise<void>((resolve) =>
    child.stdout!.on("data", (text: string) => {
      stdout += text
      if (stdout.split("\n").some((line) => line.startsWith("READY "))) resolve()
    })
  )
  const outcome = await Promise.race([
    ready.then(() => "ready" as const),
    exited.then((exit) => `exited before READY (${JSON.stringify(exit)})`),
    after(60_000).then(() => "no READY within 60 s")
  ])
  if (outcome !== "ready") {
    child.kill("SIGKILL")
    await exited
    throw new Error(`runner ${timing} on ${db.startsWith("sqlite:") ? "SQLite" : "PostgreSQL"}: ${outcome}: ${stderr}`)
  }
  return {
    pid: child.pid!,
    address: `127.0.0.1:${port}`,
    exited,
    kill: (signal) => void child.kill(signal),
    stderr: () => stderr
  }
}

/** Asks a runner to stop (SIGTERM), waits up to 15 s, then SIGKILLs it; a runner already gone is left as it is. */
const stop = async (runner: Runner) => {
  const gone = await Promise.race([runner.exited.then(() => true), sleep(0).then(() => false)])
  if (gone) return
  runner.kill("SIGTERM")
  const stopped = await Promise.race([runner.exited.then(() => true), after(15_000).then(() => false)])
  if (!stopped) {
    runner.kill("SIGKILL")
    await runner.exited
  }
}

/**
 * A runner hosting `agents` echo agents (`agent-0` ...), in the scope: started on a free port, ready once it printed
 * `READY`; stopped with the scope (SIGTERM, then SIGKILL after 15 s) unless it is gone already.
 */
export const runner = (
  db: string,
  prefix: string,
  timing: string,
  agents: number
): Effect.Effect<Runner, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => start(db, prefix, timing, agents), catch: (e) => e as Error }),
    (runner) => Effect.promise(() => stop(runner))
  )

const read = (file: string) => {
  try {
    return fs.readFileSync(file, "latin1")
  } catch {
    return "" // gone meanwhile, or not ours to read
  }
}

/**
 * The processes of this run still alive: runners and agents that carry the marker, and agents of the fixture
 * directory that this process started itself (the direct and in-process cluster agents).
 */
export const leftovers = (): Array<number> =>
  fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).map(Number).filter((pid) => {
    if (pid === process.pid) return false
    if (!read(`/proc/${pid}/cmdline`).includes(fixtures)) return false
    if (read(`/proc/${pid}/environ`).split("\0").includes(marker)) return true
    const stat = read(`/proc/${pid}/stat`)
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid
  })

/**
 * Waits up to `within` ms for this run's processes to be gone (agents exit at their runner's end, on stdin's EOF),
 * then SIGKILLs any left: the pids that were left, for the report.
 */
export const sweep = async (within: number): Promise<Array<number>> => {
  const deadline = Date.now() + within
  let left = leftovers()
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100)
    left = leftovers()
  }
  for (const pid of left) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // exited meanwhile
    }
  }
  return left
}

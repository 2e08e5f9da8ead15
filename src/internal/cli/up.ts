/**
 * `agent-supervisor up FILE`: the file's tree in the foreground, with its admin API and dashboard, until a signal
 * or the tree itself ends it; for a file with a `cluster` section, the file's agents on the cluster instead (see
 * `cluster.ts`). SIGINT and SIGTERM stop the tree (3-phase, in order: `NodeRuntime.runMain` interrupts the
 * program, and the scope closes), or the cluster's runner and its agents, and exit 0; so does every other signal
 * that would end the process (SIGHUP, SIGQUIT, SIGUSR2...: `lastSignal`); an escalation of the root exits 1 with its message; an auto-shutdown of the root exits 0.
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import * as AdminApi from "../../AdminApi.js"
import * as Directory from "../../Agent/Directory.js"
import * as AgentProcess from "../../Agent/Process.js"
import { ConfigError, type StoreError, type SupervisorIntensityError } from "../../Errors.js"
import * as LogFiles from "../../LogFiles.js"
import * as Metrics from "../../Metrics.js"
import * as Supervisor from "../../Supervisor.js"
import * as TreeFile from "../../TreeFile.js"
import type * as TreeFileCluster from "../../TreeFile/Cluster.js"
import * as AdminOptions from "../admin/options.js"
import * as StateFile from "../admin/stateFile.js"
import { plural } from "../errors/format.js"
import { ENDING_SIGNALS } from "../standalone/endingSignals.js"
import { ENV_STATE_FILE, stateFileOf } from "./address.js"
import * as Interrupted from "./interrupted.js"
import type * as Logging from "./logging.js"
import * as Progress from "./progress.js"

export interface UpOptions {
  readonly file: string
  /** `--port`, over the file's `admin.port`. */
  readonly port: Option.Option<number>
  /** `--host`, over the file's `admin.host`. */
  readonly host: Option.Option<string>
  /** `--state-file`, else `AGENT_SUPERVISOR_STATE_FILE`, else the one beside the tree file. */
  readonly stateFile: Option.Option<string>
  /** `--no-admin`: no admin API, no dashboard, no state file. */
  readonly admin: boolean
  /** `--runner-host`, over the file's `cluster.address.host`. */
  readonly runnerHost: Option.Option<string>
  /** `--runner-port`, over the file's `cluster.address.port`. */
  readonly runnerPort: Option.Option<number>
  /**
   * `--log-format`: with a `logs` section, `logfmt` writes `agent-supervisor.log` in logfmt too; any other (`json`,
   * and `pretty` or `auto`, which are for a terminal) writes JSON lines. `auto` by default.
   */
  readonly logFormat?: Logging.Format | undefined
}

/** `up`'s cluster mode, loaded for a file with a `cluster` section only: it loads `@effect/cluster`. */
const clusterModule = Effect.promise(() => import("./cluster.js"))

/** What runs: the tree (a file's, or the empty one of a cluster's runner), and what the admin API adds to it. */
interface Started {
  readonly tree: Supervisor.Supervisor
  readonly placements: Option.Option<AdminApi.ClusterPlacements["Type"]>
  /** What `up` waits for: the tree's end, or (a cluster's runner) an interruption. */
  readonly await: Effect.Effect<void, SupervisorIntensityError>
  readonly ready: string | undefined
}

/** The admin API's options: the flags over the file's section. */
const adminOptions = (file: TreeFile.TreeFile, options: UpOptions, stateFile: string): AdminApi.Options => {
  const section = file.admin ?? {}
  return {
    port: Option.getOrElse(options.port, () => section.port ?? 0),
    ...Option.match(Option.orElse(options.host, () => Option.fromNullable(section.host)), {
      onNone: () => ({}),
      onSome: (host) => ({ host })
    }),
    token: section.token,
    stateFile
  }
}

/** The tree of a loaded file, in this process. */
const startTree = (file: TreeFile.TreeFile, progress: Directory.InstallProgress) =>
  Effect.gen(function*() {
    // The tree's start warns of a child that would be parked rather than escalate (once: not here as well).
    const tree = yield* TreeFile.make(file).pipe(Effect.provideService(Directory.Progress, progress))
    yield* Effect.logInfo(`tree "${tree.name}" is running`)
    const started: Started = {
      tree,
      placements: Option.none(),
      await: Effect.zipRight(tree.await, Effect.logInfo(`tree "${tree.name}" shut itself down`)),
      ready: undefined
    }
    return started
  })

/** The agents of a loaded file on its cluster (see `cluster.ts`). */
const startCluster = (
  file: TreeFile.TreeFile & { readonly cluster: TreeFileCluster.Settings },
  options: UpOptions,
  progress: Directory.InstallProgress
) =>
  Effect.gen(function*() {
    const { start } = yield* clusterModule
    const running = yield* start(file, { host: options.runnerHost, port: options.runnerPort }, progress)
    const started: Started = {
      tree: running.tree,
      placements: Option.some(running.placements),
      await: Effect.never,
      ready: running.ready
    }
    return started
  })

/**
 * The stop signals `NodeRuntime.runMain` acts on itself; `lastSignal` acts on the others of `ENDING_SIGNALS` (every
 * signal whose default action would end the process: SIGHUP, SIGQUIT, SIGUSR2, SIGALRM...), which would leave the
 * state file.
 */
const RUN_MAIN_SIGNALS: ReadonlyArray<NodeJS.Signals> = ["SIGINT", "SIGTERM"]

/** What a third signal logs as `up` exits: `killed` agent processes were still running. */
export const thirdSignalLine = (signal: NodeJS.Signals, killed: number): string =>
  `${signal}, a third signal: exiting now, without the rest of the stop (${
    killed === 0
      ? "no agent process was still running"
      : `SIGKILL to the ${plural(killed, "agent process", "agent processes")} still running`
  })`

/**
 * The last of the stop signals (`ENDING_SIGNALS`) this process received while in the scope. `NodeRuntime.runMain`
 * acts on the first SIGINT or SIGTERM: this listens, to say which one stopped `up`, and acts itself on the first
 * of the others (SIGHUP: the terminal closed; SIGQUIT: Ctrl-\; SIGUSR2...), which runMain does not take, as it
 * acts on SIGTERM: it interrupts the fiber running `up`, so that the tree stops and the state file goes (the
 * library's signal guard would kill the agents and end the process by the signal, leaving the state file). The first one during the
 * tree's start, while `starting` names it, is said at once. A second one cuts the stop short
 * (`AgentProcess.forceStops`: SIGKILL to every agent, those stopping and those still to stop), as docker compose's
 * second Ctrl-C does; a third exits at once (128 + the signal's number: 130 for SIGINT, 143 for SIGTERM) after
 * SIGKILL to every agent process still running (`AgentProcess.killAll`), whatever else holds the stop (a store's
 * flush, an install). runMain has let go of the signals after the first, and this listener keeps Node from ending
 * the process with its agents running.
 */
const lastSignal = Effect.acquireRelease(
  Effect.gen(function*() {
    // Logged at once, from Node's listener (a log is synchronous)
    const log = Runtime.runSync(yield* Effect.runtime<never>())
    const seen: { signal: NodeJS.Signals | undefined; count: number; starting: string | undefined } = {
      signal: undefined,
      count: 0,
      starting: undefined
    }
    const fiber = yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((fiber) => Effect.succeed(fiber))
    const listener = (signal: NodeJS.Signals) => {
      seen.signal = signal
      seen.count++
      // runMain's own handlers interrupt the program on the first SIGINT or SIGTERM; the others' first, this one
      if (seen.count === 1 && !RUN_MAIN_SIGNALS.includes(signal)) {
        // Said as runMain's are, if it comes before the start (`Interrupted.beforeBegun`)
        Interrupted.noteSignal(signal)
        fiber.unsafeInterruptAsFork(fiber.id())
      }
      if (seen.count === 1 && seen.starting !== undefined) {
        // No finalizer of the running tree's is there to say it yet (`logStop`): said here, as the start is cut
        log(Effect.logInfo(
          `${signal} during the start: stopping ${seen.starting} (what has started, 3-phase, in order${
            againHint(signal)
          })`
        ))
      } else if (seen.count === 2) {
        const stopping = Effect.runSync(AgentProcess.forceStops)
        log(Effect.logWarning(
          `${signal} again: the stop is cut short: SIGKILL to every agent (${stopping} stopping now, the rest as ` +
            `their turn comes); a third ${signal} exits at once`
        ))
      } else if (seen.count === 3) {
        // What holds the stop now is no agent's (a store's flush, an install): out at once, no agent left behind
        const killed = Effect.runSync(AgentProcess.killAll)
        log(Effect.logWarning(thirdSignalLine(signal, killed)))
        process.exit(Interrupted.codeOf(signal))
      }
    }
    for (const signal of ENDING_SIGNALS) process.on(signal, listener)
    return { seen, listener }
  }),
  ({ listener }) =>
    Effect.sync(() => {
      for (const signal of ENDING_SIGNALS) process.off(signal, listener)
    })
).pipe(Effect.map(({ seen }) => seen))

/** What the first signal's line says a second one does. */
const againHint = (signal: NodeJS.Signals | undefined) =>
  signal === undefined ? "" : `; ${signal === "SIGINT" ? "Ctrl-C" : signal} again to kill the agents at once`

/**
 * Logs the stop of what runs (`name`) when `up` is interrupted (a signal): that it stopped, from a finalizer
 * added before it starts (a scope runs its finalizers last added first, so this one runs after the tree's stop),
 * and which signal stops it, once, from the first to run of the finalizers added by the effect returned: run once
 * the tree runs, and again once its admin API does (so that the line comes before the API's close, which waits up to
 * 2 s for the requests under way, and still comes for a signal while the API starts). `stopped` says the stop is
 * done, once: at once after the tree's scope closes (before the admin API's close), or else from that finalizer.
 */
const logStop = (name: string, seen: { readonly signal: NodeJS.Signals | undefined }) => {
  let said = false
  let done = false
  const stopped = (exit: Exit.Exit<unknown, unknown>) =>
    Exit.isInterrupted(exit) && !done
      ? Effect.zipRight(Effect.sync(() => (done = true)), Effect.logInfo(`${name} stopped`))
      : Effect.void
  return Effect.as(
    Effect.addFinalizer(stopped),
    {
      stopped,
      whenRunning: Effect.addFinalizer((exit) =>
        Exit.isInterrupted(exit) && !said
          ? Effect.zipRight(
            Effect.sync(() => (said = true)),
            Effect.logInfo(
              `${seen.signal ?? "interrupted"}: stopping ${name} (3-phase, in order${againHint(seen.signal)})`
            )
          )
          : Effect.void
      )
    }
  )
}

/** The tree (or the cluster) of a loaded file, its admin API, until the tree ends or the program is interrupted. */
const serve = (file: TreeFile.TreeFile, options: UpOptions) =>
  Effect.gen(function*() {
    const seen = yield* lastSignal
    const path = yield* Path.Path
    const progress = yield* Progress.forUp
    yield* Effect.addFinalizer(() => Effect.sync(progress.stop))
    const { cluster } = file
    if (cluster === undefined && (Option.isSome(options.runnerHost) || Option.isSome(options.runnerPort))) {
      return yield* new ConfigError({
        field: Option.isSome(options.runnerHost) ? "--runner-host" : "--runner-port",
        rule: "applies to a file with a cluster section only (this one has none)"
      })
    }
    const admin = options.admin && file.admin?.enabled !== false
    const stateFile = Option.getOrElse(
      Option.orElse(options.stateFile, () => Option.fromNullable(process.env[ENV_STATE_FILE] || undefined)),
      () => stateFileOf(path, options.file)
    )
    if (admin) {
      // Before anything starts: a bad --port or --host; and the state file claimed, so that a second `up` of the
      // file refuses before it starts a second tree, even while this one still starts it (see `StateFile.claim`)
      yield* AdminOptions.decode(adminOptions(file, options, stateFile))
      yield* StateFile.claim(stateFile, { host: file.admin?.host ?? "127.0.0.1", port: 0 })
    }
    // Named before its start (the tree's name is the file's): a signal during the start says which tree stops
    const name = cluster === undefined ? `tree "${file.name ?? "root"}"` : "this runner and its agents"
    const { stopped, whenRunning } = yield* logStop(name, seen)
    // From here a signal is said as this tree's stop; before (up's module, the file, the admin API's checks), as up's
    // end before its start (`Interrupted.beforeBegun`)
    Interrupted.markBegun()
    // The tree in a scope of its own, closed before the admin API's (below): the API answers during the stop
    const treeScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    seen.starting = name
    const started = yield* Scope.extend(
      cluster === undefined ? startTree(file, progress) : startCluster({ ...file, cluster }, options, progress),
      treeScope
    ).pipe(Effect.ensuring(Effect.sync(() => (seen.starting = undefined))))
    yield* whenRunning
    if (admin) {
      const make = AdminApi.make(adminOptions(file, options, stateFile)).pipe(
        Effect.provideService(Supervisor.RootSupervisor, started.tree)
      )
      const server = yield* Option.match(started.placements, {
        onNone: () => make,
        onSome: (placements) => Effect.provideService(make, AdminApi.ClusterPlacements, placements)
      })
      yield* Effect.logInfo(`dashboard: ${server.url}/ (admin API token in ${stateFile})`)
      // Run before the API closes: `status` answers and `events` followers see the stop's events to its end.
      yield* Effect.addFinalizer((exit) =>
        Effect.zipRight(server.treeStopping, Scope.close(treeScope, exit)).pipe(Effect.zipRight(stopped(exit)))
      )
    }
    // After the admin API's: the signal is said at once, before the API waits for the requests under way
    yield* whenRunning
    if (started.ready !== undefined) yield* Effect.logInfo(started.ready)
    yield* started.await
  }).pipe(Effect.scoped)

/** `program` exporting metrics and spans where the file's `metrics.otlp` says. */
const exported = <A, E, R>(file: TreeFile.TreeFile, program: Effect.Effect<A, E, R>) =>
  file.metrics?.otlp === undefined ? program : Effect.provide(program, Metrics.layerOtel(file.metrics.otlp))

export const up = (
  options: UpOptions
): Effect.Effect<
  void,
  TreeFile.StartError | AdminApi.AdminApiError | ConfigError | StoreError,
  FileSystem.FileSystem | Path.Path
> =>
  Effect.flatMap(TreeFile.load(options.file), (file) =>
    file.logs === undefined
      ? exported(file, serve(file, options))
      // With log files, up's own log goes to agent-supervisor.log beside the agents' files too.
      : Effect.provide(
        exported(file, serve(file, options)),
        LogFiles.layer({ ...file.logs, name: "agent-supervisor", format: fileFormat(options.logFormat) })
      ))

/** A log file is read by programs: logfmt when `--log-format` asks for it, JSON lines otherwise (no colours). */
const fileFormat = (format: Logging.Format | undefined): "logfmt" | "json" => format === "logfmt" ? "logfmt" : "json"

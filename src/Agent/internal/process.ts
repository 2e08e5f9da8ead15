/**
 * One incarnation of an agent, put together: the child (`child.ts`), what it writes (`channel.ts`), what it is
 * sent (`outbox.ts`, `requests.ts`), its end (`exit.ts`, `shutdown.ts`) and its start (`startup.ts`).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import type { AgentStartupError } from "../../Errors.js"
import * as Message from "../../Protocol/Message.js"
import type * as Config from "../Config.js"
import type * as AgentProcess from "../Process.js"
import * as Calls from "./calls.js"
import * as Channel from "./channel.js"
import * as Child from "./child.js"
import * as ExitWatch from "./exit.js"
import * as ForkServer from "./forkServer.js"
import * as Placement from "./limits/placement.js"
import * as Soft from "./limits/soft.js"
import * as Outbox from "./outbox.js"
import * as Output from "./output.js"
import * as ProcessTable from "./processTable.js"
import * as Requests from "./requests.js"
import * as Serial from "./serial.js"
import * as Shutdown from "./shutdown.js"
import * as Spawn from "./spawn.js"
import * as Startup from "./startup.js"

/**
 * Hooks into one incarnation's life, for its owner.
 *
 * @internal
 */
export interface Hooks {
  /**
   * Run once the process is spawned, before it is ready (a failed start still had a pid).
   */
  readonly onSpawned?: ((spawned: Spawned) => Effect.Effect<void>) | undefined
  /** Called with each stderr line of the incarnation as the pipe's reader has it (synchronously: keep it short). */
  readonly onStderrLine?: ((pid: number, text: string) => void) | undefined
  /** Told of the incarnation's tasks in flight and of callers gone before their answer (its agent's metrics). */
  readonly meter?: Requests.TableOptions["meter"]
  /** Told when a polled limit is passed (`limits/soft.ts`), before the kill if there is one. */
  readonly onLimitExceeded?: ((exceeded: Soft.Exceeded) => Effect.Effect<void>) | undefined
  /** Called with each task the agent publishes to a topic (protocol 1.2, synchronously). */
  readonly onPublish?: ((topic: string, payload: unknown) => void) | undefined
  /** Called with each checkpoint the agent sends without an id, within `maxCheckpointBytes` (synchronously). */
  readonly onCheckpoint?: ((data: unknown) => void) | undefined
  /**
   * Called when the incarnation crashes (an exit not asked for) with requests in flight that sent checkpoints: those
   * checkpoints, by request id (synchronously, before the requests fail).
   */
  readonly onCrashCheckpoints?: ((checkpoints: Record<string, unknown>) => void) | undefined
  /**
   * Run right after `ready` when the agent announced `checkpoint`, before the incarnation is handed over (so before
   * any task is written): the `restore` message to send it, if there is anything to restore.
   */
  readonly restore?: ((pid: number) => Effect.Effect<Message.Restore | undefined>) | undefined
}

/**
 * A process as spawned, before it is ready.
 *
 * @internal
 */
export interface Spawned {
  readonly pid: number
  /** When it was spawned (epoch milliseconds, the `Clock`'s). */
  readonly startedAt: number
  /** The incarnation's counters: they hold after a failed start or an exit (its pipes may still deliver lines). */
  readonly stats: Effect.Effect<AgentProcess.Stats>
  /** Whether its exit has been reported (reaped, or left behind after SIGKILL); read synchronously. */
  readonly exited: () => boolean
  /** Whether its exit has been reported and was not asked for (no stop's): a crash, or a kill for a fault. */
  readonly crashed: () => boolean
}

/**
 * Spawns the agent of a decoded configuration and waits for its `ready`, in a scope of its own within the
 * caller's: closed (3-phase shutdown) with the caller's scope, or at once when the start fails.
 *
 * @internal
 */
/**
 * An incarnation as its supervisor holds it: the public interface, and a callback on its exit (a fiber waiting for
 * the exit of each agent for its whole life, before).
 *
 * @internal
 */
export interface Incarnation extends AgentProcess.AgentProcess {
  /** Calls `callback` (in Node's `exit` handler) once the exit is reported; the function returned forgets it. */
  readonly onExit: (callback: (info: AgentProcess.ExitInfo) => void) => () => void
  /** A ping answered to a callback, with no fiber (the heartbeat's: see `Calls.Calls.pingWith`). */
  readonly pingWith: Calls.Calls["pingWith"]
  /**
   * SIGKILL to the group of a running process (a hung agent): its exit goes through the rules as any exit, and
   * one that outlives it by `Child.KILL_BOUND_MILLIS` is left behind then (`ExitWatch.kill`).
   */
  readonly kill: Effect.Effect<void>
}

export const start = (
  config: Config.AgentConfig,
  hooks?: Hooks
): Effect.Effect<Incarnation, AgentStartupError, Scope.Scope> =>
  Effect.gen(function*() {
    const outer = yield* Effect.scope
    const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    return yield* run(config, hooks).pipe(
      Scope.extend(scope),
      Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void)
    )
  })

const run = Effect.fnUntraced(function*(config: Config.AgentConfig, hooks: Hooks | undefined) {
  const name = config.name
  const ready = yield* Deferred.make<Message.Ready>()
  // Whether the agent's `ready` came: the stop asks only an agent that speaks the protocol.
  let readySeen = false
  const exitDeferred = yield* Deferred.make<AgentProcess.ExitInfo>()
  const clock = yield* Effect.clock

  // ---- as whom, with what, in which cgroup: decided first, so that its cgroup goes after the child ----
  const placement = yield* Placement.acquire(config)

  // ---- the child: every pipe has an error path for its whole life ----
  // Through the fork server of the context (`ForkServer.layer`), or the environment's, if one is given.
  const forkServer = yield* Effect.serviceOption(ForkServer.Tag)
  const child = yield* Child.spawn({
    forkServer: Option.isSome(forkServer) ? forkServer.value : ForkServer.fromEnvironment(),
    command: placement.command,
    args: placement.args,
    env: placement.env,
    cwd: config.cwd,
    uid: placement.uid,
    gid: placement.gid,
    onLeftBehind: placement.leftBehind
  }).pipe(Effect.mapError((failure) => Spawn.classify(config, failure.error)))
  const pid = child.pid
  // Its group is younger than the last scan of /proc: its first heartbeat waits for the next (`TableCache.group`),
  // and its first CPU% is its average since the spawn itself, not since this line ran (later, in a bulk start).
  ProcessTable.shared.born(pid, performance.now() - child.spawnedAt)
  const startedAt = yield* Clock.currentTimeMillis

  const status = ExitWatch.makeStatus()
  const exited = () => status.exited !== undefined
  const counters = Channel.makeCounters()
  const outbox = Outbox.make(child)
  const table = Requests.makeTable({
    agent: name,
    pid,
    maxInFlight: config.maxInFlight,
    clock,
    outbox,
    exited,
    meter: hooks?.meter
  })
  // What the agent announced in its `ready`, and its latest checkpoint.
  let features: ReadonlyArray<string> = []
  let streams = false
  let latestCheckpoint: Option.Option<unknown> = Option.none()
  const stats: Effect.Effect<AgentProcess.Stats> = Effect.sync(() => ({
    ...counters,
    inFlight: table.inFlight(),
    waiting: table.unsent()
  }))
  if (hooks?.onSpawned !== undefined) {
    yield* hooks.onSpawned({
      pid,
      startedAt,
      stats,
      exited,
      crashed: () => status.exited !== undefined && !status.exited.requested
    })
  }

  const annotations = { agent: name, pid }
  const logs = yield* Serial.make({ annotations })
  // Agent output (stderr, stray stdout) goes through one bounded log: its level, a rate limit, the host's backlog.
  // Its summary of dropped lines runs in a fiber of its own from the first line it drops: none for a quiet agent.
  const forkOutput = Runtime.runFork(yield* Effect.runtime<never>())
  let summaries: Fiber.RuntimeFiber<never> | undefined
  const output = Output.fromConfig(config, {
    clock,
    annotations,
    schedule: logs.run,
    onFirstDrop: () => {
      summaries ??= forkOutput(output.run)
    }
  })
  yield* Effect.addFinalizer(() => summaries === undefined ? Effect.void : Fiber.interrupt(summaries))
  yield* Effect.addFinalizer(() => Effect.sync(table.close))

  const onStderrLine = hooks?.onStderrLine
  const channel = Channel.make({
    config,
    table,
    counters,
    output,
    log: logs.run,
    onReady: (hello) => {
      readySeen = true
      Deferred.unsafeDone(ready, Exit.succeed(hello))
    },
    onCheckpoint: (data) => {
      latestCheckpoint = Option.some(data)
      hooks?.onCheckpoint?.(data)
    },
    onStderrLine: onStderrLine === undefined ? undefined : (text) => onStderrLine(pid, text),
    onPublish: hooks?.onPublish
  })
  const exit = ExitWatch.make({
    agent: name,
    pid,
    status,
    child,
    table,
    exitDeferred,
    now: () => clock.unsafeCurrentTimeMillis(),
    recentStderr: channel.recentStderr,
    log: logs.run,
    limits: config.limits,
    limitHit: placement.limitHit,
    sweep: placement.sweep,
    onCrashCheckpoints: hooks?.onCrashCheckpoints
  })
  const calls = Calls.makeCalls({ config, table, counters, refusal: exit.refusal, streams: () => streams })

  // Output and the exit are delivered from here on: every handler is defined.
  child.attach({
    onStdout: channel.onStdout,
    onStderr: channel.onStderr,
    onPipesClosed: channel.end,
    onExit: (childExit) => {
      // What the agent wrote before dying has been read: its last line ends with it, even unterminated, even
      // while a descendant holds the pipes (what that one writes later starts a line of its own).
      channel.end()
      exit.onExit(childExit)
    },
    onStdinError: (error) => logs.run(Effect.logDebug(`agent stdin closed with an error: ${error.message}`))
  })

  // ---- 3-phase shutdown; added last so it runs first, before the child's own release (SIGKILL and wait) ----
  const stop = Shutdown.stop({ pid, config, status, table, outbox, exit, ready: () => readySeen }).pipe(
    Effect.annotateLogs(annotations)
  )
  yield* Effect.addFinalizer(() => Effect.ensuring(stop, logs.end))

  // ---- start-up: ready, or the process exits, or the timeout passes (then the stop runs first) ----
  yield* Startup.awaitReady({
    config,
    pid,
    ready,
    awaitExit: Deferred.await(exitDeferred),
    recentStderr: channel.recentStderr,
    stopAfterTimeout: Effect.map(stop, () => Shutdown.ownExit(status))
  })
  exit.started()
  const hello = yield* Deferred.await(ready)
  features = Message.featuresOf(hello)
  if (hello.features !== undefined && (!Array.isArray(hello.features) || features.length !== hello.features.length)) {
    logs.run(Effect.logWarning(
      `agent's ready has a malformed features field (${JSON.stringify(hello.features).slice(0, 200)}): ` +
        `read as [${features.join(", ")}]`
    ))
  }
  streams = features.includes("stream")
  if (hooks?.restore !== undefined && features.includes("checkpoint")) {
    const restore = yield* hooks.restore(pid)
    if (restore !== undefined) sendRestore(config, outbox, restore, logs.run)
  }

  // ---- limits polled where no cgroup holds them: from ready on, for the life of the incarnation ----
  if (placement.inForce.mode === "polling" && config.limits !== undefined && Soft.watches(config.limits)) {
    yield* Effect.forkScoped(
      Soft.watch({
        limits: config.limits,
        read: (maxAgeMillis) => ProcessTable.shared.group(pid, maxAgeMillis),
        onExceeded: (exceeded) => hooks?.onLimitExceeded?.(exceeded) ?? Effect.void,
        kill: (reason) =>
          Effect.sync(() => {
            if (status.exited !== undefined || status.stopping) return
            status.killedFor = reason
            exit.kill()
          })
      }).pipe(Effect.annotateLogs(annotations))
    )
  }

  const agent: Incarnation = {
    name,
    pid,
    startedAt,
    config,
    limits: placement.inForce,
    request: calls.request,
    ping: calls.ping,
    pingWith: calls.pingWith,
    awaitExit: Deferred.await(exitDeferred),
    exitInfo: Effect.sync(() => Option.fromNullable(status.exited)),
    stats,
    recentStderr: Effect.sync(channel.recentStderr),
    signalGroup: (signal) =>
      Effect.sync(() =>
        signal === "SIGKILL" ? exit.kill() : status.exited === undefined ? Child.killGroup(pid, signal) : undefined
      ),
    kill: Effect.sync(exit.kill),
    features,
    checkpoint: Effect.sync(() => latestCheckpoint),
    requestStream: calls.requestStream,
    onExit: exit.onReported
  }
  return agent
})

/**
 * Writes the `restore` line first on the agent's stdin. One longer than `maxMessageBytes` goes without its request
 * checkpoints, or not at all when the agent's checkpoint alone is too long (logged either way).
 */
const sendRestore = (
  config: Config.AgentConfig,
  outbox: Outbox.Outbox,
  restore: Message.Restore,
  log: (effect: Effect.Effect<void>) => void
): void => {
  const fits = (line: string) =>
    line.length * 3 <= config.maxMessageBytes || Buffer.byteLength(line) <= config.maxMessageBytes
  let line = Message.encodeRestore(restore)
  if (!fits(line) && restore.requests !== undefined) {
    log(Effect.logWarning(
      `the restore message is over maxMessageBytes (${config.maxMessageBytes}): sent without its request checkpoints`
    ))
    line = restore.data === undefined ? "" : Message.encodeRestore({ type: "restore", data: restore.data })
  }
  if (line !== "" && !fits(line)) {
    log(Effect.logWarning(`the agent's checkpoint is over maxMessageBytes (${config.maxMessageBytes}): not restored`))
    return
  }
  if (line !== "") outbox.send(line)
}

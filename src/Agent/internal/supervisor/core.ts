/**
 * The state of one supervised agent, in one object that the modules running it share (starting, exits and
 * restarts, health, manual operations, requests), with the few steps they all take: a transition, a new route,
 * settling the callers waiting for a start.
 *
 * Lifecycle fields are written only under `locked`; they are read freely, each read one synchronous step.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { AgentCrashError, type AgentStartupError, AgentStoppedError } from "../../../Errors.js"
import * as Forker from "../../../internal/forker.js"
import * as AgentMetrics from "../../../internal/metrics/instruments.js"
import type * as Writer from "../../../Store/internal/writer.js"
import * as Store from "../../../Store/Store.js"
import type { AgentEvent, ExitReason } from "../../AgentSupervisor.js"
import type * as Config from "../../Config.js"
import type * as AgentProcess from "../../Process.js"
import { type AgentState, canTransition } from "../../State.js"
import { limitFacts } from "../exit.js"
import type * as ProcessInternal from "../process.js"
import type * as Serial from "../serial.js"
import { LastSample } from "./lastSample.js"
import type { Owner } from "./owner.js"
import * as StderrTail from "./stderrTail.js"

/** Where requests go, published on every change so waiting callers wake up. */
export type Route =
  | { readonly _tag: "Up"; readonly process: AgentProcess.AgentProcess }
  | { readonly _tag: "Wait" }
  | { readonly _tag: "Parked" }
  | {
    readonly _tag: "Crashed"
    readonly exit: AgentProcess.ExitInfo | undefined
    /** Set when the agent is CRASHED because its (first or manual) start failed: it has not run since. */
    readonly startFailure?: AgentStartupError | undefined
  }
  | { readonly _tag: "Stopped" }

/** Requests wait: a start, or the owner's decision about an exit, is under way. */
export const WAIT: Route = { _tag: "Wait" }

/** Requests fail with `AgentStoppedError`. */
export const STOPPED: Route = { _tag: "Stopped" }

/** One running process of the agent, with the scope that stops it. */
export interface Incarnation {
  readonly process: ProcessInternal.Incarnation
  readonly scope: Scope.CloseableScope
  readonly runningSince: number
  /** Set when the supervisor kills the process itself, so that its exit is not read as the agent's own. */
  killReason: ExitReason | undefined
}

/** Who asked for a start: only a failed restart goes back to the owner. */
export type StartKind = "first" | "manual" | "restart"

/** A caller waiting for the start under way to end. */
export type StartWaiter = Deferred.Deferred<void, AgentStartupError | AgentStoppedError>

/** Process counters of finished incarnations; live ones are read from `readers`. */
export interface Counted {
  lateResponses: number
  lateChunks: number
  droppedCheckpoints: number
  protocolErrors: number
  outputLines: number
  stderrLines: number
}

/** One agent: what it was made with, and its lifecycle state. */
export interface Core {
  readonly name: string
  readonly settings: Config.AgentConfig
  readonly owner: Owner
  /** Whether each restart scheduled writes a restart record (a tree records the restarts it decides itself). */
  readonly recordRestarts: boolean
  readonly writer: Writer.Writer
  /** Where the heartbeat's reports run (see `OwnedOptions.reports`). */
  readonly reports: Serial.Serial
  /** Every event goes through here, in the fiber that caused it. */
  readonly publish: (event: AgentEvent) => Effect.Effect<void>
  /**
   * Whether an event published now reaches nobody (no subscriber, no handler): a heartbeat then makes no
   * `HealthChecked` event (the only event skipped so; the others are rare and always made).
   */
  readonly unheard: () => boolean
  /** Where the tasks the agent publishes to topics go (its tree's topics); none outside a tree. */
  readonly onTopicPublish: ((topic: string, payload: unknown) => void) | undefined
  /** Forks event-driven fibers (starts, exits, owner decisions) from the runtime captured when the agent was made. */
  readonly fork: Forker.Forker
  readonly clock: Clock.Clock
  readonly route: SubscriptionRef.SubscriptionRef<Route>
  /** Runs an effect under the agent's lock: every lifecycle change takes it. */
  readonly locked: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /**
   * The agent's stderr over its incarnations (`recentStderr`, `stderr`), and in a tree over the agents of its
   * child: a reload's new agent goes on with the tail of the one it replaces (`Dependencies.stderr`).
   */
  readonly stderr: StderrTail.StderrTail
  /** This agent's own stderr lines, those of its incarnations alone (its log file: each line once). */
  readonly ownStderr: StderrTail.Listeners
  /** The agent's series in the global metric registry (`Metrics.ts`), made once with the agent, gone with it. */
  readonly metrics: AgentMetrics.AgentMetrics

  state: AgentState
  incarnation: Incarnation | undefined
  /**
   * The process spawned last, whatever became of its start: the agent's process from its spawn (before it is ready)
   * to its exit (after a stop has cleared `incarnation`, through the stop's graceful and SIGTERM phases). One agent
   * has one process at a time: the next is spawned once this one has exited, or was left behind after SIGKILL.
   */
  spawned: ProcessInternal.Spawned | undefined
  startFiber: Fiber.RuntimeFiber<void> | undefined
  ownerFiber: Fiber.RuntimeFiber<void> | undefined
  startWaiters: Array<StartWaiter>
  failures: number
  restartCount: number
  circuitOpen: boolean
  /** The last health sample (the heartbeat's, or an `agent.health` check's). */
  readonly lastHealth: LastSample
  /** How the limits of the current (or last) incarnation are enforced. */
  limits: AgentProcess.LimitsInForce | undefined
  lastExit: AgentProcess.ExitInfo | undefined
  /**
   * How many starts of the agent failed (first, manual or restarts), and the last one's error until a start works: a
   * call that waited for a start that failed is told so (`notRunningError`), not after a later start worked.
   */
  failedStarts: number
  lastStartFailure: AgentStartupError | undefined
  /** The agent's scope has closed (or is closing): it is stopped for good, and a start fails at once. */
  closed: boolean
  incarnations: number
  /** The protocol 1.1 features the current (or last) incarnation announced. */
  features: ReadonlyArray<string>
  /** The agent's latest checkpoint (protocol 1.1): sent by an incarnation, or read from the store. */
  checkpoint: { readonly data: unknown } | undefined
  /** Whether the store was asked for a checkpoint from an earlier run (once, at the first restore). */
  checkpointLoaded: boolean
  /** The checkpoints of the requests in flight when the last incarnation crashed, for the next one's restore. */
  crashCheckpoints: Record<string, unknown> | undefined

  // Process counters over the agent's whole life: the totals of older incarnations, plus live readers of the
  // latest two. The one before the current one stays live because its pipes may still hand over lines after its
  // exit (data it wrote just before dying, or a descendant that holds them); two readers at most, so that dead
  // incarnations are not kept for ever.
  readonly counted: Counted
  readonly readers: Array<Effect.Effect<AgentProcess.Stats>>
}

/** What an agent is made with, besides its configuration and owner. */
export interface Dependencies {
  readonly writer: Writer.Writer
  readonly reports: Serial.Serial
  readonly publish: (event: AgentEvent) => Effect.Effect<void>
  readonly unheard: () => boolean
  readonly recordRestarts: boolean
  readonly onTopicPublish?: ((topic: string, payload: unknown) => void) | undefined
  /** The stderr tail to go on with (the one of the agent this one replaces); a new one when none. */
  readonly stderr?: StderrTail.StderrTail | undefined
}

/** A new agent in IDLE. Scoped: the fibers it forks end with the scope. */
export const make = (
  settings: Config.AgentConfig,
  owner: Owner,
  dependencies: Dependencies
): Effect.Effect<Core, never, Scope.Scope> =>
  Effect.gen(function*() {
    const lock = yield* Effect.makeSemaphore(1)
    const stderr = dependencies.stderr ?? StderrTail.make(settings.stderrLines)
    // Held until the agent's scope closes, after its stop: the lines of its last shutdown are kept by its measure.
    yield* Effect.acquireRelease(
      Effect.sync(() => stderr.hold(settings.stderrLines)),
      (release) => Effect.sync(release)
    )
    return {
      name: settings.name,
      settings,
      owner,
      recordRestarts: dependencies.recordRestarts,
      writer: dependencies.writer,
      reports: dependencies.reports,
      publish: dependencies.publish,
      unheard: dependencies.unheard,
      onTopicPublish: dependencies.onTopicPublish,
      fork: yield* Forker.make,
      clock: yield* Effect.clock,
      route: yield* SubscriptionRef.make<Route>(WAIT),
      locked: lock.withPermits(1),
      stderr,
      ownStderr: StderrTail.listeners(),
      metrics: yield* AgentMetrics.acquire(settings.name),
      state: "IDLE",
      incarnation: undefined,
      spawned: undefined,
      startFiber: undefined,
      ownerFiber: undefined,
      startWaiters: [],
      failures: 0,
      restartCount: 0,
      circuitOpen: false,
      lastHealth: new LastSample(),
      limits: undefined,
      lastExit: undefined,
      failedStarts: 0,
      lastStartFailure: undefined,
      closed: false,
      incarnations: 0,
      features: [],
      checkpoint: undefined,
      checkpointLoaded: false,
      crashCheckpoints: undefined,
      counted: {
        lateResponses: 0,
        lateChunks: 0,
        droppedCheckpoints: 0,
        protocolErrors: 0,
        outputLines: 0,
        stderrLines: 0
      },
      readers: []
    }
  })

/** The current time in epoch milliseconds, on the `Clock` (so tests can move it). */
export const now = Clock.currentTimeMillis

/** `{ leftBehind: true }` for an exit given up on after SIGKILL (`ExitInfo.leftBehind`), `{}` otherwise. */
export const leftBehindOf = (info: AgentProcess.ExitInfo): { readonly leftBehind?: true } =>
  info.leftBehind === true ? { leftBehind: true } : {}

/**
 * The agent's process while one runs, from its spawn to its exit: while STARTING before it is ready, and while
 * STOPPING until it has exited (views show its pid, as systemd shows a unit's main PID while it activates or
 * deactivates); never once its exit is reported, so never a pid the kernel may have given to another process.
 */
export const liveProcess = (core: Core): ProcessInternal.Spawned | undefined => {
  const spawned = core.spawned
  return spawned === undefined || spawned.exited() ? undefined : spawned
}

/**
 * The state the views show (`state`, `metadata`, `whichChildren`): the agent's, but CRASHED from the moment the exit
 * of its RUNNING process is reported, which the requests in flight hear at once (`AgentCrashError`), while the agent
 * moves to CRASHED a moment later, under its lock; so that a caller told of a crash never reads RUNNING after it.
 */
export const viewState = (core: Core): AgentState =>
  core.state === "RUNNING" && core.spawned?.crashed() === true ? "CRASHED" : core.state

const pidOf = (live: ProcessInternal.Spawned | undefined): { readonly pid?: number } =>
  live === undefined ? {} : { pid: live.pid }

/** Moves to `to` (a defect if the table forbids it), publishes it and persists it. Under the lock. */
export const transition = (core: Core, to: AgentState): Effect.Effect<void> =>
  Effect.gen(function*() {
    const from = core.state
    if (!canTransition(from, to)) {
      return yield* Effect.dieMessage(`agent "${core.name}": illegal transition ${from} -> ${to}`)
    }
    core.state = to
    const timestamp = yield* now
    yield* core.publish({ _tag: "StateChanged", agent: core.name, from, to, timestamp })
    yield* core.writer.saveMetric(
      Store.stateChange({ agent_name: core.name, old_state: from, new_state: to, timestamp })
    )
    yield* core.writer.saveState({
      agent_name: core.name,
      state: to,
      ...pidOf(liveProcess(core)),
      restart_count: core.restartCount,
      updated_at: timestamp
    })
  })

/** Sends requests somewhere else, and wakes those waiting for a change. */
export const setRoute = (core: Core, next: Route): Effect.Effect<void> => SubscriptionRef.set(core.route, next)

/** Answers every caller waiting for the start under way. */
export const settleStartWaiters = (
  core: Core,
  exit: Exit.Exit<void, AgentStartupError | AgentStoppedError>
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const waiters = core.startWaiters
    core.startWaiters = []
    return Effect.forEach(waiters, (waiter) => Deferred.done(waiter, exit), { discard: true })
  })

/**
 * The error of a request the agent cannot take now (its route neither Up nor Wait): its circuit is open (Parked), its
 * process exited (Crashed), or it is stopped. A start that failed after the request came (`failedStartsBefore`: the
 * count then; the start it waited for) is said as such, `reason: "start_failed"` with the start-up error, whether the
 * agent is left CRASHED (a first or manual start) or stopped after it (a tree's child whose start failed is removed;
 * a failed restart the supervisor gives up on); so is the failed start of an agent that has not run since.
 */
export const notRunningError = (
  core: Core,
  route: Exclude<Route, { readonly _tag: "Up" } | { readonly _tag: "Wait" }>,
  failedStartsBefore: number
): AgentCrashError | AgentStoppedError => {
  if (route._tag === "Parked") return crashError(core, "circuit_open", core.lastExit)
  const failure = core.failedStarts > failedStartsBefore
    ? core.lastStartFailure
    : route._tag === "Crashed"
    ? route.startFailure
    : undefined
  if (failure !== undefined) {
    return new AgentCrashError({
      agent: core.name,
      reason: "start_failed",
      startup: failure.message,
      ...(failure.pid !== undefined ? { pid: failure.pid } : {}),
      ...(failure.exitCode !== undefined ? { exitCode: failure.exitCode } : {}),
      ...(failure.signal !== undefined ? { signal: failure.signal } : {})
    })
  }
  return route._tag === "Crashed" ? crashError(core, "exited", route.exit) : stoppedError(core)
}

/** The `AgentStoppedError` of an agent stopped now: for good (`closed`) once its scope has closed. */
export const stoppedError = (core: Core, during?: "start"): AgentStoppedError =>
  new AgentStoppedError({
    agent: core.name,
    ...(during === undefined ? {} : { during }),
    ...(core.closed ? { closed: true } : {})
  })

/** The error of a call made while the agent is not running: it exited, or its circuit is open. */
export const crashError = (
  core: Core,
  reason: "exited" | "circuit_open",
  exit: AgentProcess.ExitInfo | undefined
): AgentCrashError =>
  new AgentCrashError({
    agent: core.name,
    reason,
    ...(exit !== undefined ? { pid: exit.pid, exitCode: exit.exitCode, signal: exit.signal } : {}),
    // An exit for a limit says so; a parked agent's error is about its circuit, not its last exit.
    ...(exit !== undefined && reason === "exited" ? limitFacts(exit.limit, core.settings.limits) : {})
  })

/**
 * One agent over time: its lifecycle states, restarts with backoff and a circuit breaker, its heartbeat, its
 * events, and its records in the store.
 *
 * Every lifecycle change runs under one lock, so concurrent callers can never produce two live processes. The
 * slow parts (starting a process, the restart backoff) run in their own fibers and commit under the lock, so
 * `stop` can always interrupt them. Requests do not take the lock: they read the current status and go straight
 * to the live process.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import {
  AgentCrashError,
  AgentStartupError,
  AgentStoppedError,
  AgentTimeoutError,
  ConfigError,
  type RequestError
} from "../Errors.js"
import { forkIn } from "../internal/fork.js"
import * as Forker from "../internal/forker.js"
import * as Memory from "../Store/Memory.js"
import * as Store from "../Store/Store.js"
import * as Writer from "../Store/Writer.js"
import * as Config from "./Config.js"
import * as Health from "./Health.js"
import * as AgentProcess from "./Process.js"
import * as RestartPolicy from "./RestartPolicy.js"
import { type AgentState, canTransition } from "./State.js"

/**
 * Starts an agent from a directory holding a Python or Node callback (see `Agent.Directory`).
 *
 * @since 0.1.0
 * @category constructors
 */
export { fromDirectory } from "./Directory.js"

/**
 * Everything that happens to an agent, in order.
 *
 * @since 0.1.0
 * @category events
 */
export type AgentEvent =
  | {
    readonly _tag: "StateChanged"
    readonly agent: string
    readonly from: AgentState
    readonly to: AgentState
    readonly timestamp: number
  }
  | {
    readonly _tag: "Exited"
    readonly agent: string
    readonly pid: number
    readonly exitCode: number | null
    readonly signal: string | null
    readonly exitClass: RestartPolicy.ExitClass
    readonly reason: ExitReason
    readonly timestamp: number
  }
  | {
    readonly _tag: "RestartScheduled"
    readonly agent: string
    readonly attempt: number
    readonly delayMillis: number
    readonly reason: ExitReason
    readonly timestamp: number
  }
  | { readonly _tag: "CircuitOpened"; readonly agent: string; readonly failures: number; readonly timestamp: number }
  | {
    /** An incarnation's process was spawned (before it is ready); `incarnation` counts from 1. */
    readonly _tag: "Spawned"
    readonly agent: string
    readonly pid: number
    readonly incarnation: number
    readonly timestamp: number
  }
  | { readonly _tag: "HealthChecked"; readonly agent: string; readonly sample: Health.HealthSample }
  | {
    readonly _tag: "HealthCheckFailed"
    readonly agent: string
    readonly missed: number
    readonly error: string
    readonly timestamp: number
  }

/**
 * Why an incarnation ended: it exited by itself, failed to start, or was killed for missed heartbeats.
 *
 * @since 0.1.0
 * @category models
 */
export type ExitReason = "exit" | "start_failed" | "heartbeat"

/**
 * A snapshot of the agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Metadata {
  readonly name: string
  readonly state: AgentState
  readonly pid: Option.Option<number>
  /** When the current process started (epoch milliseconds). */
  readonly startedAt: Option.Option<number>
  /** Restarts decided since the supervisor was made. */
  readonly restartCount: number
  /** Failures in a row, reset after `resetAfter` of stable running and by manual operations. */
  readonly consecutiveFailures: number
  readonly circuitOpen: boolean
  readonly lastHealth: Option.Option<Health.HealthSample>
  readonly lastExit: Option.Option<AgentProcess.ExitInfo>
  /** Requests sent to the current process and not answered yet. */
  readonly inFlight: number
  /** Processes spawned since the supervisor was made (every start and restart attempt). */
  readonly incarnations: number
  /** Responses that came after their request had timed out or been interrupted, over every incarnation. */
  readonly lateResponses: number
  /** stdout lines that broke the protocol (too long, invalid UTF-8), over every incarnation. */
  readonly protocolErrors: number
  /** stdout lines that were not protocol messages (stray prints), over every incarnation. */
  readonly outputLines: number
  /** stderr lines, over every incarnation. */
  readonly stderrLines: number
}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * How long closing the scope waits for the store to take the last writes before giving up on them (they are
   * best effort). 1 second by default.
   */
  readonly storeFlushTimeout?: Duration.DurationInput | undefined
}

/**
 * Options of one call to the agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandleOptions {
  /** Overrides `requestTimeout`; it bounds the whole call, waiting for a (re)start included. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Send the request again to the next incarnation if the agent crashes while handling it. Off by default: the
   * agent may have done part of the work, and replaying it could do it twice.
   */
  readonly replayOnCrash?: boolean | undefined
}

/**
 * A supervised agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface AgentSupervisor {
  readonly name: string
  readonly config: Config.AgentConfig
  /** Sends an event to the agent's callback and waits for the result (bounded by its timeout). */
  readonly handleEvent: (event: unknown, options?: HandleOptions) => Effect.Effect<unknown, RequestError>
  readonly state: Effect.Effect<AgentState>
  readonly metadata: Effect.Effect<Metadata>
  /** Starts a stopped or crashed agent (closing an open circuit); waits until it runs. A running agent is left as is. */
  readonly start: Effect.Effect<void, AgentStartupError | AgentStoppedError>
  /** Stops the agent (3-phase shutdown) and cancels any pending restart. Pending requests fail at once. */
  readonly stop: Effect.Effect<void>
  /** Stops and starts the agent; closes an open circuit and resets the failure count. Never counted as a failure. */
  readonly restart: Effect.Effect<void, AgentStartupError | AgentStoppedError>
  /** Pings the agent now. */
  readonly health: Effect.Effect<Health.HealthSample, RequestError>
  /** Every event from the moment the stream is run. */
  readonly events: Stream.Stream<AgentEvent>
  /** A subscription to events, for callers that must not miss the ones caused right after subscribing. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<AgentEvent>, never, Scope.Scope>
}

/** Where requests go, published on every change so waiting callers wake up. */
type Route =
  | { readonly _tag: "Up"; readonly process: AgentProcess.AgentProcess }
  | { readonly _tag: "Wait" }
  | { readonly _tag: "Parked" }
  | { readonly _tag: "Crashed"; readonly exit: AgentProcess.ExitInfo | undefined }
  | { readonly _tag: "Stopped" }

interface Incarnation {
  readonly process: AgentProcess.AgentProcess
  readonly scope: Scope.CloseableScope
  readonly runningSince: number
  killReason: ExitReason | undefined
}

/** A start that died or failed with something unexpected is still reported as a typed start-up failure. */
const startupErrorOf = (
  config: Config.AgentConfig,
  cause: Cause.Cause<AgentStartupError | ConfigError>
): AgentStartupError => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && failure.value._tag === "AgentStartupError") return failure.value
  return new AgentStartupError({
    agent: config.name,
    reason: "spawn_failed",
    command: [config.command, ...config.args].join(" "),
    detail: Option.isSome(failure) ? failure.value.message : Cause.pretty(cause)
  })
}

const WAIT: Route = { _tag: "Wait" }
const STOPPED: Route = { _tag: "Stopped" }

/**
 * An exit the supervisor did not ask for, as reported to the agent's owner.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildExit {
  readonly agent: string
  readonly exitClass: RestartPolicy.ExitClass
  readonly reason: ExitReason
  readonly pid: number
  readonly exitCode: number | null
  readonly signal: string | null
  /** How long the process had been RUNNING (0 for a failed start). */
  readonly uptimeMillis: number
}

/**
 * What the owner of a crashed agent can decide. Each call is ignored (answering `false` or failing with
 * `AgentStoppedError`) when a manual operation got there first.
 *
 * @since 0.1.0
 * @category models
 */
export interface Controls {
  /** Consecutive failures so far (reset by `resetAfter` of stable running, and by manual operations). */
  readonly failures: Effect.Effect<number>
  /** CRASHED -> RESTARTING: a restart is coming after `delayMillis`; requests wait for it. */
  readonly scheduleRestart: (
    restart: { readonly attempt: number; readonly delayMillis: number; readonly reason: ExitReason }
  ) => Effect.Effect<boolean>
  /** RESTARTING -> STARTING -> RUNNING, or the start-up error (the agent is then CRASHED, waiting for a decision). */
  readonly restartNow: Effect.Effect<void, AgentStartupError | AgentStoppedError>
  /** Opens the circuit: the agent stays CRASHED and requests fail at once until a manual restart. */
  readonly park: (failures: number) => Effect.Effect<void>
  /** Not restarted: STOPPED after a normal exit, CRASHED otherwise. */
  readonly finish: (exitClass: RestartPolicy.ExitClass) => Effect.Effect<void>
}

/**
 * Decides what happens after an exit. Runs in its own fiber, interrupted by any manual operation.
 *
 * @since 0.1.0
 * @category models
 */
export type Owner = (exit: ChildExit, controls: Controls) => Effect.Effect<void>

/**
 * The owner of a standalone agent: a one-child, one-for-one supervisor applying restart rules 1, 2 and 4 of
 * DESIGN (restart type, consecutive failures and the circuit breaker, backoff). A failed restart counts as an
 * abnormal exit with uptime 0 and goes through the rules again.
 *
 * @since 0.1.0
 * @category owners
 */
export const restartPolicyOwner = (settings: RestartPolicy.Settings): Owner => (exit, controls) =>
  Effect.gen(function*() {
    let current = exit
    while (true) {
      const before = RestartPolicy.failuresAfterRun(settings, yield* controls.failures, current.uptimeMillis)
      const decision = RestartPolicy.decide(settings, current.exitClass, before)
      switch (decision._tag) {
        case "Park":
          return yield* controls.park(decision.failures)
        case "Stop":
        case "Remove":
          return yield* controls.finish(current.exitClass)
        case "Restart": {
          const delay = yield* RestartPolicy.delay(settings, decision.failures)
          const scheduled = yield* controls.scheduleRestart({
            attempt: decision.failures,
            delayMillis: Duration.toMillis(delay),
            reason: current.reason
          })
          if (!scheduled) return
          yield* Effect.sleep(delay)
          const started = yield* Effect.either(controls.restartNow)
          if (started._tag === "Right" || started.left._tag === "AgentStoppedError") return
          current = {
            ...current,
            exitClass: "abnormal",
            reason: "start_failed",
            pid: started.left.pid ?? 0,
            exitCode: started.left.exitCode ?? null,
            signal: started.left.signal ?? null,
            uptimeMillis: 0
          }
        }
      }
    }
  })

/**
 * Starts an agent under supervision; fails if its first start fails. Closing the scope stops it (3-phase
 * shutdown) and flushes its store writes. Uses the `Store` in the context, or an in-memory one.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const agent = yield* AgentSupervisor.make({ name: "echo", command: "python3", args: ["agent.py"] })
 * const reply = yield* agent.handleEvent({ type: "data", payload: { task: "process this" } })
 * ```
 */
export const make = (
  config: Config.AgentConfig | Config.AgentConfigInput,
  options?: Options
): Effect.Effect<AgentSupervisor, AgentStartupError | ConfigError, Scope.Scope> =>
  Effect.flatMap(Config.make(config), (settings) => makeOwned(settings, restartPolicyOwner(settings), options))

/**
 * Options of {@link makeOwned}.
 *
 * @since 0.1.0
 * @category models
 */
export interface OwnedOptions extends Options {
  /**
   * Called with every event, in order, in the fiber that caused it, before the event is published: a parent
   * sees a child's events in causal order with its own.
   */
  readonly onEvent?: ((event: AgentEvent) => Effect.Effect<void>) | undefined
  /**
   * Whether this agent writes a restart record to the store for each restart scheduled (`true` by default). A
   * tree records the restarts it decides itself, under the child's path, and turns this off: one restart, one
   * record.
   */
  readonly recordRestarts?: boolean | undefined
}

/**
 * Starts an agent whose exits are decided by `owner` (a parent supervisor) instead of its own restart policy.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeOwned = (
  config: Config.AgentConfig | Config.AgentConfigInput,
  owner: Owner,
  options?: OwnedOptions
): Effect.Effect<AgentSupervisor, AgentStartupError | ConfigError, Scope.Scope> =>
  Effect.flatMap(
    Effect.all([Config.make(config), decodeFlushTimeout(options?.storeFlushTimeout)]),
    ([settings, flushTimeout]) =>
      makeDecoded(settings, owner, flushTimeout, options?.onEvent, options?.recordRestarts ?? true).pipe(
        // Every fiber of this agent is forked below this point, so every log line of it names the agent.
        Effect.annotateLogs({ module: "AgentSupervisor", agent: settings.name })
      )
  )

/** `storeFlushTimeout` decoded, or its default. */
const decodeFlushTimeout = (
  input: Duration.DurationInput | undefined
): Effect.Effect<Duration.Duration, ConfigError> =>
  input === undefined ? Effect.succeed(Writer.DEFAULT_FLUSH_TIMEOUT) : Config.decodeDuration("storeFlushTimeout", input)

const makeDecoded = (
  settings: Config.AgentConfig,
  owner: Owner,
  flushTimeout: Duration.Duration,
  onEvent: ((event: AgentEvent) => Effect.Effect<void>) | undefined,
  recordRestarts: boolean
): Effect.Effect<AgentSupervisor, AgentStartupError, Scope.Scope> =>
  Effect.gen(function*() {
    const name = settings.name
    const store = yield* Effect.serviceOption(Store.Store).pipe(
      Effect.flatMap(Option.match({ onNone: () => Memory.make(), onSome: Effect.succeed }))
    )
    const writer = yield* Writer.make(Store.resilient(store), { flushTimeout })
    const events = yield* PubSub.sliding<AgentEvent>(4096)
    const fork = yield* Forker.make
    const clock = yield* Effect.clock
    const route = yield* SubscriptionRef.make<Route>(WAIT)
    const lock = yield* Effect.makeSemaphore(1)
    const locked = lock.withPermits(1)

    // Lifecycle state: written only under the lock; read freely (each read is one synchronous step).
    let state: AgentState = "IDLE"
    let incarnation: Incarnation | undefined
    let startFiber: Fiber.RuntimeFiber<void> | undefined
    let ownerFiber: Fiber.RuntimeFiber<void> | undefined
    let startWaiters: Array<Deferred.Deferred<void, AgentStartupError | AgentStoppedError>> = []
    let failures = 0
    let restartCount = 0
    let circuitOpen = false
    let lastHealth: Health.HealthSample | undefined
    let lastExit: AgentProcess.ExitInfo | undefined
    let incarnations = 0
    // Process counters over the agent's whole life: the totals of older incarnations, plus live readers of the
    // latest two. The one before the current one stays live because its pipes may still hand over lines after
    // its exit (data it wrote just before dying, or a descendant that holds them); two readers at most, so that
    // dead incarnations are not kept for ever.
    const counted = { lateResponses: 0, protocolErrors: 0, outputLines: 0, stderrLines: 0 }
    const readers: Array<Effect.Effect<AgentProcess.Stats>> = []
    // Set when the process hands its counters over at spawn (failed starts included); else read once it runs.
    let countedFromSpawn = false
    const addCounters = (into: typeof counted, stats: AgentProcess.Stats) => {
      into.lateResponses += stats.lateResponses
      into.protocolErrors += stats.protocolErrors
      into.outputLines += stats.outputLines
      into.stderrLines += stats.stderrLines
    }
    const count = (stats: Effect.Effect<AgentProcess.Stats>) =>
      Effect.suspend(() => {
        readers.push(stats)
        return readers.length <= 2 ? Effect.void : Effect.map(readers.shift()!, (last) => addCounters(counted, last))
      })
    const totals = Effect.map(Effect.all(readers), (live) => {
      const sum = { ...counted }
      for (const stats of live) addCounters(sum, stats)
      return sum
    })

    const now = Clock.currentTimeMillis
    const publish = (event: AgentEvent): Effect.Effect<void> =>
      onEvent === undefined
        ? Effect.asVoid(PubSub.publish(events, event))
        : Effect.zipRight(onEvent(event), PubSub.publish(events, event))
    const hooks: AgentProcess.Hooks = {
      // `stats`: the incarnation's counters, when the process hands them over at spawn.
      onSpawned: (pid: number, stats?: Effect.Effect<AgentProcess.Stats>) =>
        Effect.suspend(() => {
          incarnations++
          if (stats !== undefined) countedFromSpawn = true
          return Effect.zipRight(
            stats === undefined ? Effect.void : count(stats),
            publish({
              _tag: "Spawned",
              agent: name,
              pid,
              incarnation: incarnations,
              timestamp: clock.unsafeCurrentTimeMillis()
            })
          )
        })
    }

    const transition = (to: AgentState) =>
      Effect.gen(function*() {
        const from = state
        if (!canTransition(from, to)) {
          return yield* Effect.dieMessage(`agent "${name}": illegal transition ${from} -> ${to}`)
        }
        state = to
        const timestamp = yield* now
        yield* publish({ _tag: "StateChanged", agent: name, from, to, timestamp })
        yield* writer.saveMetric(Store.stateChange({ agent_name: name, old_state: from, new_state: to, timestamp }))
        yield* writer.saveState({
          agent_name: name,
          state: to,
          ...(incarnation !== undefined ? { pid: incarnation.process.pid } : {}),
          restart_count: restartCount,
          updated_at: timestamp
        })
      })

    const setRoute = (next: Route) => SubscriptionRef.set(route, next)

    const settleStartWaiters = (exit: Exit.Exit<void, AgentStartupError | AgentStoppedError>) =>
      Effect.suspend(() => {
        const waiters = startWaiters
        startWaiters = []
        return Effect.forEach(waiters, (waiter) => Deferred.done(waiter, exit), { discard: true })
      })

    // ---- starting ----

    /**
     * Begins a start (under the lock): STARTING now, the process in its own fiber, committed by `onStarted`.
     * Only a failed restart goes through the restart rules again; a failed first or manual start is answered to
     * its caller and leaves the agent CRASHED, as OTP answers `start_child` with an error.
     */
    const beginStart = (kind: "first" | "manual" | "restart"): Effect.Effect<void> =>
      Effect.gen(function*() {
        yield* transition("STARTING")
        yield* setRoute(WAIT)
        const processScope = yield* Scope.make()
        startFiber = yield* AgentProcess.make(settings, hooks).pipe(
          Scope.extend(processScope),
          Effect.exit,
          Effect.flatMap((exit) => locked(Effect.uninterruptible(onStarted(kind, processScope, exit)))),
          // Interrupted by stop or by the supervisor closing before the start committed: nothing may survive it.
          Effect.onInterrupt(() => Scope.close(processScope, Exit.void)),
          fork
        )
      })

    const onStarted = (
      kind: "first" | "manual" | "restart",
      processScope: Scope.CloseableScope,
      exit: Exit.Exit<AgentProcess.AgentProcess, AgentStartupError | ConfigError>
    ): Effect.Effect<void> =>
      Effect.gen(function*() {
        startFiber = undefined
        if (Exit.isSuccess(exit)) {
          const process = exit.value
          const current: Incarnation = { process, scope: processScope, runningSince: yield* now, killReason: undefined }
          incarnation = current
          if (!countedFromSpawn) yield* count(process.stats)
          yield* transition("RUNNING")
          yield* setRoute({ _tag: "Up", process })
          yield* process.awaitExit.pipe(
            Effect.flatMap((info) => locked(Effect.uninterruptible(onExit(current, info)))),
            forkIn(processScope)
          )
          yield* Health.heartbeat(process, heartbeatCallbacks(current)).pipe(forkIn(processScope))
          yield* settleStartWaiters(Exit.void)
          return
        }
        yield* Scope.close(processScope, Exit.void)
        const error = startupErrorOf(settings, exit.cause)
        yield* Effect.logWarning(`agent failed to start: ${error.message}`)
        yield* settleStartWaiters(Exit.fail(error))
        yield* transition("CRASHED")
        lastExit = {
          pid: error.pid ?? 0,
          exitCode: error.exitCode ?? null,
          signal: error.signal ?? null,
          requested: false,
          at: yield* now
        }
        // A failed restart goes back to the owner (still deciding, so requests keep waiting); a failed first or
        // manual start is answered to its caller.
        yield* setRoute(kind === "restart" ? WAIT : { _tag: "Crashed", exit: lastExit })
      })

    // ---- exits and restarts ----

    const onExit = (current: Incarnation, info: AgentProcess.ExitInfo): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (incarnation !== current) return // a stale incarnation: stop or restart already dealt with it
        incarnation = undefined
        lastExit = info
        yield* Scope.close(current.scope, Exit.void)
        const reason = current.killReason ?? "exit"
        const exitClass = reason === "heartbeat" ? "abnormal" : RestartPolicy.classifyExit(info)
        yield* publish({
          _tag: "Exited",
          agent: name,
          pid: info.pid,
          exitCode: info.exitCode,
          signal: info.signal,
          exitClass,
          reason,
          timestamp: yield* now
        })
        if (info.requested) return
        const uptimeMillis = Math.max(0, info.at - current.runningSince)
        // The run is over and its length known: a stable one resets the count now, so that the views read, while
        // the owner decides, the count it decides from (not the one from before the run).
        failures = RestartPolicy.failuresAfterRun(settings, failures, uptimeMillis)
        yield* transition("CRASHED")
        yield* setRoute(WAIT)
        const exit: ChildExit = {
          agent: name,
          exitClass,
          reason,
          pid: info.pid,
          exitCode: info.exitCode,
          signal: info.signal,
          uptimeMillis
        }
        // The owner decides outside the lock: it calls back into `controls`, which take the lock.
        ownerFiber = yield* fork(owner(exit, controls))
      })

    const controls: Controls = {
      failures: Effect.sync(() => failures),
      scheduleRestart: ({ attempt, delayMillis, reason }) =>
        locked(Effect.gen(function*() {
          if (state !== "CRASHED") return false
          failures = attempt
          restartCount++
          const timestamp = yield* now
          yield* transition("RESTARTING")
          yield* setRoute(WAIT)
          yield* publish({ _tag: "RestartScheduled", agent: name, attempt, delayMillis, reason, timestamp })
          if (!recordRestarts) return true
          yield* writer.recordRestart({
            agent_name: name,
            timestamp,
            reason,
            attempt,
            delay_ms: delayMillis,
            exit_code: lastExit?.exitCode ?? null,
            signal: lastExit?.signal ?? null
          })
          return true
        })),
      // Uninterruptible under the lock: a start is never left half-begun (STARTING with no start fiber).
      restartNow: Effect.flatten(locked(Effect.uninterruptible(Effect.gen(function*() {
        const waiter = yield* Deferred.make<void, AgentStartupError | AgentStoppedError>()
        if (state !== "RESTARTING") return Effect.fail(new AgentStoppedError({ agent: name }))
        startWaiters.push(waiter)
        yield* beginStart("restart")
        return Deferred.await(waiter)
      })))),
      park: (count) =>
        locked(Effect.gen(function*() {
          if (state !== "CRASHED") return
          failures = count
          circuitOpen = true
          yield* setRoute({ _tag: "Parked" })
          yield* publish({ _tag: "CircuitOpened", agent: name, failures: count, timestamp: yield* now })
          yield* Effect.logError(`agent crashed ${count} times in a row: circuit open, parked until a manual restart`)
        })),
      finish: (exitClass) =>
        locked(Effect.gen(function*() {
          if (state !== "CRASHED") return
          if (exitClass === "normal") {
            // Finished its work and is not to be restarted: a clean stop.
            yield* transition("STOPPING")
            yield* transition("STOPPED")
            yield* setRoute(STOPPED)
          } else {
            yield* setRoute({ _tag: "Crashed", exit: lastExit })
          }
        }))
    }

    // ---- health ----

    const heartbeatCallbacks = (current: Incarnation): Health.Callbacks => ({
      onSample: (sample) =>
        Effect.gen(function*() {
          lastHealth = sample
          yield* publish({ _tag: "HealthChecked", agent: name, sample })
          yield* writer.saveMetric(Store.healthCheck({
            agent_name: name,
            state,
            cpu_percent: Option.getOrElse(sample.cpuPercent, () =>
              Option.getOrElse(
                Option.map(sample.report, (r) => r.cpu_percent),
                () => 0
              )),
            memory_mb: Option.getOrElse(sample.memoryMb, () =>
              Option.getOrElse(
                Option.map(sample.report, (r) => r.memory_mb),
                () => 0
              )),
            latency_ms: sample.latencyMillis,
            restart_count: restartCount,
            timestamp: sample.timestamp
          }))
        }),
      onMissed: (missed, error) =>
        Effect.gen(function*() {
          yield* publish({
            _tag: "HealthCheckFailed",
            agent: name,
            missed,
            error: error.message,
            timestamp: yield* now
          })
          yield* Effect.logWarning(`agent missed heartbeat ${missed} of ${settings.unhealthyAfter}: ${error.message}`)
        }),
      onUnhealthy: (missed) =>
        locked(Effect.gen(function*() {
          if (incarnation !== current) return
          yield* Effect.logError(`agent missed ${missed} heartbeats in a row: hung, killing it`)
          current.killReason = "heartbeat"
          yield* current.process.signalGroup("SIGKILL")
        }))
    })

    // ---- manual operations (never counted as failures; they cancel any pending restart) ----

    const cancelPending = Effect.gen(function*() {
      if (ownerFiber !== undefined) {
        const fiber = ownerFiber
        ownerFiber = undefined
        yield* Fiber.interrupt(fiber)
      }
      if (startFiber !== undefined) {
        const fiber = startFiber
        startFiber = undefined
        yield* Fiber.interrupt(fiber)
      }
    })

    /**
     * Stops the agent. Idempotent, and uninterruptible once it holds the lock (the phases are bounded): a stop is
     * never left half-done by an interrupted caller, and a second stop finds STOPPED and returns.
     */
    const stopLocked = Effect.uninterruptible(Effect.gen(function*() {
      if (state === "STOPPED" || state === "IDLE") return
      yield* cancelPending
      if (state !== "STOPPING") yield* transition("STOPPING")
      yield* setRoute(STOPPED)
      const current = incarnation
      incarnation = undefined
      if (current !== undefined) {
        yield* Scope.close(current.scope, Exit.void)
        // How the stop ended (graceful exit, SIGTERM or SIGKILL) is worth seeing: record it like any exit.
        const info = yield* current.process.exitInfo
        if (Option.isSome(info)) {
          lastExit = info.value
          yield* publish({
            _tag: "Exited",
            agent: name,
            pid: info.value.pid,
            exitCode: info.value.exitCode,
            signal: info.value.signal,
            exitClass: "shutdown",
            reason: "exit",
            timestamp: yield* now
          })
        }
      }
      circuitOpen = false
      failures = 0
      yield* transition("STOPPED")
      yield* settleStartWaiters(Exit.fail(new AgentStoppedError({ agent: name })))
    }))

    const startLocked = (kind: "first" | "manual") =>
      Effect.uninterruptible(Effect.gen(function*() {
        const waiter = yield* Deferred.make<void, AgentStartupError | AgentStoppedError>()
        if (state === "RUNNING") return Effect.void
        startWaiters.push(waiter)
        if (state !== "STARTING") {
          yield* cancelPending
          circuitOpen = false
          failures = 0
          yield* beginStart(kind)
        }
        return Deferred.await(waiter)
      }))

    const start = Effect.flatten(locked(startLocked("manual"))).pipe(Effect.withSpan("AgentSupervisor.start"))
    const stop = locked(stopLocked).pipe(Effect.withSpan("AgentSupervisor.stop"))
    const restart = Effect.flatten(locked(Effect.zipRight(stopLocked, startLocked("manual")))).pipe(
      Effect.withSpan("AgentSupervisor.restart")
    )

    // ---- requests ----

    /**
     * Routes one request; its timeout bounds waiting for a (re)start and the request together. A request that
     * reaches an incarnation that has exited (or is being stopped) before its exit was handled was never written:
     * it waits for the decision and goes to the next incarnation, as requests during a backoff do. A request
     * whose deadline passed while it waited is never written.
     */
    const dispatch = (event: unknown, timeoutMillis: number, replayOnCrash: boolean) =>
      Effect.gen(function*() {
        const sentAt = yield* now
        const deadline = sentAt + timeoutMillis
        const remaining = Effect.map(now, (t) => Math.max(0, deadline - t))
        const startTimeout = (waited: number) =>
          new AgentTimeoutError({
            agent: name,
            requestId: "(not sent)",
            operation: "start",
            timeoutMillis,
            waitedForStartMillis: waited
          })
        // Whether this request has waited for a (re)start: only then may its timeout speak of one (time passes
        // between the call and its dispatch on a busy machine, without any wait).
        let hasWaited = false
        const waitForChange = (current: Route) =>
          Effect.flatMap(remaining, (left) => {
            hasWaited = true
            return route.changes.pipe(
              Stream.filter((next) => next !== current),
              Stream.take(1),
              Stream.runDrain,
              Effect.timeoutFail({ duration: left, onTimeout: () => startTimeout(timeoutMillis) })
            )
          })
        while (true) {
          const current = yield* SubscriptionRef.get(route)
          switch (current._tag) {
            case "Up": {
              const left = yield* remaining
              if (left <= 0) return yield* Effect.fail(startTimeout(timeoutMillis))
              const result = yield* Effect.either(current.process.request(event, { timeout: left }))
              if (result._tag === "Right") return result.right
              const error = result.left
              if (AgentProcess.isRefusal(error) || (replayOnCrash && error._tag === "AgentCrashError")) {
                yield* waitForChange(current)
                continue
              }
              if (error._tag === "AgentTimeoutError" && left < timeoutMillis) {
                // Timed out on what was left of the caller's timeout: name the caller's timeout, and the wait for a
                // start if there was one.
                return yield* Effect.fail(
                  new AgentTimeoutError({
                    agent: name,
                    requestId: error.requestId,
                    operation: error.operation,
                    timeoutMillis,
                    ...(hasWaited ? { waitedForStartMillis: timeoutMillis - left } : {}),
                    ...(error.pid !== undefined ? { pid: error.pid } : {})
                  })
                )
              }
              return yield* Effect.fail(error)
            }
            case "Wait": {
              yield* waitForChange(current)
              continue
            }
            case "Parked":
              return yield* Effect.fail(crashError("circuit_open", lastExit))
            case "Crashed":
              return yield* Effect.fail(crashError("exited", current.exit))
            case "Stopped":
              return yield* Effect.fail(new AgentStoppedError({ agent: name }))
          }
        }
      })

    const crashError = (reason: "exited" | "circuit_open", exit: AgentProcess.ExitInfo | undefined) =>
      new AgentCrashError({
        agent: name,
        reason,
        ...(exit !== undefined ? { pid: exit.pid, exitCode: exit.exitCode, signal: exit.signal } : {})
      })

    const requestTimeoutMillis = Duration.toMillis(settings.requestTimeout)
    const handleEvent = (event: unknown, options?: HandleOptions): Effect.Effect<unknown, RequestError> => {
      const timeoutMillis = options?.timeout === undefined
        ? requestTimeoutMillis
        : AgentProcess.timeoutMillisOf(options.timeout)
      return typeof timeoutMillis === "number"
        ? dispatch(event, timeoutMillis, options?.replayOnCrash === true)
        : Effect.fail(timeoutMillis)
    }

    const health = Effect.gen(function*() {
      const current = yield* SubscriptionRef.get(route)
      if (current._tag !== "Up") {
        return yield* Effect.fail(
          current._tag === "Stopped"
            ? new AgentStoppedError({ agent: name })
            : crashError(current._tag === "Parked" ? "circuit_open" : "exited", lastExit)
        )
      }
      const [sample] = yield* Health.check(current.process, undefined)
      lastHealth = sample
      return sample
    })

    const metadata: Effect.Effect<Metadata> = Effect.gen(function*() {
      const current = incarnation
      const stats = current === undefined ? undefined : yield* current.process.stats
      const all = yield* totals
      const timestamp = yield* now
      return {
        name,
        state,
        pid: Option.map(Option.fromNullable(current), (i) => i.process.pid),
        startedAt: Option.map(Option.fromNullable(current), (i) => i.process.startedAt),
        restartCount,
        // The count the next decision would start from: a stable run past resetAfter has already reset it.
        consecutiveFailures: current === undefined || state !== "RUNNING"
          ? failures
          : RestartPolicy.failuresAfterRun(settings, failures, timestamp - current.runningSince),
        circuitOpen,
        lastHealth: Option.fromNullable(lastHealth),
        lastExit: Option.fromNullable(lastExit),
        inFlight: stats?.inFlight ?? 0,
        incarnations,
        lateResponses: all.lateResponses,
        protocolErrors: all.protocolErrors,
        outputLines: all.outputLines,
        stderrLines: all.stderrLines
      }
    })

    // Added after the writer and the pubsub so it runs before them: stop first, then flush what it wrote.
    yield* Effect.addFinalizer(() => locked(stopLocked).pipe(Effect.zipRight(PubSub.shutdown(events))))

    // The first start: make fails if it fails, and the scope's finalizers clean up. Nobody can stop the agent
    // before make returns it, so "stopped" cannot happen here.
    yield* Effect.flatten(locked(startLocked("first"))).pipe(Effect.catchTag("AgentStoppedError", Effect.die))

    const agent: AgentSupervisor = {
      name,
      config: settings,
      handleEvent,
      state: Effect.sync(() => state),
      metadata,
      start,
      stop,
      restart,
      health,
      events: Stream.fromPubSub(events),
      subscribe: PubSub.subscribe(events)
    }
    return agent
  })

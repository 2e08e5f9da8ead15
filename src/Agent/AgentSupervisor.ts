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
import * as CommandExecutor from "@effect/platform/CommandExecutor"
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
  type ConfigError,
  type RequestError
} from "../Errors.js"
import { forkIn } from "../internal/fork.js"
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
const startupErrorOf = (cause: Cause.Cause<AgentStartupError | ConfigError>): AgentStartupError => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && failure.value._tag === "AgentStartupError") return failure.value
  return new AgentStartupError({
    agent: "(unknown)",
    reason: "spawn_failed",
    command: "(unknown)",
    detail: Cause.pretty(cause)
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
  config: Config.AgentConfig | Config.AgentConfigInput
): Effect.Effect<
  AgentSupervisor,
  AgentStartupError | ConfigError,
  CommandExecutor.CommandExecutor | Scope.Scope
> => Effect.flatMap(Config.make(config), (settings) => makeOwned(settings, restartPolicyOwner(settings)))

/**
 * Starts an agent whose exits are decided by `owner` (a parent supervisor) instead of its own restart policy.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeOwned = (
  config: Config.AgentConfig | Config.AgentConfigInput,
  owner: Owner
): Effect.Effect<
  AgentSupervisor,
  AgentStartupError | ConfigError,
  CommandExecutor.CommandExecutor | Scope.Scope
> =>
  Effect.gen(function*() {
    const settings = yield* Config.make(config)
    const name = settings.name
    const executor = yield* CommandExecutor.CommandExecutor
    const store = yield* Effect.serviceOption(Store.Store).pipe(
      Effect.flatMap(Option.match({ onNone: () => Memory.make(), onSome: Effect.succeed }))
    )
    const writer = yield* Writer.make(Store.resilient(store))
    const scope = yield* Effect.scope
    const events = yield* PubSub.sliding<AgentEvent>(4096)
    const route = yield* SubscriptionRef.make<Route>(WAIT)
    const lock = yield* Effect.makeSemaphore(1)
    const locked = lock.withPermits(1)
    const annotate = Effect.annotateLogs({ agent: name })

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

    const now = Clock.currentTimeMillis
    const publish = (event: AgentEvent) => PubSub.publish(events, event)

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
        startFiber = yield* AgentProcess.make(settings).pipe(
          Scope.extend(processScope),
          Effect.provideService(CommandExecutor.CommandExecutor, executor),
          Effect.exit,
          Effect.flatMap((exit) => locked(Effect.uninterruptible(onStarted(kind, processScope, exit)))),
          // Interrupted by stop or by the supervisor closing before the start committed: nothing may survive it.
          Effect.onInterrupt(() => Scope.close(processScope, Exit.void)),
          forkIn(scope)
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
        const error = startupErrorOf(exit.cause)
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
        yield* transition("CRASHED")
        yield* setRoute(WAIT)
        const exit: ChildExit = {
          agent: name,
          exitClass,
          reason,
          pid: info.pid,
          exitCode: info.exitCode,
          signal: info.signal,
          uptimeMillis: Math.max(0, info.at - current.runningSince)
        }
        // The owner decides outside the lock: it calls back into `controls`, which take the lock.
        ownerFiber = yield* owner(exit, controls).pipe(annotate, forkIn(scope))
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
      restartNow: Effect.flatten(locked(Effect.gen(function*() {
        const waiter = yield* Deferred.make<void, AgentStartupError | AgentStoppedError>()
        if (state !== "RESTARTING") return Effect.fail(new AgentStoppedError({ agent: name }))
        startWaiters.push(waiter)
        yield* beginStart("restart")
        return Deferred.await(waiter)
      }))),
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

    const stopLocked = Effect.gen(function*() {
      if (state === "STOPPED" || state === "IDLE") return
      yield* cancelPending
      yield* transition("STOPPING")
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
    })

    const startLocked = (kind: "first" | "manual") =>
      Effect.gen(function*() {
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
      })

    const start = Effect.flatten(locked(startLocked("manual"))).pipe(annotate, Effect.withSpan("AgentSupervisor.start"))
    const stop = locked(stopLocked).pipe(annotate, Effect.withSpan("AgentSupervisor.stop"))
    const restart = Effect.flatten(locked(Effect.zipRight(stopLocked, startLocked("manual")))).pipe(
      annotate,
      Effect.withSpan("AgentSupervisor.restart")
    )

    // ---- requests ----

    /** Routes one request; `deadline` bounds waiting for a (re)start and the request together. */
    const dispatch = (event: unknown, timeout: Duration.Duration, replayOnCrash: boolean) =>
      Effect.gen(function*() {
        const timeoutMillis = Duration.toMillis(timeout)
        const deadline = (yield* now) + timeoutMillis
        const remaining = Effect.map(now, (t) => Math.max(0, deadline - t))
        const waitForChange = (current: Route) =>
          Effect.flatMap(remaining, (left) =>
            route.changes.pipe(
              Stream.filter((next) => next !== current),
              Stream.take(1),
              Stream.runDrain,
              Effect.timeoutFail({
                duration: left,
                onTimeout: () =>
                  new AgentTimeoutError({ agent: name, requestId: "(not sent)", operation: "start", timeoutMillis })
              })
            ))
        while (true) {
          const current = yield* SubscriptionRef.get(route)
          switch (current._tag) {
            case "Up": {
              const result = yield* Effect.either(current.process.request(event, { timeout: yield* remaining }))
              if (result._tag === "Right") return result.right
              if (replayOnCrash && result.left._tag === "AgentCrashError") {
                yield* waitForChange(current)
                continue
              }
              return yield* Effect.fail(result.left)
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

    const handleEvent = (event: unknown, options?: HandleOptions): Effect.Effect<unknown, RequestError> =>
      dispatch(
        event,
        options?.timeout !== undefined ? Duration.decode(options.timeout) : settings.requestTimeout,
        options?.replayOnCrash === true
      )

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
      return {
        name,
        state,
        pid: Option.map(Option.fromNullable(incarnation), (i) => i.process.pid),
        startedAt: Option.map(Option.fromNullable(incarnation), (i) => i.process.startedAt),
        restartCount,
        consecutiveFailures: failures,
        circuitOpen,
        lastHealth: Option.fromNullable(lastHealth),
        lastExit: Option.fromNullable(lastExit),
        inFlight: stats?.inFlight ?? 0
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
  }).pipe(Effect.annotateLogs({ module: "AgentSupervisor" }))

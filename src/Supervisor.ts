/**
 * Supervision trees, as Erlang/OTP's `supervisor`: children (agents or nested supervisors) started in order,
 * restarted one-for-one, one-for-all or rest-for-one, with restart intensity in a sliding window and escalation
 * to the parent, plus our per-child backoff and circuit breaker (DESIGN, "Restart decision").
 *
 * Every decision runs under the supervisor's lock in a fiber of the supervisor's own (never in a child's), so a
 * decision may stop any child, itself included. Restart delays run in their own fibers; manual operations cancel
 * them.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as AgentSupervisor from "./Agent/AgentSupervisor.js"
import type { HandleOptions } from "./Agent/AgentSupervisor.js"
import * as Config from "./Agent/Config.js"
import * as RestartPolicy from "./Agent/RestartPolicy.js"
import {
  type AgentStartupError,
  ConfigError,
  type RequestError,
  SupervisorChildError,
  SupervisorIntensityError
} from "./Errors.js"
import * as Forker from "./internal/forker.js"
import * as Memory from "./Store/Memory.js"
import * as Store from "./Store/Store.js"
import * as Writer from "./Store/Writer.js"

/**
 * Which children restart when one of them must (OTP's strategies).
 *
 * @since 0.1.0
 * @category models
 */
export type Strategy = "one-for-one" | "one-for-all" | "rest-for-one"

/**
 * How a child is stopped: a timeout for the agent's graceful phase, `"brutal-kill"` (SIGKILL at once), or
 * `"infinity"` (wait as long as it takes).
 *
 * @since 0.1.0
 * @category models
 */
export type Shutdown = Duration.DurationInput | "brutal-kill" | "infinity"

/**
 * When a supervisor stops by itself because significant children ended (OTP's `auto_shutdown`).
 *
 * @since 0.1.0
 * @category models
 */
export type AutoShutdown = "never" | "any-significant" | "all-significant"

/**
 * Restart intensity: more than `maxRestarts` restarts within `window` escalates.
 *
 * @since 0.1.0
 * @category models
 */
export interface Intensity {
  readonly maxRestarts: number
  readonly window: Duration.DurationInput
}

/**
 * An agent child.
 *
 * @since 0.1.0
 * @category specs
 */
export interface AgentSpec {
  readonly _tag: "Agent"
  readonly id: string
  readonly config: Config.AgentConfig | Config.AgentConfigInput
  readonly restart: Config.RestartType
  readonly shutdown: Shutdown | undefined
  readonly significant: boolean
}

/**
 * A nested supervisor child.
 *
 * @since 0.1.0
 * @category specs
 */
export interface SupervisorSpec {
  readonly _tag: "Supervisor"
  readonly id: string
  readonly strategy: Strategy
  readonly intensity: Intensity
  readonly children: ReadonlyArray<ChildSpec>
  readonly restart: Config.RestartType
  readonly significant: boolean
  readonly autoShutdown: AutoShutdown
}

/**
 * @since 0.1.0
 * @category specs
 */
export type ChildSpec = AgentSpec | SupervisorSpec

/** OTP's default intensity: one restart in five seconds. */
const DEFAULT_INTENSITY: Intensity = { maxRestarts: 1, window: "5 seconds" }

/**
 * An agent child spec (OTP defaults: permanent, the agent's own shutdown timeouts, not significant).
 *
 * @since 0.1.0
 * @category specs
 */
export const agent = (options: {
  readonly id: string
  readonly config: Config.AgentConfig | Config.AgentConfigInput
  readonly restart?: Config.RestartType | undefined
  readonly shutdown?: Shutdown | undefined
  readonly significant?: boolean | undefined
}): AgentSpec => ({
  _tag: "Agent",
  id: options.id,
  config: options.config,
  restart: options.restart ?? "permanent",
  shutdown: options.shutdown,
  significant: options.significant ?? false
})

/**
 * A nested supervisor child spec (OTP defaults: one-for-one, 1 restart in 5 s, permanent, never auto-shutdown).
 *
 * @since 0.1.0
 * @category specs
 */
export const supervisor = (options: {
  readonly id: string
  readonly strategy?: Strategy | undefined
  readonly intensity?: Intensity | undefined
  readonly children?: ReadonlyArray<ChildSpec> | undefined
  readonly restart?: Config.RestartType | undefined
  readonly significant?: boolean | undefined
  readonly autoShutdown?: AutoShutdown | undefined
}): SupervisorSpec => ({
  _tag: "Supervisor",
  id: options.id,
  strategy: options.strategy ?? "one-for-one",
  intensity: options.intensity ?? DEFAULT_INTENSITY,
  children: options.children ?? [],
  restart: options.restart ?? "permanent",
  significant: options.significant ?? false,
  autoShutdown: options.autoShutdown ?? "never"
})

/**
 * Options of a root supervisor.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly name?: string | undefined
  readonly strategy?: Strategy | undefined
  readonly intensity?: Intensity | undefined
  readonly children?: ReadonlyArray<ChildSpec> | undefined
  readonly autoShutdown?: AutoShutdown | undefined
  /**
   * Called with every event of the tree, in causal order, from the first child's first start on (before `make`
   * returns, so nothing is missed, also under `layer`). It runs in the fiber that caused the event: keep it short
   * (offer to a queue, count, log).
   */
  readonly onEvent?: ((event: SupervisorEvent) => Effect.Effect<void>) | undefined
  /**
   * How long closing the tree waits for the store to take the last writes before giving up on them (they are
   * best effort). 1 second by default.
   */
  readonly storeFlushTimeout?: Duration.DurationInput | undefined
}

/**
 * One child as `whichChildren` reports it.
 *
 * @since 0.1.0
 * @category views
 */
export interface ChildInfo {
  readonly id: string
  readonly kind: "worker" | "supervisor"
  /**
   * Who the child is: an agent's name (as in its events, log lines and store records), or a nested supervisor's
   * name, its path in the tree (`"root/workers"`).
   */
  readonly name: string
  /** An agent's lifecycle state; a nested supervisor's is `STARTING`, `RUNNING`, `RESTARTING` or `STOPPED`. */
  readonly state: string
  /**
   * The supervisor's view of the child, the one `restartChild` and `deleteChild` answer with: `"running"` (a
   * restart under way included), `"restarting"` (waiting for its restart), or `"stopped"` (terminated, finished,
   * or parked: `restartChild` starts it). Once the supervisor itself has stopped (escalated, shut down), every
   * child is `"stopped"` and `restartChild` answers `supervisor_stopped` for all of them.
   */
  readonly status: "running" | "restarting" | "stopped"
  /**
   * Its circuit is open: it failed more than `maxRestartAttempts` times in a row and stays down (an agent CRASHED,
   * `status` `"stopped"`) until `restartChild` starts it.
   */
  readonly parked: boolean
  readonly pid: Option.Option<number>
}

/**
 * What `countChildren` reports (OTP's `count_children`).
 *
 * @since 0.1.0
 * @category views
 */
export interface ChildCounts {
  readonly specs: number
  readonly active: number
  readonly supervisors: number
  readonly workers: number
}

/**
 * One restart decision, as `restartHistory` keeps it.
 *
 * @since 0.1.0
 * @category views
 */
export interface RestartRecord {
  readonly child: string
  readonly timestamp: number
  readonly reason: string
  readonly attempt: number
  readonly delayMillis: number
  /** The children restarted together, in start order. */
  readonly affected: ReadonlyArray<string>
}

/**
 * Everything that happens in a tree. Events of agents and of nested supervisors are forwarded up.
 *
 * @since 0.1.0
 * @category events
 */
export type SupervisorEvent =
  | {
    readonly _tag: "Agent"
    readonly supervisor: string
    readonly child: string
    readonly event: AgentSupervisor.AgentEvent
  }
  | { readonly _tag: "ChildStarted"; readonly supervisor: string; readonly child: string; readonly timestamp: number }
  | {
    readonly _tag: "ChildStopped"
    readonly supervisor: string
    readonly child: string
    readonly why: "shutdown" | "bystander" | "manual" | "escalation"
    readonly timestamp: number
  }
  | {
    readonly _tag: "ChildExited"
    readonly supervisor: string
    readonly child: string
    readonly exitClass: RestartPolicy.ExitClass
    readonly reason: string
    readonly timestamp: number
  }
  | {
    readonly _tag: "RestartScheduled"
    readonly supervisor: string
    readonly record: RestartRecord
  }
  | { readonly _tag: "ChildRemoved"; readonly supervisor: string; readonly child: string; readonly timestamp: number }
  | { readonly _tag: "ChildParked"; readonly supervisor: string; readonly child: string; readonly timestamp: number }
  | {
    readonly _tag: "Escalated"
    readonly supervisor: string
    readonly error: SupervisorIntensityError
    readonly timestamp: number
  }
  | { readonly _tag: "AutoShutdown"; readonly supervisor: string; readonly timestamp: number }

/**
 * A running supervisor.
 *
 * @since 0.1.0
 * @category models
 */
export interface Supervisor {
  readonly name: string
  /** Routes a request to an agent child. */
  readonly call: (
    childId: string,
    payload: unknown,
    options?: HandleOptions
  ) => Effect.Effect<unknown, RequestError | SupervisorChildError>
  /** The agent child with this id, for its full interface (state, metadata, health, events). */
  readonly child: (childId: string) => Effect.Effect<AgentSupervisor.AgentSupervisor, SupervisorChildError>
  /** The running nested supervisor with this id. */
  readonly childSupervisor: (childId: string) => Effect.Effect<Supervisor, SupervisorChildError>
  readonly startChild: (spec: ChildSpec) => Effect.Effect<void, StartError | SupervisorChildError>
  readonly terminateChild: (id: string) => Effect.Effect<void, SupervisorChildError>
  readonly restartChild: (id: string) => Effect.Effect<void, StartError | SupervisorChildError>
  readonly deleteChild: (id: string) => Effect.Effect<void, SupervisorChildError>
  /** Children, newest first. */
  readonly whichChildren: Effect.Effect<ReadonlyArray<ChildInfo>>
  readonly countChildren: Effect.Effect<ChildCounts>
  /** Restart decisions, newest first (the last 1000). */
  readonly restartHistory: Effect.Effect<ReadonlyArray<RestartRecord>>
  /** Every event of the subtree from the moment the stream is run. */
  readonly events: Stream.Stream<SupervisorEvent>
  /** A subscription to events, for callers that must not miss the ones caused right after subscribing. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<SupervisorEvent>, never, Scope.Scope>
  /** Completes when the supervisor shut itself down (auto-shutdown); fails when it escalated. */
  readonly await: Effect.Effect<void, SupervisorIntensityError>
}

/**
 * Why a child could not start.
 *
 * @since 0.1.0
 * @category errors
 */
export type StartError = AgentStartupError | ConfigError | SupervisorIntensityError

/**
 * The root supervisor as a service, for `layer`.
 *
 * @since 0.1.0
 * @category tags
 */
export class RootSupervisor extends Context.Tag("effect-agent-supervisor/Supervisor")<RootSupervisor, Supervisor>() {}

const HISTORY_LIMIT = 1000

/** Nested supervisors restart at once (as in OTP) and have no breaker of their own: intensity bounds them. */
const supervisorChildSettings = (restart: Config.RestartType): RestartPolicy.Settings => ({
  restartOnExit: true,
  restart,
  maxRestartAttempts: Number.MAX_SAFE_INTEGER,
  restartBackoff: Duration.zero,
  backoffFactor: 1,
  jitter: 0,
  maxBackoff: Duration.zero,
  resetAfter: Duration.infinity
})

interface ChildExitInfo {
  readonly exitClass: RestartPolicy.ExitClass
  readonly reason: string
  readonly uptimeMillis: number
  readonly exitCode?: number | null | undefined
  readonly signal?: string | null | undefined
}

type Runtime =
  | {
    readonly _tag: "Agent"
    readonly agent: AgentSupervisor.AgentSupervisor
    readonly scope: Scope.CloseableScope
    controls: AgentSupervisor.Controls | undefined
  }
  | {
    readonly _tag: "Supervisor"
    readonly instance: Supervisor
    readonly scope: Scope.CloseableScope
  }

interface Child {
  readonly spec: ChildSpec
  readonly settings: RestartPolicy.Settings
  status: "running" | "restarting" | "stopped"
  /** Stopped because its circuit opened, until it starts again. */
  parked: boolean
  failures: number
  runtime: Runtime | undefined
  /** The pending restart covering this child, if any. */
  pending: Fiber.RuntimeFiber<void> | undefined
  /** Terminated by hand while a group restart that includes it was pending: that restart skips it. */
  skip: boolean
}

/**
 * Starts a supervision tree: children start in order; if one fails, those started stop in reverse order and the
 * start fails. Closing the scope stops every child in reverse start order, each subtree whole. Uses the `Store`
 * in the context, or an in-memory one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<Supervisor, StartError, Scope.Scope> =>
  Effect.gen(function*() {
    const flushTimeout = options.storeFlushTimeout === undefined
      ? Writer.DEFAULT_FLUSH_TIMEOUT
      : yield* Config.decodeDuration("storeFlushTimeout", options.storeFlushTimeout)
    const name = options.name ?? "root"
    // One store writer for the whole tree, shared by every agent and nested supervisor in it.
    const store = yield* Effect.serviceOption(Store.Store).pipe(
      Effect.flatMap(Option.match({ onNone: () => Memory.make(), onSome: Effect.succeed }))
    )
    return yield* makeInstance(
      name,
      {
        strategy: options.strategy ?? "one-for-one",
        intensity: options.intensity ?? DEFAULT_INTENSITY,
        children: options.children ?? [],
        autoShutdown: options.autoShutdown ?? "never"
      },
      options.onEvent,
      { store, flushTimeout }
    )
  })

/**
 * `make` as a Layer providing {@link RootSupervisor}, for composition in apps.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RootSupervisor, StartError> =>
  Layer.scoped(RootSupervisor, make(options))

/**
 * Starts a tree and waits for it: fails with `SupervisorIntensityError` when the root escalates; succeeds when
 * it shuts itself down (auto-shutdown).
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = (options: Options): Effect.Effect<void, StartError> =>
  Effect.scoped(Effect.flatMap(make(options), (sup) => sup.await))

const validate = (name: string, children: ReadonlyArray<ChildSpec>): Effect.Effect<void, ConfigError> =>
  Effect.gen(function*() {
    const seen = new Set<string>()
    for (const spec of children) {
      if (seen.has(spec.id)) {
        return yield* Effect.fail(
          new ConfigError({ field: `${name}.children`, rule: "child ids must be unique", value: spec.id })
        )
      }
      seen.add(spec.id)
      if (spec.significant && spec.restart === "permanent") {
        return yield* Effect.fail(
          new ConfigError({
            field: `${name}.children.${spec.id}.significant`,
            rule: "a significant child must be transient or temporary (as in OTP)"
          })
        )
      }
    }
  })

const makeInstance = (
  name: string,
  spec: {
    readonly strategy: Strategy
    readonly intensity: Intensity
    readonly children: ReadonlyArray<ChildSpec>
    readonly autoShutdown: AutoShutdown
  },
  /** A nested supervisor publishes into its parent directly, so events of its own start are not lost. */
  toParent: ((event: SupervisorEvent) => Effect.Effect<void>) | undefined,
  shared: { readonly store: Store.Store["Type"]; readonly flushTimeout: Duration.Duration }
): Effect.Effect<Supervisor, StartError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* validate(name, spec.children)
    const windowMillis = Duration.toMillis(Duration.decode(spec.intensity.window))
    if (!Number.isInteger(spec.intensity.maxRestarts) || spec.intensity.maxRestarts < 0) {
      return yield* Effect.fail(
        new ConfigError({ field: `${name}.intensity.maxRestarts`, rule: "must be an integer of 0 or more" })
      )
    }
    const { flushTimeout, store } = shared
    const writer = yield* Writer.make(Store.resilient(store), { flushTimeout })
    const scope = yield* Effect.scope
    // Children's scopes hang below this one, made before the finalizer below is added: the finalizer runs
    // first and stops the children in reverse start order (whatever restarted), then their scopes close.
    const childScopes = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    const fork = yield* Forker.make
    const events = yield* PubSub.sliding<SupervisorEvent>(4096)
    const done = yield* Deferred.make<void, SupervisorIntensityError>()
    const intensity = yield* RestartPolicy.makeIntensity(spec.intensity)
    const lock = yield* Effect.makeSemaphore(1)
    const locked = lock.withPermits(1)

    // Children in start order. Written only under the lock.
    let children: Array<Child> = []
    let terminating = false
    const history: Array<RestartRecord> = []

    const now = Clock.currentTimeMillis
    // Published in the fiber that caused the event, to the parent (or the root's onEvent) first: one order.
    const publish = (event: SupervisorEvent) =>
      toParent === undefined
        ? Effect.asVoid(PubSub.publish(events, event))
        : Effect.zipRight(toParent(event), PubSub.publish(events, event))
    const find = (id: string) => children.find((c) => c.spec.id === id)
    const childError = (child: string, operation: string, reason: SupervisorChildError["reason"]) =>
      new SupervisorChildError({ supervisor: name, child, operation, reason })

    const settingsOf = (childSpec: ChildSpec): Effect.Effect<RestartPolicy.Settings, ConfigError> =>
      childSpec._tag === "Supervisor"
        ? Effect.succeed(supervisorChildSettings(childSpec.restart))
        : Effect.map(Config.make(childSpec.config), (config): RestartPolicy.Settings => ({
          ...config,
          restart: childSpec.restart
        }))

    // ---- child runtimes ----

    const agentConfigOf = (childSpec: AgentSpec) =>
      Effect.gen(function*() {
        const config = yield* Config.make(childSpec.config)
        const shutdown = childSpec.shutdown
        const overrides = shutdown === undefined
          ? {}
          : shutdown === "brutal-kill"
          ? { gracefulTimeout: Duration.zero, sigtermTimeout: Duration.zero }
          : shutdown === "infinity"
          ? { gracefulTimeout: Duration.infinity }
          : { gracefulTimeout: Duration.decode(shutdown) }
        return yield* Config.make({ ...config, restart: childSpec.restart, ...overrides })
      })

    /** A decision about a child runs in a fiber of this supervisor, so it may stop the child it is about. */
    const decideLater = (child: Child, exit: ChildExitInfo) =>
      Effect.asVoid(fork(locked(Effect.uninterruptible(decideExit(child, exit)))))

    const startRuntime = (child: Child): Effect.Effect<void, StartError> =>
      Effect.gen(function*() {
        const runtime = child.runtime
        if (runtime?._tag === "Agent") {
          yield* runtime.agent.start.pipe(
            Effect.catchTag("AgentStoppedError", () =>
              Effect.fail(
                new ConfigError({ field: child.spec.id, rule: "the agent was stopped while it was starting" })
              ))
          )
          return yield* publishStarted(child)
        }
        const childScope = yield* Scope.fork(childScopes, ExecutionStrategy.sequential)
        const start: Effect.Effect<Runtime, StartError> = child.spec._tag === "Agent"
          ? startAgent(child, child.spec, childScope)
          : startSupervisor(child, child.spec, childScope)
        const started = yield* Effect.exit(start).pipe(
          // An interrupted start (terminateChild, shutdown) leaves nothing running behind it.
          Effect.onInterrupt(() => Scope.close(childScope, Exit.void))
        )
        if (Exit.isFailure(started)) {
          yield* Scope.close(childScope, Exit.void)
          return yield* Effect.failCause(started.cause)
        }
        child.runtime = started.value
        yield* publishStarted(child)
      })

    /** Every start of a child, first or restart, is one `ChildStarted`. */
    const publishStarted = (child: Child) =>
      Effect.flatMap(now, (timestamp) =>
        publish({ _tag: "ChildStarted", supervisor: name, child: child.spec.id, timestamp }))

    const startAgent = (child: Child, childSpec: AgentSpec, childScope: Scope.CloseableScope) =>
      Effect.gen(function*() {
        const config = yield* agentConfigOf(childSpec)
        const holder: { runtime: Runtime | undefined } = { runtime: undefined }
        const owner: AgentSupervisor.Owner = (exit, controls) =>
          Effect.suspend(() => {
            if (holder.runtime?._tag === "Agent") {
              holder.runtime.controls = controls
            }
            return decideLater(child, {
              exitClass: exit.exitClass,
              reason: exit.reason,
              uptimeMillis: exit.uptimeMillis,
              exitCode: exit.exitCode,
              signal: exit.signal
            })
          })
        const agent = yield* AgentSupervisor.makeOwned(config, owner, {
          storeFlushTimeout: flushTimeout,
          // The tree records the restarts it decides, under the child's path in the tree: one record each.
          recordRestarts: false,
          // In the agent's own fiber, before its owner hears of an exit: the tree's events keep causal order.
          onEvent: (event) =>
            publish({ _tag: "Agent", supervisor: name, child: childSpec.id, event })
        }).pipe(
          Scope.extend(childScope),
          Effect.provideService(Store.Store, store)
        )
        const runtime: Runtime = { _tag: "Agent", agent, scope: childScope, controls: undefined }
        holder.runtime = runtime
        return runtime
      })

    const startSupervisor = (child: Child, childSpec: SupervisorSpec, childScope: Scope.CloseableScope) =>
      Effect.gen(function*() {
        const instance = yield* makeInstance(`${name}/${childSpec.id}`, childSpec, publish, shared).pipe(
          Scope.extend(childScope)
        )
        // Escalation is the nested supervisor's abnormal exit; auto-shutdown its normal one.
        yield* instance.await.pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            decideLater(child, {
              exitClass: Exit.isSuccess(exit) ? "normal" : "abnormal",
              reason: Exit.isSuccess(exit) ? "auto_shutdown" : "escalation",
              uptimeMillis: 0
            })
          ),
          fork,
          Effect.flatMap((fiber) => Scope.addFinalizer(childScope, Fiber.interrupt(fiber)))
        )
        return { _tag: "Supervisor", instance, scope: childScope } satisfies Runtime
      })

    /** Stops a child's process or subtree (not counted as a failure); an agent keeps its runtime for a restart. */
    const stopRuntime = (child: Child, why: "shutdown" | "bystander" | "manual" | "escalation") =>
      Effect.gen(function*() {
        const runtime = child.runtime
        if (runtime === undefined) return
        if (runtime._tag === "Agent") {
          const before = yield* runtime.agent.state
          yield* runtime.agent.stop
          // Already stopped (by an escalation below, say): nothing stopped now, so no event.
          if (before === "STOPPED" || before === "IDLE") return
        } else {
          child.runtime = undefined
          yield* Scope.close(runtime.scope, Exit.void)
        }
        yield* publish({ _tag: "ChildStopped", supervisor: name, child: child.spec.id, why, timestamp: yield* now })
      })

    const removeChild = (child: Child) =>
      Effect.gen(function*() {
        children = children.filter((c) => c !== child)
        const runtime = child.runtime
        child.runtime = undefined
        if (runtime !== undefined) yield* Scope.close(runtime.scope, Exit.void)
        yield* publish({ _tag: "ChildRemoved", supervisor: name, child: child.spec.id, timestamp: yield* now })
      })

    const cancelPending = (child: Child) =>
      Effect.gen(function*() {
        const fiber = child.pending
        if (fiber === undefined) return
        const shared = children.some((c) => c !== child && c.pending === fiber)
        if (shared) {
          // The group's restart goes on for the others; if it is starting this child now, stopping the agent
          // ends that start at once instead of at its startupTimeout.
          child.skip = true
          if (child.runtime?._tag === "Agent") yield* child.runtime.agent.stop
        } else {
          child.pending = undefined
          yield* Fiber.interrupt(fiber)
        }
      })

    // ---- decisions ----

    const affectedSet = (child: Child): Array<Child> => {
      switch (spec.strategy) {
        case "one-for-one":
          return [child]
        case "one-for-all":
          return [...children]
        case "rest-for-one":
          return children.slice(children.indexOf(child))
      }
    }

    const decideExit = (child: Child, exit: ChildExitInfo): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (terminating || child.status !== "running" || !children.includes(child)) return
        yield* publish({
          _tag: "ChildExited",
          supervisor: name,
          child: child.spec.id,
          exitClass: exit.exitClass,
          reason: exit.reason,
          timestamp: yield* now
        })
        const controls = child.runtime?._tag === "Agent" ? child.runtime.controls : undefined
        const before = RestartPolicy.failuresAfterRun(child.settings, child.failures, exit.uptimeMillis)
        const decision = RestartPolicy.decide(child.settings, exit.exitClass, before)
        switch (decision._tag) {
          case "Remove": {
            yield* removeChild(child)
            return yield* checkAutoShutdown(child)
          }
          case "Stop": {
            child.status = "stopped"
            if (controls !== undefined) yield* controls.finish(exit.exitClass)
            else if (child.runtime?._tag === "Supervisor") yield* stopRuntime(child, "shutdown")
            return yield* checkAutoShutdown(child)
          }
          case "Park": {
            child.failures = decision.failures
            child.status = "stopped"
            child.parked = true
            if (controls !== undefined) yield* controls.park(decision.failures)
            else yield* stopRuntime(child, "shutdown")
            yield* publish({ _tag: "ChildParked", supervisor: name, child: child.spec.id, timestamp: yield* now })
            return
          }
          case "Restart": {
            child.failures = decision.failures
            if (yield* intensity.record) return yield* escalate(child.spec.id)
            // A nested supervisor that escalated has stopped its children; close it before building it anew.
            if (child.runtime?._tag === "Supervisor") yield* stopRuntime(child, "shutdown")
            const set = affectedSet(child)
            // A group restart subsumes restarts already pending for its members: counted once.
            for (const member of set) member.skip = false
            yield* interruptPending(set)
            const kept: Array<Child> = []
            for (const member of [...set].reverse()) {
              if (member === child) {
                kept.unshift(member)
                continue
              }
              if (member.status !== "stopped" || member.runtime !== undefined) {
                yield* stopRuntime(member, "bystander")
              }
              if (member.spec.restart === "temporary") {
                yield* removeChild(member)
                continue
              }
              member.status = "restarting"
              member.parked = false
              kept.unshift(member)
            }
            const delay = yield* RestartPolicy.delay(child.settings, decision.failures)
            const delayMillis = Duration.toMillis(delay)
            if (controls !== undefined) {
              yield* controls.scheduleRestart({ attempt: decision.failures, delayMillis, reason: reasonOf(exit) })
            }
            child.status = "restarting"
            const record: RestartRecord = {
              child: child.spec.id,
              timestamp: yield* now,
              reason: exit.reason,
              attempt: decision.failures,
              delayMillis,
              affected: kept.map((c) => c.spec.id)
            }
            history.unshift(record)
            if (history.length > HISTORY_LIMIT) history.pop()
            yield* publish({ _tag: "RestartScheduled", supervisor: name, record })
            // One restart, one record, under the child's path in the tree (its agent records none of its own).
            yield* writer.recordRestart({
              agent_name: `${name}/${child.spec.id}`,
              timestamp: record.timestamp,
              reason: exit.reason,
              attempt: record.attempt,
              delay_ms: delayMillis,
              ...(exit.exitCode !== undefined ? { exit_code: exit.exitCode } : {}),
              ...(exit.signal !== undefined ? { signal: exit.signal } : {})
            })
            const fiber = yield* fork(Effect.zipRight(Effect.sleep(delay), runRestart(kept, child)))
            for (const member of kept) member.pending = fiber
          }
        }
      })

    const reasonOf = (exit: ChildExitInfo): AgentSupervisor.ExitReason =>
      exit.reason === "heartbeat" || exit.reason === "start_failed" ? exit.reason : "exit"

    /** The fiber running this effect: a restart must not interrupt itself when it cancels pending restarts. */
    const currentFiber = Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((fiber) => Effect.succeed(fiber))

    /** Interrupts the pending restart of each child (all of them, or one set), except the running fiber. */
    const interruptPending = (members: ReadonlyArray<Child>) =>
      Effect.gen(function*() {
        const self = yield* currentFiber
        for (const member of members) {
          const fiber = member.pending
          member.pending = undefined
          if (fiber !== undefined && fiber !== self) yield* Fiber.interrupt(fiber)
        }
      })

    /**
     * Starts the affected set again in start order; a start that fails is an abnormal exit of that child. Each
     * member keeps this fiber as its `pending` restart until its own start is over, so that `terminateChild` and
     * shutdown can interrupt a start that hangs. The lock is held to decide and to commit, never while a process
     * comes up: independent restarts proceed at once, each at its own pace (a group keeps its order, member by
     * member, in this one fiber).
     */
    const runRestart = (set: ReadonlyArray<Child>, crashed: Child): Effect.Effect<void> =>
      Effect.gen(function*() {
        const self = yield* currentFiber
        for (const member of set) {
          const go = yield* locked(Effect.sync(() => {
            if (terminating || !children.includes(member) || member.pending !== self) return false
            if (member.skip) {
              member.skip = false
              member.pending = undefined
              return false
            }
            // Running from here: an exit of the new incarnation is decided like any other.
            member.status = "running"
            member.parked = false
            return true
          }))
          if (!go) continue
          const runtime = member.runtime
          const restart = member === crashed && runtime?._tag === "Agent" && runtime.controls !== undefined
            ? runtime.controls.restartNow.pipe(
              Effect.zipRight(publishStarted(member)),
              Effect.catchTag("AgentStoppedError", () =>
                // Stopped by hand in the meantime: start it as a stopped child would be, unless it is being
                // terminated.
                member.skip ? Effect.void : startRuntime(member))
            )
            : startRuntime(member)
          const result = yield* Effect.either(restart)
          const goOn = yield* locked(Effect.uninterruptible(Effect.gen(function*() {
            if (member.pending === self) member.pending = undefined
            if (member.skip) {
              // terminateChild stopped it while it was starting: it is the terminator's now.
              member.skip = false
              return true
            }
            if (terminating) return false
            if (result._tag === "Left") {
              yield* decideExit(member, { exitClass: "abnormal", reason: "start_failed", uptimeMillis: 0 })
              // A new restart took over the rest of the set, or the supervisor is going down: done here. After a
              // decision that parks or stops the failed child, the rest of the set still starts.
              if (terminating) return false
            }
            return true
          })))
          if (!goOn) return
        }
      })

    /** Stops every child in reverse start order. Idempotent; uninterruptible, since each stop is bounded. */
    const stopAll = (why: "shutdown" | "escalation") =>
      Effect.uninterruptible(Effect.gen(function*() {
        terminating = true
        yield* interruptPending(children)
        for (const child of [...children].reverse()) {
          yield* stopRuntime(child, why)
          child.status = "stopped"
        }
      }))

    const escalate = (lastChild: string) =>
      Effect.gen(function*() {
        const error = new SupervisorIntensityError({
          supervisor: name,
          maxRestarts: spec.intensity.maxRestarts,
          windowMillis,
          lastChild
        })
        yield* Effect.logError(error.message)
        yield* stopAll("escalation")
        const timestamp = yield* now
        yield* publish({ _tag: "Escalated", supervisor: name, error, timestamp })
        yield* writer.saveMetric({
          event: "supervisor_escalation",
          agent_name: name,
          timestamp,
          last_child: lastChild,
          max_restarts: spec.intensity.maxRestarts,
          window_ms: windowMillis
        })
        yield* Deferred.fail(done, error)
      })

    const checkAutoShutdown = (ended: Child) =>
      Effect.gen(function*() {
        if (!ended.spec.significant || spec.autoShutdown === "never") return
        const remaining = children.some((c) => c.spec.significant && c.status !== "stopped")
        if (spec.autoShutdown === "all-significant" && remaining) return
        yield* stopAll("shutdown")
        yield* publish({ _tag: "AutoShutdown", supervisor: name, timestamp: yield* now })
        yield* Deferred.succeed(done, void 0)
      })

    // ---- manual operations: never counted, they cancel pending restarts of their child ----

    const addChild = (childSpec: ChildSpec): Effect.Effect<void, StartError | SupervisorChildError> =>
      Effect.gen(function*() {
        if (terminating) return yield* Effect.fail(childError(childSpec.id, "start", "supervisor_stopped"))
        const existing = find(childSpec.id)
        if (existing !== undefined) {
          return yield* Effect.fail(
            childError(childSpec.id, "start", existing.status === "running" ? "already_started" : "already_present")
          )
        }
        yield* validate(name, [...children.map((c) => c.spec), childSpec])
        const child: Child = {
          spec: childSpec,
          settings: yield* settingsOf(childSpec),
          status: "running",
          parked: false,
          failures: 0,
          runtime: undefined,
          pending: undefined,
          skip: false
        }
        children.push(child)
        const started = yield* Effect.exit(startRuntime(child)).pipe(
          // The caller gave up: startRuntime undid the start, and the child is not added (as after a failure).
          Effect.onInterrupt(() => Effect.sync(() => (children = children.filter((c) => c !== child))))
        )
        if (Exit.isFailure(started)) {
          children = children.filter((c) => c !== child)
          return yield* started
        }
      })

    const terminateChild = (id: string) =>
      Effect.gen(function*() {
        // Cancel first, without the lock: a pending restart may hold it while a start hangs.
        const pendingChild = find(id)
        if (pendingChild !== undefined) yield* cancelPending(pendingChild)
        yield* locked(terminateLocked(id))
      })

    const terminateLocked = (id: string) =>
      Effect.gen(function*() {
        const child = find(id)
        if (child === undefined) return yield* Effect.fail(childError(id, "terminate", "not_found"))
        yield* cancelPending(child)
        yield* stopRuntime(child, "manual")
        child.status = "stopped"
        child.parked = false
        if (child.spec.restart === "temporary") yield* removeChild(child)
      })

    const restartChild = (id: string) =>
      locked(Effect.gen(function*() {
        if (terminating) return yield* Effect.fail(childError(id, "restart", "supervisor_stopped"))
        const child = find(id)
        if (child === undefined) return yield* Effect.fail(childError(id, "restart", "not_found"))
        if (child.status !== "stopped") return yield* Effect.fail(childError(id, "restart", child.status))
        child.failures = 0
        child.skip = false
        // Running from the moment its start begins, as the views say; stopped again if the start fails.
        child.status = "running"
        child.parked = false
        yield* startRuntime(child).pipe(
          Effect.onError(() => Effect.sync(() => (child.status = "stopped"))),
          // The caller gave up: an agent's start would go on by itself, running and unsupervised. Stop it.
          Effect.onInterrupt(() => stopRuntime(child, "manual"))
        )
      }))

    const deleteChild = (id: string) =>
      locked(Effect.gen(function*() {
        const child = find(id)
        if (child === undefined) return yield* Effect.fail(childError(id, "delete", "not_found"))
        if (child.status !== "stopped") return yield* Effect.fail(childError(id, "delete", child.status))
        yield* removeChild(child)
      }))

    // ---- views ----

    const infoOf = (child: Child): Effect.Effect<ChildInfo> =>
      Effect.suspend(() => {
        // The supervisor's own view first, in one step: what restartChild would answer now.
        const { parked, runtime, status } = child
        const childSpec = child.spec
        if (runtime?._tag === "Agent") {
          return Effect.map(runtime.agent.metadata, (meta): ChildInfo => ({
            id: childSpec.id,
            kind: "worker",
            name: meta.name,
            state: meta.state,
            status,
            parked,
            pid: meta.pid
          }))
        }
        return Effect.succeed<ChildInfo>({
          id: childSpec.id,
          kind: childSpec._tag === "Agent" ? "worker" : "supervisor",
          name: childSpec._tag === "Agent" ? childSpec.config.name : `${name}/${childSpec.id}`,
          state: status === "running"
            ? runtime === undefined ? "STARTING" : "RUNNING"
            : status === "restarting"
            ? "RESTARTING"
            : "STOPPED",
          status,
          parked,
          pid: Option.none()
        })
      })

    const whichChildren = Effect.suspend(() => Effect.forEach([...children].reverse(), infoOf))

    const countChildren = Effect.gen(function*() {
      const infos = yield* Effect.forEach(children, infoOf)
      return {
        specs: infos.length,
        active: infos.filter((i) => i.state === "RUNNING").length,
        supervisors: infos.filter((i) => i.kind === "supervisor").length,
        workers: infos.filter((i) => i.kind === "worker").length
      }
    })

    const agentChild = (id: string) =>
      Effect.suspend(() => {
        const child = find(id)
        if (child === undefined) return Effect.fail(childError(id, "call", "not_found"))
        const runtime = child.runtime
        if (child.spec._tag !== "Agent") return Effect.fail(childError(id, "call", "not_an_agent"))
        if (runtime?._tag !== "Agent") return Effect.fail(childError(id, "call", "not_found"))
        return Effect.succeed(runtime.agent)
      })

    const supervisorChild = (id: string) =>
      Effect.suspend(() => {
        const runtime = find(id)?.runtime
        return runtime?._tag === "Supervisor"
          ? Effect.succeed(runtime.instance)
          : Effect.fail(childError(id, "find supervisor", "not_found"))
      })

    // Stop every child in reverse start order when the scope closes; added after the writer and the pubsub so
    // it runs before them.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        // Interrupt pending restarts first, without the lock: one may hold it while a start hangs.
        terminating = true
        yield* interruptPending(children)
        yield* locked(stopAll("shutdown"))
        yield* Deferred.succeed(done, void 0)
        yield* PubSub.shutdown(events)
      })
    )

    // Static children: in order; a failure stops those started, in reverse, and fails the start.
    const initial = yield* Effect.exit(locked(Effect.forEach(spec.children, addChild, { discard: true })))
    if (Exit.isFailure(initial)) {
      yield* locked(stopAll("shutdown"))
      return yield* Effect.failCause(initial.cause).pipe(
        Effect.catchTag(
          "SupervisorChildError",
          (e) => Effect.fail(new ConfigError({ field: `${name}.children`, rule: e.message }))
        )
      )
    }

    const supervisorHandle: Supervisor = {
      name,
      call: (childId, payload, options) =>
        Effect.flatMap(agentChild(childId), (agent) => agent.handleEvent(payload, options)),
      child: agentChild,
      childSupervisor: supervisorChild,
      startChild: (childSpec) => locked(addChild(childSpec)),
      terminateChild,
      restartChild,
      deleteChild,
      whichChildren,
      countChildren,
      restartHistory: Effect.sync(() => [...history]),
      events: Stream.fromPubSub(events),
      subscribe: PubSub.subscribe(events),
      await: Deferred.await(done)
    }
    return supervisorHandle
  }).pipe(Effect.annotateLogs({ supervisor: name }))

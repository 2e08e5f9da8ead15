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
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as AgentSupervisor from "./Agent/AgentSupervisor.js"
import type { HandleOptions } from "./Agent/AgentSupervisor.js"
import type * as Config from "./Agent/Config.js"
import type * as RestartPolicy from "./Agent/RestartPolicy.js"
import type {
  AgentStartupError,
  ConfigError,
  RequestError,
  SupervisorChildError,
  SupervisorIntensityError
} from "./Errors.js"
import * as Edge from "./internal/schema.js"
import * as Instance from "./internal/supervisor/instance.js"
import * as Spec from "./internal/supervisor/spec.js"
import * as Writer from "./Store/internal/writer.js"
import * as Memory from "./Store/Memory.js"
import * as Store from "./Store/Store.js"

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
  /**
   * Adds a child and starts it. Its spec is decoded first, once the id is known to be free: a bad value is a
   * `ConfigError` and nothing is added. This and the three below are traced (`Supervisor.startChild`, ...).
   */
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

/**
 * Starts a supervision tree: children start in order; if one fails, those started stop in reverse order and the
 * start fails. Closing the scope stops every child in reverse start order, each subtree whole. Uses the `Store`
 * in the context, or an in-memory one.
 *
 * The whole tree is decoded first: a bad value anywhere in it (a duration, an intensity, an agent's
 * configuration, a significant permanent child) is a `ConfigError` naming its field, before anything starts.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<Supervisor, StartError, Scope.Scope> = Effect.fn(
  "Supervisor.make"
)(function*(options: Options) {
  const flushTimeout = options.storeFlushTimeout === undefined
    ? Writer.DEFAULT_FLUSH_TIMEOUT
    : yield* Edge.decodeDuration("storeFlushTimeout", options.storeFlushTimeout)
  const tree = yield* Spec.decodeTree(options.name ?? "root", {
    strategy: options.strategy ?? "one-for-one",
    intensity: options.intensity ?? DEFAULT_INTENSITY,
    children: options.children ?? [],
    autoShutdown: options.autoShutdown ?? "never"
  })
  // One store writer for the whole tree, shared by every agent and nested supervisor in it.
  const store = yield* Effect.serviceOption(Store.Store).pipe(
    Effect.flatMap(Option.match({ onNone: () => Memory.make(), onSome: Effect.succeed }))
  )
  // Made before the root's finalizer, so it flushes after every child of the tree has stopped.
  const writer = yield* Writer.make(Store.resilient(store), { flushTimeout })
  return yield* Instance.make(tree, options.onEvent, { writer })
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

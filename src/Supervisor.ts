/**
 * Supervision trees, as Erlang/OTP's `supervisor`: children (agents or nested supervisors) started in order,
 * restarted one-for-one, one-for-all or rest-for-one, with restart intensity in a sliding window and escalation
 * to the parent, plus our per-child backoff and circuit breaker (DESIGN, "Restart decision").
 *
 * Every decision runs under the supervisor's lock in a fiber of the supervisor's own (never in a child's), so a
 * decision may stop any child, itself included. Restart delays run in their own fibers; manual operations cancel
 * them. Manual operations (`startChild`, `restartChild`, `terminateChild`, `deleteChild`, `reload`, `scale`) run
 * in a fiber of the supervisor's too, with the services the layer was built with (logger and log annotations,
 * `Clock`, `ConfigProvider`, `Tracer`), not their caller's; the caller waits for it, its span is the parent, and
 * interrupting the caller interrupts the operation.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as AgentSupervisor from "./Agent/AgentSupervisor.js"
import type { HandleOptions, HandleStreamOptions } from "./Agent/AgentSupervisor.js"
import type * as Config from "./Agent/Config.js"
import * as Owned from "./Agent/internal/owned.js"
import type { StreamEvent } from "./Agent/StreamEvent.js"
import type { AutoShutdown, ChildSpec, Intensity, Routing, Strategy } from "./ChildSpec.js"
import type {
  AgentStartupError,
  ConfigError,
  RequestError,
  StreamRequestError,
  SupervisorChildError,
  SupervisorIntensityError
} from "./Errors.js"
import * as Forker from "./internal/forker.js"
import * as Instance from "./internal/supervisor/instance.js"
import * as Keeper from "./internal/supervisor/keeper.js"
import * as Root from "./internal/supervisor/root.js"
import * as Spec from "./internal/supervisor/spec.js"
import { makeShared } from "./internal/supervisor/state.js"
import * as Bus from "./internal/topics/bus.js"
import type * as LogFiles from "./LogFiles.js"
import * as ResilientStore from "./Store/internal/resilientStore.js"
import * as Writer from "./Store/internal/writer.js"
import * as Store from "./Store/Store.js"
import type * as Topic from "./Topic.js"

export {
  /** An agent child spec. */
  agent,
  /** An agent child, as written. */
  type AgentSpec,
  /** A pool's autoscaling. */
  type Autoscale,
  /** When a supervisor stops by itself because significant children ended (OTP's `auto_shutdown`). */
  type AutoShutdown,
  /** A child spec: an agent, a nested supervisor or a pool. */
  type ChildSpec,
  /** Restart intensity: more than `maxRestarts` restarts within `window` escalates. */
  type Intensity,
  /** A pool child spec: `size` identical agents behind one id. */
  pool,
  /** A pool child, as written. */
  type PoolSpec,
  /** How a pool picks the member that takes a call. */
  type Routing,
  /** How a child is stopped. */
  type Shutdown,
  /** Which children restart when one of them must (OTP's strategies). */
  type Strategy,
  /** A nested supervisor child spec. */
  supervisor,
  /** A nested supervisor child, as written. */
  type SupervisorSpec,
  /** Development watch mode of a child. */
  type Watch
} from "./ChildSpec.js"

/**
 * Options of a root supervisor.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The root's name, the first part of every path in the tree (`"root/workers"`). `"root"` by default. */
  readonly name?: string | undefined
  /** `"one-for-one"` by default (OTP's). */
  readonly strategy?: Strategy | undefined
  /**
   * 1 restart in 5 seconds by default (OTP's). With the agents' default backoff and breaker, a child that never
   * starts exceeds it before its circuit opens; `make` warns of a child that would be parked instead (README
   * "Configuration").
   */
  readonly intensity?: Intensity | undefined
  readonly children?: ReadonlyArray<ChildSpec> | undefined
  /** `"never"` by default; significant children need another value. */
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
  readonly storeFlushTimeout?: DurationInput | undefined
  /**
   * Keeps the children added by `startChild` (their specs, written as they are added: `startChild` waits up to
   * `storeFlushTimeout`) and which children are parked, in the `Store`; each supervisor of the tree brings them back
   * at its start, a parked child parked until `restartChild` (README "Persistent stores"). `false` by default.
   */
  readonly restore?: boolean | undefined
  /**
   * Writes the stderr of every agent of the tree to `<dir>/<agent name>.log` (the name made safe by
   * `LogFiles.fileName`), rotated by size with at most `keep` old files (10 MiB and 5 by default): see `LogFiles`
   * for the bounds. An agent's file is opened when it is first started and closed, its last lines written, when it
   * leaves the tree or the tree stops; agents of the same name share a file, each line naming its pid. Bad values
   * are part of the tree's `ConfigError` (`logs.maxBytes`). None by default.
   */
  readonly logs?: LogFiles.Options | undefined
  /**
   * Settings of the tree's topics, by name (see `Topic`): `retry`, `maxQueued`, `backpressure`, `timeout`. A topic
   * not named has the defaults; bad values are part of the tree's `ConfigError` (`topics["doc.uploaded"].maxQueued`).
   */
  readonly topics?: Readonly<Record<string, Topic.TopicOptions>> | undefined
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
   * or parked: `restartChild` starts it). Once the supervisor has stopped, every child is `"stopped"`; from its
   * stop's start, every operation on a child (`call`, `restartChild`...) answers `supervisor_stopped` after a
   * shutdown, or its `SupervisorIntensityError` after an escalation (calls under way go on until their agent stops).
   */
  readonly status: "running" | "restarting" | "stopped"
  /** Its circuit is open (over `maxRestartAttempts` failures in a row): `"stopped"` until `restartChild` starts it. */
  readonly parked: boolean
  /** An agent's pid while its process runs, as its `Metadata.pid`: from its spawn until its exit. */
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

export type {
  /** One restart decision, as `restartHistory` keeps it. */
  RestartRecord,
  /** Everything that happens in a tree. */
  SupervisorEvent
} from "./SupervisorEvent.js"
import type { DurationInput } from "./internal/durationText.js"
import type { RestartRecord, SupervisorEvent } from "./SupervisorEvent.js"

/**
 * A running supervisor.
 *
 * @since 0.1.0
 * @category models
 */
export interface Supervisor {
  readonly name: string
  /**
   * Routes a request to an agent child. Once the supervisor has escalated, this and every operation below fail
   * with its `SupervisorIntensityError` (the tree is down, not one child).
   */
  readonly call: (
    /** An agent child, or a pool child: one of its RUNNING members takes the call (see `pool`). */
    childId: string,
    payload: unknown,
    options?: HandleOptions
  ) => Effect.Effect<unknown, RequestError | SupervisorChildError | SupervisorIntensityError>
  /**
   * Routes a streaming request to an agent child (protocol 1.1 `stream`: see `AgentSupervisor.handleEventStream`):
   * its chunks, then one `Done` with the result. A child that is not there fails the stream before anything is
   * sent; once the supervisor has escalated, the stream fails with its `SupervisorIntensityError`.
   */
  readonly callStream: (
    childId: string,
    payload: unknown,
    options?: HandleStreamOptions
  ) => Stream.Stream<StreamEvent, StreamRequestError | SupervisorChildError | SupervisorIntensityError>
  /** The agent child with this id, for its full interface (state, metadata, health, events). */
  readonly child: (
    childId: string
  ) => Effect.Effect<AgentSupervisor.AgentSupervisor, SupervisorChildError | SupervisorIntensityError>
  /** The running nested supervisor (or pool) with this id; an agent child is `not_a_supervisor`. */
  readonly childSupervisor: (
    childId: string
  ) => Effect.Effect<Supervisor, SupervisorChildError | SupervisorIntensityError>
  /**
   * Adds a child and starts it. Its spec is decoded first, once the id is known to be free: bad values are a
   * `ConfigError` (paths from the position the child would take, `children[3]`) and nothing is added; a child that
   * would be parked rather than escalate is warned of, as in `make`. This and the three below are traced
   * (`Supervisor.startChild`, ...).
   */
  readonly startChild: (spec: ChildSpec) => Effect.Effect<void, StartError | SupervisorChildError>
  /**
   * Adds many children at once, where the order they start in does not matter (a batch of workers). Nothing
   * starts unless the whole batch is valid: an id already in the tree is a `SupervisorChildError`, checked first;
   * then every spec is decoded, and every problem (an id repeated in the batch included) is in one `ConfigError`,
   * with paths from the position each child would take in the tree (`children[3]` for the first of a batch added
   * to three children), as for `startChild`; a `concurrency` that is not a whole number >= 1 (default 16) is a
   * `ConfigError` too. Then at most `concurrency` start at a time; they take the batch's order in the tree. A
   * child that does not start is left out and listed in `failed`, in the batch's order, with its error; the
   * others run. An empty batch starts nothing. OTP has no bulk start; children added so stop together, as its
   * `simple_one_for_one` children do (see {@link make}). Traced (`Supervisor.startChildren`).
   */
  readonly startChildren: (
    specs: ReadonlyArray<ChildSpec>,
    options?: { readonly concurrency?: number | undefined }
  ) => Effect.Effect<StartChildrenResult, ConfigError | SupervisorChildError | SupervisorIntensityError>
  /**
   * Sets the size of the pool child `id` (see `pool`): members are added (numbered from the lowest free number)
   * or removed (the highest numbers: they take no new calls, finish those in flight up to their `gracefulTimeout`,
   * then stop); it succeeds once the pool has that many members, each new one started. A size that is not a whole
   * number >= 0, above the pool's `maxSize`, or outside its `autoscale`'s `min`..`max`, is a `ConfigError`; a child
   * that is not a running pool a `SupervisorChildError` (`not_a_pool`, `not_found`; a pool that is not running,
   * `stopped` or `restarting`). A member that does not start fails the call with its error, the others added stay.
   * Traced (`Supervisor.scale`).
   */
  readonly scale: (id: string, size: number) => Effect.Effect<void, StartError | SupervisorChildError>
  /**
   * The pool child `id` now: its size, routing and members (id, name, state, pid, calls in flight through the pool,
   * whether it is draining for a `scale` down); a pool that is not running, its size and routing and no members. A
   * child that is not a pool is a `SupervisorChildError` (`not_a_pool`, `not_found`).
   */
  readonly poolInfo: (id: string) => Effect.Effect<PoolInfo, SupervisorChildError>
  /**
   * Rolling reload of the agent or pool child `id` (PM2's `reload`): a new incarnation is started beside the one
   * that serves and put in its place once `ready`; the old one takes no new calls, finishes those in flight (up to
   * its `gracefulTimeout`), then stops. A pool reloads member by member, each new one up before an old one goes.
   * `config`, when given, replaces the agent's configuration (a pool's members'), decoded as the child's: the same
   * `name`, the child's restart type and stop timeouts kept. When the new incarnation does not start, the old one
   * keeps serving and this fails with the startup error. Not a restart: no intensity, backoff or breaker counts
   * it, and the child's failures are forgotten. A child that is not running is a `SupervisorChildError`
   * (`restarting`, `stopped`, for a pool too); a nested supervisor `not_an_agent`; a
   * child with a reload under way `reloading` (one at a time). A pool member that does not start makes the members
   * already reloaded go back to the running version, so the pool runs one version. Under `restore`, a child added
   * by `startChild` is written again with the new configuration (so is a pool's after `scale`), and the next run
   * starts it so; a static child's spec is the code's, and a reload of it lasts until the tree stops.
   * Traced (`Supervisor.reload`).
   */
  readonly reload: (
    id: string,
    options?: { readonly config?: Config.AgentConfig | Config.AgentConfigInput | undefined }
  ) => Effect.Effect<void, StartError | SupervisorChildError>
  readonly terminateChild: (id: string) => Effect.Effect<void, SupervisorChildError | SupervisorIntensityError>
  readonly restartChild: (id: string) => Effect.Effect<void, StartError | SupervisorChildError>
  readonly deleteChild: (id: string) => Effect.Effect<void, SupervisorChildError | SupervisorIntensityError>
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
  /**
   * Publishes a task to a topic of the tree (every supervisor of a tree shares its topics; see `Topic`) and gives
   * its id at once: delivered to one subscriber (the least loaded, a RUNNING one first) or, with `fanout`, to each,
   * retried on the topic's schedule, dead-lettered after the last attempt. A topic no child takes keeps its tasks
   * until one does. Fails with a `TopicError` (`full`: `maxQueued` tasks not yet ended; `stopped`) or a
   * `ConfigError` (bad options).
   */
  readonly publish: (
    topic: string,
    payload: unknown,
    options?: Topic.PublishOptions
  ) => Effect.Effect<string, Topic.TopicError | ConfigError>
  /**
   * A task's result once it succeeds; `TaskFailedError` once it is dead-lettered; `TopicError` (`not_found`) for
   * an id neither in flight nor kept (in memory, the last 1,000 outcomes; in the store, within its task bounds).
   * It waits while the task is in flight (for a subscriber too): `Effect.timeout` bounds the wait (the task goes
   * on), `taskOutcome` reads it at once.
   */
  readonly awaitResult: (taskId: string) => Effect.Effect<unknown, Topic.TaskFailedError | Topic.TopicError>
  /**
   * A task's outcome once it has ended (`Succeeded` with its result, `DeadLettered` with its attempts' errors),
   * `None` while it is in flight (delivering, retrying, waiting for a subscriber), at once: `awaitResult` without the
   * wait. `TopicError` as `awaitResult` fails.
   */
  readonly taskOutcome: (taskId: string) => Effect.Effect<Option.Option<Topic.TaskOutcome>, Topic.TopicError>
  /** Each task's outcome as it ends, from the moment the stream runs. */
  readonly results: Stream.Stream<Topic.TaskOutcome>
  /** A subscription to outcomes, for callers that must not miss those of tasks published right after. */
  readonly subscribeResults: Effect.Effect<Queue.Dequeue<Topic.TaskOutcome>, never, Scope.Scope>
  /** Dead-lettered tasks in the store, newest first (at most `limit`, 1,000 by default). */
  readonly deadLetters: (
    query?: { readonly topic?: string | undefined; readonly limit?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<Store.TaskRecord>>
  /** Publishes a dead-lettered task again (a new task id), and takes it out of the dead letters. */
  readonly republish: (taskId: string) => Effect.Effect<string, Topic.TopicError | ConfigError>
  /**
   * The tree's topics, by name: those its `topics` option declares, those its children take or took (running or
   * not, a deleted child's too), and those with tasks published; each with its subscribers' paths now (a child
   * stopped with its nested supervisor takes none) and its tasks not yet ended.
   */
  readonly topics: Effect.Effect<ReadonlyArray<Topic.TopicInfo>>
}

/**
 * A pool as `poolInfo` reports it.
 *
 * @since 0.1.0
 * @category views
 */
export interface PoolInfo {
  /** The pool's path in the tree (`"root/inference"`). */
  readonly name: string
  readonly size: number
  /** The most members a `scale` may ask for (the spec's `maxSize`, 1000 by default). */
  readonly maxSize: number
  readonly routing: Routing
  /** By member number. */
  readonly members: ReadonlyArray<{
    readonly id: string
    readonly name: string
    readonly state: string
    /** The member's process's pid from its spawn to its exit, as `Metadata.pid`. */
    readonly pid: Option.Option<number>
    readonly inFlight: number
    readonly draining: boolean
  }>
}

/**
 * What `startChildren` did: the ids started, in the batch's order, and those that did not start, each with why.
 *
 * @since 0.1.0
 * @category models
 */
export interface StartChildrenResult {
  readonly started: ReadonlyArray<string>
  readonly failed: ReadonlyArray<{ readonly id: string; readonly error: StartError }>
}

/**
 * Why a child could not start.
 *
 * @since 0.1.0
 * @category errors
 */
export type StartError = AgentStartupError | ConfigError | SupervisorIntensityError

/**
 * The root supervisor as a service, for `layer`. After an escalation of the root, every operation of it fails
 * with the `SupervisorIntensityError`.
 *
 * @since 0.1.0
 * @category tags
 */
export class RootSupervisor extends Context.Tag("effect-agent-supervisor/Supervisor")<RootSupervisor, Supervisor>() {}

/**
 * Starts a supervision tree: children start in order; if one fails, those started stop in reverse order and the
 * start fails. Closing the scope stops every child, each subtree whole: the children added at run time
 * (`startChild`, `startChildren`, restored) all at once, as OTP stops `simple_one_for_one` children, then the
 * static ones in reverse start order. Every agent and
 * nested supervisor of the tree writes to the `Store` it is given, which its type requires: choose the in-memory
 * one by providing `Store.layerMemory` (a store merged beside the tree, not provided to it, is a type error).
 *
 * The whole tree is decoded first, every default applied there: bad values anywhere in it (a duration, an
 * intensity, an agent's configuration, a significant permanent child) are one `ConfigError` listing every problem
 * with its path (`children[1].config.requestTimeout`), before anything starts. A child that never starts but would
 * be parked rather than make its supervisor escalate is logged as a warning, once (README "Configuration").
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<Supervisor, StartError, Scope.Scope | Store.Store> = Effect.fn(
  "Supervisor.make"
)(function*(options: Options) {
  // Every option decoded (and defaulted) at once, the whole tree with it: one ConfigError lists every problem.
  const { logs, restore, storeFlushTimeout, topics, tree } = yield* Spec.decodeRoot(options)
  const flushTimeout = storeFlushTimeout ?? Writer.DEFAULT_FLUSH_TIMEOUT
  // One store writer for the whole tree, shared by every agent and nested supervisor in it.
  const store = yield* Owned.storeFromContext
  const resilient = ResilientStore.make(store)
  // Made before the root's finalizer, so they flush after every child of the tree has stopped.
  const writer = yield* Writer.make(resilient, { flushTimeout })
  const keeper = restore ? yield* Keeper.make(store, { flushTimeout, retryAfter: Duration.seconds(1) }) : undefined
  const reports = yield* Owned.makeReports
  // The tree's topics, shared by its nested supervisors: outcomes kept through the same resilient store.
  const bus = yield* Bus.make({ topics, store: Bus.taskStoreOf(resilient), fork: yield* Forker.make })
  const onEvent = options.onEvent
  const upstream = onEvent === undefined
    ? undefined
    : { publish: onEvent, unheard: () => false, respecified: () => Effect.void }
  return yield* Instance.make(tree, upstream, makeShared({ writer, keeper, reports, logs, topics: bus }))
})

/**
 * Options of {@link layer}: the root supervisor's, and what its escalation does to the application.
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions extends Options {
  /**
   * What an escalation of the root (more restarts than its intensity allows) does to the program the layer is
   * provided to (`Effect.provide(program, layer)`, `Layer.launch(layer)`, a `Layer.merge` with others included):
   *
   * - `"fail"` (the default): once the tree has stopped, the program ends with the `SupervisorIntensityError`
   *   (as a defect, logged at Error level), so that `NodeRuntime.runMain` exits with code 1 and an outer manager
   *   (systemd, Kubernetes) restarts the service.
   * - `"keep"`: the program goes on with the tree down; every operation of the tree fails with the
   *   `SupervisorIntensityError` (`await` on {@link RootSupervisor} tells when).
   *
   * Under a `ManagedRuntime` no program waits on the layer: the tree stays down as with `"keep"`, and `dispose`
   * fails with the error.
   */
  readonly onEscalation?: "fail" | "keep" | undefined
}

/**
 * `make` as a Layer providing {@link RootSupervisor}, for composition in apps. A Layer cannot fail once built,
 * so an escalation of the root ends the program it is provided to instead (see `onEscalation`): an application
 * whose tree failed does not stay up with every call failing.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * // HttpLive: the rest of your application, e.g. an HTTP server's layer.
 * const App = Layer.mergeAll(Supervisor.layer({ children }), HttpLive).pipe(Layer.provide(Store.layerMemory))
 * Layer.launch(App).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain) // exits 1 on escalation
 * ```
 */
export const layer = (options: LayerOptions): Layer.Layer<RootSupervisor, StartError, Store.Store> =>
  Layer.scoped(
    RootSupervisor,
    Effect.suspend(() => {
      const { onEscalation, ...root } = options
      return Effect.flatMap(Root.decodeOnEscalation(onEscalation), (decided) => Root.make(make(root), decided))
    })
  )

/**
 * Starts a tree and waits for it: fails with `SupervisorIntensityError` when the root escalates; succeeds when
 * it shuts itself down (auto-shutdown).
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = (options: Options): Effect.Effect<void, StartError, Store.Store> =>
  Effect.scoped(Effect.flatMap(make(options), (sup) => sup.await))

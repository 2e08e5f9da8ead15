/**
 * Child specs of a supervision tree (OTP's child specs): an agent, a nested supervisor, or a pool of identical
 * agents behind one id. Built here, decoded by the tree (`Supervisor.make`, `startChild`), where every default is
 * applied once. `Supervisor` re-exports each of them.
 *
 * A child's `id` is unique among its siblings and not empty. A child's path below the root is the ids joined by
 * "/" (`workers/classifier`: how the admin API and the CLI name it); an id may hold a "/" itself, but not one that
 * starts with a sibling supervisor's or pool's id and "/" (`"x/y"` beside supervisor `"x"` would share its path
 * with x's child `"y"`): that is a `ConfigError` at its place.
 *
 * @since 0.1.0
 */
import type * as Config from "./Agent/Config.js"
import type { DurationInput } from "./internal/durationText.js"

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
export type Shutdown = DurationInput | "brutal-kill" | "infinity"

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
  readonly window: DurationInput
}

/**
 * An agent child, as written: what is left out takes its default when the tree is decoded (see {@link agent}).
 *
 * @since 0.1.0
 * @category specs
 */
export interface AgentSpec {
  readonly _tag: "Agent"
  readonly id: string
  readonly config: Config.AgentConfig | Config.AgentConfigInput
  readonly restart?: Config.RestartType | undefined
  readonly shutdown?: Shutdown | undefined
  readonly significant?: boolean | undefined
  readonly topics?: ReadonlyArray<string> | undefined
  readonly watch?: Watch | undefined
}

/**
 * A nested supervisor child, as written: what is left out takes its default when the tree is decoded (see
 * {@link supervisor}).
 *
 * @since 0.1.0
 * @category specs
 */
export interface SupervisorSpec {
  readonly _tag: "Supervisor"
  readonly id: string
  readonly strategy?: Strategy | undefined
  readonly intensity?: Intensity | undefined
  readonly children?: ReadonlyArray<ChildSpec> | undefined
  readonly restart?: Config.RestartType | undefined
  readonly significant?: boolean | undefined
  readonly autoShutdown?: AutoShutdown | undefined
}

/**
 * @since 0.1.0
 * @category specs
 */
export type ChildSpec = AgentSpec | SupervisorSpec | PoolSpec

/**
 * An agent child spec. Nothing is defaulted here: the tree's decoding (`make`, `startChild`) applies each default
 * once, and each setting has one source.
 *
 * - `restart`: this one when given, else the configuration's `restart`, whose default is `"permanent"` (OTP's).
 *   Given in both with different values, it is a `ConfigError` naming both.
 * - `shutdown`: the graceful phase of the agent's stop (`gracefulTimeout`); `"brutal-kill"` sets `gracefulTimeout`
 *   and `sigtermTimeout` to 0, `"infinity"` waits for the graceful exit as long as it takes. Left out, the
 *   configuration's timeouts apply; given with a configuration that sets a timeout it changes to another value, it
 *   is a `ConfigError` naming both. (A decoded `AgentConfig` cannot tell a default from a value given: there, a
 *   value other than the default counts as given.)
 * - `significant`: `false` by default; a significant child must be transient or temporary, under a supervisor
 *   whose `autoShutdown` is not `"never"` (OTP's rules), or the tree is a `ConfigError`.
 * - `topics`: the topics whose tasks it takes (`Supervisor.publish`); none by default.
 * - `watch`: development watch mode (see {@link Watch}); none by default.
 *
 * @since 0.1.0
 * @category specs
 * @example
 * ```ts
 * // transient, from its configuration: the spec need not repeat it
 * Supervisor.agent({ id: "job", config: { name: "job", command: "python3", args: ["job.py"], restart: "transient" } })
 * ```
 */
export const agent = (options: Omit<AgentSpec, "_tag">): AgentSpec => ({
  // Every key given, for the tree's decode to refuse the unknown ones; the known ones read (getters too)
  ...options,
  _tag: "Agent",
  id: options.id,
  config: options.config,
  restart: options.restart,
  shutdown: options.shutdown,
  significant: options.significant,
  topics: options.topics,
  watch: options.watch
})

/**
 * A nested supervisor child spec. Its defaults, applied when the tree is decoded, are OTP's: `"one-for-one"`,
 * 1 restart in 5 seconds, `"permanent"`, not significant, `autoShutdown` `"never"`.
 *
 * @since 0.1.0
 * @category specs
 */
export const supervisor = (options: Omit<SupervisorSpec, "_tag">): SupervisorSpec => ({
  ...options,
  _tag: "Supervisor",
  id: options.id,
  strategy: options.strategy,
  intensity: options.intensity,
  children: options.children,
  restart: options.restart,
  significant: options.significant,
  autoShutdown: options.autoShutdown
})

/**
 * Development watch mode of an agent or pool child (PM2's `--watch`): a change of a file under one of `paths`
 * (directories watched recursively) reloads the child as `Supervisor.reload` does, `debounce` (500 ms by default)
 * after the last change of a burst; a new version that does not start is logged and the running one serves on.
 *
 * @since 0.1.0
 * @category models
 */
export interface Watch {
  readonly paths: ReadonlyArray<string>
  readonly debounce?: DurationInput | undefined
}

/**
 * How a pool picks the member that takes a call: the RUNNING member with the fewest calls in flight through the
 * pool (`"least-in-flight"`, the default; ties go to the member that has waited longest), or each RUNNING member in
 * turn (`"round-robin"`, PM2's cluster mode).
 *
 * @since 0.1.0
 * @category models
 */
export type Routing = "least-in-flight" | "round-robin"

/**
 * A pool's autoscaling (Kubernetes' horizontal autoscaler, for a pool): every `interval` (1 second by default) the
 * pool's load is read and the pool scaled toward `target` of it per member, between `min` and `max`, at most once
 * per `coolDown` (30 seconds by default). `metric` `"in-flight"` (the default): the calls in flight through the
 * pool, `ceil(load / target)` members. `"queue"`: the calls past the members' `maxInFlight`, waiting to be sent;
 * while any wait, `ceil(waiting / target)` more members, and back to `min` once the pool is idle. The pool's `size`
 * is where it starts, within `min` and `max`; a `scale` by hand must be within them too (a `ConfigError` else) and
 * holds for `coolDown`, then the autoscaler decides again.
 *
 * @since 0.1.0
 * @category models
 */
export interface Autoscale {
  readonly min: number
  readonly max: number
  readonly target: number
  readonly metric?: "in-flight" | "queue" | undefined
  readonly interval?: DurationInput | undefined
  readonly coolDown?: DurationInput | undefined
}

/**
 * A pool child, as written (see {@link pool}).
 *
 * @since 0.1.0
 * @category specs
 */
export interface PoolSpec {
  readonly _tag: "Pool"
  readonly id: string
  readonly size: number
  /**
   * The most members the pool may have: its `size`, a `scale` and `autoscale.max` above it are a `ConfigError`.
   * A whole number of 1 or more; 1000 by default (each member is a process: a typo or a runaway `scale` must not
   * start a hundred thousand). Kubernetes' `maxReplicas` keeps an autoscaler within bounds the same way.
   */
  readonly maxSize?: number | undefined
  readonly config: Config.AgentConfig | Config.AgentConfigInput
  readonly routing?: Routing | undefined
  readonly autoscale?: Autoscale | undefined
  readonly intensity?: Intensity | undefined
  readonly restart?: Config.RestartType | undefined
  readonly shutdown?: Shutdown | undefined
  readonly significant?: boolean | undefined
  readonly topics?: ReadonlyArray<string> | undefined
  readonly watch?: Watch | undefined
}

/**
 * A pool child spec: `size` identical agents of `config` as one child of the tree, as PM2's cluster mode runs N
 * instances of one app. Member `i` (from 0) is the agent child `"<i>"` of the pool (its path `"<pool id>/<i>"`),
 * named `"<config.name>-<i>"` in its events, logs and store records.
 *
 * - `Supervisor.call(id, ...)` and `callStream` on the pool's parent route each call to one RUNNING member (see
 *   {@link Routing}); while none runs, a call waits for one within its timeout (the members' `requestTimeout`
 *   unless the call gives its own) and then fails with `AgentTimeoutError` (`operation` `"start"`).
 * - Members restart one for one under their configuration's backoff and breaker; a member's failure is that
 *   member's alone. Without `intensity`, their restarts count toward the intensity of the pool's parent, so the
 *   pool escalates only when the tree's intensity says so (and then its parent, having counted those restarts,
 *   escalates too, as OTP's would for its own children); with one, the pool has its own (as a nested supervisor).
 * - `Supervisor.scale(id, n)` changes the size at run time: new members start, removed ones (the highest numbers)
 *   take no new calls, finish those in flight (up to their `gracefulTimeout`) and stop. The size outlives a restart
 *   of the pool (not the tree: under `restore` the store keeps the size the pool was added with).
 * - `restart`, `shutdown` and `significant` are the pool's own as a child of its parent (`"permanent"`, the
 *   members' stop timeouts, `false` by default); `shutdown` applies to each member's stop too.
 * - `size` is a whole number of 0 or more, at most `maxSize` (1000 by default); bad values are part of the tree's
 *   `ConfigError`, with paths.
 * - `topics`: the pool takes the tasks of these topics as one subscriber, each routed to a member as a call is.
 * - `autoscale`: the pool sizes itself between `min` and `max` (see {@link Autoscale}).
 *
 * @since 0.1.0
 * @category specs
 * @example
 * ```ts
 * Supervisor.pool({ id: "inference", size: 4, config: { name: "inference", ...Adapters.pythonCallback("infer.py", "run") } })
 * ```
 */
export const pool = (options: Omit<PoolSpec, "_tag">): PoolSpec => ({
  ...options,
  _tag: "Pool",
  id: options.id,
  size: options.size,
  maxSize: options.maxSize,
  config: options.config,
  routing: options.routing,
  autoscale: options.autoscale,
  intensity: options.intensity,
  restart: options.restart,
  shutdown: options.shutdown,
  significant: options.significant,
  topics: options.topics,
  watch: options.watch
})

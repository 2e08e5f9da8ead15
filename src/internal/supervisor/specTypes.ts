/**
 * The shapes of decoded child specs and tree settings (`spec.ts` decodes them): what the machinery sees, never raw
 * input.
 *
 * @internal
 */
import type * as Duration from "effect/Duration"
import type * as Config from "../../Agent/Config.js"
import type * as RestartPolicy from "../../Agent/RestartPolicy.js"
import type * as Supervisor from "../../Supervisor.js"
import type * as LogSettings from "../logFiles/settings.js"
import type * as TopicSettings from "../topics/settings.js"

/** A supervisor's own settings, decoded: the root's options or a nested supervisor's spec. */
export interface Tree {
  /** Its path in the tree (`"root/workers"`). */
  readonly name: string
  /** Its path below the root, as the admin API and the CLI name children (`"workers"`; `""` or none for the root). */
  readonly path?: string | undefined
  readonly strategy: Supervisor.Strategy
  readonly intensity: { readonly maxRestarts: number; readonly window: Duration.Duration }
  readonly autoShutdown: Supervisor.AutoShutdown
  readonly children: ReadonlyArray<ChildSpec>
  /** A pool's settings: its children are its members, made from these at each start (see `pool.ts`). */
  readonly pool?: PoolSettings | undefined
}

/** A pool's autoscaling, decoded. */
export interface Autoscale {
  readonly min: number
  readonly max: number
  readonly metric: "in-flight" | "queue"
  readonly target: number
  readonly interval: Duration.Duration
  readonly coolDown: Duration.Duration
}

/** A pool, decoded. `scale` sets `size` and `reload` `member`: both outlive the pool's restarts. */
export interface PoolSettings {
  readonly routing: Supervisor.Routing
  /**
   * Each member's spec but its id and name: member `i` is `"<i>"`, named `"<config.name>-<i>"`. Replaced by a
   * reload with a new configuration.
   */
  member: AgentSpec
  /** Its members' restarts count toward its parent's intensity (no intensity of its own was given). */
  readonly sharesIntensity: boolean
  /** Sizes itself between `min` and `max` (`autoscale.ts`). */
  readonly autoscale: Autoscale | undefined
  size: number
  /** The most members `size`, a `scale` and `autoscale.max` may ask for. */
  readonly maxSize: number
}

/** The root's options, decoded. */
export interface Root {
  readonly tree: Tree
  /** As given; `undefined` leaves the store writer's default. */
  readonly storeFlushTimeout: Duration.Duration | undefined
  /** Whether the tree keeps its children in the store and brings them back (`false` by default). */
  readonly restore: boolean
  /** Where every agent of the tree writes its stderr, if anywhere. */
  readonly logs: LogSettings.Settings | undefined
  /** The topics the options name, with their settings. */
  readonly topics: TopicSettings.DecodedTopics
}

/** A child's watch mode, decoded: reload it `debounce` after the last change under `paths`. */
export interface Watch {
  readonly paths: ReadonlyArray<string>
  readonly debounce: Duration.Duration
}

/** What every decoded child has. */
export interface Common {
  readonly id: string
  readonly restart: Config.RestartType
  readonly significant: boolean
  /** What the restart rules read for this child. */
  readonly settings: RestartPolicy.Settings
}

/** An agent child, decoded. */
export interface AgentSpec extends Common {
  readonly _tag: "Agent"
  /** The topics it takes tasks of. */
  readonly topics: ReadonlyArray<string>
  readonly watch: Watch | undefined
  /** The agent's configuration with the child's restart type and shutdown applied. */
  readonly config: Config.AgentConfig
}

/** A nested supervisor child, decoded. */
export interface SupervisorSpec extends Common {
  readonly _tag: "Supervisor"
  readonly tree: Tree
  /** A pool's topics (a plain nested supervisor takes none: its agents do). */
  readonly topics: ReadonlyArray<string>
  /** A pool's watch mode (a plain nested supervisor has none). */
  readonly watch: Watch | undefined
}

/** A decoded child spec. */
export type ChildSpec = AgentSpec | SupervisorSpec

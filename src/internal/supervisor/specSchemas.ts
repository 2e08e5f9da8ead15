/**
 * The schemas of what a tree's specs say besides agent configurations: a supervisor's own settings (OTP's
 * defaults), the root's, and a child's own fields by kind. `spec.ts` decodes with them.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import * as Config from "../../Agent/Config.js"
import type * as RestartPolicy from "../../Agent/RestartPolicy.js"
import type * as Supervisor from "../../Supervisor.js"
import * as LogSettings from "../logFiles/settings.js"
import { DEFAULT_MAX_POOL_SIZE } from "../poolSize.js"
import * as Edge from "../schema.js"

/** The message of a whole value that fails, instead of the first alternative it did not match. */
export const says = (message: string) => ({ message: () => ({ message, override: true }) })

export const withDefault = <A, I>(schema: Schema.Schema<A, I>, value: () => A) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/** Restart intensity: at most `maxRestarts` in `window`. */
export const IntensitySchema = Schema.Struct({ maxRestarts: Edge.Count, window: Edge.DurationInput })

/** OTP's defaults for a supervisor: one-for-one, 1 restart in 5 seconds. */
export const TreeOwn = Schema.Struct({
  strategy: withDefault(
    Schema.Literal("one-for-one", "one-for-all", "rest-for-one").annotations(
      says(`must be "one-for-one", "one-for-all" or "rest-for-one"`)
    ),
    () => "one-for-one" as const
  ),
  intensity: withDefault(IntensitySchema, () => ({ maxRestarts: 1, window: Duration.seconds(5) })),
  children: withDefault(
    Schema.Array(Schema.Unknown).annotations(says("must be an array of child specs")),
    () => []
  )
})

/** Decoded apart, so that the children's checks know it even when another setting of the tree is bad. */
export const TreeAutoShutdown = Schema.Struct({
  autoShutdown: withDefault(
    Schema.Literal("never", "any-significant", "all-significant").annotations(
      says(`must be "never", "any-significant" or "all-significant"`)
    ),
    () => "never" as const
  )
})

export const RootOwn = Schema.Struct({
  storeFlushTimeout: Schema.optionalWith(Edge.DurationInput, { exact: true }),
  restore: withDefault(Schema.Boolean.annotations(says("must be true or false")), () => false),
  logs: Schema.optionalWith(LogSettings.SettingsSchema, { exact: true })
})

/** A child's own fields. `restart` has no default here: an agent's comes from its configuration. */
export const ChildOwn = {
  // An empty id could never be addressed (`status`, the CLI and the admin API name a child by its path of ids),
  // nor one a URL reads as a step up or in place (`..`, `a/./b`): HTTP clients rewrite such paths before sending
  id: Schema.String.pipe(Schema.minLength(1)).annotations(
    says("must not be empty: a child is addressed by its id (its path below the root, `workers/echo`)")
  ).pipe(
    Schema.filter((id) => !id.split("/").some((step) => step === "." || step === ".."), {
      message: () =>
        `must not be "." or "..", nor hold them between "/": a child is addressed by its path in a URL, where ` +
        `they are read as steps of the path itself (the admin API and the CLI could not reach it)`
    })
  ),
  restart: Schema.optionalWith(
    Config.RestartType.annotations(says(`must be "permanent", "transient" or "temporary"`)),
    { exact: true }
  ),
  significant: withDefault(Schema.Boolean.annotations(says("must be true or false")), () => false)
}

/** The topics a child takes tasks of (`Supervisor.publish`): names, none by default. */
const Topics = withDefault(
  Schema.Array(
    Schema.String.annotations(says("must be a topic name (a non-empty string)")).pipe(
      Schema.filter((name) => name.length > 0, { message: () => "must be a topic name (a non-empty string)" })
    )
  ).annotations({ message: () => ({ message: "must be an array of topic names", override: false }) }),
  () => []
)

/** Development watch mode: reload the child when a file under `paths` changes, `debounce` after the last change. */
const Watch = Schema.optionalWith(
  Schema.Struct({
    paths: Schema.NonEmptyArray(Schema.String).annotations(says("must be a non-empty array of paths")),
    debounce: withDefault(Edge.DurationInput, () => Duration.millis(500))
  }),
  { exact: true }
)

export const AgentOwn = Schema.Struct({
  ...ChildOwn,
  topics: Topics,
  watch: Watch,
  shutdown: Schema.optionalWith(
    Schema.Union(Schema.Literal("brutal-kill", "infinity"), Edge.DurationInput).annotations(
      says(`must be a duration like "5 seconds" (the graceful phase), "brutal-kill" or "infinity"`)
    ),
    { exact: true }
  )
})

export const SupervisorOwn = Schema.Struct(ChildOwn)

/** A pool's own fields (its member configuration is decoded as an agent child's). */
export const PoolOwn = Schema.Struct({
  ...ChildOwn,
  topics: Topics,
  watch: Watch,
  size: Edge.Count,
  maxSize: withDefault(Edge.CountOfOne, () => DEFAULT_MAX_POOL_SIZE),
  routing: withDefault(
    Schema.Literal("least-in-flight", "round-robin").annotations(says(`must be "least-in-flight" or "round-robin"`)),
    () => "least-in-flight" as const
  ),
  intensity: Schema.optionalWith(IntensitySchema, { exact: true }),
  autoscale: Schema.optionalWith(
    Schema.Struct({
      min: Edge.Count,
      max: Edge.Count.pipe(Schema.filter((n) => n >= 1, { message: () => "must be 1 or more" })),
      metric: withDefault(
        Schema.Literal("in-flight", "queue").annotations(says(`must be "in-flight" or "queue"`)),
        () => "in-flight" as const
      ),
      target: Schema.Number.annotations(says("must be a number above 0")).pipe(
        Schema.filter((n) => Number.isFinite(n) && n > 0, { message: () => "must be a number above 0" })
      ),
      interval: withDefault(Edge.DurationInput, () => Duration.seconds(1)),
      coolDown: withDefault(Edge.DurationInput, () => Duration.seconds(30))
    }),
    { exact: true }
  )
})

/** The keys of each kind of child spec, and of a root's options: any other is a problem (`Edge.unknownKeys`). */
export const AGENT_KEYS = Edge.allKeysOf<Supervisor.AgentSpec>()([
  "_tag",
  "id",
  "config",
  "restart",
  "shutdown",
  "significant",
  "topics",
  "watch"
])
export const SUPERVISOR_KEYS = Edge.allKeysOf<Supervisor.SupervisorSpec>()([
  "_tag",
  "id",
  "strategy",
  "intensity",
  "children",
  "restart",
  "significant",
  "autoShutdown"
])
export const POOL_KEYS = Edge.allKeysOf<Supervisor.PoolSpec>()([
  "_tag",
  "id",
  "size",
  "maxSize",
  "config",
  "routing",
  "autoscale",
  "intensity",
  "restart",
  "shutdown",
  "significant",
  "topics",
  "watch"
])
export const ROOT_KEYS = Edge.allKeysOf<Supervisor.Options>()([
  "name",
  "strategy",
  "intensity",
  "children",
  "autoShutdown",
  "onEvent",
  "storeFlushTimeout",
  "restore",
  "logs",
  "topics"
])

/** Nested supervisors restart at once (as in OTP) and have no breaker of their own: intensity bounds them. */
export const supervisorChildSettings = (restart: Config.RestartType): RestartPolicy.Settings => ({
  restartOnExit: true,
  restart,
  maxRestartAttempts: Number.MAX_SAFE_INTEGER,
  restartBackoff: Duration.zero,
  backoffFactor: 1,
  jitter: 0,
  maxBackoff: Duration.zero,
  resetAfter: Duration.infinity
})

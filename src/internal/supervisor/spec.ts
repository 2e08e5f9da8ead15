/**
 * Child specs decoded at the edge: the public constructors (`Supervisor.make`, `startChild`) turn what a user
 * wrote into these, and the machinery never sees raw input. A bad value is a `ConfigError` naming the field in
 * the tree (`root/workers.intensity.window`), never a throw later.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Config from "../../Agent/Config.js"
import type * as RestartPolicy from "../../Agent/RestartPolicy.js"
import { ConfigError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import * as Edge from "../schema.js"

/** A supervisor's own settings, decoded: the root's options or a nested supervisor's spec. */
export interface Tree {
  /** Its path in the tree (`"root/workers"`). */
  readonly name: string
  readonly strategy: Supervisor.Strategy
  readonly intensity: { readonly maxRestarts: number; readonly window: Duration.Duration }
  readonly autoShutdown: Supervisor.AutoShutdown
  readonly children: ReadonlyArray<ChildSpec>
}

/** What every decoded child has. */
interface Common {
  readonly id: string
  readonly restart: Config.RestartType
  readonly significant: boolean
  /** What the restart rules read for this child. */
  readonly settings: RestartPolicy.Settings
}

/** An agent child, decoded. */
export interface AgentSpec extends Common {
  readonly _tag: "Agent"
  /** The agent's configuration with the child's restart type and shutdown applied. */
  readonly config: Config.AgentConfig
}

/** A nested supervisor child, decoded. */
export interface SupervisorSpec extends Common {
  readonly _tag: "Supervisor"
  readonly tree: Tree
}

/** A decoded child spec. */
export type ChildSpec = AgentSpec | SupervisorSpec

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

/** The message of a whole value that fails, instead of the first alternative it did not match. */
const says = (message: string) => ({ message: () => ({ message, override: true }) })

const TreeSettings = Schema.Struct({
  strategy: Schema.Literal("one-for-one", "one-for-all", "rest-for-one").annotations(
    says(`must be "one-for-one", "one-for-all" or "rest-for-one"`)
  ),
  intensity: Schema.Struct({
    maxRestarts: Schema.Number.annotations(says("must be an integer of 0 or more")).pipe(
      Schema.filter((n) => Number.isInteger(n) && n >= 0, { message: () => "must be an integer of 0 or more" })
    ),
    window: Edge.DurationInput
  }),
  autoShutdown: Schema.Literal("never", "any-significant", "all-significant").annotations(
    says(`must be "never", "any-significant" or "all-significant"`)
  )
})

const Shutdown = Schema.Union(Schema.Literal("brutal-kill", "infinity"), Edge.DurationInput).annotations(
  says(`must be a duration like "5 seconds" (the graceful phase), "brutal-kill" or "infinity"`)
)

const ChildSettings = Schema.Struct({
  id: Schema.String,
  restart: Config.RestartType.annotations(says(`must be "permanent", "transient" or "temporary"`)),
  significant: Schema.Boolean.annotations(says("must be true or false")),
  shutdown: Schema.optional(Shutdown)
})

/**
 * The error of a child spec that is not an object with a string `id` (`null`, a number, a spec built by hand
 * wrongly), or `undefined` when it has that shape. Checked before anything reads the spec's fields.
 */
export const checkShape = (name: string, spec: unknown, index: number): ConfigError | undefined =>
  typeof spec === "object" && spec !== null && typeof (spec as { id?: unknown }).id === "string"
    ? undefined
    : new ConfigError({
      field: `${name}.children.${index}`,
      rule: "must be a child spec with a string id, made with Supervisor.agent or Supervisor.supervisor",
      value: spec === undefined ? "undefined" : JSON.stringify(spec) ?? String(spec)
    })

/**
 * The rules over a supervisor's children as a whole: ids are unique, and a significant child is not permanent.
 * Read from the specs as written, so it checks raw and decoded specs alike.
 */
export const validate = (
  name: string,
  children: ReadonlyArray<Pick<Supervisor.ChildSpec, "id" | "restart" | "significant">>
): Effect.Effect<void, ConfigError> =>
  Effect.suspend(() => {
    const seen = new Set<string>()
    for (const [index, spec] of children.entries()) {
      const notASpec = checkShape(name, spec, index)
      if (notASpec !== undefined) return Effect.fail(notASpec)
      if (seen.has(spec.id)) {
        return Effect.fail(
          new ConfigError({ field: `${name}.children`, rule: "child ids must be unique", value: spec.id })
        )
      }
      seen.add(spec.id)
      if (spec.significant && spec.restart === "permanent") {
        return Effect.fail(
          new ConfigError({
            field: `${name}.children.${spec.id}.significant`,
            rule: "a significant child must be transient or temporary (as in OTP)"
          })
        )
      }
    }
    return Effect.void
  })

/** A supervisor's settings with defaults applied, as the root's options and a nested spec both give them. */
export interface TreeInput {
  readonly strategy: Supervisor.Strategy
  readonly intensity: Supervisor.Intensity
  readonly children: ReadonlyArray<Supervisor.ChildSpec>
  readonly autoShutdown: Supervisor.AutoShutdown
}

/** Decodes a supervisor and, depth first, every child below it. */
export const decodeTree = (name: string, input: TreeInput): Effect.Effect<Tree, ConfigError> =>
  Effect.gen(function*() {
    if (!Array.isArray(input.children)) {
      return yield* new ConfigError({ field: `${name}.children`, rule: "must be an array of child specs" })
    }
    yield* validate(name, input.children)
    const settings = yield* Edge.decodeOptions(
      TreeSettings,
      { strategy: input.strategy, intensity: input.intensity, autoShutdown: input.autoShutdown },
      { whole: name, prefix: name }
    )
    const children = yield* Effect.forEach(input.children, (child, index) => decodeChild(name, child, index))
    return { name, ...settings, children }
  })

/** Decodes one child of the supervisor `name` (its position is named when its id is unusable). */
export const decodeChild = (
  name: string,
  spec: Supervisor.ChildSpec,
  index: number
): Effect.Effect<ChildSpec, ConfigError> =>
  Effect.gen(function*() {
    const where = `${name}.children.${typeof spec?.id === "string" ? spec.id : index}`
    if (spec?._tag !== "Agent" && spec?._tag !== "Supervisor") {
      return yield* new ConfigError({
        field: where,
        rule: "must be made with Supervisor.agent or Supervisor.supervisor"
      })
    }
    const common = yield* Edge.decodeOptions(
      ChildSettings,
      {
        id: spec.id,
        restart: spec.restart,
        significant: spec.significant,
        shutdown: spec._tag === "Agent" ? spec.shutdown : undefined
      },
      { whole: where, prefix: where, undefinedIsAbsent: true }
    )
    const { id, restart, shutdown, significant } = common
    if (spec._tag === "Supervisor") {
      const tree = yield* decodeTree(`${name}/${id}`, spec)
      return { _tag: "Supervisor", id, restart, significant, settings: supervisorChildSettings(restart), tree }
    }
    const config = yield* Config.make(spec.config)
    const overrides = shutdown === undefined
      ? {}
      : shutdown === "brutal-kill"
      ? { gracefulTimeout: Duration.zero, sigtermTimeout: Duration.zero }
      : shutdown === "infinity"
      ? { gracefulTimeout: Duration.infinity }
      : { gracefulTimeout: shutdown }
    return {
      _tag: "Agent",
      id,
      restart,
      significant,
      settings: { ...config, restart },
      config: yield* Config.make({ ...config, restart, ...overrides })
    }
  })

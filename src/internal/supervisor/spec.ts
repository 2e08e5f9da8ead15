/**
 * Child specs decoded at the edge: the public constructors (`Supervisor.make`, `startChild`) turn what a user
 * wrote into these, and the machinery never sees raw input. Every default of a tree is applied here, once. A bad
 * tree is one `ConfigError` listing every problem in it, each with its path (`children[1].config.requestTimeout`,
 * `children[0].children[2].config.name`, the root's own `intensity.window`), never a throw later; a tree in which
 * a child that never starts would be parked rather than escalate is logged as a warning.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Config from "../../Agent/Config.js"
import type { ConfigError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import { toDuration } from "../durationText.js"
import { sizeProblems } from "../poolSize.js"
import * as Edge from "../schema.js"
import * as TopicSettings from "../topics/settings.js"
import { warnTree } from "./namesakes.js"
import { nestedIn, parkedChild, warnParked } from "./parked.js"
import { pathClashes, type Sibling } from "./pathClash.js"
import * as Own from "./specSchemas.js"

export type { AgentSpec, Autoscale, ChildSpec, PoolSettings, Root, SupervisorSpec, Tree, Watch } from "./specTypes.js"
import type { AgentSpec, ChildSpec, PoolSettings, Root, SupervisorSpec, Tree, Watch } from "./specTypes.js"

let defaultConfig: Config.AgentConfig | undefined
/** An agent configuration with every default: the one source of the defaults a child spec inherits. */
const defaults = (): Config.AgentConfig =>
  defaultConfig ??= new Config.AgentConfig({ name: "defaults", command: "defaults" })

/** The supervisor whose children are being decoded, as its children's checks need it. */
interface Parent extends Pick<Tree, "name" | "path"> {
  /** Its `autoShutdown`, or `undefined` when that is itself bad (a problem reported already). */
  readonly autoShutdown: Supervisor.AutoShutdown | undefined
  /** Where its `autoShutdown` is written. */
  readonly autoShutdownAt: string
  /** Its intensity, or `undefined` when that is itself bad: a pool without one shares it. */
  readonly intensity: Tree["intensity"] | undefined
  /** Whether a key of a child spec that no setting has is a problem (not when a tree file's schema checked them). */
  readonly checkKeys: boolean
}

/** The problems of the keys of `spec` at `at` that are not `known`, when its parent checks them. */
const checkKeys = (parent: Parent, spec: unknown, known: ReadonlyArray<string>, at: string, problems: Problems) => {
  if (parent.checkKeys) problems.push(...Edge.unknownKeys(spec, known, at))
}

type Problems = Array<Edge.Problem>

/** The keys of `input` that a schema decodes (an input that is not an object has none). */
const pick = (input: unknown, keys: ReadonlyArray<string>): Record<string, unknown> =>
  typeof input === "object" && input !== null
    ? Object.fromEntries(keys.map((key) => [key, (input as Record<string, unknown>)[key]]))
    : {}

const isSpecShaped = (spec: unknown): spec is Supervisor.ChildSpec =>
  typeof spec === "object" && spec !== null && typeof (spec as { id?: unknown }).id === "string"

const notASpec = (at: string, spec: unknown): Edge.Problem => ({
  field: at,
  rule: "must be a child spec with a string id, made with Supervisor.agent, Supervisor.supervisor or Supervisor.pool",
  value: Edge.show(spec) ?? "undefined"
})

/**
 * The error of a child spec that is not an object with a string `id` (`null`, a number, a spec built by hand
 * wrongly), or `undefined` when it has that shape: checked before anything reads the spec's fields.
 */
export const checkShape = (_name: string, spec: unknown, index: number): ConfigError | undefined =>
  isSpecShaped(spec) ? undefined : Edge.configError([notASpec(Edge.pathOf(undefined, ["children", index]), spec)])

/** OTP's rules for a significant child: not permanent, and a supervisor that shuts itself down for it. */
const checkSignificant = (
  parent: Parent,
  significant: boolean,
  restart: Config.RestartType,
  at: string,
  problems: Problems
): void => {
  if (!significant) return
  if (restart === "permanent") {
    problems.push({
      field: `${at}.significant`,
      rule: `a significant child must be transient or temporary (as in OTP); its restart is "permanent"`,
      value: "true"
    })
  }
  if (parent.autoShutdown === "never") {
    problems.push({
      field: `${at}.significant`,
      rule: `a significant child needs its supervisor's autoShutdown ("${parent.autoShutdownAt}") to be ` +
        `"any-significant" or "all-significant", not "never" (as in OTP): nothing would read its exit`,
      value: "true"
    })
  }
}

type StopKey = "gracefulTimeout" | "sigtermTimeout"

/** The stop timeouts a child's `shutdown` sets. */
const stopTimeouts = (shutdown: Supervisor.Shutdown | undefined): Partial<Record<StopKey, Duration.Duration>> =>
  shutdown === undefined
    ? {}
    : shutdown === "brutal-kill"
    ? { gracefulTimeout: Duration.zero, sigtermTimeout: Duration.zero }
    : shutdown === "infinity"
    ? { gracefulTimeout: Duration.infinity }
    : { gracefulTimeout: toDuration(shutdown) }

/**
 * Whether the configuration as written gives `key`: present in raw input; in a decoded configuration (whose
 * defaults cannot be told from values given), a value other than the default.
 */
const gives = (input: unknown, decoded: Config.AgentConfig, key: "restart" | StopKey): boolean =>
  input instanceof Config.AgentConfig
    ? !Equal.equals(decoded[key], defaults()[key])
    : (input as Record<string, unknown>)[key] !== undefined

const showSetting = (value: string | Duration.Duration): string =>
  typeof value === "string" ? `"${value}"` : Duration.format(value)

/** Decodes an agent child at `at`; `undefined` when it has problems (added to `problems`). */
const decodeAgent = (parent: Parent, spec: Supervisor.AgentSpec, at: string, problems: Problems) => {
  const before = problems.length
  checkKeys(parent, spec, Own.AGENT_KEYS, at, problems)
  const own = Edge.decodeInto(
    Own.AgentOwn,
    pick(spec, ["id", "restart", "significant", "shutdown", "topics", "watch"]),
    { whole: at, prefix: at, undefinedIsAbsent: true },
    problems
  )
  const configAt = `${at}.config`
  const config = spec.config instanceof Config.AgentConfig
    ? spec.config
    : Edge.decodeInto(Config.AgentConfig, spec.config, { whole: configAt, prefix: configAt }, problems)
  if (config !== undefined) problems.push(...Config.identityProblems(config, configAt))
  if (own === undefined || config === undefined || problems.length > before) return undefined
  // One value for each setting: the spec's or the configuration's, never both with different values.
  if (own.restart !== undefined && own.restart !== config.restart && gives(spec.config, config, "restart")) {
    problems.push({
      field: `${at}.restart`,
      rule: `conflicts with ${configAt}.restart (${showSetting(config.restart)}): give the restart type in one place`,
      value: showSetting(own.restart)
    })
  }
  const restart = own.restart ?? config.restart
  const stop = stopTimeouts(own.shutdown)
  const clashes = (Object.keys(stop) as Array<StopKey>).filter((key) =>
    gives(spec.config, config, key) && !Equal.equals(config[key], stop[key])
  )
  if (clashes.length > 0) {
    problems.push({
      field: `${at}.shutdown`,
      rule: `conflicts with ${clashes.map((key) => `${configAt}.${key} (${showSetting(config[key])})`).join(" and ")}` +
        `: give the stop timeouts in one place ("brutal-kill" sets both to 0, a duration sets gracefulTimeout)`,
      value: Edge.show(spec.shutdown) ?? ""
    })
  }
  checkSignificant(parent, own.significant, restart, at, problems)
  if (problems.length > before) return undefined
  const decoded = restart === config.restart && clashes.length === 0 && own.shutdown === undefined
    ? config
    : new Config.AgentConfig({ ...config, restart, ...stop })
  const child: AgentSpec = {
    _tag: "Agent",
    id: own.id,
    topics: own.topics,
    watch: own.watch,
    restart,
    significant: own.significant,
    settings: decoded,
    config: decoded
  }
  return child
}

/** A nested supervisor's child spec, a pool's included: its restart settings follow its restart type. */
const supervisorChild = (
  own: { readonly id: string; readonly significant: boolean },
  restart: Config.RestartType,
  tree: Tree,
  topics: ReadonlyArray<string>,
  watch: Watch | undefined
): SupervisorSpec => ({
  _tag: "Supervisor",
  id: own.id,
  restart,
  significant: own.significant,
  settings: Own.supervisorChildSettings(restart),
  tree,
  topics,
  watch
})

/** Decodes a nested supervisor child at `at`, its subtree included. */
const decodeSupervisor = (parent: Parent, spec: Supervisor.SupervisorSpec, at: string, problems: Problems) => {
  const before = problems.length
  checkKeys(parent, spec, Own.SUPERVISOR_KEYS, at, problems)
  const own = Edge.decodeInto(
    Own.SupervisorOwn,
    pick(spec, ["id", "restart", "significant"]),
    { whole: at, prefix: at, undefinedIsAbsent: true },
    problems
  )
  const tree = decodeTreeAt(nestedIn(parent, spec.id), at, spec, parent.checkKeys, problems)
  const restart = own?.restart ?? defaults().restart
  if (own !== undefined) checkSignificant(parent, own.significant, restart, at, problems)
  if (own === undefined || tree === undefined || problems.length > before) return undefined
  return supervisorChild(own, restart, tree, [], undefined)
}

/**
 * Decodes a pool child at `at`: its own fields, and its members' configuration once, as an agent child's
 * (`<at>.config...`, `<at>.shutdown`). The pool is a one-for-one supervisor of its members that never shuts itself
 * down; its own restart type is `"permanent"` by default, as a nested supervisor's.
 */
const decodePool = (parent: Parent, spec: Supervisor.PoolSpec, at: string, problems: Problems) => {
  const before = problems.length
  checkKeys(parent, spec, Own.POOL_KEYS, at, problems)
  const own = Edge.decodeInto(
    Own.PoolOwn,
    pick(spec, Own.POOL_KEYS.filter((key) => key !== "_tag" && key !== "config" && key !== "shutdown")),
    { whole: at, prefix: at, undefinedIsAbsent: true },
    problems
  )
  const named = nestedIn(parent, spec.id)
  const members: Parent = {
    ...named,
    autoShutdown: "never",
    autoShutdownAt: `${at}.autoShutdown`,
    intensity: undefined,
    checkKeys: parent.checkKeys
  }
  const member = decodeAgent(
    members,
    { _tag: "Agent", id: "0", config: spec.config, shutdown: spec.shutdown },
    at,
    problems
  )
  const restart = own?.restart ?? defaults().restart
  if (own !== undefined) checkSignificant(parent, own.significant, restart, at, problems)
  const intensity = own?.intensity ?? parent.intensity
  if (own !== undefined) problems.push(...sizeProblems(own, at))
  if (own === undefined || member === undefined || intensity === undefined || problems.length > before) return undefined
  const scaling = own.autoscale
  const pool: PoolSettings = {
    routing: own.routing,
    member,
    sharesIntensity: own.intensity === undefined,
    size: own.size,
    maxSize: own.maxSize,
    autoscale: scaling
  }
  const tree: Tree = { ...named, strategy: "one-for-one", intensity, autoShutdown: "never", children: [], pool }
  return supervisorChild(own, restart, tree, own.topics, own.watch)
}

/** Decodes one child at `at`; `seen` maps the ids of its siblings so far to where they are. */
const decodeChildAt = (
  parent: Parent,
  spec: unknown,
  at: string,
  seen: Map<string, string>,
  problems: Problems
): ChildSpec | undefined => {
  if (!isSpecShaped(spec)) {
    problems.push(notASpec(at, spec))
    return undefined
  }
  const first = seen.get(spec.id)
  if (first !== undefined) {
    problems.push({
      field: `${at}.id`,
      rule: `child ids must be unique: ${first} has it too`,
      value: JSON.stringify(spec.id)
    })
  } else {
    seen.set(spec.id, at)
  }
  if (spec._tag === "Agent") return decodeAgent(parent, spec, at, problems)
  if (spec._tag === "Supervisor") return decodeSupervisor(parent, spec, at, problems)
  if (spec._tag === "Pool") return decodePool(parent, spec, at, problems)
  problems.push({ field: at, rule: "must be made with Supervisor.agent, Supervisor.supervisor or Supervisor.pool" })
  return undefined
}

/**
 * Decodes a supervisor's settings and every child below it, depth first, collecting every problem instead of
 * stopping at the first. `named` is its name and path, `at` where it is written (`undefined` for the root).
 */
const decodeTreeAt = (
  named: Pick<Tree, "name" | "path">,
  at: string | undefined,
  input: unknown,
  keysChecked: boolean,
  problems: Problems
): Tree | undefined => {
  const before = problems.length
  const where = { whole: at ?? "(options)", prefix: at, undefinedIsAbsent: true }
  const own = Edge.decodeInto(Own.TreeOwn, pick(input, ["strategy", "intensity", "children"]), where, problems)
  const shutdown = Edge.decodeInto(Own.TreeAutoShutdown, pick(input, ["autoShutdown"]), where, problems)
  const raw = pick(input, ["children"]).children
  const parent: Parent = {
    ...named,
    autoShutdown: shutdown?.autoShutdown,
    autoShutdownAt: Edge.pathOf(at, ["autoShutdown"]),
    intensity: own?.intensity,
    checkKeys: keysChecked
  }
  const seen = new Map<string, string>()
  const given: ReadonlyArray<unknown> = own?.children ?? (Array.isArray(raw) ? raw : [])
  const children = given.map((child, index) =>
    decodeChildAt(parent, child, Edge.pathOf(at, ["children", index]), seen, problems)
  )
  problems.push(...pathClashes(siblingsOf(given, (index) => Edge.pathOf(at, ["children", index]))))
  if (own === undefined || shutdown === undefined || problems.length > before) return undefined
  return {
    ...named,
    strategy: own.strategy,
    intensity: own.intensity,
    autoShutdown: shutdown.autoShutdown,
    children: children as Array<ChildSpec>
  }
}

/** Specs as the path clash check sees them (those not shaped as a spec are problems of their own). */
const siblingsOf = (specs: ReadonlyArray<unknown>, at: (index: number) => string): Array<Sibling> =>
  specs.flatMap((spec, index) =>
    isSpecShaped(spec)
      ? [{ id: spec.id, nests: spec._tag === "Supervisor" || spec._tag === "Pool", at: at(index) }]
      : []
  )

const fail = (problems: Problems): Effect.Effect<never, ConfigError> =>
  Effect.fail(Edge.configError(problems as [Edge.Problem, ...Problems]))

/**
 * Decodes a root supervisor's options, every default applied here: `name` "root", and OTP's supervisor
 * defaults (see `Own.TreeOwn`). Every problem of the whole tree is in the one `ConfigError`; with `strictKeys` (the
 * default) a key of the options or of a child spec that no setting has is one (a tree file's schema checks them).
 */
export const decodeRoot = (options: Supervisor.Options, strictKeys = true): Effect.Effect<Root, ConfigError> =>
  Effect.suspend(() => {
    const problems: Problems = []
    if (strictKeys) problems.push(...Edge.unknownKeys(options, Own.ROOT_KEYS, undefined))
    const name = options.name ?? "root"
    const where = { whole: "(options)", undefinedIsAbsent: true }
    const own = Edge.decodeInto(Own.RootOwn, pick(options, ["storeFlushTimeout", "restore", "logs"]), where, problems)
    const topics = TopicSettings.decodeInto(options.topics, problems)
    const tree = decodeTreeAt({ name, path: "" }, undefined, options, strictKeys, problems)
    if (tree === undefined || own === undefined || problems.length > 0) return fail(problems)
    const { logs, restore, storeFlushTimeout } = own
    return Effect.as(warnTree(name, tree), { tree, storeFlushTimeout, restore, logs, topics })
  })

/**
 * Decodes a child added to a running supervisor by `startChild`, at the position it will take
 * (`children[3]`); its id is known to be free. Warns when the child would be parked rather than escalate.
 */
export const decodeAdded = (
  tree: Tree,
  present: Present,
  spec: unknown
): Effect.Effect<ChildSpec, ConfigError> => Effect.map(decodeAddedAll(tree, present, [spec]), (children) => children[0])

/**
 * The children a spec is added beside: how many (its place is after them), and, read only when an added id could
 * clash with one of theirs (`pathClash.ts`), each as a `Sibling`: a `startChild` of a plain agent beside 1,000
 * children reads none of them.
 */
export interface Present {
  readonly count: number
  readonly siblings: () => ReadonlyArray<Sibling>
}

/**
 * Decodes children added together by `startChildren`, beside the children `present`, at the positions they will take
 * (`children[present.count + i]`): every problem of every one, ids repeated within the batch and paths that clash
 * with a sibling's (`pathClash.ts`) included, in one `ConfigError`. Their ids are known to be free in the tree.
 * Warns of each child that would be parked rather than escalate.
 */
export const decodeAddedAll = (
  tree: Tree,
  present: Present,
  specs: ReadonlyArray<unknown>
): Effect.Effect<Array<ChildSpec>, ConfigError> =>
  Effect.suspend(() => {
    const { count } = present
    const problems: Problems = []
    const parent: Parent = {
      name: tree.name,
      path: tree.path,
      autoShutdown: tree.autoShutdown,
      autoShutdownAt: "autoShutdown",
      intensity: tree.intensity,
      checkKeys: true
    }
    const seen = new Map<string, string>()
    const children: Array<ChildSpec> = []
    const parked: Array<string> = []
    specs.forEach((spec, i) => {
      const at = Edge.pathOf(undefined, ["children", count + i])
      const child = decodeChildAt(parent, spec, at, seen, problems)
      if (child === undefined) return
      children.push(child)
      parked.push(...parkedChild(tree, child, at))
    })
    const added = siblingsOf(specs, (i) => Edge.pathOf(undefined, ["children", count + i]))
    if (added.some((sibling) => sibling.nests || sibling.id.includes("/"))) {
      problems.push(...pathClashes([...present.siblings(), ...added]))
    }
    if (problems.length > 0 || children.length < specs.length) return fail(problems)
    return Effect.as(warnParked(tree.name, parked), children)
  })

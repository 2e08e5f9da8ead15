/**
 * A whole supervision tree in one file, YAML or JSON: the root supervisor's options, its store, its topics, and its
 * children (agents, agents from a directory, pools, nested supervisors), for `agent-supervisor up` and for
 * applications that keep their tree out of their code.
 *
 * ```yaml
 * # yaml-language-server: $schema=node_modules/effect-agent-supervisor/schema/agent-supervisor.schema.json
 * name: app
 * strategy: one-for-one
 * store: { type: sqlite, filename: .data/agents.sqlite }
 * children:
 *   - { type: agent, id: echo, config: { name: echo, command: python3, args: [agent.py], requestTimeout: 30 seconds } }
 *   - { type: directory, id: summarizer, config: { agentName: summarizer, agentDir: agents/summarizer } }
 *   - type: pool
 *     id: inference
 *     size: 4
 *     topics: [doc.uploaded]
 *     config: { name: inference, command: python3, args: [infer.py] }
 * topics:
 *   doc.uploaded: { retry: { maxAttempts: 4, backoff: 100 millis, factor: 2 }, maxQueued: 500 }
 * ```
 *
 * The file is checked whole before anything starts: its syntax (a YAML or JSON error names the line and column),
 * its `${NAME}` references, every field against the file's `Schema` (the one {@link jsonSchema} is generated from;
 * an agent's configuration is `Agent.Config`'s own schema), and the tree's own rules as `Supervisor.make` decodes
 * them. Every problem is in one `ConfigError`, each with its path (`children[2].config.requestTimeout`); an unknown
 * key names the key it is closest to (`did you mean "requestTimeout"?`).
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as Effect from "effect/Effect"
import type * as JSONSchema from "effect/JSONSchema"
import type * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Config from "./Agent/Config.js"
import type * as Directory from "./Agent/Directory.js"
import type { ConfigError, StoreError } from "./Errors.js"
import type { DurationInput } from "./internal/durationText.js"
import * as decode from "./internal/treeFile/decode.js"
import * as load_ from "./internal/treeFile/load.js"
import * as run_ from "./internal/treeFile/run.js"
import type * as LogFiles from "./LogFiles.js"
import type * as Metrics from "./Metrics.js"
import type { SqliteOptions, SqlOptions } from "./Store/internal/options.js"
import type * as Store from "./Store/Store.js"
import type * as Supervisor from "./Supervisor.js"

/**
 * A tree file, checked: `${NAME}` references replaced, relative paths resolved against the file's directory, the
 * store chosen (`{ type: "memory" }` when the file names none). Every field of the root supervisor's options but
 * `onEvent` (code, not data); defaults are applied when the tree starts, as for `Supervisor.make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TreeFile {
  /** The root supervisor's name. `"root"` by default. */
  readonly name?: string | undefined
  readonly strategy?: Supervisor.Strategy | undefined
  readonly intensity?: Supervisor.Intensity | undefined
  readonly autoShutdown?: Supervisor.AutoShutdown | undefined
  readonly storeFlushTimeout?: DurationInput | undefined
  readonly restore?: boolean | undefined
  /** Spawn the agents through a fork server (`Agent.ForkServer`: `make`, `layer`, `run`, `up`). `false` by default. */
  readonly forkServer?: boolean | undefined
  readonly store: StoreChoice
  /** Each agent's stderr in rotated files (`Supervisor.Options.logs`); `dir` resolved against the file's directory. */
  readonly logs?: LogFiles.Options | undefined
  /** Where `agent-supervisor up` exports metrics and spans: `otlp`, `Metrics.layerOtel`'s options. */
  readonly metrics?: { readonly otlp?: Metrics.OtelOptions | undefined } | undefined
  /** The admin API and dashboard `agent-supervisor up` serves (none of the tree's business: `make` ignores it). */
  readonly admin?: AdminSettings | undefined
  /** Each topic's settings, by name (`Supervisor.Options.topics`), `retry` as data (see {@link RetrySettings}). */
  readonly topics?: Readonly<Record<string, TopicSettings>> | undefined
  readonly cluster?: import("./TreeFile/Cluster.js").Settings | undefined
  readonly children: ReadonlyArray<Child>
}

/**
 * A topic's settings in a file: `Topic.TopicOptions` (`maxQueued`, `backpressure`, `timeout`, each with its
 * default) with `retry` written as data.
 *
 * @since 0.1.0
 * @category models
 */
export interface TopicSettings {
  readonly retry?: RetrySettings | undefined
  readonly maxQueued?: number | undefined
  readonly backpressure?: boolean | undefined
  readonly timeout?: DurationInput | undefined
}

/**
 * A topic's retries as a file writes them, run as `Schedule.exponential(backoff, factor)` intersected with
 * `Schedule.recurs(maxAttempts - 1)`: a task is attempted at most `maxAttempts` times (a whole number >= 1; 1:
 * never retried), the retries `backoff`, `backoff × factor`, `backoff × factor²`... after each failure (`factor`
 * >= 1). Each left out is the library's default: 4 attempts, `"100 millis"`, factor 2.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetrySettings {
  readonly maxAttempts?: number | undefined
  readonly backoff?: DurationInput | undefined
  readonly factor?: number | undefined
}

/**
 * A file's `admin` section: whether `agent-supervisor up` serves the admin API and dashboard (`enabled`, true by
 * default), on which address (`host`, `"127.0.0.1"` by default) and port (0, any free one, by default), and the
 * bearer token of its state-changing calls (generated at start by default; at least 16 characters).
 *
 * @since 0.1.0
 * @category models
 */
export interface AdminSettings {
  readonly enabled?: boolean | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  readonly token?: Redacted.Redacted<string> | undefined
}

/**
 * A child of a tree file: `type` says which kind.
 *
 * @since 0.1.0
 * @category models
 */
export type Child = AgentChild | CallbackChild | DirectoryChild | PoolChild | SupervisorChild

/**
 * What an agent child of any kind (and a pool) has beside its `config`: `Supervisor.agent`'s fields (`watch.paths`
 * relative to the file's directory).
 *
 * @since 0.1.0
 * @category models
 */
export interface AgentChildFields {
  readonly id: string
  readonly restart?: Config.RestartType | undefined
  readonly shutdown?: Supervisor.Shutdown | undefined
  readonly significant?: boolean | undefined
  readonly topics?: ReadonlyArray<string> | undefined
  readonly watch?: Supervisor.Watch | undefined
}

type PoolOwnFields = Pick<Supervisor.PoolSpec, "routing" | "intensity" | "autoscale" | "maxSize">
/**
 * A pool (`type: pool`): `Supervisor.pool`'s fields; `config` is each member's, in any form an agent child takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolChild extends AgentChildFields, PoolOwnFields {
  readonly type: "pool"
  readonly size: number
  readonly config: Config.AgentConfigInput | CallbackConfig | Directory.DirectoryOptions
}

/**
 * An agent child (`type: agent`): `Supervisor.agent`'s fields. Its `cwd` is the file's directory unless the file
 * sets one (relative to the file's directory).
 *
 * @since 0.1.0
 * @category models
 */
export interface AgentChild extends AgentChildFields {
  readonly type: "agent"
  readonly config: Config.AgentConfigInput
}

/**
 * A function run as an agent through one of the bundled adapters (`type: callback`), as `Adapters.pythonCallback`
 * and `Adapters.nodeCallback` run it from code: `language` (`"python"` or `"node"`), `file` (a `.py` file or a
 * Python module; a `.js`, `.mjs` or `.cjs` file), optionally `function` (Python: `handle_request` by default; Node:
 * the default export, else `handleRequest`) and `interpreter` (`"python3"`, or the Node running the supervisor, by
 * default), and the rest of an agent's configuration but its `command` and `args`. Its `cwd` is the file's
 * directory unless the file sets one, and `file` is relative to it.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallbackChild extends AgentChildFields {
  readonly type: "callback"
  readonly config: CallbackConfig
}

/**
 * The `config` of a {@link CallbackChild}.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallbackConfig extends Omit<Config.AgentConfigInput, "command" | "args"> {
  readonly language: "python" | "node"
  readonly file: string
  readonly function?: string | undefined
  readonly interpreter?: string | undefined
}

/**
 * An agent found in a directory (`type: directory`): `Supervisor.agent`'s fields, with `Directory.resolve`'s
 * options as its `config` (`agentName`, `agentDir`, `callbackFunction`... and the agent's configuration but its
 * `name`, `command` and `args`). It is resolved (dependencies installed, callback checked) when the tree starts.
 *
 * @since 0.1.0
 * @category models
 */
export interface DirectoryChild extends AgentChildFields {
  readonly type: "directory"
  readonly config: Directory.DirectoryOptions
}

/**
 * A nested supervisor (`type: supervisor`): `Supervisor.supervisor`'s fields.
 *
 * @since 0.1.0
 * @category models
 */
export interface SupervisorChild {
  readonly type: "supervisor"
  readonly id: string
  readonly strategy?: Supervisor.Strategy | undefined
  readonly intensity?: Supervisor.Intensity | undefined
  readonly autoShutdown?: Supervisor.AutoShutdown | undefined
  readonly restart?: Config.RestartType | undefined
  readonly significant?: boolean | undefined
  readonly children?: ReadonlyArray<Child> | undefined
}

/**
 * The store a tree file chooses.
 *
 * @since 0.1.0
 * @category models
 */
export type StoreChoice = MemoryStore | SqliteStore | PostgresStore

/**
 * `type: memory`: `Store.makeMemory`'s bounds (`maxMetrics`, `maxRestarts`, `maxTasks`, `maxAgents`).
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStore extends Store.MemoryOptions {
  readonly type: "memory"
}

/**
 * `type: sqlite`: `Store.layerSqlite`'s options; `filename` relative to the file's directory.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqliteStore extends SqliteOptions {
  readonly type: "sqlite"
}

/**
 * `type: postgres`: `Store.layerPg`'s `url` (in the file `url`, usually `"${DATABASE_URL}"`, or `urlEnv`, the name
 * of the variable that holds it), `maxConnections`, and the SQL store's table prefix and retention.
 *
 * @since 0.1.0
 * @category models
 */
export interface PostgresStore extends SqlOptions {
  readonly type: "postgres"
  readonly url: Redacted.Redacted<string>
  readonly maxConnections?: number | undefined
}

/**
 * The formats a tree file may be written in.
 *
 * @since 0.1.0
 * @category models
 */
export type Format = "yaml" | "json"

/**
 * The environment `${NAME}` references read.
 *
 * @since 0.1.0
 * @category models
 */
export type Env = Readonly<Record<string, string | undefined>>

/**
 * Options of {@link parse}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParseOptions {
  readonly format: Format
  /** Where `${NAME}` references are read. `process.env` by default. */
  readonly env?: Env | undefined
  /**
   * The directory relative paths are resolved against (and an agent's `cwd` when the file sets none). Without it,
   * paths stay as written: relative to the program's working directory when the tree starts.
   */
  readonly dir?: string | undefined
  /** The text's name in a syntax error's location (`tree.yaml:3:7`). `"(yaml)"` or `"(json)"` by default. */
  readonly source?: string | undefined
}

/**
 * Checks a tree file's text and returns the tree it describes, or one `ConfigError` listing every problem, each
 * with its path, in the order the file writes them:
 *
 * - syntax: `tree.yaml:3:7` and the parser's message (the check stops there);
 * - references: `${NAME}` of a variable that is not set (and has no `${NAME:-default}`), or malformed;
 * - fields: a bad value (`children[2].config.requestTimeout: must be a duration like "5 seconds"...`), a missing
 *   one, a `type` that is not one of the kinds, an unknown key (`did you mean "requestTimeout"?` when one is close);
 * - the tree's rules, as `Supervisor.make` checks them: ids unique among siblings, significant children, a restart
 *   type or a stop timeout given both on the child and in its configuration; `store.urlEnv` not set.
 *
 * What the file leaves out takes its default when the tree starts. Nothing starts here: a file that parses is a tree
 * `Supervisor.make` accepts but for what only its start tells (a directory agent's contents, a store that cannot open)
 * and the files it names ({@link load} looks). A child that would be parked rather than escalate, agents of one
 * name: {@link warnings}.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const file = yield* TreeFile.parse("children: []\n", { format: "yaml", env: { HOME: "/home/me" } })
 * ```
 */
export const parse: (text: string, options: ParseOptions) => Effect.Effect<TreeFile, ConfigError, Path.Path> =
  decode.parse

/**
 * What a file's tree warns of as it starts, as the lines it logs (every child and name, where the start's log names
 * ten): a duration written as a bare number under a second (`heartbeatInterval: 30`: 30 ms), a child that would be
 * parked rather than make its supervisor escalate, agents that share one name (README "Configuration"). Not problems:
 * {@link parse} accepts such a file; for a `validate` that says everything it knows.
 *
 * @since 0.1.0
 * @category constructors
 */
export const warnings: (file: TreeFile) => Effect.Effect<ReadonlyArray<string>> = decode.warnings

/**
 * Options of {@link load}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadOptions {
  /** Where `${NAME}` references are read. `process.env` by default. */
  readonly env?: Env | undefined
}

/** What reading a file and its directory agents needs: `NodeContext.layer` provides it. */
type Platform = FileSystem.FileSystem | Path.Path

/**
 * Reads and checks a tree file: {@link parse}, the format read from the extension (`.yaml`, `.yml`, `.json`), relative
 * paths resolved against the file's directory, what it names for the start looked for (a callback's `file`, an
 * `agentDir`, a `cwd`: `children[0].config.file: no file a.mjs (looked for /app/a.mjs)`). A file that cannot be read
 * (missing, a directory, no permission) or another extension is a `ConfigError` whose field is the path as given.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const file = yield* TreeFile.load("examples/tree.yaml")
 * ```
 */
export const load: (
  path: string,
  options?: LoadOptions
) => Effect.Effect<TreeFile, ConfigError, Platform> = load_.load

/**
 * The options `Supervisor.make` runs a file's tree with: its children as `Supervisor.agent`, `Supervisor.pool` and
 * `Supervisor.supervisor` specs, each directory agent (a pool's once for its members) resolved by `Directory.resolve`
 * (dependencies installed, callback checked, one after the other in the file's order), each topic's `retry` as its
 * `Schedule`. A directory's `ConfigError` names its field's path in the file (`children[1].config.callbackFunction`).
 * What is not the tree's (`store`, `forkServer`, `admin`, `metrics`, `cluster`) is left out: see {@link make}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toOptions: (file: TreeFile) => Effect.Effect<Supervisor.Options, Directory.DirectoryError, Platform> =
  run_.toOptions

/**
 * The store a file chooses, as a layer: `Store.layerMemory`'s store with the file's bounds, `Store.layerSqlite` or
 * `Store.layerPg` (whose drivers are loaded only then: a missing one is a `StoreError` saying what to install).
 *
 * @since 0.1.0
 * @category layers
 */
export const storeLayer: (file: TreeFile) => Layer.Layer<Store.Store, ConfigError | StoreError> = run_.storeLayer

/**
 * Everything starting a file's tree can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type StartError = Supervisor.StartError | Directory.DirectoryError | StoreError

/**
 * What a program adds to a file's tree: `onEvent` (see `Supervisor.Options`) and, for {@link layer},
 * `onEscalation` (see `Supervisor.LayerOptions`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  readonly onEvent?: Supervisor.Options["onEvent"]
  readonly onEscalation?: Supervisor.LayerOptions["onEscalation"]
}

/**
 * Starts a file's tree in the scope (`Supervisor.make`), on the store it chooses, which stays open until the tree
 * has stopped.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  file: TreeFile,
  options?: Omit<RunOptions, "onEscalation">
) => Effect.Effect<Supervisor.Supervisor, StartError, Scope.Scope | Platform> = run_.make

/**
 * A file's tree as a layer (`Supervisor.layer`) with its store provided to it, both in the output: the root
 * supervisor, and the `Store` for whoever reads the tree's history. An escalation of the root ends the program
 * the layer is provided to (`onEscalation: "fail"`, the default) so that `NodeRuntime.runMain` exits 1.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const TreeLive = Layer.unwrapEffect(Effect.map(TreeFile.load("tree.yaml"), TreeFile.layer))
 * Layer.launch(TreeLive).pipe(Effect.provide(NodeContext.layer), NodeRuntime.runMain)
 * ```
 */
export const layer: (
  file: TreeFile,
  options?: RunOptions
) => Layer.Layer<Supervisor.RootSupervisor | Store.Store, StartError, Platform> = run_.layer

/**
 * Starts a file's tree and waits for it (`Supervisor.run`): fails with `SupervisorIntensityError` when the root
 * escalates, succeeds when it shuts itself down (auto-shutdown); interrupted, it stops the tree (3-phase, in
 * order) and closes the store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run: (
  file: TreeFile,
  options?: Omit<RunOptions, "onEscalation">
) => Effect.Effect<void, StartError, Platform> = run_.run

/**
 * The JSON Schema of tree files (draft-07), generated from the file's `Schema`: editors complete and check a file
 * that names it (`# yaml-language-server: $schema=...` in YAML, `"$schema"` in JSON). The package ships it as
 * `schema/agent-supervisor.schema.json`. It checks shapes, not everything: `${NAME}` references, the tree's rules
 * across fields and a directory agent's contents are for {@link parse}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const jsonSchema: () => JSONSchema.JsonSchema7Root = decode.jsonSchema

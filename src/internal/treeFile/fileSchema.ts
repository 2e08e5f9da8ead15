/**
 * The one `Schema` of a tree file: the root supervisor's options, its store, its topics, its cluster, and its children
 * (agents, agents from a directory, pools, nested supervisors, to any depth). Its encoded side is the file's
 * format: the JSON Schema editors read is generated from it. An agent's configuration is the library's own schema
 * (`Agent/Config.ts`), never a copy; the tree's rules across fields (significant children, one value per setting)
 * are checked by the tree's own decoding (see `check.ts`).
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import * as Struct from "effect/Struct"
import * as Config from "../../Agent/Config.js"
import * as Edge from "../schema.js"
import { ClusterSection } from "./clusterSchema.js"
import { FormOf } from "./issues.js"
import { AdminSection, LogsSection, MetricsSection } from "./operateSchema.js"
import { optional, required, says, StoreSection } from "./storeSchema.js"
import { topicFields, TopicsSection } from "./topicsSchema.js"

const Strategy = Schema.Literal("one-for-one", "one-for-all", "rest-for-one").annotations(
  says(`must be "one-for-one", "one-for-all" or "rest-for-one"`)
)

const AutoShutdown = Schema.Literal("never", "any-significant", "all-significant").annotations(
  says(`must be "never", "any-significant" or "all-significant"`)
)

const Intensity = Schema.Struct({
  maxRestarts: Schema.Number.annotations(says("must be a whole number of 0 or more")).pipe(
    Schema.filter((n) => Number.isInteger(n) && n >= 0, {
      message: () => "must be a whole number of 0 or more",
      jsonSchema: { type: "integer", minimum: 0 }
    })
  ),
  window: Edge.DurationInput
})

const Flag = Schema.Boolean.annotations(says("must be true or false"))

const RestartType = Config.RestartType.annotations(says(`must be "permanent", "transient" or "temporary"`))

const Shutdown = Schema.Union(Schema.Literal("brutal-kill", "infinity"), Edge.DurationInput).annotations(
  says(`must be a duration like "5 seconds" (the graceful phase), "brutal-kill" or "infinity"`)
)

/** What every child has. */
const common = {
  id: required(Schema.String, "Unique among its siblings: how the supervisor names the child."),
  restart: optional(RestartType, "OTP's restart type. The configuration's (\"permanent\") by default."),
  significant: optional(Flag, "Its exit may shut its supervisor down (with autoShutdown). false by default.")
}

/** A supervisor's own settings: the root's and a nested supervisor's. */
const supervision = {
  strategy: optional(Strategy, `Which children restart with one that must: "one-for-one" by default.`),
  intensity: optional(Intensity, "More than maxRestarts restarts within window escalates. 1 in 5 seconds by default."),
  autoShutdown: optional(AutoShutdown, `Whether significant children's exits stop the supervisor. "never" by default.`)
}

const shutdown = optional(
  Shutdown,
  `How the child is stopped: a duration for its graceful phase, "brutal-kill" or "infinity".`
)

const AgentChild = Schema.Struct({
  type: Schema.Literal("agent"),
  ...common,
  shutdown,
  ...topicFields,
  config: required(Config.AgentConfig, "The agent's configuration: name and command at least.")
}).annotations({ title: "Agent", description: "An agent child, run from a command line." })

/** A function run through a bundled adapter: `Adapters.pythonCallback`'s and `nodeCallback`'s arguments. */
const CallbackConfig = Schema.Struct({
  language: required(
    Schema.Literal("python", "node").annotations(says(`must be "python" or "node"`)),
    "Which bundled adapter runs the function."
  ),
  file: required(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a file" })),
    "The function's file (agents/classify.mjs, agents/summarize.py) or Python module, relative to the agent's cwd."
  ),
  function: optional(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a function's name" })),
    "Python: handle_request by default (dotted for Class.method). Node: the default export, else handleRequest."
  ),
  interpreter: optional(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a program" })),
    "python3, or the Node that runs the supervisor, by default: a name on PATH or a path (.venv/bin/python)."
  ),
  ...Struct.omit(Config.AgentConfig.fields, "command", "args")
})

const CallbackChild = Schema.Struct({
  type: Schema.Literal("callback"),
  ...common,
  shutdown,
  ...topicFields,
  config: required(CallbackConfig, "The function, its language, and the agent's configuration but command and args.")
}).annotations({
  title: "Callback agent",
  description: "A Python or JavaScript function run as an agent through the bundled adapter (Adapters.*Callback)."
})

/** `Directory.resolve`'s options: the agent's configuration, less what the directory decides. */
const DirectoryConfig = Schema.Struct({
  agentName: Config.AgentConfig.fields.name,
  agentDir: required(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a directory" })),
    "The directory holding the agent's code, relative to this file's directory."
  ),
  callbackFunction: optional(
    Schema.String,
    "Python: handle_request by default. Node: the default export, else handleRequest."
  ),
  installTimeout: optional(Edge.DurationInput, "Bounds each dependency install. 5 minutes by default."),
  cacheDir: optional(
    Schema.String,
    "Where dependency installs live. $XDG_CACHE_HOME/effect-agent-supervisor by default " +
      "(/var/cache/effect-agent-supervisor for an agent run as another user)."
  ),
  ...Struct.omit(Config.AgentConfig.fields, "name", "command", "args")
})

const DirectoryChild = Schema.Struct({
  type: Schema.Literal("directory"),
  ...common,
  shutdown,
  ...topicFields,
  config: required(DirectoryConfig, "Where the agent is, and its configuration but its name, command and args.")
}).annotations({
  title: "Agent from a directory",
  description: "An agent whose language, entry file and dependencies are found in a directory (fromDirectory)."
})

/** The keys of a configuration's `fields` that an agent's has not: they tell its form apart. */
const ownKeys = (fields: object): ReadonlyArray<string> =>
  Object.keys(fields).filter((key) => !Object.hasOwn(Config.AgentConfig.fields, key))

const CALLBACK_KEYS = ownKeys(CallbackConfig.fields)
const DIRECTORY_KEYS = ownKeys(DirectoryConfig.fields)

/** The forms of an agent's configuration, named as the `type` of the agent child that takes each. */
export type Form = "agent" | "callback" | "directory"

/**
 * The form `config` (a pool's) is written in: a callback agent's when it has a key only that form has (`language`,
 * `file`...), else a directory agent's when it has one of that form's (`agentName`, `agentDir`...), else an agent's.
 */
export const formOf = (config: unknown): Form => {
  if (typeof config !== "object" || config === null) return "agent"
  if (CALLBACK_KEYS.some((key) => Object.hasOwn(config, key))) return "callback"
  return DIRECTORY_KEYS.some((key) => Object.hasOwn(config, key)) ? "directory" : "agent"
}

const FORMS: ReadonlyArray<Form> = ["agent", "callback", "directory"]

/** A pool's members' configuration: what an agent child of any kind takes as its `config`. */
const MemberConfig = Schema.Union(Config.AgentConfig, CallbackConfig, DirectoryConfig).annotations({
  [FormOf]: (input: unknown) => FORMS.indexOf(formOf(input))
})

const PoolChild = Schema.Struct({
  type: Schema.Literal("pool"),
  ...common,
  size: required(
    Schema.Number.annotations(says("must be a whole number of 0 or more")).pipe(
      Schema.filter((n) => Number.isSafeInteger(n) && n >= 0, {
        message: () => "must be a whole number of 0 or more",
        jsonSchema: { type: "integer", minimum: 0 }
      })
    ),
    "How many identical agents (members) run: member i is the agent child \"i\" of the pool, named <name>-<i>."
  ),
  maxSize: optional(
    Edge.CountOfOne,
    "The most members size, a scale and autoscale.max may ask for (each member is a process): 1000 by default."
  ),
  routing: optional(
    Schema.Literal("least-in-flight", "round-robin").annotations(says(`must be "least-in-flight" or "round-robin"`)),
    `Which RUNNING member takes a call: the one with the fewest calls in flight ("least-in-flight", the default) ` +
      `or each in turn ("round-robin").`
  ),
  intensity: optional(
    Intensity,
    "The pool's own restart intensity. Without it, the members' restarts count in its supervisor's."
  ),
  autoscale: optional(
    Schema.Struct({
      min: required(Schema.Number, "The fewest members."),
      max: required(Schema.Number, "The most members."),
      target: required(Schema.Number, "The load per member to aim for (calls in flight, or waiting)."),
      metric: optional(
        Schema.Literal("in-flight", "queue").annotations(says(`must be "in-flight" or "queue"`)),
        `What the load is: calls in flight through the pool ("in-flight", the default) or those waiting past ` +
          `the members' maxInFlight ("queue").`
      ),
      interval: optional(Edge.DurationInput, "How often the load is read. 1 second by default."),
      coolDown: optional(Edge.DurationInput, "The least time between two changes of size. 30 seconds by default.")
    }),
    "The pool sizes itself between min and max toward target load per member (Supervisor.pool's autoscale)."
  ),
  shutdown,
  ...topicFields,
  config: required(
    MemberConfig,
    "Each member's configuration, as an agent child of any type takes it: an agent's (name, command...), a callback " +
      "agent's (name, language, file...) or a directory agent's (agentName, agentDir...)."
  )
}).annotations({
  title: "Pool",
  description: "size identical agents behind one id (Supervisor.pool): a call to the pool goes to one RUNNING member."
})

const supervisorFields = { type: Schema.Literal("supervisor"), ...common, ...supervision }

/** A nested supervisor, as a file holds it. */
interface SupervisorChildInput extends Schema.Struct.Encoded<typeof supervisorFields> {
  readonly children?: ReadonlyArray<ChildInput>
}

/** A child, as a file holds it. */
export type ChildInput =
  | typeof AgentChild.Encoded
  | typeof CallbackChild.Encoded
  | typeof DirectoryChild.Encoded
  | typeof PoolChild.Encoded
  | SupervisorChildInput

const children = optional(
  Schema.Array(Schema.suspend((): Schema.Schema<unknown, ChildInput> => Child)).annotations({
    message: () => "must be an array of children"
  }),
  "Started in this order, stopped in the reverse order."
)

const SupervisorChild = Schema.Struct({ ...supervisorFields, children }).annotations({
  title: "Supervisor",
  description: "A nested supervisor and its children."
})

const Child: Schema.Schema<unknown, ChildInput> = Schema.Union(
  AgentChild,
  CallbackChild,
  DirectoryChild,
  PoolChild,
  SupervisorChild
)
  .annotations({
    identifier: "Child",
    message: () =>
      `must be a child: a mapping with a type ("agent", "callback", "directory", "pool" or "supervisor") and an id`
  }) as any

/** The whole file. */
export const TreeFileSchema = Schema.Struct({
  $schema: optional(Schema.String, "The JSON Schema of this file, for editors."),
  name: optional(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty name" })),
    `The root supervisor's name: the first part of every path in the tree. "root" by default.`
  ),
  ...supervision,
  storeFlushTimeout: optional(
    Edge.DurationInput,
    "How long closing the tree waits for the store to take the last writes. 1 second by default."
  ),
  restore: optional(Flag, "Keep children added at run time and parked children in the store. false by default."),
  forkServer: optional(
    Flag,
    "Spawn the tree's agents through a fork server (Agent.ForkServer): a small process of the supervisor's forks " +
      "them, cheaper than forking the supervisor itself when it runs many agents. false by default."
  ),
  store: optional(StoreSection, `Where the tree's records are kept. { type: "memory" } by default.`),
  logs: optional(LogsSection, "Each agent's stderr in a rotated file (Supervisor.Options.logs). None by default."),
  metrics: optional(MetricsSection, "Where `agent-supervisor up` exports metrics and spans (OTLP). None by default."),
  admin: optional(AdminSection, "The admin API and dashboard of `agent-supervisor up`: on 127.0.0.1 by default."),
  topics: optional(TopicsSection, "Settings of the tree's topics, by name. Each topic has the defaults by default."),
  cluster: optional(
    ClusterSection,
    "Scale out across machines: `agent-supervisor up` hosts the file's agents on @effect/cluster. None by default."
  ),
  children
}).annotations({
  message: () => "must be a mapping of the tree's settings (name, strategy, store, children...)",
  title: "effect-agent-supervisor tree",
  description: "A supervision tree for `agent-supervisor up`: the root supervisor, its store and its children."
})

/** A tree file, as it is written. */
export type TreeFileInput = typeof TreeFileSchema.Encoded

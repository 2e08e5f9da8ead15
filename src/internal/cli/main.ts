/**
 * The `agent-supervisor` command line (`@effect/cli`): `up` and `validate` work on a tree file; `status`,
 * `restart`, `stop`, `start`, `reload`, `scale`, `call`, `publish`, `logs`, `history`, `events` and `cluster` talk
 * to a running `up` through its admin API; `conformance` checks an agent program against the protocol.
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Effect from "effect/Effect"
import * as Address from "./address.js"
import * as Arguments from "./arguments.js"
import { CommandLine } from "./commandLine.js"
import * as Conformance from "./conformance.js"
import { withPlainConsole } from "./console.js"
import { CliError } from "./errors.js"
import * as Interrupted from "./interrupted.js"
import * as Logging from "./logging.js"
import * as Remote from "./remote.js"
import * as Work from "./work.js"

// `up` and `validate` load the whole library; the commands that only talk to a running `up` start faster without.
const upModule = Effect.promise(() => import("./up.js"))
const validateModule = Effect.promise(() => import("./validate.js"))

const treeFile = Args.file({ name: "FILE", exists: "yes" }).pipe(
  Args.withDescription("The tree file, YAML or JSON (see the README's \"Config file\").")
)

// ---- up ----

const logFormat = Options.choice("log-format", Logging.FORMATS).pipe(
  Options.withDefault("auto" as const),
  Options.withDescription("auto: pretty on a terminal, JSON lines otherwise (journald, Docker, Kubernetes).")
)
const port = Options.integer("port").pipe(
  Options.optional,
  Options.withDescription("The admin API's port, over the file's admin.port (0: any free port).")
)
const host = Options.text("host").pipe(
  Options.optional,
  Options.withDescription("The admin API's address, over the file's admin.host (127.0.0.1 by default).")
)
const stateFile = Options.file("state-file").pipe(
  Options.optional,
  Options.withDescription(
    `Where up writes its admin API's address and token (mode 0600), for the other commands (or ${Address.ENV_STATE_FILE}). ` +
      "Beside the tree file by default: give another place when that directory is read-only."
  )
)
const noAdmin = Options.boolean("no-admin").pipe(
  Options.withDescription("Serve no admin API and no dashboard, and write no state file.")
)
const runnerHost = Options.text("runner-host").pipe(
  Options.optional,
  Options.withDescription("With a cluster section: the host other runners reach this runner at, over cluster.address.")
)
const runnerPort = Options.integer("runner-port").pipe(
  Options.optional,
  Options.withDescription("With a cluster section: this runner's port, over cluster.address (no PORT is read).")
)

const upCommand = Command.make(
  "up",
  { file: treeFile, logFormat, port, host, stateFile, noAdmin, runnerHost, runnerPort },
  (options) =>
    // A signal that came while the CLI loaded (`earlySignals.ts`): nothing is read, nothing starts
    Interrupted.unlessHeld(
      Effect.flatMap(
        upModule,
        ({ up }) =>
          up({
            file: options.file,
            port: options.port,
            host: options.host,
            stateFile: options.stateFile,
            admin: !options.noAdmin,
            runnerHost: options.runnerHost,
            runnerPort: options.runnerPort,
            logFormat: options.logFormat
          })
      )
    ).pipe(Effect.provide(Logging.layer(options.logFormat)))
).pipe(
  Command.withDescription(
    "Run the tree of FILE in the foreground, with its admin API and dashboard; with a cluster section, host its " +
      "agents on the cluster."
  )
)

const validateCommand = Command.make(
  "validate",
  { file: treeFile },
  ({ file }) => Effect.flatMap(validateModule, ({ validate }) => validate(file))
).pipe(
  Command.withDescription(
    "Check FILE whole without starting an agent (each callback's module is loaded by its adapter's --check); every problem with its path."
  )
)

// ---- the commands that talk to a running up ----

const fileDescription = "The tree file a running up was started with: its state file has the address."
const where = {
  file: Options.file("file").pipe(Options.withAlias("f"), Options.optional, Options.withDescription(fileDescription)),
  url: Options.text("url").pipe(
    Options.optional,
    Options.withDescription(`The admin API's URL (or ${Address.ENV_URL}).`)
  ),
  token: Options.text("token").pipe(
    Options.optional,
    Options.withDescription(`The admin API's token (or ${Address.ENV_TOKEN}).`)
  ),
  stateFile
}
const json = Options.boolean("json").pipe(Options.withDescription("Print JSON for scripts."))
/**
 * For the followers (`logs`, `events`): `-f` is `--follow`, as in `tail -f`, `docker logs -f` and `kubectl logs -f`
 * (`-F` too, as before), and `--file` has no short name there.
 */
const whereFollowing = {
  ...where,
  file: Options.file("file").pipe(Options.optional, Options.withDescription(fileDescription))
}
const follow = (description: string) =>
  Options.boolean("follow").pipe(Options.withAlias("f"), Options.withAlias("F"), Options.withDescription(description))
/**
 * A path of the API's that no name can be (`name` the argument's: ID, TOPIC): an empty one, or one whose steps
 * include "." or ".." (the URL would be read as another route: `/api/children//restart`, `/api/children/../call`;
 * no child id may be so).
 */
const notAName = (name: string, value: string, what: string): string | undefined =>
  value === ""
    ? `${name} is empty: give ${what}`
    : value.split("/").some((step) => step === "." || step === "..")
    ? `${name} "${value}" holds "." or "..", which no ${name === "ID" ? "child id" : "name"} may: give ${what}`
    : undefined

/** The argument `name` (`what` it gives), refused here when it is no name (`notAName`). */
const nameArg = (name: "ID" | "TOPIC", what: string, description: string) =>
  Args.text({ name }).pipe(
    Args.mapEffect((value) => {
      const refused = notAName(name, value, what)
      return refused === undefined ? Effect.succeed(value) : Effect.fail(HelpDoc.p(refused))
    }),
    Args.withDescription(description)
  )

/** A child's path below the root, as `status` lists them. */
const childPath = (description: string) =>
  nameArg("ID", "a child's path below the root (agent-supervisor status lists them)", description)
const childId = childPath("The child's path below the root: its id, or ids joined by / (workers/echo).")

const statusCommand = Command.make(
  "status",
  { ...where, json },
  (options) => Effect.flatMap(Address.resolve(options), (address) => Remote.status(address, options.json))
).pipe(Command.withDescription("The tree: each child's state, pid, uptime, restarts, CPU, memory and last exit."))

const controlCommand = (operation: "restart" | "stop" | "start" | "reload", description: string) =>
  Command.make(
    operation,
    { ...where, json, id: childId },
    (options) =>
      Effect.flatMap(
        Address.resolve(options),
        (address) => Remote.control(address, operation, options.id, options.json)
      )
  ).pipe(Command.withDescription(description))

const scaleCommand = Command.make(
  "scale",
  {
    ...where,
    json,
    id: childPath("The pool's path below the root."),
    size: Args.text({ name: "N" }).pipe(
      // Digits only: `Number` would take 1e3, 0x3, +3 and " 3", and a whole number too large for one says so
      Args.mapEffect((text) => {
        const size = Number(text)
        const digits = /^\d+$/.test(text)
        return digits && Number.isSafeInteger(size)
          ? Effect.succeed(size)
          : Effect.fail(HelpDoc.p(
            digits
              ? `N ${text} is too large: a pool's size is at most its maxSize (1000 by default)`
              : `N must be a whole number of 0 or more, in digits (got "${text}")`
          ))
      }),
      Args.withDescription("The pool's new size: a whole number of 0 or more.")
    )
  },
  (options) =>
    Effect.flatMap(
      Address.resolve(options),
      (address) => Remote.control(address, { scale: options.size }, options.id, options.json)
    )
).pipe(
  Command.withDescription(
    "Set a pool's size: new members start; the highest-numbered ones finish their calls and stop."
  )
)

const logsCommand = Command.make(
  "logs",
  {
    ...whereFollowing,
    json,
    id: childId,
    follow: follow("Keep printing new lines until interrupted (-f, as tail -f)."),
    lines: Options.integer("lines").pipe(
      Options.withAlias("n"),
      Options.mapEffect((lines) =>
        lines >= 1
          ? Effect.succeed(lines)
          : Effect.fail(
            ValidationError.invalidValue(HelpDoc.p(`--lines (-n) must be a whole number of 1 or more (got ${lines})`))
          )
      ),
      Options.optional,
      Options.withDescription("How many of the last lines (all that are kept: the agent's stderrLines, by default).")
    )
  },
  (options) =>
    Effect.flatMap(
      Address.resolve(options),
      (address) =>
        Remote.logs(address, options.id, { lines: options.lines, follow: options.follow, json: options.json })
    )
).pipe(Command.withDescription("An agent's last stderr lines, and with --follow the new ones."))

const historyCommand = Command.make(
  "history",
  {
    ...where,
    json,
    id: childPath("One child's path below the root: its restarts, and those of the children below it.").pipe(
      Args.optional
    )
  },
  (options) => Effect.flatMap(Address.resolve(options), (address) => Remote.history(address, options.id, options.json))
).pipe(Command.withDescription("Restart decisions, newest first; of one child with ID."))

const clusterCommand = Command.make(
  "cluster",
  { ...where, json },
  (options) => Effect.flatMap(Address.resolve(options), (address) => Remote.cluster(address, options.json))
).pipe(Command.withDescription("Where each started agent of the cluster runs: its runner, shard, since when, state."))

const eventsCommand = Command.make(
  "events",
  {
    ...whereFollowing,
    json,
    follow: follow("Accepted for symmetry with logs: events are always followed until interrupted.")
  },
  (options) => Effect.flatMap(Address.resolve(options), (address) => Remote.events(address, options.json))
).pipe(Command.withDescription("The tree's lifecycle events as they happen, until interrupted."))

// ---- work sent to a running up ----

const payload = Args.text({ name: "JSON" }).pipe(
  Args.optional,
  Args.withDescription(
    `The payload, as JSON ('{"text": "hi"}'; a string in JSON's quotes: '"hi"'). "${Work.STDIN}" or none: read ` +
      "from stdin (none only when stdin is not a terminal)."
  )
)

const callCommand = Command.make(
  "call",
  {
    ...where,
    json: Options.boolean("json").pipe(Options.withDescription("Print the result on one line, for scripts.")),
    timeout: Options.text("timeout").pipe(
      Options.optional,
      Options.withDescription(
        `The call's timeout ("30 seconds", "30s", or milliseconds): the agent's requestTimeout by default.`
      )
    ),
    id: childPath("The agent's or pool's path below the root: its id, or ids joined by / (workers/echo)."),
    payload
  },
  (options) =>
    Effect.gen(function*() {
      const value = yield* Work.payloadOf(options.payload, "ID")
      const address = yield* Address.resolve(options)
      yield* Work.call(address, options.id, value, options)
    })
).pipe(
  Command.withDescription(
    "Call an agent, or a pool (one of its members answers), with a JSON payload; print its result as JSON."
  )
)

const publishCommand = Command.make(
  "publish",
  {
    ...where,
    json: Options.boolean("json").pipe(Options.withDescription("Print the task's id on one line, for scripts.")),
    fanout: Options.boolean("fanout").pipe(Options.withDescription("Deliver to every subscriber, not one.")),
    topic: nameArg("TOPIC", "a topic's name (agent-supervisor topics lists them)", "The topic's name."),
    payload
  },
  (options) =>
    Effect.gen(function*() {
      const value = yield* Work.payloadOf(options.payload, "TOPIC")
      const address = yield* Address.resolve(options)
      yield* Work.publish(address, options.topic, value, options)
    })
).pipe(
  Command.withDescription(
    "Publish a task with a JSON payload to a topic of the tree; print its id. Its subscriber (with --fanout, each) " +
      "takes it, retried on the topic's schedule."
  )
)

const resultCommand = Command.make(
  "result",
  {
    ...where,
    json: Options.boolean("json").pipe(
      Options.withDescription("Print the task's whole view ({taskId, status, result or errors}) on one line.")
    ),
    wait: Options.text("wait").pipe(
      Options.withDefault("30 seconds"),
      Options.withDescription(
        `How long to wait for the task to end ("2 minutes", "2m", or milliseconds; 0: not at all).`
      )
    ),
    id: Args.text({ name: "TASK_ID" }).pipe(Args.withDescription("The task's id, as publish printed it."))
  },
  (options) => Effect.flatMap(Address.resolve(options), (address) => Work.result(address, options.id, options))
).pipe(
  Command.withDescription(
    "A published task's result, as JSON, once it ends; a dead-lettered task's errors (exit 1)."
  )
)

const topicsCommand = Command.make(
  "topics",
  { ...where, json },
  (options) => Effect.flatMap(Address.resolve(options), (address) => Work.topics(address, options.json))
).pipe(
  Command.withDescription(
    "The tree's topics (declared, taken by a child, or with tasks): tasks not yet ended, subscribers by path."
  )
)

// What a command that ends by itself says when a signal interrupts it (`interrupted.ts`); `up`, `events` and
// `logs --follow` run until one. Each command but `up` is interrupted before it runs by a signal that came while the
// CLI loaded (`Interrupted.begun`; `up` ends before its start on one).
const UNANSWERED = "given up before the admin API answered"
const OPERATION = `${UNANSWERED} (up stops the operation: it may be done in part)`
const oneShot = (what: string) => <Name extends string, R, E, A>(command: Command.Command<Name, R, E, A>) =>
  Command.transformHandler(command, Interrupted.oneShot(what))

const subcommands = [
  upCommand,
  validateCommand.pipe(oneShot("stopped before it was done")),
  statusCommand.pipe(oneShot(UNANSWERED)),
  controlCommand("restart", "Restart a child (closes an open circuit).").pipe(oneShot(OPERATION)),
  controlCommand("stop", "Stop a child; it stays stopped until started.").pipe(oneShot(OPERATION)),
  controlCommand("start", "Start a stopped or parked child.").pipe(oneShot(OPERATION)),
  controlCommand(
    "reload",
    "Reload an agent or a pool without downtime: each new process up before the old one goes (as it is configured)."
  ).pipe(oneShot(OPERATION)),
  scaleCommand.pipe(oneShot(OPERATION)),
  callCommand.pipe(oneShot("the call was given up (its agent is sent a cancel)")),
  publishCommand.pipe(oneShot(`${UNANSWERED}: the task may have been published`)),
  resultCommand.pipe(oneShot("stopped waiting (the task goes on)")),
  topicsCommand.pipe(oneShot(UNANSWERED)),
  logsCommand.pipe(
    Command.transformHandler((effect, options) =>
      options.follow ? Interrupted.begun(effect) : Interrupted.oneShot(UNANSWERED)(effect)
    )
  ),
  historyCommand.pipe(oneShot(UNANSWERED)),
  eventsCommand.pipe(Command.transformHandler(Interrupted.begun)),
  clusterCommand.pipe(oneShot(UNANSWERED)),
  Conformance.command.pipe(oneShot("stopped before it was done (its agent was stopped)"))
] as const

/** The command `args` name, if any, and whether it runs until a signal (`up`, `events`, `logs --follow`). */
const invokedOf = (args: ReadonlyArray<string>): Interrupted.Invoked | undefined => {
  const name = args.find((arg) => grammar.commands.has(arg))
  if (name === undefined) return undefined
  const following = args.some((arg) => ["--follow", "-f", "-F"].includes(Arguments.nameOf(arg)))
  return { name, follower: name === "up" || name === "events" || (name === "logs" && following) }
}

export const command = Command.make("agent-supervisor").pipe(
  Command.withDescription("Supervise AI agents as child processes, as Erlang/OTP supervises its processes."),
  Command.withSubcommands(subcommands)
)

/** What the program reads: its commands and their options. */
export const grammar = Arguments.grammarOf("agent-supervisor", subcommands, { conformance: Conformance.AFTER_OPTIONS })

/**
 * The command line, run on `argv` (`process.argv`: node, the script, then the arguments). Its help and errors carry
 * colour only where colour goes (`console.ts`).
 */
export const run = (version: string) => {
  const cli = Command.run(command, { name: "agent-supervisor", version })
  return (argv: ReadonlyArray<string>) => {
    const args = Arguments.withRepeatedSplit(argv.slice(2))
    const problem = Arguments.caseProblem(args) ?? Arguments.unknownName(args, grammar)
    if (problem !== undefined) return Effect.fail(new CliError({ message: problem }))
    return Arguments.usageProblem(command, grammar, args).pipe(
      Effect.zipRight(withPlainConsole(cli([...argv.slice(0, 2), ...Arguments.withHelpFirst(args, grammar)]))),
      Interrupted.beforeBegun(
        invokedOf(args),
        (line) => Effect.logInfo(line).pipe(Effect.provide(Logging.layer(Arguments.logFormatOf(args, Logging.FORMATS))))
      ),
      Effect.provideService(CommandLine, args)
    )
  }
}

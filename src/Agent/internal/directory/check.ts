/**
 * The callback check: the agent's adapter loads the module with `--check` in a child process and reports whether
 * the callback is there, which functions are if it is not, or why the module failed to load. User code never runs
 * inside the supervisor, and a module that hangs while loading is bounded by `startupTimeout`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { AgentCallbackNotFoundError, AgentStartupError } from "../../../Errors.js"
import type * as Config from "../../Config.js"
import * as Placement from "../limits/placement.js"
import * as Spawn from "../spawn.js"
import { commandLine, runBounded } from "./run.js"

/** The check prints one line, but it lists every function of the module: leave room for big modules. */
const CHECK_STDOUT_LIMIT = 1024 * 1024

/** The line both adapters print for `--check`. */
const CheckReport = Schema.Union(
  Schema.Struct({ type: Schema.Literal("check"), ok: Schema.Literal(true) }),
  Schema.Struct({
    type: Schema.Literal("check"),
    ok: Schema.Literal(false),
    error: Schema.Literal("callback_not_found"),
    function: Schema.optional(Schema.String),
    functions: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
  }),
  Schema.Struct({
    type: Schema.Literal("check"),
    ok: Schema.Literal(false),
    error: Schema.Literal("load_failed"),
    message: Schema.optional(Schema.String),
    traceback: Schema.optional(Schema.String),
    stack: Schema.optional(Schema.NullOr(Schema.String)),
    missing_module: Schema.optional(Schema.String)
  })
)

const decodeReport = Schema.decodeUnknownOption(Schema.parseJson(CheckReport))

/**
 * What to check: the agent as it will run (its command line, with `--check` appended; its `cwd`; its whole
 * environment, `inheritEnv` applied; as its `user` and `group`), bounded by its `startupTimeout`. @internal
 */
export interface Check {
  readonly config: Config.AgentConfig
  /** The entry file in the user's directory, for messages. */
  readonly module: string
  /** The callback as the user knows it, for messages. */
  readonly callback: string
  /** A default export that is a function is taken before `callback` (the Node adapter with no function named). */
  readonly defaultExport?: boolean | undefined
  /** Bounds the check instead of the agent's `startupTimeout`. */
  readonly timeout?: Duration.Duration | undefined
}

const lines = (text: string) => text.split(/\r?\n/).filter((line) => line.trim().length > 0)

/**
 * Loads the callback the way the agent will: succeeds when it is there, else fails with
 * `AgentCallbackNotFoundError` (listing the module's functions) or `AgentStartupError` (with the traceback).
 *
 * @internal
 */
export const checkCallback = Effect.fnUntraced(function*(check: Check) {
  const { config } = check
  const timeout = check.timeout ?? config.startupTimeout
  const agent = config.name
  const command = commandLine(config.command, config.args)
  // As the agent's own spawn resolves (and reports) the account it runs as.
  const { env, gid, uid } = yield* Placement.account(config)
  const result = yield* runBounded(
    { command: config.command, args: [...config.args, "--check"], cwd: config.cwd, env, uid, gid },
    timeout,
    CHECK_STDOUT_LIMIT
  ).pipe(
    // Said as the agent's own spawn would say it: which program, found where, and what to do.
    Effect.mapError((error) => Spawn.classify(config, error))
  )
  const exit = { pid: result.pid, exitCode: result.exitCode, signal: result.signal }
  if (result.timedOut) {
    return yield* new AgentStartupError({
      agent,
      reason: "no_ready_in_time",
      command,
      detail: "loading the callback (--check) did not finish in time",
      timeoutMillis: Duration.toMillis(timeout),
      ...exit,
      stderr: lines(result.stderr)
    })
  }
  // The last line that is a report: anything the module printed while loading went to stderr, but be lenient.
  let report: typeof CheckReport.Type | undefined
  for (const line of lines(result.stdout).reverse()) {
    report = Option.getOrUndefined(decodeReport(line))
    if (report !== undefined) break
  }
  if (report !== undefined && report.ok) return
  if (report !== undefined && "functions" in report) {
    return yield* new AgentCallbackNotFoundError({
      agent,
      callback: check.callback,
      module: check.module,
      available: report.functions,
      ...(check.defaultExport === true ? { defaultExport: true } : {})
    })
  }
  // A load failure (or an adapter that died without a report): the traceback is what the user needs, so it goes
  // where the error's message shows it.
  const failure = report !== undefined && "error" in report && report.error === "load_failed" ? report : undefined
  const traceback = failure?.traceback ?? failure?.stack ?? ""
  const hint = failure?.missing_module !== undefined
    ? [
      `module "${failure.missing_module}" is not installed: list it in requirements.txt or pyproject.toml, ` +
      "or add the file it names"
    ]
    : []
  // Python's message says which file could not be loaded, last, after its traceback; Node's stack starts with the
  // message, and a line saying which module ends it alike
  const message = failure?.message === undefined
    ? []
    : failure.stack !== undefined && failure.traceback === undefined
    ? [`cannot load ${check.module}: ${failure.message}`]
    : traceback.includes(failure.message)
    ? []
    : [failure.message]
  const detailLines = [...lines(traceback), ...message, ...hint]
  return yield* new AgentStartupError({
    agent,
    reason: "exited_before_ready",
    command,
    detail: detailLines.length > 0 ? detailLines.join("\n") : result.stderr.trim() || "no report from --check",
    ...exit,
    stderr: [...lines(result.stderr), ...detailLines].slice(-50)
  })
})

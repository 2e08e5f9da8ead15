/**
 * The callback check: the agent's adapter loads the module with `--check` in a child process and reports whether
 * the callback is there, which functions are if it is not, or why the module failed to load. User code never runs
 * inside the supervisor, and a module that hangs while loading is bounded by `startupTimeout`.
 *
 * @internal
 */
import * as Command from "@effect/platform/Command"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { AgentCallbackNotFoundError, AgentStartupError } from "../../../Errors.js"
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

/** What to check: the agent's own command line, run with `--check` appended. @internal */
export interface Check {
  readonly agent: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly env: Record<string, string>
  readonly timeout: Duration.Duration
  /** The entry file in the user's directory, for messages. */
  readonly module: string
  /** The callback as the user knows it, for messages. */
  readonly callback: string
}

const lines = (text: string) => text.split(/\r?\n/).filter((line) => line.trim().length > 0)

/**
 * Loads the callback the way the agent will: succeeds when it is there, else fails with
 * `AgentCallbackNotFoundError` (listing the module's functions) or `AgentStartupError` (with the traceback).
 *
 * @internal
 */
export const checkCallback = Effect.fnUntraced(function*(check: Check) {
  const args = [...check.args, "--check"]
  const command = commandLine(check.command, check.args)
  const result = yield* runBounded(
    Command.make(check.command, ...args).pipe(Command.workingDirectory(check.cwd), Command.env(check.env)),
    check.timeout,
    CHECK_STDOUT_LIMIT
  ).pipe(
    Effect.mapError((error) =>
      new AgentStartupError({ agent: check.agent, reason: "spawn_failed", command, detail: error.message })
    )
  )
  const exit = { pid: result.pid, exitCode: result.exitCode, signal: result.signal }
  if (result.timedOut) {
    return yield* new AgentStartupError({
      agent: check.agent,
      reason: "no_ready_in_time",
      command,
      detail: "loading the callback (--check) did not finish in time",
      timeoutMillis: Duration.toMillis(check.timeout),
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
      agent: check.agent,
      callback: check.callback,
      module: check.module,
      available: report.functions
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
  // Node's stack already starts with the message; Python's message says which file could not be loaded.
  const message = failure?.message !== undefined && !traceback.includes(failure.message) ? [failure.message] : []
  const detailLines = [...lines(traceback), ...message, ...hint]
  return yield* new AgentStartupError({
    agent: check.agent,
    reason: "exited_before_ready",
    command,
    detail: detailLines.length > 0 ? detailLines.join("\n") : result.stderr.trim() || "no report from --check",
    ...exit,
    stderr: [...lines(result.stderr), ...detailLines].slice(-50)
  })
})

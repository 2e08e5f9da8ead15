/**
 * `agent-supervisor conformance [--json] -- COMMAND ARGS...`: the protocol conformance kit (`Conformance.run`)
 * against any agent program. Prints a table (check, result, evidence; colour on a terminal) and, below it, the
 * evidence of each failed check; `--json` prints the whole report. Exits 0 when no check failed (skips allowed),
 * 1 otherwise.
 *
 * The library is loaded when the command runs, not when the command line is parsed: the other commands start
 * without it.
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Conformance from "../../Conformance.js"
import type { ConfigError } from "../../Errors.js"
import {
  CHECK_NAMES,
  DEFAULT_CANCEL_TIMEOUT,
  DEFAULT_EXIT_TIMEOUT,
  DEFAULT_PING_TIMEOUT,
  DEFAULT_REQUEST_TIMEOUT,
  DEFAULT_STARTUP_TIMEOUT
} from "../conformance/names.js"
import { CliError } from "./errors.js"
import { type Cell, type Colour, colourFor, render } from "./table.js"

const conformanceModule = Effect.promise(() => import("../../Conformance.js"))

const statusColour: Record<Conformance.Status, Colour> = { pass: "green", fail: "red", skipped: "grey" }

const seconds = (millis: number) => `${(millis / 1000).toFixed(1)} s`

/** The report for a person: the table, a count, then the evidence of every failure. */
export const reportText = (report: Conformance.Report, withColour: boolean): string => {
  const table = render(
    ["CHECK", "RESULT", "EVIDENCE"],
    report.checks.map((check): ReadonlyArray<Cell | string> => [
      check.name,
      { text: check.status, colour: statusColour[check.status] },
      check.summary
    ]),
    withColour
  )
  const { fail, pass, skipped } = report.counts
  const failures = report.checks.filter((check) => check.status === "fail").map((check) =>
    [`${check.name}: ${check.summary}`, ...check.evidence.split("\n").map((line) => line === "" ? "" : `  ${line}`)]
      .join("\n")
  )
  return [
    `agent: ${[report.command, ...report.args].join(" ")}`,
    table,
    `${pass} passed, ${fail} failed, ${skipped} skipped in ${seconds(report.durationMillis)}`,
    ...report.diagnoses.map((diagnosis) => `diagnosis: ${diagnosis}`),
    ...failures.map((text) => `\n${text}`)
  ].join("\n")
}

/**
 * A duration option as the library takes it: a bare number is milliseconds, anything else text ("5 seconds"), which
 * the library decodes (a bad one is its `ConfigError`, naming the option).
 */
const duration = (value: Option.Option<string>): Duration.DurationInput | undefined =>
  Option.match(value, {
    onNone: () => undefined,
    onSome: (text) => /^\s*\d+(\.\d+)?\s*$/.test(text) ? Number(text) : text as Duration.DurationInput
  })

export interface ConformanceOptions {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly json: boolean
  readonly only: ReadonlyArray<string>
  readonly startupTimeout: Option.Option<string>
  readonly requestTimeout: Option.Option<string>
  readonly pingTimeout: Option.Option<string>
  readonly cancelTimeout: Option.Option<string>
  readonly exitTimeout: Option.Option<string>
}

/** Runs the battery and prints it; fails (exit 1) when a check failed. */
export const conformance = (options: ConformanceOptions): Effect.Effect<void, CliError | ConfigError> =>
  Effect.gen(function*() {
    // Checked here too, so that the error names the flag (the library's names the field, `only[0]`).
    const unknown = options.only.find((name) => !(CHECK_NAMES as ReadonlyArray<string>).includes(name))
    if (unknown !== undefined) {
      return yield* new CliError({
        message: `--only ${JSON.stringify(unknown)} is no check; the checks are ${CHECK_NAMES.join(", ")}`
      })
    }
    const { run } = yield* conformanceModule
    const report = yield* run({
      command: options.command,
      args: options.args,
      only: options.only.length === 0 ? undefined : options.only as ReadonlyArray<Conformance.CheckName>,
      startupTimeout: duration(options.startupTimeout),
      requestTimeout: duration(options.requestTimeout),
      pingTimeout: duration(options.pingTimeout),
      cancelTimeout: duration(options.cancelTimeout),
      exitTimeout: duration(options.exitTimeout)
    })
    yield* Console.log(options.json ? JSON.stringify(report, null, 2) : reportText(report, colourFor(process.stdout)))
    if (!report.passed) {
      return yield* new CliError({
        message: `${report.counts.fail} of ${report.checks.length} conformance checks failed`
      })
    }
  })

const timeout = (name: string, what: string, byDefault: Duration.Duration) =>
  Options.text(name).pipe(
    Options.optional,
    Options.withDescription(`${what} (milliseconds, or "5 seconds"; ${Duration.format(byDefault)} by default).`)
  )

/** The `conformance` command, for `main.ts`'s list. */
export const command = Command.make(
  "conformance",
  {
    json: Options.boolean("json").pipe(Options.withDescription("Print the whole report as JSON for scripts.")),
    only: Options.text("only").pipe(
      Options.repeated,
      Options.withDefault<ReadonlyArray<string>>([]),
      Options.withDescription(`Run only this check (repeat for several); all by default. ${CHECK_NAMES.join(", ")}.`)
    ),
    startupTimeout: timeout("startup-timeout", "From the spawn to ready", DEFAULT_STARTUP_TIMEOUT),
    requestTimeout: timeout("request-timeout", "From a request to its answer", DEFAULT_REQUEST_TIMEOUT),
    pingTimeout: timeout("ping-timeout", "A ping sent while a task runs is answered within", DEFAULT_PING_TIMEOUT),
    cancelTimeout: timeout("cancel-timeout", "From a cancel until the task is known cut short", DEFAULT_CANCEL_TIMEOUT),
    exitTimeout: timeout("exit-timeout", "From shutdown or the end of stdin to the exit", DEFAULT_EXIT_TIMEOUT),
    command: Args.text({ name: "COMMAND" }).pipe(Args.withDescription("The agent's program, after --.")),
    args: Args.text({ name: "ARGS" }).pipe(Args.repeated, Args.withDescription("Its arguments."))
  },
  (options) => conformance(options)
).pipe(
  Command.withDescription(
    "Check an agent program against the protocol: v1, and the 1.1 and 1.2 features its ready announces " +
      "(docs/CONFORMANCE.md). agent-supervisor conformance -- python3 agent.py"
  )
)

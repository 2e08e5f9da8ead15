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
import { type DurationInput, fromTyped } from "../durationText.js"
import { closest } from "../suggest.js"
import { BUILT_INS, nameOf, noSuchOption, splitAtDashes } from "./arguments.js"
import { CommandLine } from "./commandLine.js"
import { bareMillisWarning } from "./durations.js"
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
const duration = (value: Option.Option<string>): DurationInput | undefined =>
  Option.getOrUndefined(Option.map(value, fromTyped))

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

/** The timeouts `conformance` takes, by the library's field: the flag, what it bounds, the default. */
const TIMEOUTS = [
  ["startupTimeout", "startup-timeout", "From the spawn to ready", DEFAULT_STARTUP_TIMEOUT],
  ["requestTimeout", "request-timeout", "From a request to its answer", DEFAULT_REQUEST_TIMEOUT],
  ["pingTimeout", "ping-timeout", "A ping sent while a task runs is answered within", DEFAULT_PING_TIMEOUT],
  ["cancelTimeout", "cancel-timeout", "From a cancel until the task is known cut short", DEFAULT_CANCEL_TIMEOUT],
  ["exitTimeout", "exit-timeout", "From shutdown or the end of stdin to the exit", DEFAULT_EXIT_TIMEOUT]
] as const

/** Each field of the library's options that a flag gives, as the flag (`only[2]` is `--only`). */
const flagOf = (field: string): string | undefined => {
  const name = field.replace(/\[\d+\]$/, "")
  if (name === "only") return "--only"
  if (name === "command") return "COMMAND"
  if (name === "args") return "ARGS"
  const timeout = TIMEOUTS.find(([key]) => key === name)
  return timeout === undefined ? undefined : `--${timeout[1]}`
}

/**
 * The library's `ConfigError` about the options this command gave, with each problem named by its flag
 * (`--startup-timeout "nope": must be a duration ...`) rather than by the library's field (`startupTimeout`).
 */
const byFlag = (error: ConfigError): CliError => {
  const lines = error.problems.map((problem) => {
    const flag = flagOf(problem.field) ?? problem.field
    return `${flag}${problem.value === undefined ? "" : ` ${problem.value}`}: ${problem.rule}`
  })
  return new CliError({
    message: lines.length === 1
      ? lines[0]
      : `${lines.length} problems:\n${lines.map((l) => `  ${l}`).join("\n")}`
  })
}

/** `--only NAME` for a name that is no check: the checks there are, and the one meant when one is close. */
const unknownCheck = (name: string): CliError => {
  const meant = closest(name, CHECK_NAMES)
  return new CliError({
    message: `--only ${JSON.stringify(name)} is no check${meant === undefined ? "" : ` (did you mean ${meant}?)`}; ` +
      `the checks are ${CHECK_NAMES.join(", ")}`
  })
}

/** Runs the battery and prints it; fails (exit 1) when a check failed. */
export const conformance = (options: ConformanceOptions): Effect.Effect<void, CliError, CommandLine> =>
  Effect.gen(function*() {
    const problem = misread(yield* CommandLine, options)
    if (problem !== undefined) return yield* new CliError({ message: problem })
    // Checked here too, so that the error can say which check was meant.
    const unknown = options.only.find((name) => !(CHECK_NAMES as ReadonlyArray<string>).includes(name))
    if (unknown !== undefined) return yield* unknownCheck(unknown)
    const toAgent = givenToAgent(yield* CommandLine)
    if (toAgent !== undefined) yield* Console.error(`warning: ${toAgent}`)
    for (const [field, flag] of TIMEOUTS) yield* bareMillisWarning(`--${flag}`, options[field])
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
    }).pipe(Effect.mapError(byFlag))
    yield* Console.log(options.json ? JSON.stringify(report) : reportText(report, colourFor(process.stdout)))
    if (!report.passed) {
      return yield* new CliError({
        message: `${report.counts.fail} of ${report.checks.length} conformance checks failed`
      })
    }
  })

const timeout = ([, name, what, byDefault]: typeof TIMEOUTS[number]) =>
  Options.text(name).pipe(
    Options.optional,
    Options.withDescription(`${what} (milliseconds, "5 seconds" or "5s"; ${Duration.format(byDefault)} by default).`)
  )

/** What follows the list of this command's options when one is unknown. */
export const AFTER_OPTIONS = ", and the agent's command goes after --"

/** This command's options, and those of them that take a value. */
const OPTIONS = ["--json", "--only", ...TIMEOUTS.map(([, flag]) => `--${flag}`)]
const WITH_VALUE = OPTIONS.slice(1)

/** The values @effect/cli reads after a flag as the flag's own (`--json false`), as they must be written. */
const BOOLEAN_VALUES = ["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"]

/**
 * What @effect/cli misread of `conformance`'s command line `given` (the arguments as typed), judged by what it
 * made of them (`parsed`: the agent's command and arguments), or `undefined`. It takes anything before `--` that it
 * does not read as an option (a misspelt one, one given twice, a flag's value, a built-in option that is not
 * first, a stray word) for the start of the agent's command, and drops `--only` with no name (every check then
 * runs). So: an option that takes a value and has none (empty, or `--` next), then anything the agent's command
 * has that was not typed after `--` (or, with no `--`, a command that starts with `-`), each with what to do.
 *
 * @internal
 */
export const misread = (
  given: ReadonlyArray<string>,
  parsed: { readonly command: string; readonly args: ReadonlyArray<string> }
): string | undefined => {
  const { after: typed, own } = splitAtDashes(given)
  const mine = own.slice(own.indexOf("conformance") + 1)
  for (let i = 0; i < mine.length; i++) {
    // (names in another case are refused before: `caseProblem` in main.ts)
    const name = nameOf(mine[i])
    if (name === "--json" && BOOLEAN_VALUES.includes(mine[i + 1])) i++
    if (!WITH_VALUE.includes(name)) continue
    const value = mine[i].includes("=") ? mine[i].slice(mine[i].indexOf("=") + 1) : mine[i + 1]
    if (value === undefined ? typed !== undefined : value.trim() === "") {
      return `${name} needs a value` +
        (name === "--only" ? `: a check's name (${CHECK_NAMES.join(", ")})` : `: milliseconds, "5 seconds" or "5s"`)
    }
    if (!mine[i].includes("=")) i++
  }
  const line = [parsed.command, ...parsed.args]
  const extra = typed === undefined
    ? (parsed.command.startsWith("-") ? [parsed.command] : [])
    : line.length > typed.length && typed.every((arg, i) => arg === line[line.length - typed.length + i])
    ? line.slice(0, line.length - typed.length)
    : []
  if (extra.length === 0) return undefined
  const first = extra[0]
  const name = nameOf(first).toLowerCase()
  if (!first.startsWith("-") || first === "-") {
    return `${JSON.stringify(first)} before -- is no option's value (--json takes none); the agent's command and ` +
      `its arguments go after -- (agent-supervisor conformance [options] -- COMMAND ARGS...)`
  }
  if (BUILT_INS.includes(name)) return `${name} is read only as the first argument after conformance`
  if (OPTIONS.includes(name)) {
    return `${JSON.stringify(first)} was not read as an option: give each option once, before --, as ${name}` +
      (name === "--json" ? "" : " VALUE") + (name === "--only" ? " (repeat it for several checks)" : "")
  }
  return noSuchOption("conformance", first, OPTIONS, OPTIONS, AFTER_OPTIONS)
}

/** A word of a command line as a shell would read it back: in quotes where it has a space or a shell character. */
const shellWord = (word: string): string =>
  word === "" || /[\s"'\\$`|&;<>()*?#~]/.test(word) ? JSON.stringify(word) : word

/**
 * What to say of this command's own options typed after `--` (`given`: the arguments as typed), or `undefined`.
 * Everything after `--` is the agent's (an agent may well take a `--json` of its own), so they are given to it as
 * typed; but `conformance -- ./agent --only ready` more likely meant `--only` for the checks, which would run every
 * check against an agent given an argument it does not know. The warning names them, and the command line with
 * them before `--`.
 *
 * @internal
 */
export const givenToAgent = (given: ReadonlyArray<string>): string | undefined => {
  const { after, own } = splitAtDashes(given)
  if (after === undefined) return undefined
  const names: Array<string> = []
  const moved: Array<string> = []
  // (the first word is the agent's program, whatever it looks like)
  const rest = after.slice(0, 1)
  for (let i = 1; i < after.length; i++) {
    const name = nameOf(after[i])
    if (!OPTIONS.includes(name)) {
      rest.push(after[i])
      continue
    }
    if (!names.includes(name)) names.push(name)
    moved.push(after[i])
    if (WITH_VALUE.includes(name) && !after[i].includes("=") && i + 1 < after.length) moved.push(after[++i])
  }
  if (names.length === 0) return undefined
  const line = [...own.slice(own.indexOf("conformance") + 1), ...moved, "--", ...rest].map(shellWord).join(" ")
  return `${names.join(", ")} after -- ${names.length === 1 ? "is" : "are"} given to the agent as its ` +
    `argument${names.length === 1 ? "" : "s"}, not read by conformance: its options go before -- ` +
    `(agent-supervisor conformance ${line})`
}

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
    startupTimeout: timeout(TIMEOUTS[0]),
    requestTimeout: timeout(TIMEOUTS[1]),
    pingTimeout: timeout(TIMEOUTS[2]),
    cancelTimeout: timeout(TIMEOUTS[3]),
    exitTimeout: timeout(TIMEOUTS[4]),
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

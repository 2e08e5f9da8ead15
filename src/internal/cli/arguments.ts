/**
 * The command line as typed, read before @effect/cli 0.77 reads it, for what it would misread or say badly: options
 * and commands that are no such thing (with the one meant), long options in another case, `--name=value` of a
 * repeated option, `--help` after a subcommand; then its own usage errors, as this program's other errors are
 * printed (`error: ...`) with the command's usage line.
 *
 * Only the arguments before `--` are read: those after it are an agent's own (`conformance -- node agent.js --help`).
 *
 * @internal
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Descriptor from "@effect/cli/CommandDescriptor"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Usage from "@effect/cli/Usage"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as Terminal from "@effect/platform/Terminal"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { closest } from "../suggest.js"
import { stripColour } from "./console.js"
import { CliError } from "./errors.js"

/** The arguments before the first `--` (`own`), and those after it (`after`, `undefined` with no `--`). */
export const splitAtDashes = (
  args: ReadonlyArray<string>
): { readonly own: ReadonlyArray<string>; readonly after: ReadonlyArray<string> | undefined } => {
  const end = args.indexOf("--")
  return end === -1 ? { own: args, after: undefined } : { own: args.slice(0, end), after: args.slice(end + 1) }
}

/** An option's name as typed, without its `=value`. */
export const nameOf = (arg: string): string => arg.indexOf("=") > 0 ? arg.slice(0, arg.indexOf("=")) : arg

/** The value of `--log-format` in `args` (`--log-format json` or `--log-format=json`) when one of `formats`, else `auto`. */
export const logFormatOf = <F extends string>(args: ReadonlyArray<string>, formats: ReadonlyArray<F>): F | "auto" => {
  const at = args.findIndex((arg) => nameOf(arg) === "--log-format")
  if (at < 0) return "auto"
  const value = args[at].includes("=") ? args[at].slice(args[at].indexOf("=") + 1) : args[at + 1]
  return formats.find((format) => format === value) ?? "auto"
}

/** @effect/cli's own options, which it reads only as the first arguments after the program's or a command's name. */
export const BUILT_INS = ["--help", "-h", "--wizard", "--version", "--log-level", "--completions"]
/** Those of them that take a value. */
const BUILT_INS_WITH_VALUE = ["--log-level", "--completions"]

/** One option of a command: its names (`-f`, `--file`), and the kind of value it takes (`file`), if it takes one. */
export interface OptionSpec {
  readonly names: ReadonlyArray<string>
  readonly value: string | undefined
}

/**
 * One command: its options, its usage line (after the program's name), and for a command that reads the words
 * after `--` (its own checks judge the options before it), what to say after the list of its options.
 */
export interface CommandSpec {
  readonly options: ReadonlyArray<OptionSpec>
  readonly usage: string
  readonly afterDashes: string | undefined
}

/** What the program reads: its name, and each command, by name, in the order of the program's help. */
export interface Grammar {
  readonly program: string
  readonly commands: ReadonlyMap<string, CommandSpec>
}

/** The options in a usage (@effect/cli's `Usage`): the named parts whose names start with `-`. */
const optionsIn = (usage: Usage.Usage): Array<OptionSpec> => {
  switch (usage._tag) {
    case "Named":
      return usage.names.some((name) => name.startsWith("-"))
        ? [{ names: usage.names, value: Option.getOrUndefined(usage.acceptedValues) }]
        : []
    case "Optional":
    case "Repeated":
      return optionsIn(usage.usage)
    case "Alternation":
    case "Concat":
      return [...optionsIn(usage.left), ...optionsIn(usage.right)]
    default:
      return []
  }
}

/**
 * The grammar of the program `program` with `commands` (one level: none has subcommands of its own). `afterDashes`
 * names the commands that read the words after `--`, each with what follows the list of its options when one is
 * unknown (`conformance`: ", and the agent's command goes after --").
 */
export const grammarOf = (
  program: string,
  commands: ReadonlyArray<{ readonly descriptor: Descriptor.Command<any> }>,
  afterDashes: Readonly<Record<string, string>> = {}
): Grammar => {
  const specs = new Map<string, CommandSpec>()
  for (const command of commands) {
    const name = [...Descriptor.getNames(command.descriptor)][0]
    const usage = Descriptor.getUsage(command.descriptor)
    // Rendered when an error first shows it: rendering every command's (@effect/printer) was 50 ms of each start
    let usageLine: string | undefined
    specs.set(name, {
      options: optionsIn(usage),
      get usage() {
        return usageLine ??= stripColour(HelpDoc.toAnsiText(Usage.getHelp(usage))).trim()
      },
      afterDashes: afterDashes[name]
    })
  }
  return { program, commands: specs }
}

/** A command's options as a list: each by its long name, its short ones after it (`--file (-f)`). */
const listed = (options: ReadonlyArray<OptionSpec>): Array<string> =>
  options.map(({ names }) => {
    const long = names.filter((name) => name.startsWith("--"))
    const short = names.filter((name) => !name.startsWith("--"))
    return long.length === 0
      ? short.join(", ")
      : `${long.join(", ")}${short.length === 0 ? "" : ` (${short.join(", ")})`}`
  })

/**
 * The message for an option `typed` that `command` does not have: the one meant when one is close (among
 * `names`), and the options it has (`options`, `tail` after them).
 */
export const noSuchOption = (
  command: string,
  typed: string,
  names: ReadonlyArray<string>,
  options: ReadonlyArray<string> = names,
  tail = ""
): string => {
  const meant = closest(nameOf(typed), names)
  return `${JSON.stringify(typed)} is no option of ${command}${
    meant === undefined ? "" : ` (did you mean ${meant}?)`
  }` +
    (options.length === 0 ? `; it takes none${tail}` : `; its options are ${options.join(", ")}${tail}`)
}

/**
 * What is wrong with the words of `args` that name a command or an option, or `undefined`: a command that is no
 * command, an option before the command's name (other than @effect/cli's own), an option the command does not
 * have. @effect/cli 0.77 says "Received unknown argument" or "Invalid subcommand" with no hint of what was meant;
 * this says it with the one meant when one is close (`status --urll`: did you mean --url?). A word that starts with
 * a `-` and a digit is a value (`scale pool -1`), as is the word after an option that takes one.
 */
export const unknownName = (args: ReadonlyArray<string>, grammar: Grammar): string | undefined => {
  const { after, own } = splitAtDashes(args)
  const names = [...grammar.commands.keys()]
  let at = 0
  for (; at < own.length && own[at].startsWith("-"); at++) {
    const name = nameOf(own[at])
    if (!BUILT_INS.includes(name)) {
      const next = own.slice(at + 1).find((arg) => grammar.commands.has(arg)) ?? names[0]
      return `${JSON.stringify(own[at])} is no option of ${grammar.program} itself: a command's options go after its ` +
        `name (${grammar.program} ${next} ${name})`
    }
    if (BUILT_INS_WITH_VALUE.includes(name) && !own[at].includes("=")) at++
  }
  if (at >= own.length) return undefined
  const name = own[at]
  const command = grammar.commands.get(name)
  if (command === undefined) {
    const meant = closest(name, names)
    return `${JSON.stringify(name)} is no command of ${grammar.program}` +
      `${meant === undefined ? "" : ` (did you mean ${meant}?)`}; the commands are ${names.join(", ")}`
  }
  for (let i = at + 1; i < own.length; i++) {
    const arg = own[i]
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) continue
    const option = command.options.find((o) => o.names.includes(nameOf(arg)))
    if (option === undefined) {
      if (BUILT_INS.includes(nameOf(arg))) continue
      // (the one meant only for a long name: one letter off a short one is any other)
      const long = arg.startsWith("--") ? command.options.flatMap((o) => o.names) : []
      return noSuchOption(name, arg, long, listed(command.options), command.afterDashes)
    }
    if (option.value === undefined || arg.includes("=")) continue
    // The last word with no value after it (@effect/cli: "unknown argument"); before `--` where the command reads
    // what follows it, the command's to say.
    if (i + 1 === own.length && (after === undefined || command.afterDashes === undefined)) {
      const value = option.value.includes(" | ") ? `one of ${option.value}` : option.value.toUpperCase()
      return `${nameOf(arg)} needs a value: ${grammar.program} ${name} ${nameOf(arg)} ${value}`
    }
    i++
  }
  return undefined
}

/**
 * What is wrong with a long option before `--` written in another case than its name's (all lower case), or
 * `undefined`: @effect/cli 0.77 matches option names in any case and then drops the option, its value and all
 * (`status --Url URL` read no URL; `conformance --Only ready` ran every check).
 */
export const caseProblem = (args: ReadonlyArray<string>): string | undefined => {
  for (const arg of splitAtDashes(args).own) {
    if (!arg.startsWith("--")) continue
    const name = nameOf(arg)
    if (name !== name.toLowerCase()) {
      return `${JSON.stringify(name)} is read as no option: option names are in lower case (${name.toLowerCase()})`
    }
  }
  return undefined
}

/** The options given with `Options.repeated`, which @effect/cli 0.77 does not read in the `--name=value` form. */
const REPEATED = new Set(["--only"])

/** `-n` with its number attached (`-n1`, as `tail -n1` takes it), which @effect/cli 0.77 reads as no option. */
const ATTACHED_LINES = /^-n(\d+)$/

/**
 * The arguments with each `--name=value` of a repeated option split into `--name value`: @effect/cli 0.77 reads
 * `--url=...` but not `--only=ready`, which it took for the first of `conformance`'s positional arguments (the
 * agent's command: "could not spawn --only=ready"); and `-n1` into `-n 1`.
 */
export const withRepeatedSplit = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const { after, own } = splitAtDashes(args)
  return own.flatMap((arg) => {
    const lines = ATTACHED_LINES.exec(arg)
    if (lines !== null) return ["-n", lines[1]]
    const at = arg.indexOf("=")
    return at > 0 && REPEATED.has(arg.slice(0, at).toLowerCase()) ? [arg.slice(0, at), arg.slice(at + 1)] : [arg]
  }).concat(after === undefined ? [] : ["--", ...after])
}

const isHelpFlag = (arg: string) => arg === "--help" || arg === "-h"

/**
 * The arguments with `--help` also before the subcommand when it is asked for after it (`up --help`): @effect/cli
 * 0.77 renders a subcommand's help with the program's name in its usage line (`$ agent-supervisor up ...`) only
 * then, and without it (`$ up ...`) otherwise. Anything else is returned as it is.
 */
export const withHelpFirst = (args: ReadonlyArray<string>, grammar: Grammar): ReadonlyArray<string> => {
  const { own } = splitAtDashes(args)
  const at = own.findIndex((arg) => grammar.commands.has(arg))
  if (at === -1 || own.slice(0, at).some(isHelpFlag) || !own.slice(at + 1).some(isHelpFlag)) return args
  return [...args.slice(0, at), "--help", ...args.slice(at)]
}

/** @effect/cli's message, in this program's words where its own read badly ("is not a integer"). */
const reworded = (message: string): string => message.trim().replace(/ is not a ([aeiou])/g, " is not an $1")

/** A word that names a tree file, by its extension. */
const TREE_FILE = /\.(ya?ml|json|toml)$/i

/**
 * Why a word is left over after `-f` where `-f` is a flag of its own (`logs`: `--follow`), as other commands take
 * `-f FILE`: the hint to add when a flag of that command named `-f` comes before `leftover`, and the word is right
 * after it or looks like a tree file; `""` otherwise.
 */
export const followHint = (grammar: Grammar, args: ReadonlyArray<string>, leftover: string): string => {
  const { own } = splitAtDashes(args)
  const command = grammar.commands.get(own.find((arg) => grammar.commands.has(arg)) ?? "")
  const flag = command?.options.find((option) => option.value === undefined && option.names.includes("-f"))
  if (command === undefined || flag === undefined) return ""
  const at = own.indexOf(leftover)
  const before = own.slice(0, at === -1 ? own.length : at)
  const isFlag = (arg: string | undefined) => arg !== undefined && flag.names.includes(arg)
  if (!before.some(isFlag) || (!isFlag(before[before.length - 1]) && !TREE_FILE.test(leftover))) return ""
  const long = flag.names.find((name) => name.startsWith("--")) ?? "-f"
  const file = command.options.find((option) => option.names.includes("--file"))
  return ` (-f is ${long} here${file === undefined ? "" : "; give the tree file with --file"})`
}

/**
 * Why a word is left over after `--`, where @effect/cli reads nothing as an option (`call echo -- -1 --url URL`):
 * the hint to add when it is one of the command's options and was typed only after `--`; `""` otherwise.
 */
export const dashesHint = (grammar: Grammar, args: ReadonlyArray<string>, leftover: string): string => {
  const { after, own } = splitAtDashes(args)
  if (after === undefined || !after.includes(leftover) || own.includes(leftover)) return ""
  const command = grammar.commands.get(own.find((arg) => grammar.commands.has(arg)) ?? "")
  const name = nameOf(leftover)
  return command?.options.some((option) => option.names.includes(name))
    ? ` (after -- nothing is read as an option: give ${name} before --)`
    : ""
}

/**
 * `args` parsed as @effect/cli will parse them, before it does: a usage error (a missing or bad argument, a word
 * left over) is a `CliError` saying it as this program says its other errors, with the command's usage line.
 * @effect/cli prints its own bare ("Missing argument <ID>"), with no `error:` and no usage.
 */
export const usageProblem = (
  command: { readonly descriptor: Descriptor.Command<any> },
  grammar: Grammar,
  args: ReadonlyArray<string>
): Effect.Effect<void, CliError, FileSystem.FileSystem | Path.Path | Terminal.Terminal> => {
  const fail = (message: string) => {
    const name = splitAtDashes(args).own.find((arg) => grammar.commands.has(arg))
    const usage = name === undefined ? undefined : grammar.commands.get(name)?.usage
    return new CliError({
      message: usage === undefined
        ? reworded(message)
        : `${reworded(message)}\nusage: ${grammar.program} ${usage}\n(${grammar.program} ${name} --help for more)`
    })
  }
  return Descriptor.parse(command.descriptor, [grammar.program, ...args], CliConfig.defaultConfig).pipe(
    Effect.matchEffect({
      // help asked for is @effect/cli's to show
      onFailure: (error) =>
        ValidationError.isHelpRequested(error)
          ? Effect.void
          : Effect.fail(fail(stripColour(HelpDoc.toAnsiText(error.error)))),
      onSuccess: (directive) =>
        directive._tag === "UserDefined" && directive.leftover.length > 0
          ? Effect.fail(
            fail(
              `${JSON.stringify(directive.leftover[0])} is no argument or option here` +
                (followHint(grammar, args, directive.leftover[0]) || dashesHint(grammar, args, directive.leftover[0]))
            )
          )
          : Effect.void
    })
  )
}

/**
 * The text of the errors that keep an agent from starting. Mostly `AgentStartupError`: its message and
 * remediation for each reason and, for a spawn failure, the cause and the remedy specific to the operating
 * system's errno (`ENOENT` of the program, of its `#!` interpreter or of the working directory, `EACCES`,
 * `ENOTDIR`, `E2BIG` with the sizes that broke the limit, `EMFILE`, `ENFILE`, `EAGAIN`, `ENOMEM`). Also the
 * messages of `AgentCallbackNotFoundError` and `AgentDependencyError`.
 *
 * Plain fields in, strings out (and the schema of `AgentStartupError`'s fields): this module knows nothing of the
 * error classes (`Errors.ts` imports it, never the other way round).
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import { describeExit, exitFields, formatBytes, KiB, plural, stderrTail } from "./format.js"

/** Linux's limit on one argument or environment string (`MAX_ARG_STRLEN`, 32 pages). */
const MAX_ARG_STRLEN = 128 * KiB

/**
 * The sizes `exec` was asked to copy (the fields of `Errors.SpawnSizes`).
 *
 * @internal
 */
export interface SpawnSizes {
  readonly argCount: number
  readonly argsBytes: number
  readonly largestArgBytes: number
  readonly envCount: number
  readonly envBytes: number
  readonly largestEnvName: string
  readonly largestEnvBytes: number
}

/**
 * The schema of `Errors.SpawnSizes`.
 *
 * @internal
 */
export const spawnSizes = Schema.Struct({
  argCount: Schema.Number,
  argsBytes: Schema.Number,
  largestArgBytes: Schema.Number,
  envCount: Schema.Number,
  envBytes: Schema.Number,
  largestEnvName: Schema.String,
  largestEnvBytes: Schema.Number
})

/**
 * The fields of `Errors.AgentStartupError`, by their type first: a named type keeps each field's comment in the
 * published declarations (an inferred one is printed without them).
 *
 * @internal
 */
export type StartupFields = {
  readonly agent: typeof Schema.String
  readonly reason: Schema.Literal<["spawn_failed", "exited_before_ready", "no_ready_in_time"]>
  /** The command line, long arguments abbreviated. */
  readonly command: typeof Schema.String
  readonly detail: Schema.optional<typeof Schema.String>
  readonly timeoutMillis: Schema.optional<typeof Schema.Number>
  /** The errno name of a spawn failure, such as `"ENOENT"`. */
  readonly code: Schema.optional<typeof Schema.String>
  /** What `code` is about: the program, the interpreter that runs it, or the working directory. */
  readonly subject: Schema.optional<Schema.Literal<["command", "interpreter", "cwd"]>>
  /** The program as given (without its arguments). */
  readonly program: Schema.optional<typeof Schema.String>
  /** The file the program names: its absolute path, or the match found on `PATH`. */
  readonly resolvedPath: Schema.optional<typeof Schema.String>
  /** The interpreter named by the program's `#!` line, when that is what is missing. */
  readonly interpreter: Schema.optional<typeof Schema.String>
  /** The `PATH` directories searched for a program given without a slash. */
  readonly searchPath: Schema.optional<Schema.Array$<typeof Schema.String>>
  readonly cwd: Schema.optional<typeof Schema.String>
  /** The program resolved to a directory (`EACCES`). */
  readonly isDirectory: Schema.optional<typeof Schema.Boolean>
  /** The sizes of the arguments and the environment (`E2BIG`). */
  readonly sizes: Schema.optional<typeof spawnSizes>
  readonly pid: typeof exitFields.pid
  readonly exitCode: typeof exitFields.exitCode
  readonly signal: typeof exitFields.signal
  readonly stderr: typeof exitFields.stderr
}

/**
 * The fields of `Errors.AgentStartupError`.
 *
 * @internal
 */
export const startupFields: StartupFields = {
  agent: Schema.String,
  reason: Schema.Literal("spawn_failed", "exited_before_ready", "no_ready_in_time"),
  command: Schema.String,
  detail: Schema.optional(Schema.String),
  timeoutMillis: Schema.optional(Schema.Number),
  code: Schema.optional(Schema.String),
  subject: Schema.optional(Schema.Literal("command", "interpreter", "cwd")),
  program: Schema.optional(Schema.String),
  resolvedPath: Schema.optional(Schema.String),
  interpreter: Schema.optional(Schema.String),
  searchPath: Schema.optional(Schema.Array(Schema.String)),
  cwd: Schema.optional(Schema.String),
  isDirectory: Schema.optional(Schema.Boolean),
  sizes: Schema.optional(spawnSizes),
  ...exitFields
}

/**
 * The facts of a start-up failure (the fields of `Errors.AgentStartupError`).
 *
 * @internal
 */
export interface StartupFacts {
  readonly agent: string
  readonly reason: "spawn_failed" | "exited_before_ready" | "no_ready_in_time"
  readonly command: string
  readonly detail?: string | undefined
  readonly timeoutMillis?: number | undefined
  readonly code?: string | undefined
  readonly subject?: "command" | "interpreter" | "cwd" | undefined
  readonly program?: string | undefined
  readonly resolvedPath?: string | undefined
  readonly interpreter?: string | undefined
  readonly searchPath?: ReadonlyArray<string> | undefined
  readonly cwd?: string | undefined
  readonly isDirectory?: boolean | undefined
  readonly sizes?: SpawnSizes | undefined
  readonly pid?: number | undefined
  readonly exitCode?: number | null | undefined
  readonly signal?: string | null | undefined
  readonly stderr: ReadonlyArray<string>
}

/**
 * The message of an `AgentStartupError`.
 *
 * @internal
 */
export const startupMessage = (e: StartupFacts): string => {
  switch (e.reason) {
    case "spawn_failed":
      return e.code === undefined
        ? `Agent "${e.agent}" could not be spawned (${e.command}): ${e.detail ?? "unknown error"}`
        : `Agent "${e.agent}" could not start \`${e.command}\`: ${spawnCause(e)}`
    case "exited_before_ready":
      return `Agent "${e.agent}" (pid ${e.pid}) ${describeExit(e)} before it sent "ready"` + stderrTail(e.stderr)
    case "no_ready_in_time":
      return `Agent "${e.agent}" (pid ${e.pid}) sent no "ready" within ${e.timeoutMillis} ms` +
        stderrTail(e.stderr)
  }
}

/**
 * What to do about an `AgentStartupError`.
 *
 * @internal
 */
export const startupRemediation = (e: StartupFacts): string => {
  switch (e.reason) {
    case "spawn_failed":
      return e.code === undefined
        ? `Check that "${e.command}" exists and is executable, and that cwd exists.`
        : spawnRemedy(e)
    case "exited_before_ready":
      return e.stderr.length > 0
        ? "Read the stderr lines above: the agent failed while loading. Run its command by hand to reproduce."
        : e.exitCode === 0
        ? `The agent exited (code 0) without printing {"type":"ready","protocol":1} on stdout: is "${e.command}" ` +
          "an agent that speaks the protocol, run with the arguments it needs? Run its command by hand to see."
        : "The agent wrote nothing on stderr before it exited: run its command by hand to reproduce."
    case "no_ready_in_time":
      return "Make the agent print {\"type\":\"ready\",\"protocol\":1} on stdout (flushed) once loaded, " +
        "or raise startupTimeout if loading is legitimately slow."
  }
}

/**
 * The fields of `Errors.AgentCallbackNotFoundError`: the function looked for, in which module, the functions the
 * module does define; `defaultExport`: a default export that is a function would have been taken too (the Node
 * adapter with no function named).
 *
 * @internal
 */
export const callbackNotFoundFields = {
  agent: Schema.String,
  callback: Schema.String,
  module: Schema.String,
  available: Schema.Array(Schema.String),
  defaultExport: Schema.optional(Schema.Boolean)
}

/**
 * The message of an `AgentCallbackNotFoundError`: the function asked for, and the ones the module does define.
 *
 * @internal
 */
export const callbackNotFoundMessage = (e: {
  readonly agent: string
  readonly callback: string
  readonly module: string
  readonly available: ReadonlyArray<string>
  readonly defaultExport?: boolean | undefined
}): string =>
  `Agent "${e.agent}": no ${e.defaultExport === true ? "default export function nor function" : "function"} ` +
  `"${e.callback}" in ${e.module}` +
  (e.available.length > 0 ? ` (functions there: ${e.available.join(", ")})` : " (it defines no functions)")

/**
 * What to do about an `AgentCallbackNotFoundError`.
 *
 * @internal
 */
export const callbackNotFoundRemediation = (e: {
  readonly callback: string
  readonly defaultExport?: boolean | undefined
}): string =>
  e.defaultExport === true
    ? `Export a function as the module's default or as "${e.callback}", or set callbackFunction to one of the ` +
      "functions the module defines."
    : `Set callbackFunction to one of the functions the module defines, or define "${e.callback}" in it.`

/**
 * The facts of a failed dependency install (the fields of `Errors.AgentDependencyError`).
 *
 * @internal
 */
export interface DependencyFacts {
  readonly agent: string
  readonly installer: string
  readonly manifest: string
  readonly exitCode?: number | null | undefined
  readonly timedOut: boolean
  readonly output: string
}

/**
 * The message of an `AgentDependencyError`, with the installer's last 4000 characters of output.
 *
 * @internal
 */
export const dependencyMessage = (e: DependencyFacts): string => {
  const how = e.timedOut ? "timed out" : `failed (exit code ${e.exitCode ?? "unknown"})`
  return `Agent "${e.agent}": installing dependencies from ${e.manifest} with ${e.installer} ${how}\n` +
    e.output.slice(-4000)
}

/**
 * What to do about an `AgentDependencyError`.
 *
 * @internal
 */
export const dependencyRemediation = (e: DependencyFacts): string =>
  `Run "${e.installer}" on ${e.manifest} by hand to see the failure; fix the manifest, ` +
  "make the packages reachable, or raise the install timeout."

/** Where the program was found, when that is not what the command line already says. */
const foundAt = (e: StartupFacts): string =>
  e.resolvedPath !== undefined && e.resolvedPath !== e.program ? ` (${e.resolvedPath})` : ""

/** The cause of a spawn failure, from its code and facts. */
const spawnCause = (e: StartupFacts): string => {
  const code = e.code
  const cwd = e.cwd ?? "."
  switch (code) {
    case "ENOENT":
      if (e.subject === "cwd") return `its working directory ${cwd} does not exist (ENOENT)`
      if (e.subject === "interpreter") {
        return `the program${foundAt(e)} exists, but ` + (e.interpreter !== undefined
          ? `the interpreter its #! line names, ${e.interpreter}, does not (ENOENT)`
          : "the loader it needs (its ELF interpreter) does not (ENOENT)")
      }
      if (e.searchPath !== undefined) {
        return e.searchPath.length === 0
          ? "the program is not on PATH, and PATH is empty (ENOENT)"
          : `the program is not on PATH (ENOENT); searched: ${e.searchPath.join(", ")}`
      }
      return `the program does not exist${e.resolvedPath !== e.program ? ` at ${e.resolvedPath}` : ""} (ENOENT)`
    case "ENOTDIR":
      return e.subject === "cwd"
        ? `its working directory ${cwd} is not a directory (ENOTDIR)`
        : "a component of the program's path is a file, not a directory (ENOTDIR)"
    case "EACCES":
      if (e.subject === "cwd") return `its working directory ${cwd} cannot be entered (EACCES)`
      return e.isDirectory === true
        ? `the program${foundAt(e)} is a directory (EACCES)`
        : `the program${foundAt(e)} is not executable (EACCES)`
    case "E2BIG": {
      const s = e.sizes
      if (s === undefined) return "the arguments and environment are too large for one exec (E2BIG)"
      const which = s.largestArgBytes > MAX_ARG_STRLEN
        ? `one argument of ${formatBytes(s.largestArgBytes)} is over Linux's 128 KiB limit for one string`
        : s.largestEnvBytes > MAX_ARG_STRLEN
        ? `the variable ${s.largestEnvName} (${formatBytes(s.largestEnvBytes)}) is over Linux's 128 KiB limit ` +
          "for one string"
        : "together they are over the system's limit (ARG_MAX)"
      return `the arguments (${formatBytes(s.argsBytes)} in ${plural(s.argCount, "argument", "arguments")}) and ` +
        `environment (${formatBytes(s.envBytes)} in ${plural(s.envCount, "variable", "variables")}) are too ` +
        `large to start a process (E2BIG): ${which}`
    }
    case "EMFILE":
      return "the supervisor has no file descriptors left for the agent's pipes (EMFILE)"
    case "ENFILE":
      return "the system's open file table is full (ENFILE)"
    case "EAGAIN":
      return "no more processes can be created for this user or container (EAGAIN)"
    case "ENOMEM":
      return "there is not enough memory to create the process (ENOMEM)"
    default:
      return `${e.detail ?? "the operating system refused"} (${code})`
  }
}

/** What to do about a spawn failure, by its code. */
const spawnRemedy = (e: StartupFacts): string => {
  const program = e.resolvedPath ?? e.program ?? "the program"
  switch (e.code) {
    case "ENOENT":
      if (e.subject === "cwd") {
        return `Create ${e.cwd} or set cwd to a directory that exists (a relative cwd resolves against the ` +
          "supervisor's working directory)."
      }
      if (e.subject === "interpreter") {
        return e.interpreter !== undefined
          ? `Install ${e.interpreter} or fix the #! line of ${program}, or run the file through an interpreter ` +
            `that exists (command: "python3" or "node", args: ["${program}", ...]).`
          : `${program} is built for another system or its loader is not installed: install the matching ` +
            "runtime libraries or a build of the program for this system."
      }
      if (e.searchPath !== undefined) {
        return `Install "${e.program}", or add its directory to PATH (the agent's env.PATH, or the ` +
          "supervisor's own PATH), or set command to the program's absolute path."
      }
      return "Fix the program's path in command (a relative path resolves against the agent's cwd), or create " +
        "the file."
    case "ENOTDIR":
      return e.subject === "cwd"
        ? "Set cwd to a directory, not a file."
        : "Fix the program's path in command: one of its directories is a file."
    case "EACCES":
      if (e.subject === "cwd") {
        return `Give the supervisor's user search (x) permission on ${e.cwd} and its parents, or choose ` +
          "another cwd."
      }
      return e.isDirectory === true
        ? "Set command to the program inside that directory, not the directory itself."
        : `Make it executable (chmod +x ${program}), or run it through its interpreter (command: "python3" ` +
          `or "node", args: ["${program}", ...]).`
    case "E2BIG":
      return "Linux caps one argument or environment variable at 128 KiB and all of them together at ARG_MAX " +
        "(`getconf ARG_MAX`, a quarter of the stack limit). Pass large data as a task payload, or write it to " +
        "a file and pass the file's path, instead of putting it in args or env."
    case "EMFILE":
      return "Raise the supervisor's descriptor limit (`ulimit -n`, or LimitNOFILE= for a systemd unit), or look " +
        "for a descriptor leak: each agent holds three pipes."
    case "ENFILE":
      return "Raise the system's limit (`sysctl fs.file-max`) or find the process on the machine holding the " +
        "descriptors."
    case "EAGAIN":
      return "Raise the process limit (`ulimit -u`, or the container's pids limit), or run fewer agents or " +
        "agents that start fewer processes."
    case "ENOMEM":
      return "Free memory on the machine, or lower the supervisor's memory use, then start the agent again."
    default:
      return "Run the command by hand to reproduce; the code is the operating system's reason for refusing " +
        "to start it."
  }
}

/**
 * Spawning one incarnation: the agent's command line and environment, and every way the spawn can fail turned
 * into an `AgentStartupError` that names the agent, the command and the real cause (`classify`).
 *
 * `classify` takes Node's errno error for a spawn over `node:child_process` (`./child.js`): thrown (E2BIG,
 * ENOTDIR, ...) or emitted (ENOENT, EACCES, EAGAIN, EMFILE, ENFILE). A missing `cwd` is an ENOENT too,
 * indistinguishable from a missing program but for the file system, which is why `classify` looks. It also
 * unwraps an error that carries one (`cause` of a platform `SystemError`, `error` of a `SpawnError`).
 *
 * @internal
 */
import * as Predicate from "effect/Predicate"
import * as fs from "node:fs"
import * as path from "node:path"
import { AgentStartupError, type SpawnSizes } from "../../Errors.js"
import type * as Config from "../Config.js"

// ---- the command line, as errors show it ----

/** The bytes `exec` copies for argv: the program and each argument, each with its NUL. */
const argvBytes = (config: Config.AgentConfig): number =>
  [config.command, ...config.args].reduce((sum, arg) => sum + Buffer.byteLength(arg) + 1, 0)

/** Arguments longer than this are shown as their start and their size. */
const MAX_SHOWN_ARG = 64
/** A command line longer than this shows the program and its first arguments, then the count and total size. */
const MAX_SHOWN_LINE = 240

const KiB = 1024

const formatBytes = (bytes: number): string =>
  bytes < KiB
    ? `${bytes} bytes`
    : bytes < KiB * KiB
    ? `${Math.round(bytes / KiB)} KiB`
    : `${(bytes / (KiB * KiB)).toFixed(1).replace(/\.0$/, "")} MiB`

/** Quoted the way a shell user would type it, when it needs quotes at all. */
const quote = (part: string): string => part === "" || /[\s"'\\$`|&;<>()*?#~]/.test(part) ? JSON.stringify(part) : part

const showPart = (part: string): string =>
  part.length <= MAX_SHOWN_ARG
    ? quote(part)
    : `${quote(part.slice(0, MAX_SHOWN_ARG / 2))}...(${formatBytes(Buffer.byteLength(part))})`

/**
 * The agent's command line for messages: arguments quoted where needed; a long argument shown as its start and
 * its size; a long line cut after the first arguments, with the number of arguments and their total size.
 *
 * @internal
 */
export const commandLine = (config: Config.AgentConfig): string => {
  const parts = [config.command, ...config.args]
  const full = parts.map(quote).join(" ")
  if (full.length <= MAX_SHOWN_LINE) return full
  const shown: Array<string> = []
  let length = 0
  for (const part of parts) {
    const text = showPart(part)
    if (shown.length > 0 && length + text.length > MAX_SHOWN_LINE) break
    shown.push(text)
    length += text.length + 1
  }
  const argsBytes = argvBytes(config)
  const more = parts.length - shown.length
  return `${shown.join(" ")}${more > 0 ? ` ... (+${more} more)` : ""} ` +
    `[${config.args.length} args, ${formatBytes(argsBytes)} in all]`
}

// ---- the environment ----

/** The extra environment the agent gets on top of the supervisor's. */
const extraEnv = (config: Config.AgentConfig): Record<string, string> => ({
  // Unbuffered Python by default: an agent that prints without flushing would otherwise look hung.
  PYTHONUNBUFFERED: "1",
  ...config.env
})

// ---- classifying a failure ----

/** Node's error for a failed system call: `code` is the errno name. @internal */
export interface ErrnoError {
  readonly code: string
  readonly message: string
}

const isErrnoError = (u: unknown): u is ErrnoError =>
  Predicate.hasProperty(u, "code") && typeof u.code === "string" && Predicate.hasProperty(u, "message") &&
  typeof u.message === "string"

/**
 * The errno error behind `error`: itself, the `cause` a platform `SystemError` wraps, or the `error` a
 * `SpawnError` of `./child.js` carries.
 */
const errnoOf = (error: unknown): ErrnoError | undefined =>
  isErrnoError(error)
    ? error
    : Predicate.hasProperty(error, "cause") && isErrnoError(error.cause)
    ? error.cause
    : Predicate.hasProperty(error, "error") && isErrnoError(error.error)
    ? error.error
    : undefined

const describe = (error: unknown): string =>
  Predicate.hasProperty(error, "message") && typeof error.message === "string"
    ? error.message
    : Predicate.hasProperty(error, "error") && error.error instanceof Error
    ? error.error.message
    : String(error)

const stat = (file: string): fs.Stats | undefined => {
  try {
    return fs.statSync(file)
  } catch {
    return undefined
  }
}

const canEnter = (dir: string): boolean => {
  try {
    fs.accessSync(dir, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The interpreter a script's `#!` line names, if the file starts with one. */
const shebangInterpreter = (file: string): string | undefined => {
  let fd: number | undefined
  try {
    fd = fs.openSync(file, "r")
    const head = Buffer.alloc(256)
    const read = fs.readSync(fd, head, 0, head.length, 0)
    const line = head.subarray(0, read).toString("utf8").split("\n")[0]
    if (!line.startsWith("#!")) return undefined
    return line.slice(2).trim().split(/\s+/)[0] || undefined
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

/** What the agent inherits of the supervisor's environment (`inheritEnv`: all, none, or the variables named). */
const inheritedEnv = (config: Config.AgentConfig): Record<string, string | undefined> => {
  const inherit = config.inheritEnv
  if (inherit === true) return process.env
  if (inherit === false) return {}
  const picked: Record<string, string> = {}
  for (const name of inherit) {
    const value = process.env[name]
    if (value !== undefined) picked[name] = value
  }
  return picked
}

/**
 * The whole environment of the agent's process: what it inherits of the supervisor's, the account's `HOME`,
 * `USER` and `LOGNAME` when it runs as another user, then the agent's own on top.
 *
 * @internal
 */
export const childEnv = (
  config: Config.AgentConfig,
  account: Record<string, string> = {}
): Record<string, string | undefined> => ({
  ...inheritedEnv(config),
  ...account,
  ...extraEnv(config)
})

/** The directories searched for a program named without a slash: the child's `PATH`, as `execvp` reads it. */
const searchPath = (config: Config.AgentConfig): ReadonlyArray<string> => {
  const value = childEnv(config).PATH
  // libuv falls back to the system's default path when PATH is unset.
  if (value === undefined) return ["/usr/local/bin", "/usr/bin", "/bin"]
  // An empty entry is the current directory; a directory listed twice is searched (and shown) once.
  return value === "" ? [] : [...new Set(value.split(path.delimiter).map((dir) => dir === "" ? "." : dir))]
}

/**
 * Why `execvp` would find nothing to run for the agent's command, searched as it searches (`PATH` of the child,
 * from its `cwd`): the errno (`ENOENT`, `EACCES`) as Node's spawn reports it, for {@link classify}; `undefined` when
 * there is a file it may run. For a spawn through a wrapper (a cgroup's), whose own `exec` would fail only after
 * the spawn succeeded. Checked as the supervisor's user: for an agent run as another (`user`), only that a file
 * exists (whether that user may run it is the wrapper's exec to find out, as `execvp` skips the files it may not).
 *
 * @internal
 */
export const programProblem = (config: Config.AgentConfig): ErrnoError | undefined => {
  let denied = false
  for (const file of candidates(config)) {
    const found = stat(file)
    if (found === undefined) continue
    if (found.isFile() && (config.user !== undefined || canExecute(file))) return undefined
    denied = true
  }
  const code = denied ? "EACCES" : "ENOENT"
  return { code, message: `spawn ${config.command} ${code}` }
}

/** The files `execvp` tries for the agent's command, in order (see {@link programProblem}). */
const candidates = (config: Config.AgentConfig): ReadonlyArray<string> => {
  const cwd = config.cwd !== undefined ? path.resolve(config.cwd) : process.cwd()
  return config.command.includes("/")
    ? [path.resolve(cwd, config.command)]
    : searchPath(config).map((dir) => path.resolve(cwd, dir, config.command))
}

/**
 * The file `execvp` would run for the agent's command, searched as {@link programProblem} searches, as the
 * supervisor's user: for a caller that must run the very same program itself (an install with the agent's
 * interpreter). `undefined` when there is none.
 *
 * @internal
 */
export const whichProgram = (config: Config.AgentConfig): string | undefined =>
  candidates(config).find((file) => stat(file)?.isFile() === true && canExecute(file))

const canExecute = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Sizes of what `exec` copies into the child (argv with the program, and the environment), each with its NUL. */
const spawnSizes = (config: Config.AgentConfig): SpawnSizes => {
  const argStrings = [config.command, ...config.args]
  const argLengths = argStrings.map((arg) => Buffer.byteLength(arg) + 1)
  let envCount = 0
  let envBytes = 0
  let largestEnvName = ""
  let largestEnvBytes = 0
  for (const [name, value] of Object.entries(childEnv(config))) {
    if (value === undefined) continue
    const bytes = Buffer.byteLength(name) + Buffer.byteLength(value) + 2
    envCount++
    envBytes += bytes
    if (bytes > largestEnvBytes) {
      largestEnvBytes = bytes
      largestEnvName = name
    }
  }
  return {
    argCount: config.args.length,
    argsBytes: argLengths.reduce((sum, n) => sum + n, 0),
    largestArgBytes: argLengths.reduce((max, n) => Math.max(max, n), 0),
    envCount,
    envBytes,
    largestEnvName,
    largestEnvBytes
  }
}

/**
 * Turns what a failed spawn produced (a platform `SystemError`, or Node's errno error itself) into an
 * `AgentStartupError` with the errno `code`, what it is about, and the facts for a code-specific message and
 * remediation. Looks at the file system (does `cwd` exist, where is the program, what does its `#!` name): it
 * runs once per failed spawn, never on a hot path.
 *
 * @internal
 */
export const classify = (config: Config.AgentConfig, error: unknown): AgentStartupError => {
  const errno = errnoOf(error)
  const base = {
    agent: config.name,
    reason: "spawn_failed" as const,
    command: commandLine(config),
    program: config.command,
    ...(config.cwd !== undefined ? { cwd: config.cwd } : {})
  }
  if (errno === undefined) return new AgentStartupError({ ...base, detail: describe(error) })
  const code = errno.code
  const detail = errno.message
  const cwd = config.cwd !== undefined ? path.resolve(config.cwd) : process.cwd()
  const cwdStat = config.cwd !== undefined ? stat(cwd) : undefined
  const withSlash = config.command.includes("/")
  // The file the program names: its path against the child's cwd, or the first match on PATH (as execvp looks).
  const resolved = withSlash
    ? path.resolve(cwd, config.command)
    : searchPath(config).map((dir) => path.resolve(cwd, dir, config.command)).find((file) => stat(file) !== undefined)
  const resolvedStat = resolved !== undefined ? stat(resolved) : undefined
  const found = resolved !== undefined ? { resolvedPath: resolved } : {}
  switch (code) {
    case "ENOENT": {
      if (config.cwd !== undefined && cwdStat === undefined) {
        return new AgentStartupError({ ...base, code, detail, subject: "cwd" })
      }
      if (resolvedStat !== undefined && resolvedStat.isFile()) {
        // The file is there, so what exec could not find is what runs it: the interpreter its #! line names
        // (or, for a binary, its ELF loader).
        const interpreter = shebangInterpreter(resolved!)
        return new AgentStartupError({
          ...base,
          code,
          detail,
          subject: "interpreter",
          ...found,
          ...(interpreter !== undefined ? { interpreter } : {})
        })
      }
      return new AgentStartupError({
        ...base,
        code,
        detail,
        subject: "command",
        ...(withSlash ? found : { searchPath: searchPath(config) })
      })
    }
    case "ENOTDIR":
      return new AgentStartupError({
        ...base,
        code,
        detail,
        subject: cwdStat !== undefined && !cwdStat.isDirectory() ? "cwd" : "command"
      })
    case "EACCES":
      if (config.cwd !== undefined && !canEnter(cwd)) {
        return new AgentStartupError({ ...base, code, detail, subject: "cwd" })
      }
      return new AgentStartupError({
        ...base,
        code,
        detail,
        subject: "command",
        ...found,
        ...(resolvedStat?.isDirectory() ? { isDirectory: true } : {})
      })
    case "E2BIG":
      return new AgentStartupError({ ...base, code, detail, sizes: spawnSizes(config) })
    default:
      return new AgentStartupError({ ...base, code, detail })
  }
}

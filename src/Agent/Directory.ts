/**
 * Runs an agent from a directory: works out its language and entry file, installs its dependencies into a cache
 * keyed by their manifest, checks in a child process that its callback exists, and builds the configuration that
 * runs it through the Python or Node adapter.
 *
 * Detection, in this order: `callback.py` makes a Python agent; else `package.json` (its `main`, default
 * `index.js`) or `index.js` / `index.mjs` / `index.cjs` a Node agent; else exactly one top-level `.py` file a
 * Python agent. A stray helper script therefore never turns a Node project into a Python one.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createHash, randomBytes } from "node:crypto"
import { homedir } from "node:os"
import { delimiter } from "node:path"
import { AgentCallbackNotFoundError, AgentDependencyError, AgentStartupError, ConfigError } from "../Errors.js"
import * as AgentSupervisor from "./AgentSupervisor.js"
import * as Config from "./Config.js"
import { killGroup } from "./internal/child.js"

/**
 * Where the agent lives and how to run it; every other field is the agent's configuration as usual.
 *
 * @since 0.1.0
 * @category models
 */
export interface DirectoryOptions extends Omit<Config.AgentConfigInput, "name" | "command" | "args"> {
  /** The agent's name (the `name` of its configuration). */
  readonly agentName: string
  /** The directory holding the agent's code. */
  readonly agentDir: string
  /** Python: default `handle_request`. Node: default the module's default export, else `handleRequest`. */
  readonly callbackFunction?: string | undefined
  /** Bounds each dependency install; default 5 minutes. */
  readonly installTimeout?: Duration.DurationInput | undefined
  /** Where dependency installs live; default `$XDG_CACHE_HOME` (or `~/.cache`) + `/effect-agent-supervisor`. */
  readonly cacheDir?: string | undefined
}

/**
 * Everything {@link resolve} can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type DirectoryError = AgentCallbackNotFoundError | AgentDependencyError | AgentStartupError | ConfigError

const PYTHON = "python3"
const DEFAULT_PYTHON_FUNCTION = "handle_request"
const DEFAULT_INSTALL_TIMEOUT = Duration.minutes(5)
/** The installer output kept for an error: the end of it is where pip and npm say what went wrong. */
const OUTPUT_LIMIT = 64 * 1024
/** The check prints one line, but it lists every function of the module: leave room for big modules. */
const CHECK_STDOUT_LIMIT = 1024 * 1024
/** Part of every cache key: bump it when what an install directory holds changes shape. */
const LAYOUT = "1"
/** Written last into an install before it is renamed into place; also records what was installed. */
const MARKER = ".effect-agent-supervisor.json"
/** Never copied nor fingerprinted: installs are redone in the copy, and history is no part of the agent. */
const SKIPPED = new Set(["node_modules", ".git"])
/** Symlink loops would otherwise make the walk endless. */
const MAX_DEPTH = 32
/** A temporary install this old belongs to a process that died: no installer runs for a day. */
const STALE_TEMPORARY_MILLIS = 24 * 60 * 60 * 1000
/** How long output may keep flowing after the exit (a grandchild holding the pipe must not hang us). */
const DRAIN_MILLIS = 1000
/** How long a killed process gets to be reaped. */
const REAP_MILLIS = 5000

const PYTHON_FUNCTION = /^[\p{L}_][\p{L}\p{N}_]*(\.[\p{L}_][\p{L}\p{N}_]*)*$/u
const NODE_EXPORT = /^[^/\\:\s]+$/
const NODE_INDEXES = ["index.js", "index.mjs", "index.cjs"]
const SIGNAL_IN_MESSAGE = /signal: (SIG[A-Z0-9]+)/

/** Installs and checks run real programs: their timeouts follow the wall clock even under a `TestClock`. */
const liveClock = Clock.make()

// ---------------------------------------------------------------------------------------------------------------
// running a program with a bound, keeping the end of its output
// ---------------------------------------------------------------------------------------------------------------

interface Tail {
  readonly push: (chunk: Uint8Array) => void
  readonly text: () => string
}

const makeTail = (limit: number): Tail => {
  const chunks: Array<Uint8Array> = []
  let size = 0
  return {
    push: (chunk) => {
      chunks.push(chunk)
      size += chunk.length
      while (chunks.length > 1 && size - chunks[0].length >= limit) size -= chunks.shift()!.length
    },
    text: () => {
      const all = Buffer.concat(chunks)
      return all.subarray(Math.max(0, all.length - limit)).toString("utf8")
    }
  }
}

interface RunResult {
  readonly pid: number
  readonly exitCode: number | null
  readonly signal: string | null
  readonly timedOut: boolean
  readonly stdout: string
  readonly stderr: string
  /** stdout and stderr interleaved as they arrived. */
  readonly output: string
}

/**
 * Runs a program to its end, or kills its process group after `timeout`. A spawn failure is the only error.
 */
const runBounded = (
  command: Command.Command,
  timeout: Duration.Duration,
  stdoutLimit: number
): Effect.Effect<RunResult, PlatformError, CommandExecutor.CommandExecutor> =>
  Effect.scoped(Effect.gen(function*() {
    const proc = yield* Command.start(command)
    const pid = proc.pid as number
    // Runs before Command's own release (finalizers are last-in first-out), which waits for the exit with no
    // bound: after SIGKILL that wait is short. It also sweeps what the installer left running in its group.
    yield* Effect.addFinalizer(() => Effect.sync(() => killGroup(pid, "SIGKILL")))
    const stdout = makeTail(stdoutLimit)
    const stderr = makeTail(OUTPUT_LIMIT)
    const output = makeTail(OUTPUT_LIMIT)
    const read = (stream: Stream.Stream<Uint8Array, PlatformError>, into: Tail) =>
      Stream.runForEach(stream, (chunk) =>
        Effect.sync(() => {
          into.push(chunk)
          output.push(chunk)
        })).pipe(Effect.ignore, Effect.forkScoped)
    const readers = [yield* read(proc.stdout, stdout), yield* read(proc.stderr, stderr)]
    // Nothing is sent: closing stdin makes a program that asks anything get EOF instead of waiting forever.
    yield* Stream.run(Stream.empty, proc.stdin).pipe(Effect.ignore)

    const exitOf = proc.exitCode.pipe(
      Effect.map((code) => ({ exitCode: code as number | null, signal: null as string | null })),
      Effect.catchAll((error) =>
        Effect.succeed({ exitCode: null, signal: SIGNAL_IN_MESSAGE.exec(error.message)?.[1] ?? "unknown" })
      )
    )
    const finished = yield* exitOf.pipe(Effect.timeoutOption(timeout), Effect.withClock(liveClock))
    let exit = Option.getOrUndefined(finished)
    if (exit === undefined) {
      killGroup(pid, "SIGKILL")
      exit = Option.getOrElse(
        yield* exitOf.pipe(Effect.timeoutOption(REAP_MILLIS), Effect.withClock(liveClock)),
        () => ({ exitCode: null, signal: "SIGKILL" })
      )
    }
    yield* Fiber.joinAll(readers).pipe(Effect.timeoutOption(DRAIN_MILLIS), Effect.withClock(liveClock))
    return {
      pid,
      ...exit,
      timedOut: Option.isNone(finished),
      stdout: stdout.text(),
      stderr: stderr.text(),
      output: output.text()
    }
  }))

const commandLine = (command: string, args: ReadonlyArray<string>) => [command, ...args].join(" ")

// ---------------------------------------------------------------------------------------------------------------
// detection
// ---------------------------------------------------------------------------------------------------------------

type Detected =
  | { readonly language: "python"; readonly entry: string }
  | { readonly language: "node"; readonly entry: string; readonly packageJson: Record<string, unknown> | undefined }

const EXPECTED = "must be a directory holding a Python agent (callback.py, or exactly one .py file) or a Node agent " +
  "(package.json, or index.js, index.mjs or index.cjs)"

const agentDirError = (dir: string, found: string) =>
  new ConfigError({ field: "agentDir", rule: `${EXPECTED}; ${found}`, value: dir })

const listed = (names: ReadonlyArray<string>) =>
  names.length <= 10 ? names.join(", ") : `${names.slice(0, 10).join(", ")} and ${names.length - 10} more`

const detect = Effect.fnUntraced(function*(dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const info = yield* fs.stat(dir).pipe(
    Effect.mapError((error) =>
      agentDirError(
        dir,
        error._tag === "SystemError" && error.reason === "NotFound"
          ? "nothing exists at this path"
          : `it cannot be read: ${error.message}`
      )
    )
  )
  if (info.type !== "Directory") return yield* agentDirError(dir, `it is a ${info.type.toLowerCase()}, not a directory`)
  const names = (yield* fs.readDirectory(dir).pipe(
    Effect.mapError((error) => agentDirError(dir, `it cannot be listed: ${error.message}`))
  )).sort()
  if (names.length === 0) return yield* agentDirError(dir, "the directory is empty")
  const isFile = (name: string) =>
    fs.stat(path.join(dir, name)).pipe(
      Effect.map((stat) => stat.type === "File"),
      Effect.orElseSucceed(() => false)
    )
  const files = yield* Effect.filter(names, isFile)

  if (files.includes("callback.py")) return { language: "python", entry: "callback.py" } satisfies Detected
  if (files.includes("package.json")) {
    const packageJson = yield* readPackageJson(dir)
    return { language: "node", entry: yield* nodeEntry(dir, packageJson, files), packageJson } satisfies Detected
  }
  const index = NODE_INDEXES.find((name) => files.includes(name))
  if (index !== undefined) return { language: "node", entry: index, packageJson: undefined } satisfies Detected
  const python = files.filter((name) => name.endsWith(".py"))
  if (python.length === 1) return { language: "python", entry: python[0] } satisfies Detected
  if (python.length > 1) {
    return yield* agentDirError(
      dir,
      `it holds several .py files (${listed(python)}) and no callback.py: name the one with the callback callback.py`
    )
  }
  return yield* agentDirError(dir, `it holds neither, only ${listed(names)}`)
})

const readPackageJson = Effect.fnUntraced(function*(dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const file = path.join(dir, "package.json")
  const text = yield* fs.readFileString(file).pipe(
    Effect.mapError((error) => agentDirError(dir, `package.json cannot be read: ${error.message}`))
  )
  const parsed = yield* Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (error) => agentDirError(dir, `package.json is not valid JSON: ${String(error)}`)
  })
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return yield* agentDirError(dir, "package.json does not hold a JSON object")
  }
  return parsed as Record<string, unknown>
})

/** `main` as Node's `require` would find it (extension and `/index.js` optional), but never outside the dir. */
const nodeEntry = Effect.fnUntraced(function*(
  dir: string,
  packageJson: Record<string, unknown>,
  files: ReadonlyArray<string>
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const main = packageJson.main
  if (main === undefined) {
    const index = NODE_INDEXES.find((name) => files.includes(name))
    if (index !== undefined) return index
    return yield* agentDirError(dir, "package.json names no main and there is no index.js, index.mjs or index.cjs")
  }
  if (typeof main !== "string" || main.length === 0) {
    return yield* agentDirError(dir, `package.json's main must be a file name, not ${JSON.stringify(main)}`)
  }
  const base = path.resolve(dir, main)
  const relative = path.relative(dir, base)
  if (relative.startsWith("..") || path.isAbsolute(relative)) {
    return yield* agentDirError(dir, `package.json's main (${main}) points outside the directory`)
  }
  for (const candidate of [base, `${base}.js`, `${base}.mjs`, `${base}.cjs`, path.join(base, "index.js")]) {
    const found = yield* fs.stat(candidate).pipe(
      Effect.map((stat) => stat.type === "File"),
      Effect.orElseSucceed(() => false)
    )
    if (found) return path.relative(dir, candidate)
  }
  return yield* agentDirError(dir, `package.json's main (${main}) names no existing file`)
})

// ---------------------------------------------------------------------------------------------------------------
// the file tree: copies and fingerprints
// ---------------------------------------------------------------------------------------------------------------

interface TreeEntry {
  readonly relative: string
  readonly directory: boolean
  readonly size: number
  readonly mtime: number
}

/** Files and directories below `dir`, parents first, sorted; `node_modules` and `.git` left out. */
const walk = (dir: string): Effect.Effect<Array<TreeEntry>, PlatformError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const entries: Array<TreeEntry> = []
    const visit = (relative: string, depth: number): Effect.Effect<void, PlatformError> =>
      Effect.gen(function*() {
        const names = (yield* fs.readDirectory(path.join(dir, relative))).sort()
        for (const name of names) {
          if (SKIPPED.has(name)) continue
          const child = relative === "" ? name : path.join(relative, name)
          // A dangling symlink or a file removed meanwhile is no reason to fail: it cannot be part of the agent.
          const info = yield* fs.stat(path.join(dir, child)).pipe(Effect.option)
          if (Option.isNone(info)) continue
          const directory = info.value.type === "Directory"
          if (!directory && info.value.type !== "File") continue
          entries.push({
            relative: child,
            directory,
            size: Number(info.value.size),
            mtime: Option.match(info.value.mtime, { onNone: () => 0, onSome: (date) => date.getTime() })
          })
          if (directory && depth < MAX_DEPTH) yield* visit(child, depth + 1)
        }
      })
    yield* visit("", 0)
    return entries
  })

/** Names, sizes and modification times: any edit changes it, and no file needs to be read. */
const fingerprint = (entries: ReadonlyArray<TreeEntry>): string =>
  hash(entries.map((entry) => `${entry.relative}\0${entry.directory ? "d" : entry.size}\0${entry.mtime}`))

const copyTree = Effect.fnUntraced(function*(entries: ReadonlyArray<TreeEntry>, from: string, to: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  for (const entry of entries) {
    const target = path.join(to, entry.relative)
    if (entry.directory) yield* fs.makeDirectory(target, { recursive: true })
    else yield* fs.copyFile(path.join(from, entry.relative), target)
  }
})

const hash = (parts: ReadonlyArray<string>): string => {
  const digest = createHash("sha256")
  for (const part of parts) digest.update(`${part.length}:${part}`)
  return digest.digest("hex").slice(0, 32)
}

// ---------------------------------------------------------------------------------------------------------------
// dependencies
// ---------------------------------------------------------------------------------------------------------------

interface Install {
  readonly agent: string
  /** The manifest, for messages. */
  readonly manifest: string
  /** The installer, for messages: what a user would run by hand. */
  readonly installer: string
  readonly root: string
  readonly key: string
  readonly timeout: Duration.Duration
  readonly facts: Record<string, unknown>
  /** Fills the temporary directory, the installer excluded. */
  readonly prepare: (temporary: string) => Effect.Effect<void, PlatformError, FileSystem.FileSystem | Path.Path>
  readonly command: (temporary: string) => Command.Command
}

const dependencyError = (install: Install, output: string) =>
  new AgentDependencyError({ agent: install.agent, installer: install.installer, manifest: install.manifest, output })

/**
 * Returns the install directory for `key`, installing first when there is none. The installer works in a
 * temporary sibling that is renamed into place once complete, so a directory under its final name is always
 * complete: a crash leaves only a temporary one, and of two concurrent installs the first rename wins.
 */
const ensureInstalled = (install: Install) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const final = path.join(install.root, install.key)
    if (yield* fs.exists(final)) {
      yield* Effect.logDebug(`dependencies already installed in ${final}`)
      return final
    }
    yield* fs.makeDirectory(install.root, { recursive: true })
    yield* sweepStale(install.root, install.key)
    const temporary = path.join(install.root, `${install.key}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`)
    return yield* Effect.gen(function*() {
      yield* fs.makeDirectory(temporary)
      yield* install.prepare(temporary)
      yield* Effect.logInfo(`installing dependencies from ${install.manifest} with ${install.installer}`)
      const command = install.command(temporary)
      const result = yield* runBounded(command, install.timeout, OUTPUT_LIMIT).pipe(
        Effect.mapError((error) => dependencyError(install, error.message))
      )
      if (result.timedOut || result.exitCode !== 0) {
        return yield* new AgentDependencyError({
          agent: install.agent,
          installer: install.installer,
          manifest: install.manifest,
          exitCode: result.exitCode,
          timedOut: result.timedOut,
          output: result.output
        })
      }
      const marker = { key: install.key, installedAt: new Date().toISOString(), ...install.facts }
      yield* fs.writeFileString(path.join(temporary, MARKER), JSON.stringify(marker, null, 2) + "\n")
      yield* fs.rename(temporary, final).pipe(
        // Another install of the same key won the race: its directory is as good as ours.
        Effect.catchAll((error) => Effect.flatMap(fs.exists(final), (won) => won ? Effect.void : Effect.fail(error)))
      )
      yield* Effect.logInfo(`dependencies installed in ${final}`)
      return final
    }).pipe(
      // Also after a successful rename (then there is nothing left to remove) and on interruption.
      Effect.ensuring(fs.remove(temporary, { recursive: true, force: true }).pipe(Effect.ignore))
    )
  }).pipe(
    Effect.catchTag("BadArgument", "SystemError", (error) => Effect.fail(dependencyError(install, error.message)))
  )

/** Removes temporary installs of `key` left behind by processes that died mid-install. */
const sweepStale = (root: string, key: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const now = yield* Clock.currentTimeMillis.pipe(Effect.withClock(liveClock))
    for (const name of yield* fs.readDirectory(root)) {
      if (!name.startsWith(`${key}.tmp-`)) continue
      const info = yield* fs.stat(path.join(root, name)).pipe(Effect.option)
      const mtime = Option.flatMap(info, (stat) => stat.mtime)
      if (Option.isSome(mtime) && now - mtime.value.getTime() > STALE_TEMPORARY_MILLIS) {
        yield* fs.remove(path.join(root, name), { recursive: true, force: true })
      }
    }
  }).pipe(Effect.ignore)

/** Entries of `env` whose names start with one of `prefixes`: the installer's own settings, from the agent's env. */
const installerEnv = (env: Record<string, string> | undefined, prefixes: ReadonlyArray<string>) =>
  Object.fromEntries(
    Object.entries(env ?? {}).filter(([name]) => prefixes.some((prefix) => name.startsWith(prefix)))
  )

interface PythonDependencies {
  readonly manifest: string
  /** What identifies the install besides the interpreter. */
  readonly keyText: string
  /** pip arguments after `--target <dir>`. */
  readonly args: ReadonlyArray<string>
}

const isRequirement = (line: string) => {
  const text = line.replace(/(^|\s)#.*$/, "").trim()
  return text.length > 0
}

const pythonDependencies = Effect.fnUntraced(function*(dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const requirements = path.join(dir, "requirements.txt")
  const readIfFile = (file: string) =>
    fs.stat(file).pipe(
      Effect.flatMap((stat) =>
        stat.type === "File" ? Effect.map(fs.readFileString(file), Option.some) : Effect.succeedNone
      ),
      Effect.catchIf((error) => error._tag === "SystemError" && error.reason === "NotFound", () => Effect.succeedNone),
      Effect.mapError((error) => agentDirError(dir, `${path.basename(file)} cannot be read: ${error.message}`))
    )
  const requirementsText = yield* readIfFile(requirements)
  if (Option.isSome(requirementsText)) {
    if (!requirementsText.value.split(/\r?\n/).some(isRequirement)) return Option.none<PythonDependencies>()
    return Option.some<PythonDependencies>({
      manifest: requirements,
      keyText: `requirements.txt\n${requirementsText.value}`,
      args: ["-r", requirements]
    })
  }
  const pyproject = path.join(dir, "pyproject.toml")
  const pyprojectText = yield* readIfFile(pyproject)
  if (Option.isNone(pyprojectText)) return Option.none<PythonDependencies>()
  const dependencies = projectDependencies(pyprojectText.value)
  if (dependencies === undefined) {
    return yield* agentDirError(dir, "pyproject.toml's [project] dependencies must be an array of strings")
  }
  const bad = dependencies.find((dependency) => dependency.trim().startsWith("-"))
  if (bad !== undefined) {
    return yield* agentDirError(dir, `pyproject.toml lists "${bad}", which is not a requirement but a pip option`)
  }
  if (dependencies.length === 0) return Option.none<PythonDependencies>()
  return Option.some<PythonDependencies>({
    manifest: pyproject,
    // The list, not the file: editing the description should not reinstall everything.
    keyText: `pyproject.toml\n${dependencies.join("\n")}`,
    args: dependencies
  })
})

/**
 * `[project] dependencies` of a pyproject.toml: an empty list when absent, `undefined` when it is not an array of
 * strings. Reads only the TOML that this key uses (basic and literal strings, comments, arrays over many lines),
 * so the supervisor needs no TOML library.
 */
const projectDependencies = (text: string): Array<string> | undefined => {
  const section = /^[ \t]*\[project\][ \t]*(#.*)?$/m.exec(text)
  if (section === null) return []
  const start = section.index + section[0].length
  const next = /^[ \t]*\[/m.exec(text.slice(start))
  const body = text.slice(start, next === null ? undefined : start + next.index)
  const key = /^[ \t]*(dependencies|"dependencies"|'dependencies')[ \t]*=[ \t]*/m.exec(body)
  if (key === null) return []
  let i = start + key.index + key[0].length
  if (text[i] !== "[") return undefined
  i++
  const values: Array<string> = []
  while (i < text.length) {
    const c = text[i]
    if (c === " " || c === "\t" || c === "\r" || c === "\n" || c === ",") {
      i++
    } else if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++
    } else if (c === "]") {
      return values
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end < 0) return undefined
      values.push(text.slice(i + 1, end))
      i = end + 1
    } else if (c === "\"") {
      let value = ""
      i++
      while (i < text.length && text[i] !== "\"") {
        if (text[i] === "\\") {
          const escaped = text[i + 1]
          value += escaped === "n" ? "\n" : escaped === "t" ? "\t" : escaped
          i += 2
        } else {
          value += text[i++]
        }
      }
      if (i >= text.length) return undefined
      values.push(value)
      i++
    } else {
      return undefined
    }
  }
  return undefined
}

/** What makes installed packages incompatible between interpreters: its ABI tag and platform. */
const pythonAbi = Effect.fnUntraced(function*(agent: string, manifest: string) {
  const args = ["-c", "import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())"]
  const result = yield* runBounded(Command.make(PYTHON, ...args), Duration.seconds(30), OUTPUT_LIMIT).pipe(
    Effect.mapError((error) =>
      new AgentDependencyError({ agent, installer: `${PYTHON} -m pip install`, manifest, output: error.message })
    )
  )
  if (result.exitCode !== 0) {
    return yield* new AgentDependencyError({
      agent,
      installer: `${PYTHON} -m pip install`,
      manifest,
      exitCode: result.exitCode,
      timedOut: result.timedOut,
      output: result.output
    })
  }
  return result.stdout.trim()
})

// ---------------------------------------------------------------------------------------------------------------
// the callback check
// ---------------------------------------------------------------------------------------------------------------

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

interface Check {
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
 * Loads the callback the way the agent will, with `--check`, in a child process: user code never runs inside the
 * supervisor, and a module that hangs while loading is bounded by `startupTimeout`.
 */
const checkCallback = Effect.fnUntraced(function*(check: Check) {
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

// ---------------------------------------------------------------------------------------------------------------
// resolve
// ---------------------------------------------------------------------------------------------------------------

/** This file is `src/Agent/Directory.ts` under vitest and `dist/Agent/Directory.js` when built. */
const packageRoot = Effect.gen(function*() {
  const path = yield* Path.Path
  const here = yield* Effect.orDie(path.fromFileUrl(new URL(import.meta.url)))
  return path.resolve(path.dirname(here), "..", "..")
})

const adapterPath = Effect.fnUntraced(function*(agent: string, file: string, remedy: string) {
  const fs = yield* FileSystem.FileSystem
  const found = yield* fs.exists(file).pipe(Effect.orElseSucceed(() => false))
  if (!found) {
    return yield* new AgentStartupError({
      agent,
      reason: "spawn_failed",
      command: file,
      detail: `the adapter ${file} does not exist: ${remedy}`
    })
  }
  return file
})

const defaultCacheDir = (path: Path.Path) => {
  const xdg = process.env.XDG_CACHE_HOME
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(homedir(), ".cache")
  return path.join(base, "effect-agent-supervisor")
}

const decodeDuration = Schema.decodeUnknownEither(Config.DurationInput)

/**
 * Works out how to run the agent in a directory: its language, its entry file, its dependencies (installed into
 * the cache) and its callback (checked in a child process). The result runs the agent through the Python adapter
 * (`python3 adapters/python/supervisor_adapter.py entry.py:function`, cwd = the directory, `PYTHONPATH` starting
 * with the installed dependencies) or the Node one (`node dist/Adapter/node.js entry[:function]`, run from a copy
 * of the directory next to its `node_modules` when it has dependencies).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const config = yield* Directory.resolve({ agentName: "my-agent", agentDir: "agents/my_agent" })
 * ```
 */
export const resolve: (
  options: DirectoryOptions
) => Effect.Effect<
  Config.AgentConfigInput,
  DirectoryError,
  CommandExecutor.CommandExecutor | FileSystem.FileSystem | Path.Path
> = Effect.fn("Directory.resolve")(function*(options: DirectoryOptions) {
  const { agentDir, agentName, cacheDir, callbackFunction, installTimeout, ...rest } = options
  // Validated first, so a typo fails at once rather than after a five-minute install.
  const settings = yield* Config.make({ ...rest, name: agentName, command: PYTHON }).pipe(
    Effect.mapError((error) =>
      error.field === "name"
        ? new ConfigError({
          field: "agentName",
          rule: error.rule,
          ...(error.value !== undefined ? { value: error.value } : {})
        })
        : error
    )
  )
  const timeout = yield* Either.match(decodeDuration(installTimeout ?? DEFAULT_INSTALL_TIMEOUT), {
    onLeft: () =>
      Effect.fail(
        new ConfigError({
          field: "installTimeout",
          rule: `must be a duration like "5 minutes" or a number of milliseconds`,
          value: String(installTimeout)
        })
      ),
    onRight: Effect.succeed
  })
  const path = yield* Path.Path
  const dir = path.resolve(agentDir)
  const detected = yield* detect(dir)
  if (callbackFunction !== undefined) {
    const valid = detected.language === "python" ? PYTHON_FUNCTION : NODE_EXPORT
    if (!valid.test(callbackFunction)) {
      return yield* new ConfigError({
        field: "callbackFunction",
        rule: detected.language === "python"
          ? "must be a Python name (dotted for a method: Class.method)"
          : "must be an export name (no '/', '\\', ':' or spaces)",
        value: callbackFunction
      })
    }
  }
  const root = yield* packageRoot
  const cache = path.resolve(cacheDir ?? defaultCacheDir(path))
  const env: Record<string, string> = { ...rest.env }
  const module = path.join(dir, detected.entry)

  if (detected.language === "python") {
    const adapter = yield* adapterPath(
      agentName,
      path.join(root, "adapters", "python", "supervisor_adapter.py"),
      "the package is incomplete; reinstall it"
    )
    const dependencies = yield* pythonDependencies(dir)
    if (Option.isSome(dependencies)) {
      const deps = dependencies.value
      const abi = yield* pythonAbi(agentName, deps.manifest)
      const target = yield* ensureInstalled({
        agent: agentName,
        manifest: deps.manifest,
        installer: `${PYTHON} -m pip install`,
        root: path.join(cache, "python"),
        key: hash([LAYOUT, abi, deps.keyText]),
        timeout,
        facts: { manifest: deps.manifest, abi },
        prepare: () => Effect.void,
        command: (temporary) =>
          Command.make(
            PYTHON,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            temporary,
            ...deps.args
          ).pipe(Command.workingDirectory(dir), Command.env(installerEnv(rest.env, ["PIP_"])))
      })
      const inherited = rest.env?.PYTHONPATH ?? process.env.PYTHONPATH
      env.PYTHONPATH = inherited !== undefined && inherited !== "" ? `${target}${delimiter}${inherited}` : target
    }
    const fn = callbackFunction ?? DEFAULT_PYTHON_FUNCTION
    const args = [adapter, `${module}:${fn}`]
    const cwd = rest.cwd ?? dir
    yield* checkCallback({
      agent: agentName,
      command: PYTHON,
      args,
      cwd,
      env,
      timeout: settings.startupTimeout,
      module,
      callback: fn
    })
    return { ...rest, name: agentName, command: PYTHON, args, cwd, env } satisfies Config.AgentConfigInput
  }

  const adapter = yield* adapterPath(
    agentName,
    path.join(root, "dist", "Adapter", "node.js"),
    "build the package first (npm run build)"
  )
  let runDir = dir
  const dependencies = detected.packageJson?.dependencies
  if (typeof dependencies === "object" && dependencies !== null && Object.keys(dependencies).length > 0) {
    runDir = yield* installNode({
      agent: agentName,
      dir,
      cache,
      timeout,
      dependencies: dependencies as Record<string, unknown>,
      env: rest.env
    })
  }
  const entry = path.join(runDir, detected.entry)
  const args = [adapter, callbackFunction === undefined ? entry : `${entry}:${callbackFunction}`]
  const cwd = rest.cwd ?? runDir
  yield* checkCallback({
    agent: agentName,
    command: process.execPath,
    args,
    cwd,
    env,
    timeout: settings.startupTimeout,
    module,
    callback: callbackFunction ?? "default export or handleRequest"
  })
  return { ...rest, name: agentName, command: process.execPath, args, cwd, env } satisfies Config.AgentConfigInput
}, (effect, options) => Effect.annotateLogs(effect, { agent: options.agentName }))

/**
 * Installs a Node agent's dependencies into a copy of its directory (ESM imports ignore `NODE_PATH`, so
 * `node_modules` must sit beside or above the code) and returns where to run it from. The install is keyed by the
 * manifest, the lock file and any local `file:` dependency; the code is keyed separately, so an edit to the code
 * alone runs from a fresh copy below the install instead of reinstalling.
 */
const installNode = Effect.fnUntraced(function*(options: {
  readonly agent: string
  readonly dir: string
  readonly cache: string
  readonly timeout: Duration.Duration
  readonly dependencies: Record<string, unknown>
  readonly env: Record<string, string> | undefined
}) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const { agent, dir } = options
  const manifest = path.join(dir, "package.json")
  const failed = (error: PlatformError) =>
    new AgentDependencyError({ agent, installer: "npm install", manifest, output: error.message })

  const read = (name: string) => fs.readFileString(path.join(dir, name)).pipe(Effect.orElseSucceed(() => ""))
  const keyParts = [
    LAYOUT,
    `node ${process.versions.modules} ${process.platform} ${process.arch}`,
    yield* read("package.json"),
    yield* read("package-lock.json"),
    yield* read("npm-shrinkwrap.json")
  ]
  for (const [name, spec] of Object.entries(options.dependencies).sort(([a], [b]) => a.localeCompare(b))) {
    if (typeof spec !== "string" || !spec.startsWith("file:")) continue
    // A local package is part of what gets installed: its edits must reinstall too.
    const local = path.resolve(dir, spec.slice("file:".length))
    const entries = yield* walk(local).pipe(Effect.orElseSucceed(() => []))
    keyParts.push(`${name}=${spec}:${fingerprint(entries)}`)
  }
  const entries = yield* walk(dir).pipe(Effect.mapError(failed))
  const codeKey = fingerprint(entries)

  const installed = yield* ensureInstalled({
    agent,
    manifest,
    installer: "npm install",
    root: path.join(options.cache, "node"),
    key: hash(keyParts),
    timeout: options.timeout,
    facts: { manifest, code: codeKey },
    prepare: (temporary) => copyTree(entries, dir, temporary),
    command: (temporary) =>
      Command.make("npm", "install", "--omit=dev", "--no-audit", "--no-fund").pipe(
        Command.workingDirectory(temporary),
        Command.env(installerEnv(options.env, ["npm_config_", "NPM_CONFIG_"]))
      )
  })

  const marker = yield* fs.readFileString(path.join(installed, MARKER)).pipe(
    Effect.map((text) => Option.getOrUndefined(Schema.decodeUnknownOption(MarkerCode)(text))),
    Effect.orElseSucceed(() => undefined)
  )
  if (marker?.code === codeKey) return installed

  // The code changed since the install: a copy of the current code, one level below node_modules, which Node's
  // resolution finds by walking up.
  const copies = path.join(installed, ".code")
  const copy = path.join(copies, codeKey)
  if (yield* fs.exists(copy).pipe(Effect.mapError(failed))) return copy
  const temporary = `${copy}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`
  yield* Effect.gen(function*() {
    yield* fs.makeDirectory(temporary, { recursive: true })
    yield* copyTree(entries, dir, temporary)
    yield* fs.rename(temporary, copy).pipe(
      Effect.catchAll((error) => Effect.flatMap(fs.exists(copy), (won) => won ? Effect.void : Effect.fail(error)))
    )
  }).pipe(
    Effect.ensuring(fs.remove(temporary, { recursive: true, force: true }).pipe(Effect.ignore)),
    Effect.mapError(failed)
  )
  return copy
})

const MarkerCode = Schema.parseJson(Schema.Struct({ code: Schema.String }))

/**
 * {@link resolve}, then `AgentSupervisor.make` on the result: the agent is running when this succeeds, and stops
 * when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const agent = yield* Directory.fromDirectory({ agentName: "my-agent", agentDir: "agents/my_agent" })
 * const reply = yield* agent.handleEvent({ task: "process this" })
 * ```
 */
export const fromDirectory: (
  options: DirectoryOptions
) => Effect.Effect<
  AgentSupervisor.AgentSupervisor,
  DirectoryError,
  CommandExecutor.CommandExecutor | FileSystem.FileSystem | Path.Path | Scope.Scope
> = Effect.fn("Directory.fromDirectory")(function*(options: DirectoryOptions) {
  const config = yield* resolve(options)
  return yield* AgentSupervisor.make(config)
})

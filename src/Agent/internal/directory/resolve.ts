/**
 * From a directory to an agent's configuration: validate the options, detect the agent, install its dependencies,
 * check its callback, and build the command line that runs it through the Python or Node adapter.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { existsSync } from "node:fs"
import { homedir } from "node:os"
import { delimiter, dirname } from "node:path"
import {
  type AgentCallbackNotFoundError,
  type AgentDependencyError,
  AgentStartupError,
  ConfigError
} from "../../../Errors.js"
import type { DurationInput } from "../../../internal/durationText.js"
import * as Edge from "../../../internal/schema.js"
import * as Config from "../../Config.js"
import * as Access from "../limits/access.js"
import * as Identity from "../limits/identity.js"
import * as Placement from "../limits/placement.js"
import * as Spawn from "../spawn.js"
import { checkCallback } from "./check.js"
import { detect } from "./detect.js"
import { installNode, installPython, PYTHON } from "./install.js"
import { pythonDependencies } from "./manifest.js"

/**
 * Where the agent lives and how to run it; every other field is the agent's configuration as usual.
 *
 * @internal
 */
export interface DirectoryOptions extends AgentSettings {
  /** The agent's name (the `name` of its configuration). */
  readonly agentName: string
  /** The directory holding the agent's code. */
  readonly agentDir: string
  /** Python: default `handle_request`. Node: default the module's default export, else `handleRequest`. */
  readonly callbackFunction?: string | undefined
  /** Bounds each dependency install; default 5 minutes. */
  readonly installTimeout?: DurationInput | undefined
  /**
   * Where dependency installs live; default `$XDG_CACHE_HOME` (or `~/.cache`) + `/effect-agent-supervisor`, and
   * `/var/cache/effect-agent-supervisor` for an agent run as another `user` (root's home is not readable by it).
   */
  readonly cacheDir?: string | undefined
}

/** The agent's configuration but what the directory decides. */
type AgentSettings = Omit<Config.AgentConfigInput, "name" | "command" | "args">

/** Everything {@link resolve} can fail with. @internal */
export type DirectoryError = AgentCallbackNotFoundError | AgentDependencyError | AgentStartupError | ConfigError

const DEFAULT_PYTHON_FUNCTION = "handle_request"
const DEFAULT_INSTALL_TIMEOUT = Duration.minutes(5)
const PYTHON_FUNCTION = /^[\p{L}_][\p{L}\p{N}_]*(\.[\p{L}_][\p{L}\p{N}_]*)*$/u
const NODE_EXPORT = /^[^/\\:\s]+$/

/** This file is `src/Agent/internal/directory/resolve.ts` under vitest, `dist/Agent/internal/directory/resolve.js` built. */
const packageRoot = Effect.gen(function*() {
  const path = yield* Path.Path
  const here = yield* Effect.orDie(path.fromFileUrl(new URL(import.meta.url)))
  return path.resolve(path.dirname(here), "..", "..", "..", "..")
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

/** The system's cache (systemd's `CacheDirectory=` root) serves agents run as another user: only root asks. */
const SYSTEM_CACHE_DIR = "/var/cache/effect-agent-supervisor"

/** @internal */
export const defaultCacheDir = (path: Path.Path, asOtherUser: boolean) => {
  if (asOtherUser) return SYSTEM_CACHE_DIR
  const xdg = process.env.XDG_CACHE_HOME
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(homedir(), ".cache")
  return path.join(base, "effect-agent-supervisor")
}

/** What both languages need once the options are valid and the agent detected. */
interface Resolving {
  /** The Python interpreter's file (or `python3`, left to fail as the spawn reports it, when none is found). */
  readonly python: string
  readonly agentName: string
  readonly dir: string
  /** The entry file, relative to `dir`. */
  readonly entry: string
  readonly callbackFunction: string | undefined
  readonly settings: AgentSettings
  readonly installTimeout: Duration.Duration
  readonly cache: string
  /** The account the agent runs as and its whole environment: its installer's too when that is another account. */
  readonly account: Placement.Account
  readonly root: string
}

/**
 * Works out how to run the agent in a directory; see `Directory.resolve`.
 *
 * @internal
 */
export const resolve: (
  options: DirectoryOptions
) => Effect.Effect<
  Config.AgentConfigInput,
  DirectoryError,
  FileSystem.FileSystem | Path.Path
> = Effect.fn("Directory.resolve")(function*(options: DirectoryOptions) {
  const { agentDir, agentName, cacheDir, callbackFunction, installTimeout, ...settings } = options
  // Validated first, so a typo fails at once rather than after a five-minute install.
  const config = yield* Config.make({ ...settings, name: agentName, command: PYTHON }).pipe(
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
  const timeout = yield* Edge.decodeDuration("installTimeout", installTimeout ?? DEFAULT_INSTALL_TIMEOUT)
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
  const resolving: Resolving = {
    agentName,
    dir,
    entry: detected.entry,
    callbackFunction,
    settings,
    installTimeout: timeout,
    account: yield* Placement.account(config),
    cache: path.resolve(cacheDir ?? defaultCacheDir(path, settings.user !== undefined)),
    root: yield* packageRoot,
    // Found once on the agent's own PATH: the install, the check and the agent run the very same interpreter.
    python: Spawn.whichProgram(config) ?? PYTHON
  }
  return detected.language === "python"
    ? yield* resolvePython(resolving)
    : yield* resolveNode(resolving, detected.packageJson)
}, (effect, options) => Effect.annotateLogs(effect, { agent: options.agentName }))

/**
 * For an agent run as another user: a `ConfigError` (field `user`) naming the first file it could not reach and
 * why, before anything runs. Problems with the user itself are left to the spawn, which reports them all.
 */
const checkReach = (
  settings: AgentSettings,
  reached: ReadonlyArray<readonly [string, Access.Need]>
): Effect.Effect<void, ConfigError> => {
  if (settings.user === undefined && settings.group === undefined) return Effect.void
  const resolved = Identity.resolve(settings.user, settings.group)
  if (!("identity" in resolved)) return Effect.void
  const { gid, uid } = resolved.identity
  const who = { uid: uid ?? process.getuid?.() ?? 0, gid: gid ?? process.getgid?.() ?? 0 }
  for (const [file, need] of reached) {
    const why = Access.unreachable(who, file, need)
    if (why !== undefined) {
      return Effect.fail(
        new ConfigError({
          field: settings.user !== undefined ? "user" : "group",
          rule: `the agent would run unable to reach what it needs: ${why}. Make that readable by the user, or ` +
            "give cacheDir (dependencies), cwd or the agent's directory a place it can read, or env.PATH a python3 " +
            "it can run first (the interpreter is found on the agent's PATH and installs its dependencies too)",
          value: String(settings.user ?? settings.group)
        })
      )
    }
  }
  return Effect.void
}

/** `file`, or the nearest directory above it that exists (what an install makes the rest of). */
const nearestExisting = (file: string): string => {
  let at = file
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at)
  return at
}

/**
 * Before an install for an agent run as another user: its installer runs as that user, so the cache must be
 * reachable by it (the part of it that exists: the install makes the rest, readable by all).
 */
const checkCacheReach = (resolving: Resolving) =>
  checkReach(resolving.settings, [[nearestExisting(resolving.cache), "directory"]])

/**
 * `python3 adapters/python/supervisor_adapter.py entry.py:function`, cwd = the directory, `PYTHONPATH` starting
 * with the installed dependencies.
 */
const resolvePython = Effect.fnUntraced(function*(resolving: Resolving) {
  const path = yield* Path.Path
  const { agentName, dir, settings } = resolving
  const adapter = yield* adapterPath(
    agentName,
    path.join(resolving.root, "adapters", "python", "supervisor_adapter.py"),
    "the package is incomplete; reinstall it"
  )
  const env: Record<string, string> = { ...settings.env }
  const dependencies = yield* pythonDependencies(dir)
  let target: string | undefined
  if (Option.isSome(dependencies)) {
    yield* checkCacheReach(resolving)
    target = yield* installPython({
      agent: agentName,
      dir,
      cache: resolving.cache,
      timeout: resolving.installTimeout,
      dependencies: dependencies.value,
      env: settings.env,
      python: resolving.python,
      account: resolving.account
    })
    // As the agent would have it: its own, else the supervisor's where `inheritEnv` passes it on
    const inherited = resolving.account.env.PYTHONPATH
    env.PYTHONPATH = inherited !== undefined && inherited !== "" ? `${target}${delimiter}${inherited}` : target
  }
  const module = path.join(dir, resolving.entry)
  const fn = resolving.callbackFunction ?? DEFAULT_PYTHON_FUNCTION
  const args = [adapter, `${module}:${fn}`]
  const cwd = settings.cwd ?? dir
  yield* checkReach(settings, [
    [resolving.python, "program"],
    [adapter, "file"],
    [dir, "directory"],
    [module, "file"],
    [cwd, "directory"],
    ...(target !== undefined ? [[target, "directory"] as const] : [])
  ])
  const resolved = { ...settings, name: agentName, command: resolving.python, args, cwd, env }
  yield* checkCallback({ config: yield* Config.make(resolved), module, callback: fn })
  return resolved satisfies Config.AgentConfigInput
})

/**
 * `node dist/Adapter/node.js entry[:function]`, run from a copy of the directory next to its `node_modules` when
 * it has dependencies, else from the directory itself.
 */
const resolveNode = Effect.fnUntraced(function*(
  resolving: Resolving,
  packageJson: Record<string, unknown> | undefined
) {
  const path = yield* Path.Path
  const { agentName, callbackFunction, dir, settings } = resolving
  const adapter = yield* adapterPath(
    agentName,
    path.join(resolving.root, "dist", "Adapter", "node.js"),
    "build the package first (npm run build)"
  )
  let runDir = dir
  const dependencies = packageJson?.dependencies
  if (typeof dependencies === "object" && dependencies !== null && Object.keys(dependencies).length > 0) {
    yield* checkCacheReach(resolving)
    runDir = yield* installNode({
      agent: agentName,
      dir,
      cache: resolving.cache,
      timeout: resolving.installTimeout,
      dependencies: dependencies as Record<string, unknown>,
      env: settings.env,
      account: resolving.account
    })
  }
  const entry = path.join(runDir, resolving.entry)
  const args = [adapter, callbackFunction === undefined ? entry : `${entry}:${callbackFunction}`]
  const cwd = settings.cwd ?? runDir
  const env: Record<string, string> = { ...settings.env }
  yield* checkReach(settings, [
    [adapter, "file"],
    [resolving.root, "directory"],
    [runDir, "directory"],
    [entry, "file"],
    [cwd, "directory"]
  ])
  const resolved = { ...settings, name: agentName, command: process.execPath, args, cwd, env }
  yield* checkCallback({
    config: yield* Config.make(resolved),
    module: path.join(dir, resolving.entry),
    // Without a function named, the adapter takes a default export that is a function, else this one.
    callback: callbackFunction ?? "handleRequest",
    defaultExport: callbackFunction === undefined
  })
  return resolved satisfies Config.AgentConfigInput
})

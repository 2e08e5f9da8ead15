/**
 * Installing an agent's dependencies into the cache: Python's with pip into a target directory that goes on
 * `PYTHONPATH`, Node's with npm into a copy of the agent's directory. The installer sees only its own settings
 * from the agent's environment (`PIP_*`, `npm_config_*`) over the supervisor's. For an agent run as another user
 * (`user`, `group`), the installer runs as that account too, with the agent's whole environment (`inheritEnv`
 * applied, not the supervisor's) and its own settings on top: what it runs (a package's `postinstall`, a `setup.py`)
 * is the agent's code, never root's (see `cache.ts` for the directories it may write).
 *
 * @internal
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import { AgentDependencyError } from "../../../Errors.js"
import type * as Placement from "../limits/placement.js"
import { ensureInstalled, readMarker } from "./cache.js"
import type { PythonDependencies } from "./manifest.js"
import { OUTPUT_LIMIT, runBounded } from "./run.js"
import { copyTree, fingerprint, walk } from "./tree.js"

/**
 * The interpreter that runs Python agents, as named: `resolve.ts` finds it on the agent's `PATH` once, and that
 * one file runs the agent, its install and its check. @internal
 */
export const PYTHON = "python3"
const PIP = `${PYTHON} -m pip install`

/** Entries of `env` whose names start with one of `prefixes`: the installer's own settings, from the agent's env. */
const installerEnv = (env: Record<string, string> | undefined, prefixes: ReadonlyArray<string>) =>
  Object.fromEntries(
    Object.entries(env ?? {}).filter(([name]) => prefixes.some((prefix) => name.startsWith(prefix)))
  )

/**
 * Where and as whom an installer runs: as the supervisor, with its environment and the installer's settings over
 * it; as the agent's account when it has another user or group, with the agent's own environment (`account.env`)
 * and the settings over that.
 */
const runAs = (
  account: Placement.Account,
  settings: Record<string, string>,
  /** Under the settings, for another account only: where its installer caches (it may have no home to). */
  cache: Record<string, string> = {}
) =>
  account.uid === undefined && account.gid === undefined
    ? { env: { ...process.env, ...settings } }
    : { env: { ...account.env, ...cache, ...settings }, uid: account.uid, gid: account.gid }

/** What makes installed packages incompatible between interpreters: its ABI tag and platform. */
const pythonAbi = Effect.fnUntraced(function*(
  agent: string,
  manifest: string,
  python: string,
  account: Placement.Account
) {
  const args = ["-c", "import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())"]
  const result = yield* runBounded({ command: python, args, ...runAs(account, {}) }, Duration.seconds(30), OUTPUT_LIMIT)
    .pipe(
      Effect.mapError((error) => new AgentDependencyError({ agent, installer: PIP, manifest, output: error.message }))
    )
  if (result.exitCode !== 0) {
    return yield* new AgentDependencyError({
      agent,
      installer: PIP,
      manifest,
      exitCode: result.exitCode,
      timedOut: result.timedOut,
      output: result.output
    })
  }
  return result.stdout.trim()
})

/**
 * Installs a Python agent's dependencies with pip (`--target`) and returns the directory to put on `PYTHONPATH`.
 * The install is keyed by the interpreter's ABI and the dependencies.
 *
 * @internal
 */
export const installPython = Effect.fnUntraced(function*(options: {
  readonly agent: string
  readonly dir: string
  readonly cache: string
  readonly timeout: Duration.Duration
  readonly dependencies: PythonDependencies
  readonly env: Record<string, string> | undefined
  /** The interpreter the agent runs with (a path, or `python3` when none was found). */
  readonly python: string
  /** The account and environment the agent runs with (`Placement.account`). */
  readonly account: Placement.Account
}) {
  const path = yield* Path.Path
  const { agent, dependencies } = options
  const abi = yield* pythonAbi(agent, dependencies.manifest, options.python, options.account)
  return yield* ensureInstalled({
    agent,
    manifest: dependencies.manifest,
    installer: PIP,
    root: path.join(options.cache, "python"),
    keyParts: [abi, dependencies.keyText],
    timeout: options.timeout,
    facts: { manifest: dependencies.manifest, abi },
    prepare: () => Effect.void,
    command: (temporary, scratch) => ({
      command: options.python,
      args: [
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        temporary,
        ...dependencies.args
      ],
      cwd: options.dir,
      ...runAs(options.account, installerEnv(options.env, ["PIP_"]), { PIP_CACHE_DIR: scratch })
    })
  })
})

/**
 * Installs a Node agent's dependencies into a copy of its directory (ESM imports ignore `NODE_PATH`, so
 * `node_modules` must sit beside or above the code) and returns where to run it from. The install is keyed by the
 * manifest, the lock file and any local `file:` dependency; the code is keyed separately, so an edit to the code
 * alone runs from a fresh copy below the install instead of reinstalling.
 *
 * @internal
 */
export const installNode = Effect.fnUntraced(function*(options: {
  readonly agent: string
  readonly dir: string
  readonly cache: string
  readonly timeout: Duration.Duration
  readonly dependencies: Record<string, unknown>
  readonly env: Record<string, string> | undefined
  /** The account and environment the agent runs with (`Placement.account`). */
  readonly account: Placement.Account
}) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const { agent, dir } = options
  const manifest = path.join(dir, "package.json")
  const failed = (error: PlatformError) =>
    new AgentDependencyError({ agent, installer: "npm install", manifest, output: error.message })

  const read = (name: string) => fs.readFileString(path.join(dir, name)).pipe(Effect.orElseSucceed(() => ""))
  const keyParts = [
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
    keyParts,
    timeout: options.timeout,
    facts: { manifest, code: codeKey },
    prepare: (temporary) => copyTree(entries, dir, temporary),
    command: (temporary, scratch) => ({
      command: "npm",
      args: ["install", "--omit=dev", "--no-audit", "--no-fund"],
      cwd: temporary,
      ...runAs(options.account, installerEnv(options.env, ["npm_config_", "NPM_CONFIG_"]), {
        npm_config_cache: scratch
      })
    })
  })
  if ((yield* readMarker(installed))?.code === codeKey) return installed

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

/**
 * Runs an agent from a directory: works out its language and entry file, installs its dependencies into a cache
 * keyed by their manifest, checks in a child process that its callback exists, and builds the configuration that
 * runs it through the Python or Node adapter.
 *
 * Detection, in this order: `callback.py` makes a Python agent; else `package.json` (its `main`, default
 * `index.js`) or `index.js` / `index.mjs` / `index.cjs` a Node agent; else exactly one top-level `.py` file a
 * Python agent. A stray helper script therefore never turns a Node project into a Python one.
 *
 * Python dependencies come from `requirements.txt`, else from `pyproject.toml`'s `[project] dependencies`; Node
 * dependencies from `package.json`. Each set is installed once per manifest (and interpreter) and reused.
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as Effect from "effect/Effect"
import type * as Config from "./Config.js"
import type { Progress } from "./internal/directory/progress.js"
import * as internal from "./internal/directory/resolve.js"

/**
 * Where the agent lives and how to run it: `agentName`, `agentDir`, and optionally `callbackFunction`,
 * `installTimeout` (default 5 minutes) and `cacheDir` (default `$XDG_CACHE_HOME` or `~/.cache`, then
 * `/effect-agent-supervisor`; `/var/cache/effect-agent-supervisor` for an agent run as another `user`); every
 * other field is the agent's configuration as usual. With `user` or `group`, what the agent needs must be
 * reachable by it: a `ConfigError` (field `user`) names the first file that is not; its dependency install and its
 * callback check then run as that account too, with the agent's environment (`inheritEnv` applied), never as the
 * supervisor's.
 *
 * @since 0.1.0
 * @category models
 */
export type DirectoryOptions = internal.DirectoryOptions

/**
 * Everything {@link resolve} can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type DirectoryError = internal.DirectoryError

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
  FileSystem.FileSystem | Path.Path
> = internal.resolve

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
export { fromDirectory } from "./AgentSupervisor.js"

/**
 * What a dependency install reports while it runs: `onStart(agent, installer)`, `onOutput(agent, chunk)` with each
 * chunk of the installer's output, `onEnd(agent, ok)` once after every start (interrupted or failed installs
 * too). The callbacks run in the installer's output reader: keep them short.
 *
 * @since 0.1.0
 * @category models
 */
export type InstallProgress = Progress

/**
 * The install reporter in the context, silent by default: provide one (`Effect.provideService(Directory.Progress,
 * { onStart, onOutput, onEnd })`) to show installs as they run, as `agent-supervisor up` does with a spinner.
 *
 * @since 0.1.0
 * @category context
 */
export { InstallProgress as Progress } from "./internal/directory/progress.js"

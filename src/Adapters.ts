/**
 * Where the callback adapters are, and the command lines that run a plain function as an agent through them.
 *
 * The paths are absolute, resolved from this module's own location in the installed package, so they hold
 * whatever the working directory, package manager or `node_modules` layout. A bundled application must ship the
 * adapters beside its bundle and point `command`/`args` at them itself.
 *
 * @example
 * ```ts
 * import { Adapters, AgentSupervisor } from "effect-agent-supervisor"
 *
 * const agent = AgentSupervisor.make({
 *   name: "summarizer",
 *   ...Adapters.pythonCallback("agents/summarize.py", "handle_request"),
 *   requestTimeout: "60 seconds"
 * })
 * ```
 *
 * @since 0.1.0
 */
import { fileURLToPath } from "node:url"

/**
 * The absolute path of the Python adapter, `adapters/python/supervisor_adapter.py` (standard library only, so it
 * runs on any Python 3 interpreter, a virtualenv's included).
 *
 * @since 0.1.0
 * @category paths
 */
export const python: string = fileURLToPath(new URL("../adapters/python/supervisor_adapter.py", import.meta.url))

/**
 * The absolute path of the Node adapter, `dist/Adapter/node.js` (also installed as the
 * `effect-agent-node-adapter` bin).
 *
 * @since 0.1.0
 * @category paths
 */
// Through `../dist/` so that the path is the built adapter both from `dist/Adapters.js` and, in this repository's
// tests, from `src/Adapters.ts`: Node cannot run the TypeScript source.
export const node: string = fileURLToPath(new URL("../dist/Adapter/node.js", import.meta.url))

/**
 * A program and its arguments: the `command` and `args` fields of an agent's configuration, to spread into it.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommandLine {
  readonly command: string
  readonly args: ReadonlyArray<string>
}

/**
 * Options of {@link pythonCallback}.
 *
 * @since 0.1.0
 * @category models
 */
export interface PythonOptions {
  /** The interpreter: a name on `PATH` or a path, such as a virtualenv's `.venv/bin/python`. `"python3"` by default. */
  readonly python?: string | undefined
}

/**
 * The command line that runs a Python function as an agent through the Python adapter.
 *
 * `target` is a file (`agents/summarize.py`, relative to the agent's `cwd`) or a module (`agents.summarize`, found
 * from the agent's `cwd`); `functionName` may be dotted (`Class.method`) and is `handle_request` when omitted.
 *
 * @example
 * ```ts
 * import { Adapters } from "effect-agent-supervisor"
 *
 * Adapters.pythonCallback("agents/summarize.py", "handle")
 * // { command: "python3", args: ["/app/node_modules/effect-agent-supervisor/adapters/python/supervisor_adapter.py",
 * //                              "agents/summarize.py:handle"] }
 * ```
 *
 * @since 0.1.0
 * @category command lines
 */
export const pythonCallback = (
  target: string,
  functionName?: string | undefined,
  options?: PythonOptions | undefined
): CommandLine => ({
  command: options?.python ?? "python3",
  args: [python, functionName === undefined ? target : `${target}:${functionName}`]
})

/**
 * Options of {@link nodeCallback}.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeOptions {
  /** The `node` executable. The one running the supervisor (`process.execPath`) by default. */
  readonly node?: string | undefined
}

/**
 * The command line that runs a JavaScript function as an agent through the Node adapter.
 *
 * `file` is a `.js`, `.mjs` or `.cjs` module (relative to the agent's `cwd`); without `exportName` the adapter
 * takes its `default` export when that is a function, else `handleRequest`.
 *
 * @example
 * ```ts
 * import { Adapters } from "effect-agent-supervisor"
 *
 * Adapters.nodeCallback("agents/classify.mjs", "classify")
 * // { command: "/usr/bin/node", args: ["/app/node_modules/effect-agent-supervisor/dist/Adapter/node.js",
 * //                                    "agents/classify.mjs:classify"] }
 * ```
 *
 * @since 0.1.0
 * @category command lines
 */
export const nodeCallback = (
  file: string,
  exportName?: string | undefined,
  options?: NodeOptions | undefined
): CommandLine => ({
  // The running Node, not `node` on PATH: the same version as the supervisor, even where PATH has none.
  command: options?.node ?? process.execPath,
  args: [node, exportName === undefined ? file : `${file}:${exportName}`]
})

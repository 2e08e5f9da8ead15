/**
 * What a tree file's agents run, looked for as their start will look, for `validate` (as `systemd-analyze verify`
 * checks that a unit's executables exist): so that what `up` would find as an agent that does not start is found
 * before it.
 * - An agent's `command` (an agent child's, a pool of agents'): found as `execvp` finds it, on the child's `PATH`
 *   from its `cwd`, and executable; nothing is run.
 * - A callback's module (a callback child's, a pool of callbacks'): loaded by its adapter with `--check`, in a child
 *   process bounded by the agent's `startupTimeout` (the check `fromDirectory` makes): a syntax error, a module that
 *   is not there, a function misspelt. The module's top-level code runs, as at every start of the agent; nothing of
 *   the agent is served.
 *
 * A directory child is left to `up`, which resolves it (installs its dependencies, then checks its callback).
 *
 * @internal
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Effect from "effect/Effect"
import * as Adapters from "../../Adapters.js"
import * as Config from "../../Agent/Config.js"
import { checkCallback } from "../../Agent/internal/directory/check.js"
import { childEnv, classify, programProblem } from "../../Agent/internal/spawn.js"
import type * as TreeFile from "../../TreeFile.js"
import * as Edge from "../schema.js"
import { formOf } from "./fileSchema.js"

/** How many modules are loaded at once. */
const CONCURRENCY = 4

type Found =
  /** The child's path in the file (`children[1]`) and its configuration. */
  | { readonly form: "agent"; readonly at: string; readonly config: Config.AgentConfigInput }
  | { readonly form: "callback"; readonly at: string; readonly config: TreeFile.CallbackConfig }

/** Every agent and callback child of `children` and below, and every pool of either (once, whatever its size). */
const found = (children: ReadonlyArray<TreeFile.Child>, at: string | undefined): Array<Found> =>
  children.flatMap((child, i): Array<Found> => {
    const path = Edge.pathOf(at, ["children", i])
    switch (child.type) {
      case "agent":
        return [{ form: "agent", at: path, config: child.config }]
      case "callback":
        return [{ form: "callback", at: path, config: child.config }]
      case "pool": {
        const form = formOf(child.config)
        return form === "agent"
          ? [{ form, at: path, config: child.config as Config.AgentConfigInput }]
          : form === "callback"
          ? [{ form, at: path, config: child.config as TreeFile.CallbackConfig }]
          : []
      }
      case "supervisor":
        return found(child.children ?? [], path)
      default:
        return []
    }
  })

/** The problem of an agent's program that `execvp` would not find or run, at its `command`. */
const checkProgram = (at: string, input: Config.AgentConfigInput): Effect.Effect<Edge.Problem | undefined> =>
  Effect.map(Effect.option(Config.make(input)), (config) => {
    // The file decoded it already: a problem here is one the file's own check reports.
    if (config._tag === "None") return undefined
    const problem = programProblem(config.value)
    return problem === undefined
      ? undefined
      : { field: Edge.joinPaths(at, "config.command"), rule: classify(config.value, problem).message }
  })

/** The problem of one callback that does not load, at its `file` or its `function`; `undefined` when it loads. */
const checkCallbackOf = (
  at: string,
  config: TreeFile.CallbackConfig
): Effect.Effect<Edge.Problem | undefined, never, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const { file, function: name, interpreter, language, ...rest } = config
    const commandLine = language === "python"
      ? Adapters.pythonCallback(file, name, { python: interpreter })
      : Adapters.nodeCallback(file, name, { node: interpreter })
    const agent = yield* Effect.option(Config.make({ ...rest, ...commandLine }))
    if (agent._tag === "None") return undefined
    const env: Record<string, string> = {}
    for (const [key, value] of Object.entries(childEnv(agent.value))) if (value !== undefined) env[key] = value
    return yield* checkCallback({
      agent: agent.value.name,
      command: commandLine.command,
      args: commandLine.args,
      cwd: agent.value.cwd ?? process.cwd(),
      env,
      timeout: agent.value.startupTimeout,
      module: file,
      callback: name ?? (language === "python" ? "handle_request" : "the default export or handleRequest")
    }).pipe(
      Effect.as(undefined),
      Effect.catchTags({
        AgentCallbackNotFoundError: (error) =>
          Effect.succeed({ field: Edge.joinPaths(at, "config.function"), rule: error.message }),
        AgentStartupError: (error) =>
          Effect.succeed({
            field: Edge.joinPaths(at, "config.file"),
            // The adapter ran and said why (a traceback, a missing module), or did not finish; else it did not run.
            rule: error.reason === "spawn_failed"
              ? error.message
              : `does not load (its adapter's --check):\n${error.detail ?? "no report"}`
          })
      })
    )
  })

/** The problems of what the file's agents run, in the file's order: none when every one is there (see above). */
export const problems = (
  file: TreeFile.TreeFile
): Effect.Effect<Array<Edge.Problem>, never, CommandExecutor.CommandExecutor> =>
  Effect.map(
    Effect.forEach(
      found(file.children, undefined),
      (child) =>
        child.form === "agent" ? checkProgram(child.at, child.config) : checkCallbackOf(child.at, child.config),
      { concurrency: CONCURRENCY }
    ),
    (results) => results.filter((problem): problem is Edge.Problem => problem !== undefined)
  )

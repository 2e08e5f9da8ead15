/**
 * What a tree file's agents run, looked for as their start will look, for `validate` (as `systemd-analyze verify`
 * checks that a unit's executables exist): so that what `up` would find as an agent that does not start is found
 * before it.
 * - An agent's `command` (an agent child's, a pool of agents'): found as `execvp` finds it, on the child's `PATH`
 *   from its `cwd`, and executable; nothing is run.
 * - A callback's interpreter (`interpreter`, or the `language`'s default), found as an agent's `command` is.
 * - A callback's module (a callback child's, a pool of callbacks'): loaded by its adapter with `--check`, in a child
 *   process run as the agent runs (its `cwd`, its whole environment, its `user` and `group`) and bounded by its
 *   `startupTimeout`, at most 60 s (the check `fromDirectory` makes): a syntax error, a module that is not there, a
 *   function misspelt. The module's top-level code runs, as at every start of the agent; nothing of the agent is
 *   served. A module still loading after 60 s whose `startupTimeout` allows it longer is a warning, not a problem:
 *   `up` would wait for it.
 *
 * A directory child is left to `up`, which resolves it (installs its dependencies, then checks its callback).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Adapters from "../../Adapters.js"
import * as Config from "../../Agent/Config.js"
import { checkCallback } from "../../Agent/internal/directory/check.js"
import { classify, programProblem } from "../../Agent/internal/spawn.js"
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

/** The problem, at `field`, of a program that `execvp` would not find or run, said as the agent's spawn says it. */
const programAt = (field: string, config: Config.AgentConfig): Finding => {
  const missing = programProblem(config)
  return missing === undefined ? undefined : problem(field, classify(config, missing).message)
}

/** The problem of an agent's program, at its `command`. */
const checkProgram = (at: string, input: Config.AgentConfigInput): Effect.Effect<Finding> =>
  Effect.map(
    Effect.option(Config.make(input)),
    // The file decoded it already: a problem here is one the file's own check reports.
    (config) => config._tag === "None" ? undefined : programAt(Edge.joinPaths(at, "config.command"), config.value)
  )

/** A check that takes longer than this is reported, whatever the agent's `startupTimeout` allows its start. */
export const CHECK_TIMEOUT = Duration.seconds(60)

/** What a check finds: a problem (the file fails), a warning (it is said), or nothing. */
type Finding =
  | { readonly _tag: "problem"; readonly problem: Edge.Problem }
  | { readonly _tag: "warning"; readonly warning: string }
  | undefined

const problem = (field: string, rule: string): Finding => ({ _tag: "problem", problem: { field, rule } })

/**
 * The problem of one callback that does not load: at its `interpreter` (its `language`, for the default one) when
 * that is not there to run, at its `file` when the module does not load, at its `function` when the function is
 * not in it; a warning when validate's own `bound` cut a load short that its `startupTimeout` allows; `undefined`
 * when it loads. The check runs as the agent will (see `Check`).
 */
const checkCallbackOf = (
  at: string,
  config: TreeFile.CallbackConfig,
  bound: Duration.Duration
): Effect.Effect<Finding> =>
  Effect.gen(function*() {
    const { file, function: name, interpreter, language, ...rest } = config
    const commandLine = language === "python"
      ? Adapters.pythonCallback(file, name, { python: interpreter })
      : Adapters.nodeCallback(file, name, { node: interpreter })
    const agent = yield* Effect.option(Config.make({ ...rest, ...commandLine }))
    // The file decoded it already: a problem here is one the file's own check reports.
    if (agent._tag === "None") return undefined
    const runner = Edge.joinPaths(at, interpreter !== undefined ? "config.interpreter" : "config.language")
    const missing = programAt(runner, agent.value)
    if (missing !== undefined) return missing
    const timeout = Duration.min(agent.value.startupTimeout, bound)
    return yield* checkCallback({
      config: agent.value,
      module: file,
      // Without a function named, the Node adapter takes a default export that is a function, else this one.
      callback: name ?? (language === "python" ? "handle_request" : "handleRequest"),
      defaultExport: name === undefined && language !== "python",
      timeout
    }).pipe(
      Effect.as(undefined),
      Effect.catchTags({
        AgentCallbackNotFoundError: (error) =>
          Effect.succeed(problem(Edge.joinPaths(at, "config.function"), error.message)),
        AgentStartupError: (error): Effect.Effect<Finding> => {
          const fileAt = Edge.joinPaths(at, "config.file")
          if (error.reason === "spawn_failed") {
            // It did not run: the interpreter (or the account it runs as), as the agent's spawn would say.
            return Effect.succeed(problem(runner, error.message))
          }
          if (error.reason !== "no_ready_in_time") {
            // The adapter ran and said why (a traceback, a missing module).
            return Effect.succeed(
              problem(fileAt, `does not load (its adapter's --check):\n${error.detail ?? "no report"}`)
            )
          }
          const slow = `did not finish loading within ${Duration.format(timeout)} (its adapter's --check)`
          return Effect.succeed(
            Duration.lessThan(timeout, agent.value.startupTimeout)
              // Cut short by validate's own bound: up would wait as long as the startupTimeout says
              ? {
                _tag: "warning",
                warning: `${fileAt}: ${slow}; its startupTimeout (${
                  Duration.format(agent.value.startupTimeout)
                }) allows longer, so up would wait for it: is its top-level code meant to take that long?`
              }
              : problem(
                fileAt,
                `${slow}: its top-level code waits for something (a network, a lock, input), or is slow to import`
              )
          )
        }
      })
    )
  })

/**
 * The problems of what the file's agents run, in the file's order (none when every one is there), and its warnings
 * (a module still loading when validate's own bound cut it short; see above).
 */
export const check = (
  file: TreeFile.TreeFile,
  /** validate's own bound on a check ({@link CHECK_TIMEOUT}). */
  bound: Duration.Duration = CHECK_TIMEOUT
): Effect.Effect<{ readonly problems: Array<Edge.Problem>; readonly warnings: Array<string> }> =>
  Effect.map(
    Effect.forEach(
      found(file.children, undefined),
      (child) =>
        child.form === "agent" ? checkProgram(child.at, child.config) : checkCallbackOf(child.at, child.config, bound),
      { concurrency: CONCURRENCY }
    ),
    (findings) => ({
      problems: findings.flatMap((finding) => finding?._tag === "problem" ? [finding.problem] : []),
      warnings: findings.flatMap((finding) => finding?._tag === "warning" ? [finding.warning] : [])
    })
  )

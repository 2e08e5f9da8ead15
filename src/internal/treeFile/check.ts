/**
 * The tree's own rules, checked on a file without starting anything: the file's children become the specs
 * `Supervisor.make` takes and go through its decoding (`internal/supervisor/spec.ts`), which checks what no one
 * field shows (ids unique among siblings, significant children, a restart type or stop timeouts given twice), so
 * that a file that validates is one `up` starts.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { AGENT_NAME } from "../../Agent/internal/agentName.js"
import type * as TreeFile from "../../TreeFile.js"
import type * as Edge from "../schema.js"
import * as Parked from "../supervisor/parked.js"
import * as Spec from "../supervisor/spec.js"
import { formOf } from "./fileSchema.js"

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** What a directory child's configuration says about the tree; what the directory decides is not known yet. */
const placeholderConfig = (config: unknown): unknown => {
  if (!isRecord(config)) return config
  const { agentDir: _dir, agentName, cacheDir: _cache, callbackFunction: _fn, installTimeout: _t, ...rest } = config
  // Its name is the agent's own (what the store and the logs know it by, and what namesakes share); one that is not
  // a name is the file's schema's to report, at agentName
  const named = typeof agentName === "string" && AGENT_NAME.test(agentName)
  return { ...rest, name: named ? agentName : "directory-agent", command: "directory" }
}

/** What a callback child's configuration says about the tree; the adapter's command line is made when it starts. */
const callbackConfig = (config: unknown): unknown => {
  if (!isRecord(config)) return config
  const { file: _file, function: _fn, interpreter: _i, language: _l, ...rest } = config
  return { ...rest, command: "callback" }
}

/** A pool's members' configuration, in whichever form the file writes it, as what it says about the tree. */
const memberConfig = (config: unknown): unknown => {
  switch (formOf(config)) {
    case "callback":
      return callbackConfig(config)
    case "directory":
      return placeholderConfig(config)
    case "agent":
      return config
  }
}

/**
 * A child of the file as the spec it will be. One of unknown type gets no tag: the tree's decoding reports it, and
 * the file schema's own problem at its `type` is the one kept.
 */
const toSpec = (child: unknown): unknown => {
  if (!isRecord(child)) return child
  const { type, ...rest } = child
  switch (type) {
    case "agent":
      return { ...rest, _tag: "Agent" }
    case "callback":
      return { ...rest, _tag: "Agent", config: callbackConfig(rest.config) }
    case "directory":
      return { ...rest, _tag: "Agent", config: placeholderConfig(rest.config) }
    case "pool":
      return { ...rest, _tag: "Pool", config: memberConfig(rest.config) }
    case "supervisor":
      return { ...rest, _tag: "Supervisor", children: toSpecs(rest.children) }
    default:
      return rest
  }
}

const toSpecs = (children: unknown): unknown => Array.isArray(children) ? children.map(toSpec) : children

/**
 * The tree's decoding of `file` (a parsed file, or a checked one), with what it logs kept in `logged`. Its `topics`
 * are left to the file's schema, which checks each setting as the tree would (`retry` is data in a file, a
 * `Schedule` in the options).
 */
const decode = (file: unknown, logged: Array<string>) => {
  const root = isRecord(file) ? { ...file, topics: undefined, children: toSpecs(file.children) } : {}
  const keep = Logger.make(({ message }) => {
    logged.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  return Spec.decodeRoot(root as any, false).pipe(
    Effect.locally(FiberRef.currentLoggers, HashSet.make(keep)),
    // Every child that would be parked, where a tree's log names ten
    Effect.locally(Parked.warnedChildren, Infinity),
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )
}

/**
 * Every problem the tree's decoding finds in `file` (a parsed file, references replaced), each with its path. The
 * warnings (a child that would be parked rather than escalate, agents of one name) are left to
 * {@link treeWarnings}, and to the start of the tree, which logs them.
 */
export const treeProblems = (file: unknown): Effect.Effect<ReadonlyArray<Edge.Problem>> =>
  decode(file, []).pipe(
    Effect.either,
    Effect.map(Either.match({ onLeft: (error) => error.problems, onRight: () => [] }))
  )

/** What `Supervisor.make` warns of when `file`'s tree starts: children that would be parked, agents of one name. */
export const treeWarnings = (file: TreeFile.TreeFile): Effect.Effect<ReadonlyArray<string>> =>
  Effect.suspend(() => {
    const logged: Array<string> = []
    return decode(file, logged).pipe(Effect.ignore, Effect.as(logged))
  })

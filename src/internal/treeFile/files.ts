/**
 * What a tree file names on disk for the library itself to run or read when the tree starts, there when the file is
 * read: a callback agent's `file` (a pool's members' in that form too), a directory agent's `agentDir`, and every
 * `cwd` the file sets (relative to the file's directory, as `paths.ts` resolves them; a callback's `file` relative
 * to its `cwd`). A problem names the path as written and where it was looked for:
 * `children[0].config.file: no file agents/nope.mjs (looked for /srv/app/agents/nope.mjs)`.
 *
 * Checked on the file as written (references replaced), alongside the file's other checks, only where the file is
 * read from disk (`load`: what `validate` and `up` read it with); `parse` of a text checks none, its tree may be
 * another machine's. Not checked: a command (the spawn finds the program, on the agent's PATH or from its `cwd`, and
 * says why it could not), a file a program reads itself (a script in `args`), a Python module (Python's to find),
 * what the library makes when it is missing (`logs.dir`, `cacheDir`, a SQLite file) or waits for (`watch.paths`),
 * and a directory agent's contents, which only its resolution at start tells.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import type * as Edge from "../schema.js"
import { type Form, formOf } from "./fileSchema.js"
import { fieldOf } from "./problems.js"

type Place = ReadonlyArray<PropertyKey>

/** What is looked for: a file the library runs or reads, or a directory an agent runs in or is found in. */
type Kind = "file" | "directory"

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** A path as a file writes one; anything else is the file schema's problem, not this check's. */
const written = (value: unknown): string | undefined => typeof value === "string" && value !== "" ? value : undefined

/**
 * Why `absolute` (`path` as written) is not the `kind` the library needs there, or `undefined` when it is: missing,
 * of the other kind, or (a file) not readable.
 */
const lookFor = (
  fs: FileSystem.FileSystem,
  path: string,
  absolute: string,
  kind: Kind
): Effect.Effect<string | undefined> => {
  const looked = `(looked for ${absolute})`
  const cannotRead = (why: string) => `cannot read ${path}: ${why} ${looked}`
  return fs.stat(absolute).pipe(
    Effect.flatMap((info): Effect.Effect<string | undefined> => {
      if (info.type === "Directory" && kind === "file") {
        return Effect.succeed(`${path} is a directory, not a file ${looked}`)
      }
      if (info.type === "File" && kind === "directory") {
        return Effect.succeed(`${path} is a file, not a directory ${looked}`)
      }
      if (info.type !== "File" && info.type !== "Directory") return Effect.succeed(`${path} is not a ${kind} ${looked}`)
      if (kind === "directory") return Effect.succeed(undefined)
      return fs.access(absolute, { readable: true }).pipe(
        Effect.as(undefined),
        Effect.catchAll(() => Effect.succeed(cannotRead("permission denied")))
      )
    }),
    Effect.catchAll((error) => {
      // ENOTDIR (a file where the path needs a directory) is a path that leads nowhere too.
      const missing = error._tag === "SystemError" &&
        (error.reason === "NotFound" || (error.reason === "BadResource" && error.description?.includes("ENOTDIR")))
      if (missing) return Effect.succeed(`no ${kind} ${path} ${looked}`)
      if (error._tag === "SystemError" && error.reason === "PermissionDenied") {
        return Effect.succeed(cannotRead("permission denied"))
      }
      return Effect.succeed(
        cannotRead(error._tag === "SystemError" ? error.description ?? error.reason : error.message)
      )
    })
  )
}

/**
 * The file a callback's `file` names, as its adapter reads it: without `function`, the adapter takes a trailing
 * `:name` as the function's (`agents/classify.mjs:classify`); a Python `file` that is no path (no `.py`, no slash)
 * is a module, `undefined` here.
 */
const callbackFile = (language: unknown, file: string, fn: unknown): string | undefined => {
  switch (language) {
    case "node":
      // As the Node adapter splits its target (`src/Adapter/internal/load.ts`).
      return fn === undefined ? /^(.+\.\w+):([^/\\:]+)$/.exec(file)?.[1] ?? file : file
    case "python": {
      // As the Python adapter splits its target (`parse_target`, `_is_path`).
      const colon = file.lastIndexOf(":")
      const tail = file.slice(colon + 1)
      const named = fn === undefined && colon > 0 && tail !== "" &&
        tail.split(".").every((part) => /^[\p{L}_][\p{L}\p{N}_]*$/u.test(part))
      const target = named ? file.slice(0, colon) : file
      return target.endsWith(".py") || target.includes("/") || target.includes("\\") ? target : undefined
    }
    default:
      return undefined
  }
}

/** Every problem of what a child's `config`, written in `form`, names on disk; `at` is the config's place. */
const configProblems = Effect.fnUntraced(function*(config: unknown, form: Form, at: Place, dir: string) {
  if (!isRecord(config)) return []
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const problems: Array<Edge.Problem> = []
  /** Checks the path `value` of `key`, relative to `from`; whether it is there. */
  const check = Effect.fnUntraced(function*(key: string, value: string, from: string, kind: Kind) {
    const rule = yield* lookFor(fs, value, path.resolve(from, value), kind)
    if (rule !== undefined) problems.push({ field: fieldOf([...at, key]), rule })
    return rule === undefined
  })
  const cwd = written(config.cwd)
  // The agent runs in its cwd (the file's directory when it sets none), which the file's paths start from.
  const cwdThere = cwd === undefined ? true : yield* check("cwd", cwd, dir, "directory")
  switch (form) {
    case "agent":
      break
    case "callback": {
      const file = written(config.file)
      const target = file === undefined ? undefined : callbackFile(config.language, file, config.function)
      // A file in a cwd that is not there is not looked for: the cwd's problem is the one to fix.
      if (target !== undefined && cwdThere) yield* check("file", target, path.resolve(dir, cwd ?? "."), "file")
      break
    }
    case "directory": {
      const agentDir = written(config.agentDir)
      if (agentDir !== undefined) yield* check("agentDir", agentDir, dir, "directory")
      break
    }
  }
  return problems
})

/** Every problem of what `children` (at `at`) name on disk, in their order. */
const childrenProblems = (
  children: unknown,
  at: Place,
  dir: string
): Effect.Effect<Array<Edge.Problem>, never, FileSystem.FileSystem | Path.Path> =>
  !Array.isArray(children) ? Effect.succeed([]) : Effect.map(
    Effect.forEach(children, (child: unknown, i) => {
      const place = [...at, "children", i]
      if (!isRecord(child)) return Effect.succeed([])
      switch (child.type) {
        case "agent":
        case "callback":
        case "directory":
          return configProblems(child.config, child.type, [...place, "config"], dir)
        case "pool":
          return configProblems(child.config, formOf(child.config), [...place, "config"], dir)
        case "supervisor":
          return childrenProblems(child.children, place, dir)
        default:
          return Effect.succeed([])
      }
    }),
    (each) => each.flat()
  )

/**
 * Every problem of what `file` (a parsed file, references replaced, its relative paths as written) names on disk,
 * its relative paths from `dir`, the file's directory.
 */
export const fileProblems = (
  file: unknown,
  dir: string
): Effect.Effect<ReadonlyArray<Edge.Problem>, never, FileSystem.FileSystem | Path.Path> =>
  isRecord(file) ? childrenProblems(file.children, [], dir) : Effect.succeed([])

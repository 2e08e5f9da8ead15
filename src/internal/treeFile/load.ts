/**
 * A tree file read from disk: its format from its extension, its relative paths from its directory, and what it
 * names on disk for the tree's start there (`files.ts`). A file that cannot be read is a `ConfigError` naming the
 * path as given and why, never a platform error.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import type { ConfigError } from "../../Errors.js"
import type * as TreeFile from "../../TreeFile.js"
import * as Edge from "../schema.js"
import { parseSalvaging, parseWith } from "./decode.js"
import { fileProblems } from "./files.js"

const FORMATS: Record<string, TreeFile.Format> = { ".yaml": "yaml", ".yml": "yaml", ".json": "json" }

/** Why a file could not be read, in words. */
const unreadable = (reason: string, description: string | undefined): string => {
  switch (reason) {
    case "NotFound":
      return "no such file: check the path (relative paths start from the working directory)"
    case "PermissionDenied":
      return "cannot be read: permission denied"
    default:
      return `cannot be read${description !== undefined ? `: ${description}` : ""}`
  }
}

/** A file's text and how to parse it: its format, its directory, its name for messages. */
const readFile = (file: string, options?: TreeFile.LoadOptions) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const absolute = path.resolve(file)
    const format = FORMATS[path.extname(file).toLowerCase()]
    if (format === undefined) {
      return yield* Effect.fail(Edge.configError([{
        field: file,
        rule: "must end in .yaml, .yml or .json: the format is read from the extension"
      }]))
    }
    const text = yield* fs.readFileString(absolute).pipe(
      Effect.mapError((error) =>
        Edge.configError([{
          field: file,
          rule: error._tag === "SystemError"
            ? unreadable(error.reason, error.description)
            : `cannot be read: ${error.message}`,
          value: absolute
        }])
      )
    )
    const dir = path.dirname(absolute)
    const parseOptions: TreeFile.ParseOptions = {
      format,
      dir,
      source: file,
      ...(options?.env !== undefined ? { env: options.env } : {})
    }
    return { text, parseOptions, more: (parsed: unknown) => fileProblems(parsed, dir) }
  })

/** See `TreeFile.load`. */
export const load: (
  file: string,
  options?: TreeFile.LoadOptions
) => Effect.Effect<TreeFile.TreeFile, ConfigError, FileSystem.FileSystem | Path.Path> = Effect.fn("TreeFile.load")(
  function*(file: string, options?: TreeFile.LoadOptions) {
    const { more, parseOptions, text } = yield* readFile(file, options)
    return yield* parseWith(text, parseOptions, more)
  }
)

/** `load` for `validate`: every problem of the file, and what is left of it to check further (`parseSalvaging`). */
export const loadSalvaging = (file: string, options?: TreeFile.LoadOptions) =>
  Effect.flatMap(readFile(file, options), ({ more, parseOptions, text }) => parseSalvaging(text, parseOptions, more))

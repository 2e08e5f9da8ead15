/**
 * Reading an agent's manifests: `package.json` (its entry and dependencies), and for Python `requirements.txt`,
 * else `pyproject.toml`'s `[project] dependencies`. A manifest that cannot be read or makes no sense is an
 * `agentDir` `ConfigError` naming the file, never a throw.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { parse, TomlError } from "smol-toml"
import { agentDirError } from "./errors.js"

/** `package.json` of `dir`, which must hold a JSON object. @internal */
export const readPackageJson = Effect.fnUntraced(function*(dir: string) {
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
  if (!isTable(parsed)) return yield* agentDirError(dir, "package.json does not hold a JSON object")
  return parsed
})

/** A Python agent's dependencies, as pip takes them. @internal */
export interface PythonDependencies {
  /** The manifest, for messages. */
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

/**
 * The dependencies of the Python agent in `dir`: `requirements.txt` when there is one, else `pyproject.toml`'s
 * `[project] dependencies`; none when neither lists any.
 *
 * @internal
 */
export const pythonDependencies = Effect.fnUntraced(function*(dir: string) {
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
  const dependencies = yield* Either.mapLeft(projectDependencies(pyprojectText.value), (why) => agentDirError(dir, why))
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

const isTable = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * `[project] dependencies` of a pyproject.toml: an empty list when absent; on the left, what is wrong with the
 * file (not TOML, or the key is not an array of strings), worded for the `agentDir` error.
 */
const projectDependencies = (text: string): Either.Either<Array<string>, string> => {
  let document: Record<string, unknown>
  try {
    document = parse(text)
  } catch (error) {
    return Either.left(`pyproject.toml is not valid TOML: ${tomlProblem(error)}`)
  }
  const project = document.project
  if (project === undefined) return Either.right([])
  if (!isTable(project)) return Either.left("pyproject.toml's project must be a table ([project])")
  const dependencies = project.dependencies
  if (dependencies === undefined) return Either.right([])
  if (!Array.isArray(dependencies) || !dependencies.every((dependency) => typeof dependency === "string")) {
    return Either.left("pyproject.toml's [project] dependencies must be an array of strings")
  }
  return Either.right(dependencies)
}

/** smol-toml's message is several lines with a code excerpt: its first line and the position say enough here. */
const tomlProblem = (error: unknown): string => {
  if (!(error instanceof TomlError)) return String(error)
  const [first] = error.message.split("\n")
  return `${first.replace(/^Invalid TOML document: /, "")} (line ${error.line}, column ${error.column})`
}

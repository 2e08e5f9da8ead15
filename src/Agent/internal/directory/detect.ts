/**
 * What kind of agent a directory holds, and its entry file. In this order: `callback.py` makes a Python agent;
 * else `package.json` (its `main`, default `index.js`) or `index.js` / `index.mjs` / `index.cjs` a Node agent;
 * else exactly one top-level `.py` file a Python agent. A stray helper script therefore never turns a Node project
 * into a Python one.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import { agentDirError } from "./errors.js"
import { readPackageJson } from "./manifest.js"

const NODE_INDEXES = ["index.js", "index.mjs", "index.cjs"]

/** The language of an agent directory and its entry file, relative to the directory. @internal */
export type Detected =
  | { readonly language: "python"; readonly entry: string }
  | { readonly language: "node"; readonly entry: string; readonly packageJson: Record<string, unknown> | undefined }

const listed = (names: ReadonlyArray<string>) =>
  names.length <= 10 ? names.join(", ") : `${names.slice(0, 10).join(", ")} and ${names.length - 10} more`

const isFileAt = (fs: FileSystem.FileSystem, file: string) =>
  fs.stat(file).pipe(
    Effect.map((stat) => stat.type === "File"),
    Effect.orElseSucceed(() => false)
  )

/** Detects the agent in `dir` (an absolute path); a directory that holds none is an `agentDir` error. @internal */
export const detect = Effect.fnUntraced(function*(dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const info = yield* fs.stat(dir).pipe(
    Effect.mapError((error) =>
      agentDirError(
        dir,
        error._tag === "SystemError" && error.reason === "NotFound"
          ? "nothing exists at this path"
          : `it cannot be read: ${error.message}`
      )
    )
  )
  if (info.type !== "Directory") return yield* agentDirError(dir, `it is a ${info.type.toLowerCase()}, not a directory`)
  const names = (yield* fs.readDirectory(dir).pipe(
    Effect.mapError((error) => agentDirError(dir, `it cannot be listed: ${error.message}`))
  )).sort()
  if (names.length === 0) return yield* agentDirError(dir, "the directory is empty")
  const files = yield* Effect.filter(names, (name) => isFileAt(fs, path.join(dir, name)))

  if (files.includes("callback.py")) return { language: "python", entry: "callback.py" } satisfies Detected
  if (files.includes("package.json")) {
    const packageJson = yield* readPackageJson(dir)
    return { language: "node", entry: yield* nodeEntry(dir, packageJson, files), packageJson } satisfies Detected
  }
  const index = NODE_INDEXES.find((name) => files.includes(name))
  if (index !== undefined) return { language: "node", entry: index, packageJson: undefined } satisfies Detected
  const python = files.filter((name) => name.endsWith(".py"))
  if (python.length === 1) return { language: "python", entry: python[0] } satisfies Detected
  if (python.length > 1) {
    return yield* agentDirError(
      dir,
      `it holds several .py files (${listed(python)}) and no callback.py: name the one with the callback callback.py`
    )
  }
  return yield* agentDirError(dir, `it holds neither, only ${listed(names)}`)
})

/** `main` as Node's `require` would find it (extension and `/index.js` optional), but never outside the dir. */
const nodeEntry = Effect.fnUntraced(function*(
  dir: string,
  packageJson: Record<string, unknown>,
  files: ReadonlyArray<string>
) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const main = packageJson.main
  if (main === undefined) {
    const index = NODE_INDEXES.find((name) => files.includes(name))
    if (index !== undefined) return index
    return yield* agentDirError(dir, "package.json names no main and there is no index.js, index.mjs or index.cjs")
  }
  if (typeof main !== "string" || main.length === 0) {
    return yield* agentDirError(dir, `package.json's main must be a file name, not ${JSON.stringify(main)}`)
  }
  const base = path.resolve(dir, main)
  const relative = path.relative(dir, base)
  if (relative.startsWith("..") || path.isAbsolute(relative)) {
    return yield* agentDirError(dir, `package.json's main (${main}) points outside the directory`)
  }
  for (const candidate of [base, `${base}.js`, `${base}.mjs`, `${base}.cjs`, path.join(base, "index.js")]) {
    if (yield* isFileAt(fs, candidate)) return path.relative(dir, candidate)
  }
  return yield* agentDirError(dir, `package.json's main (${main}) names no existing file`)
})

/**
 * Loading the user's module and finding its function: `path[:exportName]`, the `default` export or
 * `handleRequest` when no name is given, CommonJS's `module.exports` too; a module that fails to load exits 2, a
 * missing function exits 3 with the names of the functions it does export (with `--check`, as a `check` line on
 * stdout instead of a log line).
 *
 * @internal
 */
import { statSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { describeError, type ErrorInfo, exit, log, send } from "./output.js"
import type { Callback } from "./tasks.js"

/** Exit code when the module cannot be loaded or the command line is wrong. */
const EXIT_LOAD_FAILED = 2

/** Exit code when the module loads but exports no such function. */
const EXIT_NOT_FOUND = 3

/**
 * The usage line, shown with a command-line error.
 *
 * @internal
 */
export const USAGE = "usage: node-adapter path/to/module.(js|mjs|cjs)[:exportName] [--check]"

/**
 * Splits `path[:exportName]`; a colon is a separator only after a file extension (so not `C:\` nor `a:b/`). A
 * target that ends in the colon has the export name `""` (`loadCallback` says so).
 */
const parseTarget = (target: string): { readonly file: string; readonly exportName: string | undefined } => {
  const match = /^(.+\.\w+):([^/\\:]*)$/.exec(target)
  return match === null ? { file: target, exportName: undefined } : { file: match[1], exportName: match[2] }
}

/**
 * Why `path` (`file` as given) is no module file, or `undefined`: missing, or a directory. Said plainly, without the
 * loader's stack (a module the file imports that is missing still reports the import's error and stack).
 */
const notAFile = (file: string, path: string): string | undefined => {
  const shown = file === path ? path : `${file} (${path})`
  try {
    return statSync(path).isDirectory()
      ? `${shown} is a directory; name the module file that holds the callback`
      : undefined
  } catch (error) {
    return (error as { readonly code?: unknown }).code === "ENOENT" ? `no such file: ${shown}` : undefined
  }
}

/** A CommonJS module's `module.exports` object (also an ESM default export that is an object). */
const defaultObject = (namespace: Record<string, unknown>): Record<string, unknown> | undefined => {
  const value = namespace.default
  return typeof value === "object" && value !== null ? value as Record<string, unknown> : undefined
}

/** Looks an exported function up; for CommonJS also on `module.exports`, which Node may not expose by name. */
const lookup = (namespace: Record<string, unknown>, name: string): Callback | undefined => {
  const value = namespace[name]
  if (typeof value === "function") return value as Callback
  const property = defaultObject(namespace)?.[name]
  return typeof property === "function" ? property as Callback : undefined
}

/** The sorted names of the exported functions, for a message that says what could have been meant. */
const exportedFunctions = (namespace: Record<string, unknown>): Array<string> => {
  const names = new Set<string>()
  for (const [name, value] of Object.entries(namespace)) {
    if (typeof value === "function") names.add(name)
  }
  const object = defaultObject(namespace)
  if (object !== undefined) {
    for (const [name, value] of Object.entries(object)) {
      if (typeof value === "function") names.add(name)
    }
  }
  return [...names].sort()
}

/** The adapter's own directory (`Adapter/`, with `internal/` under it), as its frames in a stack name it. */
const ADAPTER_DIR = new URL("..", import.meta.url).href

/**
 * A load failure's stack without the adapter's frames nor Node's own module loader's (`node:internal/...`): what is
 * left is the user's, as the Python adapter leaves its traceback.
 *
 * @internal
 */
export const userFrames = (stack: string): string =>
  stack.split("\n").filter((line) =>
    !/^\s+at /.test(line) || !(line.includes(ADAPTER_DIR) || line.includes("node:internal/"))
  ).join("\n")

/**
 * Reports a module that could not be loaded (or a wrong command line) and exits 2; its stack without the
 * adapter's own frames (`userFrames`).
 *
 * @internal
 */
export const loadFailed = (check: boolean, error: ErrorInfo, what: string): void => {
  const info = error.stack === undefined ? error : { ...error, stack: userFrames(error.stack) }
  if (check) {
    send(JSON.stringify({ type: "check", ok: false, error: "load_failed", message: info.message, stack: info.stack }))
  } else {
    log(`${what}: ${info.stack ?? info.message}`)
  }
  exit(EXIT_LOAD_FAILED)
}

/**
 * Imports the module `target` names (`path[:exportName]`, the path relative to the working directory) and finds
 * its function; when it cannot, reports why, starts the exit and answers `undefined`.
 *
 * @internal
 */
export const loadCallback = async (target: string, check: boolean): Promise<Callback | undefined> => {
  const { exportName, file } = parseTarget(target)
  const path = resolve(process.cwd(), file)
  const notAModule = notAFile(file, path)
  if (notAModule !== undefined) {
    loadFailed(check, { message: notAModule, type: "Error" }, `cannot load ${file}`)
    return undefined
  }
  let namespace: Record<string, unknown>
  try {
    namespace = await import(pathToFileURL(path).href) as Record<string, unknown>
  } catch (error) {
    loadFailed(check, describeError(error), `cannot load ${path}`)
    return undefined
  }
  // An empty name is looked up as any other: no export has it, and the message says why
  const name = exportName ?? "handleRequest"
  const found = exportName === undefined && typeof namespace.default === "function" ?
    namespace.default as Callback :
    lookup(namespace, name)
  if (found === undefined) {
    const functions = exportedFunctions(namespace)
    if (check) {
      send(JSON.stringify({ type: "check", ok: false, error: "callback_not_found", function: name, functions }))
    } else {
      const wanted = exportName === undefined ? `a default export or "handleRequest"` : `"${exportName}"`
      const listed = functions.length === 0 ? "none" : functions.join(", ")
      log(
        exportName === "" ?
          `"${target}" names no export after its ':' (leave the ':' out for the default export or ` +
          `"handleRequest"); exported functions: ${listed}.` :
          `no function ${wanted} in ${path}; exported functions: ${listed}. Name one with ${file}:exportName.`
      )
    }
    exit(EXIT_NOT_FOUND)
  }
  return found
}

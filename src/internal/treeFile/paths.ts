/**
 * Relative paths in a file are relative to the file's directory, wherever the program runs from: `logs.dir`, a
 * SQLite store's file and a cluster's, an agent's and a callback agent's `cwd` (the file's directory when it sets
 * none), a directory agent's `agentDir`, `cwd` and `cacheDir` (a pool's config as the agent child's of its form), and
 * every child's `watch.paths`. Command lines are left as written: the agent's own working directory reads them.
 *
 * @internal
 */
import type * as Path from "@effect/platform/Path"
import type * as Directory from "../../Agent/Directory.js"
import type * as TreeFile from "../../TreeFile.js"
import { type Form, formOf } from "./fileSchema.js"

/** A SQLite filename that names a file: not a database in memory, not SQLite's own `file:` URI. */
const isFile = (filename: string) => filename !== ":memory:" && filename !== "" && !filename.startsWith("file:")

/** `file`'s paths resolved against `dir`. */
export const resolveAll = (file: TreeFile.TreeFile, dir: string, path: Path.Path): TreeFile.TreeFile => {
  const at = (p: string) => path.resolve(dir, p)
  /** A child's `watch.paths`, resolved. */
  const watched = <C extends TreeFile.Child>(c: C): C =>
    c.type === "supervisor" || c.watch === undefined ? c : { ...c, watch: { ...c.watch, paths: c.watch.paths.map(at) } }
  /** A configuration's paths, in the form a child of `form`'s type writes it. */
  const config = <C extends TreeFile.PoolChild["config"]>(form: Form, c: C): C => {
    if (form !== "directory") return { ...c, cwd: at(c.cwd ?? ".") }
    const { agentDir, cacheDir, cwd } = c as Directory.DirectoryOptions
    return {
      ...c,
      agentDir: at(agentDir),
      ...(cwd !== undefined ? { cwd: at(cwd) } : {}),
      ...(cacheDir !== undefined ? { cacheDir: at(cacheDir) } : {})
    }
  }
  const child = (c: TreeFile.Child): TreeFile.Child => {
    switch (c.type) {
      case "agent":
        return { ...watched(c), config: config("agent", c.config) }
      case "callback":
        return { ...watched(c), config: config("callback", c.config) }
      case "directory":
        return { ...watched(c), config: config("directory", c.config) }
      case "pool":
        return { ...watched(c), config: config(formOf(c.config), c.config) }
      case "supervisor":
        return c.children === undefined ? c : { ...c, children: c.children.map(child) }
    }
  }
  const store = file.store.type === "sqlite" && file.store.filename !== ":memory:"
    ? { ...file.store, filename: at(file.store.filename) }
    : file.store
  const logs = file.logs === undefined ? {} : { logs: { ...file.logs, dir: at(file.logs.dir) } }
  const database = file.cluster?.database
  const cluster = file.cluster === undefined || database?.type !== "sqlite" || !isFile(database.filename)
    ? {}
    : { cluster: { ...file.cluster, database: { ...database, filename: at(database.filename) } } }
  return { ...file, ...logs, ...cluster, store, children: file.children.map(child) }
}

/**
 * `mkdir -p` that always ends: the SQL stores' file directories, log files' directories, the install cache.
 *
 * Node's `fs.mkdirSync(dir, { recursive: true })` (and `fs.mkdir`'s, Node 20) loops forever when `mkdir` of a
 * missing directory says `ENOENT` although its parent is there: it steps back to the parent, finds it (`EEXIST`, a
 * directory), steps forward and meets `ENOENT` again. Pseudo filesystems answer so (`/proc/x`, `/proc/self/x`,
 * `/proc/sys/x`: procfs creates nothing), and any other filesystem may. Here each directory is made at most once,
 * parents first: one that still cannot be made, its parent being there, fails with what `mkdir` said.
 *
 * @internal
 */
import { SystemError, type SystemErrorReason } from "@effect/platform/Error"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { messageOf } from "./standalone/messageOf.js"

const codeOf = (error: unknown): unknown =>
  typeof error === "object" && error !== null && "code" in error ? error.code : undefined

const isDirectory = (dir: string): boolean => {
  try {
    return fs.statSync(dir).isDirectory()
  } catch {
    return false
  }
}

/** Makes `dir`, or finds it there already as a directory; throws `mkdir`'s error (with its `code`) otherwise. */
const makeOne = (dir: string): void => {
  try {
    fs.mkdirSync(dir)
  } catch (error) {
    // Made meanwhile by someone else, or there already: fine when it is a directory (not a file, a link to nowhere),
    // whatever `mkdir` said (EEXIST; EISDIR, EACCES or EROFS on some systems for a directory that is there), as
    // `mkdir -p` has it.
    if (isDirectory(dir)) return
    throw error
  }
}

/**
 * Creates `dir` and its missing parents, as `mkdir -p` does, with a number of `mkdir` calls bounded by the path's
 * depth; one that exists is fine. Throws Node's error (`ENOENT`, `ENOTDIR`, `EEXIST`, `EACCES`...) for the
 * directory that could not be made.
 */
export const makeDirectorySync = (dir: string): void => {
  // Up: the missing directories, the deepest first, until one exists (or is made).
  const missing: Array<string> = []
  let current = path.resolve(dir)
  for (;;) {
    try {
      makeOne(current)
      break
    } catch (error) {
      const parent = path.dirname(current)
      if (codeOf(error) !== "ENOENT" || parent === current) throw error
      missing.push(current)
      current = parent
    }
  }
  // Down: each parent is there now, so whatever `mkdir` says is final.
  for (let i = missing.length - 1; i >= 0; i--) makeOne(missing[i])
}

const reasons: Record<string, SystemErrorReason> = {
  ENOENT: "NotFound",
  ENOTDIR: "NotFound",
  EACCES: "PermissionDenied",
  EPERM: "PermissionDenied",
  EROFS: "PermissionDenied",
  EEXIST: "AlreadyExists",
  EBUSY: "Busy"
}

/**
 * {@link makeDirectorySync} for a `FileSystem` user: fails with the platform's `SystemError` (as
 * `FileSystem.makeDirectory` would), Node's message in its `description`.
 */
export const makeDirectory = (dir: string): Effect.Effect<void, SystemError> =>
  Effect.try({
    try: () => makeDirectorySync(dir),
    catch: (error) => {
      const code = String(codeOf(error) ?? "")
      return new SystemError({
        reason: reasons[code] ?? "Unknown",
        module: "FileSystem",
        method: "makeDirectory",
        pathOrDescriptor: dir,
        syscall: "mkdir",
        description: messageOf(error),
        cause: error
      })
    }
  })

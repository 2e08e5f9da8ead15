/**
 * Whether an agent run as another user (`user` / `group`) can reach a file the supervisor prepared for it: the
 * kernel's permission check (owner, then group, then others; root passes) done ahead, for every directory on the
 * way and the file itself, so that an unreadable adapter or dependency cache is one clear error at start instead of
 * an import failure in a restart loop.
 *
 * Only the user's id and its one group count: Node's spawn drops the supplementary groups (see `identity.ts`). ACLs
 * are not read; where one grants what the mode bits refuse, the answer errs on the side of refusing.
 *
 * @internal
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** The ids an agent runs with. @internal */
export interface Who {
  readonly uid: number
  readonly gid: number
}

/** A file to read, a program to run (execute), or a directory to list and read from (read and search). @internal */
export type Need = "file" | "program" | "directory"

const READ = 4
const SEARCH = 1

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0")

/** The permission bits that apply to `who` for a file of `stat`. */
const bitsFor = (who: Who, stat: fs.Stats): number =>
  stat.uid === who.uid ? (stat.mode >> 6) & 7 : stat.gid === who.gid ? (stat.mode >> 3) & 7 : stat.mode & 7

const refused = (who: Who, file: string, stat: fs.Stats, what: string) =>
  `uid ${who.uid} (gid ${who.gid}) may not ${what} ${file} (mode ${octal(stat.mode)}, owner ${stat.uid}:${stat.gid})`

/** Whether `file` starts with `#!` (the kernel runs its interpreter, which reads it). */
const isScript = (file: string): boolean => {
  try {
    const fd = fs.openSync(file, "r")
    try {
      const head = Buffer.alloc(2)
      return fs.readSync(fd, head, 0, 2, 0) === 2 && head.toString("latin1") === "#!"
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    return false
  }
}

/**
 * Why `who` cannot reach `target` as `need` says, or `undefined` when it can. Symbolic links are followed first
 * (the kernel checks the directories of the link's target). A path that does not exist is not this check's
 * business: `undefined`.
 *
 * @internal
 */
export const unreachable = (who: Who, target: string, need: Need): string | undefined => {
  if (who.uid === 0) return undefined
  let real: string
  try {
    real = fs.realpathSync(target)
  } catch {
    return undefined
  }
  const parts = real.split(path.sep).filter((part) => part !== "")
  let at: string = path.sep
  for (let i = 0; i <= parts.length; i++) {
    let stat: fs.Stats
    try {
      stat = fs.statSync(at)
    } catch {
      return undefined
    }
    const bits = bitsFor(who, stat)
    const last = i === parts.length
    if (!last && (bits & SEARCH) === 0) return refused(who, at, stat, "enter")
    if (last) {
      if (need === "program") {
        if ((bits & SEARCH) === 0) return refused(who, at, stat, "run")
        // A script is read by its interpreter, as the user.
        if (isScript(at) && (bits & READ) === 0) return refused(who, at, stat, "read (a script)")
        continue
      }
      if ((bits & READ) === 0) return refused(who, at, stat, "read")
      if (need === "directory" && stat.isDirectory() && (bits & SEARCH) === 0) {
        return refused(who, at, stat, "enter")
      }
    }
    if (!last) at = path.join(at, parts[i])
  }
  return undefined
}

/**
 * The file tree of an agent directory: walked once, then copied or fingerprinted from that walk. `node_modules`
 * and `.git` are never part of it: installs are redone in a copy, and history is no part of the agent.
 *
 * @internal
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"

const SKIPPED = new Set(["node_modules", ".git"])
/** Symlink loops would otherwise make the walk endless. */
const MAX_DEPTH = 32

/** A file or directory below the walked one, as a path relative to it. @internal */
export interface TreeEntry {
  readonly relative: string
  readonly directory: boolean
  readonly size: number
  readonly mtime: number
}

/** Files and directories below `dir`, parents first, sorted; `node_modules` and `.git` left out. @internal */
export const walk = (dir: string): Effect.Effect<Array<TreeEntry>, PlatformError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const entries: Array<TreeEntry> = []
    const visit = (relative: string, depth: number): Effect.Effect<void, PlatformError> =>
      Effect.gen(function*() {
        const names = (yield* fs.readDirectory(path.join(dir, relative))).sort()
        for (const name of names) {
          if (SKIPPED.has(name)) continue
          const child = relative === "" ? name : path.join(relative, name)
          // A dangling symlink or a file removed meanwhile is no reason to fail: it cannot be part of the agent.
          const info = yield* fs.stat(path.join(dir, child)).pipe(Effect.option)
          if (Option.isNone(info)) continue
          const directory = info.value.type === "Directory"
          if (!directory && info.value.type !== "File") continue
          entries.push({
            relative: child,
            directory,
            size: Number(info.value.size),
            mtime: Option.match(info.value.mtime, { onNone: () => 0, onSome: (date) => date.getTime() })
          })
          if (directory && depth < MAX_DEPTH) yield* visit(child, depth + 1)
        }
      })
    yield* visit("", 0)
    return entries
  })

/** Names, sizes and modification times: any edit changes it, and no file needs to be read. @internal */
export const fingerprint = (entries: ReadonlyArray<TreeEntry>): string =>
  hash(entries.map((entry) => `${entry.relative}\0${entry.directory ? "d" : entry.size}\0${entry.mtime}`))

/** Recreates the walked `entries` of `from` below `to`. @internal */
export const copyTree = Effect.fnUntraced(function*(entries: ReadonlyArray<TreeEntry>, from: string, to: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  for (const entry of entries) {
    const target = path.join(to, entry.relative)
    if (entry.directory) yield* fs.makeDirectory(target, { recursive: true })
    else yield* fs.copyFile(path.join(from, entry.relative), target)
  }
})

/** A short key for `parts`: each is length-prefixed, so no two different lists hash alike by concatenation. @internal */
export const hash = (parts: ReadonlyArray<string>): string => {
  const digest = createHash("sha256")
  for (const part of parts) digest.update(`${part.length}:${part}`)
  return digest.digest("hex").slice(0, 32)
}

/**
 * The files of one log on disk, as logrotate and PM2's pm2-logrotate keep them: the current file `<name>.log`,
 * and the rotated ones `<name>.log.1` (the newest) to `<name>.log.<keep>` (the oldest).
 *
 * A rotation removes the oldest first, then shifts each one up, then moves the current file to `.1`: at no moment
 * are there more than `keep` rotated files, so the files of a log never hold more than `keep + 1` files' worth.
 * `keep: 0` removes the current file instead (logrotate's `rotate 0`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as path from "node:path"
import * as Disk from "./disk.js"

/** The `n`th rotated file of `file` (`n` from 1, the newest). */
export const rotated = (file: string, n: number): string => `${file}.${n}`

/** Moves the current file to `.1`, each rotated one up by one, and removes the one that would pass `keep`. */
export const rotate = (file: string, keep: number): Effect.Effect<void, Disk.DiskError> =>
  keep === 0 ? Disk.remove(file) : Effect.gen(function*() {
    yield* Disk.remove(rotated(file, keep))
    for (let n = keep - 1; n >= 1; n--) yield* Disk.rename(rotated(file, n), rotated(file, n + 1))
    yield* Disk.rename(file, rotated(file, 1))
  })

/**
 * Removes the rotated files of `file` past `keep` (left by a run that kept more), as pm2-logrotate removes those
 * past its `retain`: the bound on disk holds from the first rotation on.
 */
export const prune = (file: string, keep: number): Effect.Effect<void, Disk.DiskError> =>
  Effect.gen(function*() {
    const base = `${path.basename(file)}.`
    const names = yield* Disk.list(path.dirname(file))
    for (const name of names) {
      if (!name.startsWith(base)) continue
      const suffix = name.slice(base.length)
      if (/^[1-9][0-9]*$/.test(suffix) && Number(suffix) > keep) yield* Disk.remove(path.join(path.dirname(file), name))
    }
  })

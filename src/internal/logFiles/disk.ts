/**
 * The file operations of a log writer, as Effects over Node's callbacks (no promise, no thread blocked): each
 * fails with the errno code and message, never throws. Those that remove or move a file treat one that is not
 * there as done: a rotation over files that were never written, or that someone removed, goes on.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import { makeDirectorySync } from "../makeDirectory.js"

/** A failed file operation: its errno code (`ENOSPC`, `EACCES`, `ENOTDIR`...) and Node's message. */
export interface DiskError {
  readonly code: string
  readonly message: string
}

const fromNode = (error: NodeJS.ErrnoException): DiskError => ({ code: error.code ?? "EIO", message: error.message })

const call = <A>(
  run: (done: (error: NodeJS.ErrnoException | null, value: A) => void) => void
): Effect.Effect<A, DiskError> =>
  Effect.async<A, DiskError>((resume) => {
    try {
      run((error, value) => resume(error === null ? Effect.succeed(value) : Effect.fail(fromNode(error))))
    } catch (error) {
      // Node validates arguments synchronously (a path with a NUL byte): a failure like any other.
      resume(Effect.fail(fromNode(error as NodeJS.ErrnoException)))
    }
  })

const missing = (error: DiskError) => error.code === "ENOENT"

/** Appends `text` to `file`, creating the file (not its directory). */
export const append = (file: string, text: string): Effect.Effect<void, DiskError> =>
  // Created readable by this user only: agents' stderr often carries what others must not read.
  call<void>((done) => fs.appendFile(file, text, { mode: 0o600 }, (error) => done(error, undefined)))

/**
 * Creates `dir` and its parents; one that exists is fine. Not `fs.mkdir(_, { recursive: true })`, which never calls
 * back where procfs refuses (see `makeDirectory.ts`): a few `mkdir` calls, made at once.
 */
export const makeDir = (dir: string): Effect.Effect<void, DiskError> =>
  Effect.try({ try: () => makeDirectorySync(dir), catch: (error) => fromNode(error as NodeJS.ErrnoException) })

/** The size of `file` in bytes, 0 when there is none. */
export const sizeOf = (file: string): Effect.Effect<number, DiskError> =>
  call<number>((done) => fs.stat(file, (error, stats) => done(error, error === null ? stats.size : 0))).pipe(
    Effect.catchIf(missing, () => Effect.succeed(0))
  )

/** Renames `from` to `to`, replacing `to`; nothing to do when `from` is not there. */
export const rename = (from: string, to: string): Effect.Effect<void, DiskError> =>
  call<void>((done) => fs.rename(from, to, (error) => done(error, undefined))).pipe(
    Effect.catchIf(missing, () => Effect.void)
  )

/** Removes `file`; nothing to do when it is not there. */
export const remove = (file: string): Effect.Effect<void, DiskError> =>
  call<void>((done) => fs.unlink(file, (error) => done(error, undefined))).pipe(
    Effect.catchIf(missing, () => Effect.void)
  )

/** The names in `dir`. */
export const list = (dir: string): Effect.Effect<Array<string>, DiskError> =>
  call<Array<string>>((done) => fs.readdir(dir, (error, names) => done(error, names)))

/**
 * The log files open in this process, one writer per file: two agents of the same name (in two subtrees, or two
 * standalone agents) write to one writer, in the order their lines come, instead of two writers rotating one file
 * under each other (each would count only its own bytes, and the bound on disk would not hold).
 *
 * A holder's scope flushes what it offered when it closes; the last one closes the writer. The first holder's
 * settings (`maxBytes`, `keep`) are the file's until then.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import { isolate } from "../wait.js"
import { fileName } from "./fileName.js"
import type { Settings } from "./settings.js"
import * as Writer from "./writer.js"

interface Open {
  readonly writer: Writer.Writer
  holders: number
}

const open = new Map<string, Open>()
/** Files whose last holder is closing them: opening one again waits for that close, and only that one. */
const closing = new Map<string, Deferred.Deferred<void>>()

// Opening and closing in turn, but never held while a writer closes (up to `Writer.CLOSE_TIMEOUT` on a slow disk):
// agents of other files must not wait for it.
const lock = Effect.unsafeMakeSemaphore(1)

/** The absolute path of the current file of `name` in `dir` (resolved against the working directory). */
export const pathOf = (dir: string, name: string): string => path.resolve(dir, fileName(name))

const take = (name: string, settings: Settings): Effect.Effect<Writer.Writer> =>
  Effect.flatMap(
    lock.withPermits(1)(Effect.suspend((): Effect.Effect<Writer.Writer | Deferred.Deferred<void>> => {
      const file = pathOf(settings.dir, name)
      const previous = closing.get(file)
      if (previous !== undefined) return Effect.succeed(previous)
      const held = open.get(file)
      if (held !== undefined) {
        held.holders++
        return Effect.succeed(held.writer)
      }
      return Effect.tap(Writer.make(file, settings), (writer) => {
        open.set(file, { writer, holders: 1 })
      })
    })),
    (taken): Effect.Effect<Writer.Writer> =>
      "offer" in taken ? Effect.succeed(taken) : Effect.zipRight(Deferred.await(taken), take(name, settings))
  )

/**
 * The writer of `name`'s file in `settings.dir`, held until the scope closes. Closing the scope waits until the
 * lines offered before are in the file (at most `Writer.CLOSE_TIMEOUT`), and closes the writer if it was the last
 * holder.
 */
export const acquire = (name: string, settings: Settings): Effect.Effect<Writer.Writer, never, Scope.Scope> =>
  Effect.acquireRelease(
    take(name, settings),
    (writer) =>
      lock.withPermits(1)(Effect.suspend(() => {
        const held = open.get(writer.file)
        if (held === undefined || held.writer !== writer) return Effect.succeed(undefined)
        held.holders--
        if (held.holders > 0) return Effect.succeed(undefined)
        open.delete(writer.file)
        return Effect.tap(Deferred.make<void>(), (done) => Effect.sync(() => closing.set(writer.file, done)))
      })).pipe(
        Effect.flatMap((done) =>
          done === undefined
            // Another holder keeps it open: this one still waits for its own lines.
            ? Effect.asVoid(isolate(Effect.timeoutOption(writer.flush, Writer.CLOSE_TIMEOUT)))
            : writer.close.pipe(
              Effect.ensuring(Effect.suspend(() => {
                closing.delete(writer.file)
                return Deferred.succeed(done, undefined)
              }))
            )
        )
      )
  )

/** How many files are open in this process (for tests: every holder let go, none is). */
export const openFiles = (): number => open.size

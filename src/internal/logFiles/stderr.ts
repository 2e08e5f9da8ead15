/**
 * An agent's stderr in its log file, `<dir>/<agent name>.log` (the name made safe by `fileName.ts`), over all its
 * incarnations: each line as `<ISO time> [pid N] <line>`. The listener runs on the pipe's reader, so it only
 * formats and enqueues; the writer's fiber does the I/O.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { iso } from "./queue.js"
import * as Registry from "./registry.js"
import type { Settings } from "./settings.js"

/** One stderr line as an agent's tail hands it on: the incarnation's pid, the text, when it was read (millis). */
export interface Line {
  readonly pid: number
  readonly line: string
  readonly timestamp: number
}

/** What calls a listener with each stderr line until it is forgotten: an agent's stderr tail. */
export interface Source {
  readonly listen: (listener: (line: Line) => void) => () => void
}

/** `<ISO time> [pid N] <line>`. */
export const format = (line: Line): string => `${iso(line.timestamp)} [pid ${line.pid}] ${line.line}`

/**
 * Writes every line of `source` from now on to `name`'s file until the scope closes; then the lines received
 * are in the file before the close completes (at most `Writer.CLOSE_TIMEOUT`). Add it before whatever stops the
 * agent in the same scope, so that it closes after: the lines of the last shutdown go in too.
 */
export const follow = (source: Source, name: string, settings: Settings): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const writer = yield* Registry.acquire(name, settings)
    yield* Effect.acquireRelease(
      Effect.sync(() => source.listen((line) => writer.offer(format(line)))),
      (forget) => Effect.sync(forget)
    )
  })

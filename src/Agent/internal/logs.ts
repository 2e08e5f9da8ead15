/**
 * Log entries made outside any fiber (in Node's event handlers), run in order, with the incarnation's
 * annotations, by a fiber that exists only while entries wait: an idle agent has none (a fiber per incarnation
 * waiting on a mailbox, before, for the whole life of the process).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"

/** A queue of log entries and the fiber that runs them while there are some. @internal */
export interface Logs {
  /** Hands over an entry; never blocks. */
  readonly log: (effect: Effect.Effect<void>) => void
  /**
   * Waits until the entries handed over so far have run. Entries handed over later (the pipes may still deliver
   * lines: written just before an exit that was reported first, or by a descendant that holds them) each run in
   * a fiber of their own, in the same context.
   */
  readonly end: Effect.Effect<void>
}

/** Logs annotated with `annotations` (the agent's name and pid), run in the caller's context. @internal */
export const make = (annotations: Record<string, unknown>): Effect.Effect<Logs> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    const fork = Runtime.runFork(runtime)
    const annotate = Effect.annotateLogs(annotations)
    let queue: Array<Effect.Effect<void>> = []
    let drainer: Fiber.RuntimeFiber<void> | undefined
    let ended = false
    // Runs what waits, batch by batch, until nothing does; then the fiber ends.
    const drain: Effect.Effect<void> = Effect.suspend(() => {
      if (queue.length === 0) {
        drainer = undefined
        return Effect.void
      }
      const batch = queue
      queue = []
      return Effect.zipRight(Effect.forEach(batch, annotate, { discard: true }), drain)
    })
    return {
      log: (effect) => {
        if (ended) {
          fork(annotate(effect))
          return
        }
        queue.push(effect)
        drainer ??= fork(drain)
      },
      end: Effect.suspend(() => {
        ended = true
        return drainer === undefined ? Effect.void : Fiber.await(drainer).pipe(Effect.asVoid)
      })
    }
  })

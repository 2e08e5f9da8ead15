/**
 * Log entries made outside any fiber (in Node's event handlers), run in order by one fiber of the incarnation,
 * with the incarnation's annotations.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Mailbox from "effect/Mailbox"
import * as Runtime from "effect/Runtime"

/** A queue of log entries and the fiber that runs them. @internal */
export interface Logs {
  /** Hands over an entry; never blocks. */
  readonly log: (effect: Effect.Effect<void>) => void
  /** Runs the entries in order until `end`; fork it in the owner's scope. */
  readonly run: Effect.Effect<void>
  /**
   * Ends `run` once the entries handed over so far have run. Entries handed over later (the pipes may still
   * deliver lines: written just before an exit that was reported first, or by a descendant that holds them)
   * each run in a fiber of their own, in the same context.
   */
  readonly end: Effect.Effect<void>
}

/** Logs annotated with `annotations` (the agent's name and pid). @internal */
export const make = (annotations: Record<string, unknown>): Effect.Effect<Logs> =>
  Effect.gen(function*() {
    const mailbox = yield* Mailbox.make<Effect.Effect<void>>()
    const runtime = yield* Effect.runtime<never>()
    const annotate = Effect.annotateLogs(annotations)
    let ended = false
    const run: Effect.Effect<void> = Effect.flatMap(mailbox.takeAll, ([batch, done]) =>
      Effect.zipRight(
        Effect.forEach(batch, identity, { discard: true }),
        done ? Effect.void : Effect.suspend(() => run)
      ))
    return {
      log: (effect) => {
        if (ended) Runtime.runFork(runtime)(annotate(effect))
        else mailbox.unsafeOffer(effect)
      },
      run: annotate(run),
      end: Effect.suspend(() => {
        ended = true
        return mailbox.end
      })
    }
  })

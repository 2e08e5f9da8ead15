/**
 * The machinery of `RestartPolicy.makeIntensity`, over settings already decoded: OTP's sliding window of restart
 * timestamps (`add_restart`).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import type { Intensity } from "../RestartPolicy.js"

/** An intensity counter: at most `maxRestarts` (a whole number of 0 or more) within `window`. @internal */
export const make = (options: {
  readonly maxRestarts: number
  readonly window: Duration.Duration
}): Effect.Effect<Intensity> =>
  Effect.gen(function*() {
    const windowMillis = Duration.toMillis(options.window)
    const maxRestarts = options.maxRestarts
    // Only the newest maxRestarts + 1 entries can decide "exceeded" (times only grow), so keeping no more bounds
    // memory even with an infinite window or a caller that keeps recording after it escalated.
    const keep = maxRestarts + 1
    const timestamps = yield* Ref.make<ReadonlyArray<number>>([])
    const inWindow = (now: number) => (t: number) => now - t <= windowMillis

    const record = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      return yield* Ref.modify(timestamps, (previous) => {
        const next = [...previous.filter(inWindow(now)), now].slice(-keep)
        return [next.length > maxRestarts, next] as const
      })
    })

    const recent = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      // Prune on read as well, so a quiet supervisor does not hold stale timestamps until its next restart.
      return yield* Ref.modify(timestamps, (previous) => {
        const current = previous.filter(inWindow(now))
        return [current, current] as const
      })
    })

    return { record, recent, reset: Ref.set(timestamps, []) }
  })

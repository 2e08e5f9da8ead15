/**
 * A pool's autoscaling (`autoscale: { min, max, metric, target, interval, coolDown }`, as Kubernetes' horizontal
 * autoscaler sizes a deployment): every `interval` the pool's load is read, the size that would put `target` of it
 * on each member is computed (`ceil(load / target)`, within `min` and `max`), and the pool is scaled to it when that
 * differs and the last change is at least `coolDown` ago. The load is the calls in flight through the pool
 * (`"in-flight"`) or those of them past the members' `maxInFlight` windows, waiting to be sent (`"queue"`).
 *
 * The decision is a pure function of what was read (`decide`), property-tested; the loop runs on the `Clock`.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { repeatUntilStopped } from "../fork.js"
import type { Autoscale } from "./spec.js"

/** What one look at the pool read. */
export interface Reading {
  /** The members now. */
  readonly size: number
  /** Calls in flight through the pool to each member, and each member's `maxInFlight`. */
  readonly members: ReadonlyArray<{ readonly inFlight: number; readonly maxInFlight: number }>
  /** When the pool's size last changed (epoch ms), or `undefined` if never since it started. */
  readonly lastChange: number | undefined
  readonly now: number
}

/** The load `metric` reads. */
export const load = (settings: Pick<Autoscale, "metric">, members: Reading["members"]): number =>
  members.reduce(
    (sum, m) => sum + (settings.metric === "queue" ? Math.max(0, m.inFlight - m.maxInFlight) : m.inFlight),
    0
  )

/**
 * The size to scale to, or `undefined` to leave it; never within `coolDown` of the last change, always within
 * `min` and `max`. `"in-flight"`: `ceil(load / target)` members. `"queue"`: with calls waiting, `ceil(waiting /
 * target)` more members; with none waiting, the size stays while calls are in flight and goes to `min` once the
 * pool is idle (a queue tells when to grow; an idle pool when to shrink).
 */
export const decide = (settings: Autoscale, reading: Reading): number | undefined => {
  const coolDown = Duration.toMillis(settings.coolDown)
  if (reading.lastChange !== undefined && reading.now - reading.lastChange < coolDown) return undefined
  const demand = load(settings, reading.members)
  const busy = reading.members.some((m) => m.inFlight > 0)
  const wanted = settings.metric === "queue"
    ? demand > 0 ? reading.size + Math.ceil(demand / settings.target) : busy ? reading.size : settings.min
    : Math.ceil(demand / settings.target)
  const size = Math.min(settings.max, Math.max(settings.min, wanted))
  return size === reading.size ? undefined : size
}

/**
 * The loop of one pool: reads with `read`, scales with `scale`, every `interval` (on the `Clock`), for as long as
 * it runs (it runs in the pool's scope) and `stopped()` is false (the pool stopping: a round that scaled down may
 * have lost the interruption, `repeatUntilStopped`). A failed scale (a member that does not start) is logged, and
 * counted as a change for the cool-down; so is a scale by hand (`read`'s `scaledByHand`, epoch ms), which holds
 * at least `coolDown`. `scale` is given when the size was decided: a scale by hand since then wins, and it does
 * nothing (it says whether it scaled).
 */
export const run = (
  settings: Autoscale,
  read: () => Omit<Reading, "now" | "lastChange"> & { readonly scaledByHand: number | undefined },
  scale: (size: number, decidedAt: number) => Effect.Effect<boolean, unknown>,
  stopped: () => boolean
): Effect.Effect<void> =>
  Effect.gen(function*() {
    let lastChange: number | undefined
    const step = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const { members, scaledByHand, size: before } = read()
      const last = Math.max(lastChange ?? -Infinity, scaledByHand ?? -Infinity)
      const size = decide(settings, {
        size: before,
        members,
        lastChange: Number.isFinite(last) ? last : undefined,
        now
      })
      if (size === undefined) return
      lastChange = now
      const scaled = yield* scale(size, now).pipe(
        Effect.catchAllCause((cause) =>
          Effect.as(Effect.logWarning(`autoscale: scaling to ${size} failed`, cause), true)
        )
      )
      if (scaled) yield* Effect.logInfo(`autoscale: ${before} -> ${size} members`)
    })
    return yield* repeatUntilStopped(stopped, Effect.zipRight(Effect.sleep(settings.interval), step))
  })

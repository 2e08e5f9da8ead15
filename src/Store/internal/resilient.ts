/**
 * The machinery of `Store.resilient`: every operation bounded by a timeout, its failures counted and logged per
 * outage of the underlying store. Knows nothing of the store's operations: `resilientStore.ts` names them.
 *
 * An operation runs in a fiber of its own (so that a backend that ignores interruption cannot hold its caller),
 * raced against a timer: three fibers and a timer per operation. The store writer's drain, which hands the
 * supervisor's writes to the store one after the other (500 a second in the heartbeat benchmark), is a
 * {@link Runner} instead: in its fiber an operation runs in place, and the writer's one watchdog bounds it (and
 * abandons the fiber for a new one when it does not end in time).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { StoreError } from "../../Errors.js"
import * as StoreMetrics from "../../internal/metrics/store.js"

/**
 * A fiber that runs store operations one at a time and bounds them itself (the store writer's drain). The guard
 * of a resilient store, called in that fiber, runs the operation in place between `begin` and `end`; if the
 * operation is still running at its deadline, the runner runs `onTimeout` (the guard's accounting of a timeout),
 * stops waiting for it (the fiber is abandoned, interrupted in the background, and another takes its place), and
 * `end` then answers false.
 *
 * @internal
 */
export interface Runner {
  /** Whether `fiber` is the one whose operations this runner bounds (fibers it forks are not). */
  readonly runs: (fiber: Fiber.RuntimeFiber<unknown, unknown>) => boolean
  /** An operation begins that must end within `timeoutMillis` (`Clock` time); returns its token. */
  readonly begin: (timeoutMillis: number, onTimeout: Effect.Effect<void>) => number
  /** The operation of `token` ended: true, unless it had timed out first (its outcome is then ignored). */
  readonly end: (token: number) => boolean
}

/** The runner of the current fiber, if it is one (set by the store writer on its drain). @internal */
export const currentRunner: FiberRef.FiberRef<Runner | undefined> = FiberRef.unsafeMake<Runner | undefined>(
  undefined
)

/** The failures of one outage, or of one stretch of it between two log lines. */
interface Tally {
  failed: number
  writes: number
  reads: number
}

/** One outage of one store: from its first failure to the first success of an operation begun after it. */
interface Outage {
  /** `Clock` millis of the first failure. */
  readonly since: number
  /** How many operations had begun when it started: their successes were already on their way, not a recovery. */
  readonly begunBefore: number
  readonly total: Tally
  /** Since the last line logged about it. */
  readonly recent: Tally
  /** `Clock` millis of the last line logged about it. */
  reportedAt: number
}

/** What every `resilient` wrapper over one store shares. */
interface Health {
  begun: number
  outage: Outage | undefined
}

// Per underlying store, not per wrapper: every agent wraps the one store of its supervisor, and an outage is to be
// logged once, not once per agent.
const healthOf = new WeakMap<object, Health>()

const healthFor = (store: object): Health => {
  let health = healthOf.get(store)
  if (health === undefined) {
    health = { begun: 0, outage: undefined }
    healthOf.set(store, health)
  }
  return health
}

const describeCause = (operation: string, cause: Cause.Cause<unknown>): string =>
  Option.match(Cause.failureOption(cause), {
    onNone: () => `${operation} failed: ${Cause.pretty(cause)}`,
    onSome: (error) =>
      error instanceof StoreError
        ? `${error.operation} ${error.reason === "timeout" ? "timed out" : "failed"}: ${error.detail}`
        : `${operation} failed: ${String(error)}`
  })

/** Whether `cause` is a `StoreError` of `reason`. */
const failedFor = (cause: Cause.Cause<unknown>, reason: StoreError["reason"]): boolean =>
  Option.exists(Cause.failureOption(cause), (error) => error instanceof StoreError && error.reason === reason)

const formatMillis = (millis: number): string => Duration.format(Duration.millis(Math.max(0, Math.round(millis))))

const describeTally = (tally: Tally): string =>
  `${tally.failed} operation(s) failed (${tally.writes} write(s) dropped, ${tally.reads} read(s) answered empty)`

/** What `Store.resilient` runs with: its options decoded. */
export interface Settings {
  readonly timeout: Duration.Duration
  readonly summaryIntervalMillis: number
}

/** `Store.resilient`'s defaults: each operation bounded by 5 seconds, a summary of an outage every 10 seconds. */
export const DEFAULTS: Settings = { timeout: Duration.seconds(5), summaryIntervalMillis: 10_000 }

/** Runs one operation of the store: bounded, never failing, counted and logged as `Store.resilient` says. */
export type Guard = <A>(
  operation: string,
  kind: "write" | "read",
  run: () => Effect.Effect<A, StoreError>,
  fallback: () => A
) => Effect.Effect<A>

/**
 * The guard of one `resilient` wrapper over `store` (the object whose outages are tracked, shared by every
 * wrapper over it), and how many of its operations failed.
 */
export const make = (store: object, settings: Settings): {
  readonly guard: Guard
  readonly failures: Effect.Effect<number>
} => {
  const { summaryIntervalMillis: summaryInterval, timeout } = settings
  const failures = Ref.unsafeMake(0)
  const health = healthFor(store)

  // Each runs in one synchronous step (no other fiber between reading the state and updating it), then logs.
  const failed = (operation: string, kind: "write" | "read", cause: Cause.Cause<unknown>) =>
    Effect.clockWith((clock) =>
      Effect.suspend(() => {
        const now = clock.unsafeCurrentTimeMillis()
        StoreMetrics.failed(operation, failedFor(cause, "timeout"))
        const error = describeCause(operation, cause)
        // A save refused for the value it was given: the store is fine, so no outage begins or ends
        if (failedFor(cause, "unencodable")) {
          return Effect.logWarning(`Store ${operation} refused what it was given, not kept (no outage): ${error}`)
            .pipe(Effect.annotateLogs({ store_operation: operation }))
        }
        const count = (tally: Tally) => {
          tally.failed++
          if (kind === "write") tally.writes++
          else tally.reads++
        }
        const outage = health.outage
        if (outage === undefined) {
          const started: Outage = {
            since: now,
            begunBefore: health.begun,
            total: { failed: 0, writes: 0, reads: 0 },
            recent: { failed: 0, writes: 0, reads: 0 },
            reportedAt: now
          }
          count(started.total)
          health.outage = started
          return Effect.logWarning(
            `Store outage started, going on without the store: ${error} ` +
              `(a summary follows every ${formatMillis(summaryInterval)} at most while it lasts)`
          ).pipe(Effect.annotateLogs({ store_operation: operation }))
        }
        count(outage.total)
        count(outage.recent)
        if (now - outage.reportedAt < summaryInterval) return Effect.void
        const message = `Store outage going on for ${formatMillis(now - outage.since)}; ` +
          `in the last ${formatMillis(now - outage.reportedAt)}, ${describeTally(outage.recent)}, ` +
          `${outage.total.failed} since it started; latest: ${error}`
        outage.reportedAt = now
        outage.recent.failed = outage.recent.writes = outage.recent.reads = 0
        return Effect.logWarning(message)
      })
    )

  const succeeded = (kind: "write" | "read", begun: number) =>
    Effect.clockWith((clock) =>
      Effect.suspend(() => {
        const outage = health.outage
        // Begun before the outage, or a read while writes fail: not a sign that the store is back.
        if (outage === undefined || begun <= outage.begunBefore || (kind === "read" && outage.total.writes > 0)) {
          return Effect.void
        }
        health.outage = undefined
        return Effect.logInfo(
          `Store outage ended after ${formatMillis(clock.unsafeCurrentTimeMillis() - outage.since)}: ` +
            describeTally(outage.total)
        )
      })
    )

  const timeoutMillis = Duration.toMillis(timeout)
  const timeoutError = (operation: string) =>
    new StoreError({ operation, reason: "timeout", detail: `no answer within ${Duration.format(timeout)}` })
  const onFailure = <A>(operation: string, kind: "write" | "read", cause: Cause.Cause<unknown>, fallback: () => A) =>
    Ref.update(failures, (n) => n + 1).pipe(
      Effect.zipRight(failed(operation, kind, cause)),
      Effect.as(fallback())
    )
  const onSuccess = <A>(kind: "write" | "read", begun: number, value: A) =>
    health.outage === undefined ? Effect.succeed(value) : Effect.as(succeeded(kind, begun), value)

  const guard: Guard = <A>(
    operation: string,
    kind: "write" | "read",
    run: () => Effect.Effect<A, StoreError>,
    fallback: () => A
  ): Effect.Effect<A> =>
    Effect.withFiberRuntime((fiber) => {
      const begun = ++health.begun
      // A backend may throw instead of returning an Effect: `suspend` turns that into a defect, caught below.
      const operationEffect = Effect.suspend(() => {
        const effect: unknown = run()
        return Effect.isEffect(effect)
          ? effect as Effect.Effect<A, StoreError>
          : Effect.dieMessage(`Store ${operation} did not return an Effect`)
      })
      const runner = fiber.getFiberRef(currentRunner)
      if (runner !== undefined && runner.runs(fiber)) {
        // In place, bounded by the runner: when it times out, the runner has done the accounting and abandons this
        // fiber, so what the operation answers late is ignored.
        const token = runner.begin(
          timeoutMillis,
          Effect.suspend(() => Effect.asVoid(onFailure(operation, kind, Cause.fail(timeoutError(operation)), fallback)))
        )
        return Effect.matchCauseEffect(operationEffect, {
          onFailure: (cause) =>
            runner.end(token) ? onFailure(operation, kind, cause, fallback) : Effect.succeed(fallback()),
          onSuccess: (value) => runner.end(token) ? onSuccess(kind, begun, value) : Effect.succeed(value)
        })
      }
      return operationEffect.pipe(
        // Disconnected: a backend that ignores interruption cannot hold the caller past the timeout.
        Effect.disconnect,
        Effect.timeoutFail({ duration: timeout, onTimeout: () => timeoutError(operation) }),
        Effect.matchCauseEffect({
          onFailure: (cause) => onFailure(operation, kind, cause, fallback),
          onSuccess: (value) => onSuccess(kind, begun, value)
        })
      )
    })

  return { guard, failures: Ref.get(failures) }
}

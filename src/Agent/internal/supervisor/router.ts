/**
 * Requests: each goes straight to the live process, without the lock; while a start or a decision is under way
 * it waits for the route to change, within its own timeout. This is the hot path (`npm run bench`): no step that a
 * request did not take before. Its outcome and latency are counted where it ends (plain calls on the agent's
 * metric hooks); it has a span only when a tracer other than Effect's default one is installed (`spans.ts`).
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { AgentTimeoutError, type RequestError } from "../../../Errors.js"
import type { DurationInput } from "../../../internal/durationText.js"
import { outcomeOf } from "../../../internal/metrics/instruments.js"
import * as Spans from "../../../internal/metrics/spans.js"
import type { HandleOptions } from "../../AgentSupervisor.js"
import * as Calls from "../calls.js"
import * as Requests from "../requests.js"
import { type Core, notRunningError, now, type Route } from "./core.js"

/** A call that ends with `error`: counted with its outcome and latency, then failed. */
const ended = <E extends RequestError>(core: Core, calledAt: number, error: E): Effect.Effect<never, E> => {
  core.metrics.requestEnded(outcomeOf(error), (performance.now() - calledAt) / 1000)
  return Effect.fail(error)
}

/** A request that timed out waiting for the agent to (re)start, after `waited` of its `timeoutMillis`. */
export const startTimeout = (core: Core, timeoutMillis: number, waited: number): AgentTimeoutError =>
  new AgentTimeoutError({
    agent: core.name,
    requestId: "(not sent)",
    operation: "start",
    timeoutMillis,
    waitedForStartMillis: waited
  })

/**
 * Waits for the route to change from `current`, at most `leftMillis`: true when it changed. A caller interrupted
 * while it waits is counted here (one waiting in a process's request table is counted there).
 */
export const awaitNewRoute = (core: Core, current: Route, leftMillis: number): Effect.Effect<boolean> =>
  core.route.changes.pipe(
    Stream.filter((next) => next !== current),
    Stream.take(1),
    Stream.runDrain,
    Effect.timeoutTo({ duration: leftMillis, onSuccess: () => true, onTimeout: () => false }),
    Effect.onInterrupt(() => Effect.sync(() => core.metrics.interrupted()))
  )

/**
 * A timeout of what was left (`left`) of the caller's timeout after a wait for a start: it names the caller's
 * timeout, and the wait if there was one. Any other error as it is.
 */
export const callerTimeout = <E>(
  core: Core,
  error: E,
  timeoutMillis: number,
  left: number,
  hasWaited: boolean
): E | AgentTimeoutError =>
  error instanceof AgentTimeoutError && left < timeoutMillis && error.idle !== true
    ? new AgentTimeoutError({
      agent: core.name,
      requestId: error.requestId,
      operation: error.operation,
      timeoutMillis,
      ...(hasWaited ? { waitedForStartMillis: timeoutMillis - left } : {}),
      ...(error.pid !== undefined ? { pid: error.pid } : {})
    })
    : error

/**
 * Routes one request; its timeout bounds waiting for a (re)start and the request together. A request that
 * reaches an incarnation that has exited (or is being stopped) before its exit was handled was never written: it
 * waits for the decision and goes to the next incarnation, as requests during a backoff do. A request whose
 * deadline passed while it waited is never written.
 */
const dispatch = (
  core: Core,
  event: unknown,
  timeoutMillis: number,
  replayOnCrash: boolean,
  idempotencyKey: string | undefined
) =>
  Effect.gen(function*() {
    // Every way out of the call counts its outcome and latency once: `ended`, or the success below.
    const calledAt = performance.now()
    // A start that fails from now on is the one this request waits for, if it waits (`notRunningError`)
    const failedStarts = core.failedStarts
    const sentAt = yield* now
    const deadline = sentAt + timeoutMillis
    const remaining = Effect.map(now, (t) => Math.max(0, deadline - t))
    // Whether this request has waited for a (re)start: only then may its timeout speak of one (time passes
    // between the call and its dispatch on a busy machine, without any wait).
    let hasWaited = false
    // The change of route, or the start timeout when it does not come in time.
    const waitForChange = (current: Route) =>
      Effect.flatMap(remaining, (left) => {
        hasWaited = true
        return Effect.map(
          awaitNewRoute(core, current, left),
          (changed) => changed ? undefined : startTimeout(core, timeoutMillis, timeoutMillis)
        )
      })
    while (true) {
      const current = yield* SubscriptionRef.get(core.route)
      switch (current._tag) {
        case "Up": {
          const left = yield* remaining
          if (left <= 0) return yield* ended(core, calledAt, startTimeout(core, timeoutMillis, timeoutMillis))
          const result = yield* Effect.either(current.process.request(event, { timeout: left, idempotencyKey }))
          if (result._tag === "Right") {
            core.metrics.requestEnded("ok", (performance.now() - calledAt) / 1000)
            return result.right
          }
          const error = result.left
          if (Requests.isRefusal(error) || (replayOnCrash && error._tag === "AgentCrashError")) {
            const timedOut = yield* waitForChange(current)
            if (timedOut !== undefined) return yield* ended(core, calledAt, timedOut)
            continue
          }
          return yield* ended(core, calledAt, callerTimeout(core, error, timeoutMillis, left, hasWaited))
        }
        case "Wait": {
          const timedOut = yield* waitForChange(current)
          if (timedOut !== undefined) return yield* ended(core, calledAt, timedOut)
          continue
        }
        default:
          return yield* ended(core, calledAt, notRunningError(core, current, failedStarts))
      }
    }
  })

/**
 * Decodes a call's `timeout` against the agent's `requestTimeout` (its default); a bad one, or a key of the call's
 * options that is not `known`, is the `ConfigError` to fail the call with, counted as a `config_error` request when the call fails with it. For `handleEvent` and
 * `handleEventStream` alike.
 */
export const callTimeout = (
  core: Core,
  known: ReadonlyArray<string>,
  elsewhere?: Readonly<Record<string, string>>
) => {
  const requestTimeoutMillis = Duration.toMillis(core.settings.requestTimeout)
  return (options: { readonly timeout?: DurationInput | undefined } | undefined) => {
    const millis = Calls.callTimeoutMillis(options, requestTimeoutMillis, known, elsewhere)
    if (typeof millis !== "number") {
      return {
        error: millis,
        counted: Effect.sync(() => core.metrics.requestEnded("config_error", 0))
      }
    }
    return millis
  }
}

/**
 * The agent's `handleEvent`: a bad per-call `timeout` fails the call (never a throw). Traced as
 * `AgentSupervisor.handleEvent`, with the attributes `agent` and `request.id`, when a tracer is installed.
 */
export const handleEvent = (
  core: Core
): (event: unknown, options?: HandleOptions) => Effect.Effect<unknown, RequestError> => {
  const timeoutOf = callTimeout(core, Calls.HANDLE_OPTIONS)
  return (event, options) => {
    const timeoutMillis = timeoutOf(options)
    if (typeof timeoutMillis !== "number") {
      return Effect.zipRight(timeoutMillis.counted, Effect.fail(timeoutMillis.error))
    }
    return Spans.traceRequest(
      core.name,
      dispatch(core, event, timeoutMillis, options?.replayOnCrash === true, options?.idempotencyKey)
    )
  }
}

/**
 * Requests: each goes straight to the live process, without the lock; while a start or a decision is under way
 * it waits for the route to change, within its own timeout. This is the hot path (`npm run bench`): no span, no
 * step that a request did not take before.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { AgentStoppedError, AgentTimeoutError, type RequestError } from "../../../Errors.js"
import type { HandleOptions } from "../../AgentSupervisor.js"
import * as Requests from "../requests.js"
import { type Core, crashError, now, type Route } from "./core.js"

/**
 * Routes one request; its timeout bounds waiting for a (re)start and the request together. A request that
 * reaches an incarnation that has exited (or is being stopped) before its exit was handled was never written: it
 * waits for the decision and goes to the next incarnation, as requests during a backoff do. A request whose
 * deadline passed while it waited is never written.
 */
const dispatch = (core: Core, event: unknown, timeoutMillis: number, replayOnCrash: boolean) =>
  Effect.gen(function*() {
    const sentAt = yield* now
    const deadline = sentAt + timeoutMillis
    const remaining = Effect.map(now, (t) => Math.max(0, deadline - t))
    const startTimeout = (waited: number) =>
      new AgentTimeoutError({
        agent: core.name,
        requestId: "(not sent)",
        operation: "start",
        timeoutMillis,
        waitedForStartMillis: waited
      })
    // Whether this request has waited for a (re)start: only then may its timeout speak of one (time passes
    // between the call and its dispatch on a busy machine, without any wait).
    let hasWaited = false
    const waitForChange = (current: Route) =>
      Effect.flatMap(remaining, (left) => {
        hasWaited = true
        return core.route.changes.pipe(
          Stream.filter((next) => next !== current),
          Stream.take(1),
          Stream.runDrain,
          Effect.timeoutFail({ duration: left, onTimeout: () => startTimeout(timeoutMillis) })
        )
      })
    while (true) {
      const current = yield* SubscriptionRef.get(core.route)
      switch (current._tag) {
        case "Up": {
          const left = yield* remaining
          if (left <= 0) return yield* Effect.fail(startTimeout(timeoutMillis))
          const result = yield* Effect.either(current.process.request(event, { timeout: left }))
          if (result._tag === "Right") return result.right
          const error = result.left
          if (Requests.isRefusal(error) || (replayOnCrash && error._tag === "AgentCrashError")) {
            yield* waitForChange(current)
            continue
          }
          if (error._tag === "AgentTimeoutError" && left < timeoutMillis) {
            // Timed out on what was left of the caller's timeout: name the caller's timeout, and the wait for a
            // start if there was one.
            return yield* Effect.fail(
              new AgentTimeoutError({
                agent: core.name,
                requestId: error.requestId,
                operation: error.operation,
                timeoutMillis,
                ...(hasWaited ? { waitedForStartMillis: timeoutMillis - left } : {}),
                ...(error.pid !== undefined ? { pid: error.pid } : {})
              })
            )
          }
          return yield* Effect.fail(error)
        }
        case "Wait": {
          yield* waitForChange(current)
          continue
        }
        case "Parked":
          return yield* Effect.fail(crashError(core, "circuit_open", core.lastExit))
        case "Crashed":
          return yield* Effect.fail(crashError(core, "exited", current.exit))
        case "Stopped":
          return yield* Effect.fail(new AgentStoppedError({ agent: core.name }))
      }
    }
  })

/** The agent's `handleEvent`: a bad per-call `timeout` fails the call (never a throw). */
export const handleEvent = (
  core: Core
): (event: unknown, options?: HandleOptions) => Effect.Effect<unknown, RequestError> => {
  const requestTimeoutMillis = Duration.toMillis(core.settings.requestTimeout)
  return (event, options) => {
    const timeoutMillis = options?.timeout === undefined
      ? requestTimeoutMillis
      : Requests.timeoutMillisOf(options.timeout)
    return typeof timeoutMillis === "number"
      ? dispatch(core, event, timeoutMillis, options?.replayOnCrash === true)
      : Effect.fail(timeoutMillis)
  }
}

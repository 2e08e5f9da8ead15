/**
 * Streaming requests (protocol 1.1 `stream`): routed as requests are (`router.ts`), to the live process, waiting for
 * a (re)start within the caller's timeout. A stream refused by an incarnation that exited before it was written goes
 * to the next one (nothing was delivered); once written, a crash ends it with `AgentCrashError`, after the chunks
 * delivered (never replayed: the consumer has seen part of it).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { StreamRequestError } from "../../../Errors.js"
import { outcomeOf } from "../../../internal/metrics/instruments.js"
import type { AgentSupervisor, HandleStreamOptions } from "../../AgentSupervisor.js"
import type { StreamEvent } from "../../StreamEvent.js"
import * as Calls from "../calls.js"
import * as Requests from "../requests.js"
import { type Core, notRunningError, type Route } from "./core.js"
import { awaitNewRoute, callerTimeout, callTimeout, startTimeout } from "./router.js"

type Events = Stream.Stream<StreamEvent, StreamRequestError>

/**
 * The stream of one call: routed when it starts, to whichever incarnation is up then. Counted once where it ends
 * (its outcome and latency): a stream cut short by its consumer is counted by its request table (`interrupted`).
 */
const routed = (core: Core, event: unknown, options: HandleStreamOptions | undefined, timeoutMillis: number) =>
  Stream.suspend(() => {
    const calledAt = performance.now()
    const deadline = core.clock.unsafeCurrentTimeMillis() + timeoutMillis
    // A start that fails from now on is the one this stream waits for, if it waits (`notRunningError`)
    const failedStarts = core.failedStarts
    let hasWaited = false
    let done = false

    const attempt = (): Events => Stream.unwrap(route)
    const route: Effect.Effect<Events> = Effect.gen(function*() {
      while (true) {
        const current = yield* SubscriptionRef.get(core.route)
        const left = Math.max(0, deadline - core.clock.unsafeCurrentTimeMillis())
        switch (current._tag) {
          case "Up": {
            if (left <= 0) return Stream.fail(startTimeout(core, timeoutMillis, timeoutMillis))
            const stream = current.process.requestStream(event, {
              timeout: left,
              idleTimeout: options?.idleTimeout,
              maxBufferedChunks: options?.maxBufferedChunks,
              idempotencyKey: options?.idempotencyKey
            })
            return Stream.catchAll(stream, (error): Events => {
              // Refused: never written, so nothing was delivered; it goes to the next incarnation.
              if (error._tag !== "AgentStreamError" && Requests.isRefusal(error)) return retryAfter(current)
              return Stream.fail(callerTimeout(core, error, timeoutMillis, left, hasWaited))
            })
          }
          case "Wait": {
            hasWaited = true
            if (!(yield* awaitNewRoute(core, current, left))) {
              return Stream.fail(startTimeout(core, timeoutMillis, timeoutMillis))
            }
            continue
          }
          default:
            return Stream.fail(notRunningError(core, current, failedStarts))
        }
      }
    })
    const retryAfter = (current: Route): Events =>
      Stream.unwrap(Effect.suspend(() => {
        hasWaited = true
        const left = Math.max(0, deadline - core.clock.unsafeCurrentTimeMillis())
        return Effect.map(
          awaitNewRoute(core, current, left),
          (changed) => changed ? attempt() : Stream.fail(startTimeout(core, timeoutMillis, timeoutMillis))
        )
      }))

    return attempt().pipe(
      Stream.mapChunks((events) => {
        if (Option.exists(Chunk.last(events), (last) => last._tag === "Done")) done = true
        return events
      }),
      Stream.ensuringWith((exit) =>
        Effect.sync(() => {
          const seconds = (performance.now() - calledAt) / 1000
          if (Exit.isSuccess(exit)) {
            if (done) core.metrics.requestEnded("ok", seconds)
            return
          }
          const failure = Cause.failureOption(exit.cause)
          if (Option.isSome(failure)) core.metrics.requestEnded(outcomeOf(failure.value), seconds)
        })
      )
    )
  })

/** The agent's `handleEventStream`: a bad per-call option fails the stream (never a throw). */
export const handleEventStream = (core: Core): AgentSupervisor["handleEventStream"] => {
  const timeoutOf = callTimeout(core, Calls.HANDLE_STREAM_OPTIONS, Calls.NOT_FOR_STREAMS)
  return (event, options) => {
    const timeoutMillis = timeoutOf(options)
    if (typeof timeoutMillis !== "number") {
      return Stream.fromEffect(Effect.zipRight(timeoutMillis.counted, Effect.fail(timeoutMillis.error)))
    }
    return routed(core, event, options, timeoutMillis)
  }
}

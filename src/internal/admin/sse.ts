/**
 * Server-Sent Events responses: frames (`event:` / `data:` lines, a blank line), a comment first (the stream is
 * live: what happens from then on is sent), a comment as keep-alive while idle, and an end for every stream when
 * the admin API closes (a client that stays must not hold the server's close).
 *
 * @internal
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { STREAM_END, type StreamEndReason } from "./api.js"
import { stringify } from "./json.js"

/** The streams of one server: how often they send a keep-alive, their count, and the signal that ends them. */
export interface Streams {
  readonly keepAlive: Duration.Duration
  /** Done when the server closes: every stream ends. */
  readonly closing: Deferred.Deferred<void>
  /**
   * Done when the tree the server serves begins to stop while it serves (`up` stops its tree before its API): a
   * stream then ends after what it follows has (the stop's own events included), with `closing` all the same.
   */
  readonly stopping: Deferred.Deferred<void>
  /** Streams open now. */
  readonly open: Effect.Effect<number>
  readonly track: <A>(stream: Stream.Stream<A>) => Stream.Stream<A>
}

/** The streams of a new server. */
export const make = (keepAlive: Duration.Duration): Effect.Effect<Streams> =>
  Effect.map(Effect.zip(Deferred.make<void>(), Deferred.make<void>()), ([closing, stopping]) => {
    let open = 0
    return {
      keepAlive,
      closing,
      stopping,
      open: Effect.sync(() => open),
      track: (stream) =>
        Stream.unwrapScoped(
          Effect.as(Effect.acquireRelease(Effect.sync(() => open++), () => Effect.sync(() => open--)), stream)
        )
    }
  })

/** The comment a stream opens with. */
export const OPENING = ": connected\n\n"
/** The comment an idle stream sends every `keepAlive`. */
export const KEEP_ALIVE = ": keep-alive\n\n"

/** An event named `name` (no line break can get in) with `data` as one line of JSON. */
export const eventFrame = (name: string, data: unknown): string =>
  `event: ${name.replace(/[\r\n]/g, "")}\ndata: ${stringify(data)}\n\n`

/** An unnamed event (`message`) with `data` as one line of JSON. */
export const dataFrame = (data: unknown): string => `data: ${stringify(data)}\n\n`

/**
 * A `text/event-stream` response of `frames`: the opening comment, then the frames with keep-alives between them,
 * until the frames end, the client goes away (the server interrupts the response), or the server closes; then, but
 * for a client gone, the `end` event.
 */
export const response = (streams: Streams, frames: Stream.Stream<string>): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(
    Stream.make(OPENING).pipe(
      Stream.concat(
        Stream.merge(frames, Stream.as(Stream.fromSchedule(Schedule.spaced(streams.keepAlive)), KEEP_ALIVE), {
          haltStrategy: "left"
        })
      ),
      Stream.interruptWhenDeferred(streams.closing),
      Stream.concat(Stream.fromEffect(Effect.map(
        Effect.zipWith(Deferred.isDone(streams.closing), Deferred.isDone(streams.stopping), (a, b) => a || b),
        (closing) =>
          eventFrame(STREAM_END, { reason: closing ? "closing" : "ended" } satisfies { reason: StreamEndReason })
      ))),
      streams.track,
      Stream.encodeText
    ),
    {
      contentType: "text/event-stream",
      // `connection: close`: once the stream ends (the server closing), its connection goes too, rather than
      // staying open idle and holding the server's close.
      headers: { "cache-control": "no-cache", "x-accel-buffering": "no", connection: "close" }
    }
  )

/**
 * The routes of the admin API that are not JSON (`Routes` in `api.ts`): the tree's events and an agent's stderr as
 * Server-Sent Events, the Prometheus metrics, the OpenAPI document, the dashboard.
 *
 * @internal
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import type * as Supervisor from "../../Supervisor.js"
import { Routes } from "./api.js"
import { page } from "./dashboard.js"
import * as Follow from "./follow.js"
import { locateAgent } from "./locate.js"
import * as OpenApiDocument from "./openapi.js"
import * as Prometheus from "./prometheus.js"
import * as Sse from "./sse.js"

/** `Routes.stderrFollow` as the router matches it. */
export const STDERR_FOLLOW = "/api/children/:id/stderr/follow"

/** Every event of the tree from the moment of the request (subscribed before the response starts). */
const events = (root: Supervisor.Supervisor, streams: Sse.Streams) =>
  Effect.map(root.subscribe, (queue) =>
    Sse.response(
      streams,
      Stream.fromQueue(queue).pipe(Stream.map((event) => Sse.eventFrame(event._tag, event)))
    ))

/** An agent's stderr lines from now on; 404 for no such child, 400 for a supervisor or a pool. */
const stderrFollow = (root: Supervisor.Supervisor, streams: Sse.Streams) =>
  Effect.gen(function*() {
    const path = (yield* HttpRouter.params).id ?? ""
    const { info, parent } = yield* locateAgent(root, path)
    const starts = yield* root.subscribe
    const lines = yield* Follow.stderrLines(root, starts, { path, supervisor: parent.name, id: info.id })
    return Sse.response(streams, Stream.map(lines, Sse.dataFrame))
  })

// Rendered over several turns of the event loop: a thousand agents' metrics held it for tens of milliseconds.
const metrics = Effect.map(
  Effect.suspend(() => Prometheus.renderChunked(Metric.unsafeSnapshot())),
  (text) => HttpServerResponse.text(text, { contentType: Prometheus.CONTENT_TYPE })
)

/**
 * The page, never framed by another site (its buttons must not be clicked through a page on top of them: a meta
 * Content-Security-Policy cannot say `frame-ancestors`, a header can).
 */
const dashboard = Effect.sync(() =>
  HttpServerResponse.text(page(), {
    contentType: "text/html; charset=utf-8",
    headers: {
      "content-security-policy": "frame-ancestors 'none'",
      "x-frame-options": "DENY",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-store"
    }
  })
)

/**
 * Event streams open at once, at most: reads need no token, and each stream holds a subscription (4,096 events at
 * most) for as long as its client stays. Past it, 503 until one closes.
 */
export const MAX_STREAMS = 64

const withRoom = <E, R>(streams: Sse.Streams, open: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.flatMap(streams.open, (count) =>
    count >= MAX_STREAMS
      ? Effect.succeed(HttpServerResponse.unsafeJson({
        _tag: "TooManyStreams",
        message: `${count} event streams are open, the most this API serves at once: close one, or try later`
      }, { status: 503, headers: { "retry-after": "5" } }))
      : open)

/** The routes, on the router of `HttpApiBuilder` (beside the JSON endpoints, behind the same guard). */
export const layer = (root: Supervisor.Supervisor, streams: Sse.Streams) =>
  HttpApiBuilder.Router.use((router) =>
    Effect.gen(function*() {
      const openapi = HttpServerResponse.unsafeJson(OpenApiDocument.document())
      yield* router.get(Routes.events, withRoom(streams, events(root, streams)))
      yield* router.get(STDERR_FOLLOW, withRoom(streams, stderrFollow(root, streams)))
      yield* router.get(Routes.metrics, metrics)
      yield* router.get(Routes.openapi, Effect.succeed(openapi))
      yield* router.get(Routes.dashboard, dashboard)
    })
  )

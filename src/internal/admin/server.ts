/**
 * The admin API's HTTP server: the `HttpApi` with its handlers, the other routes and the guard, built apart from the
 * application's own layers (its own router, so that an application with an `HttpApi` of its own shares nothing with
 * it), served by a Node server of its own on the address given.
 *
 * Closing it ends every event stream, then closes the server, waiting up to {@link CLOSE_GRACE} for requests under
 * way before cutting their connections: no client can hold the application's shutdown.
 *
 * @internal
 */
import type * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import type * as Supervisor from "../../Supervisor.js"
import { messageOf } from "../standalone/messageOf.js"
import { AdminHttpApi } from "./api.js"
import { AdminApiError } from "./errors.js"
import * as Guard from "./guard.js"
import * as Handlers from "./handlers.js"
import * as Methods from "./methods.js"
import type { Settings } from "./options.js"
import * as Routes from "./routes.js"
import * as Sse from "./sse.js"

/**
 * The Node server module, loaded with the first admin API: it brings `ws` and `undici` (about half a second to load),
 * which an application without the admin API should not pay for at its start.
 */
const loadNode: Effect.Effect<typeof NodeHttpServer> = Effect.promise(() =>
  import("@effect/platform-node/NodeHttpServer")
)

/** How long closing waits for requests under way before it cuts their connections. */
export const CLOSE_GRACE = Duration.seconds(2)

/** A server listening. */
export interface Running {
  /** The base URL a client on this machine uses (no trailing slash). */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly streams: Effect.Effect<number>
  /** The tree begins to stop while the server serves (see `Sse.Streams.stopping`). */
  readonly stopping: Effect.Effect<void>
}

/** The URL of `host`:`port` for a client on this machine: a wildcard address is reached through loopback. */
export const urlOf = (host: string, port: number): string => {
  const reachable = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host
  return `http://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`
}

/**
 * The guard, with the methods of each path as the router has them: read at the first request, when every route is on
 * it (the layers put them there as they build, this one among them).
 */
const guard = (token: Redacted.Redacted<string>, loopbackOnly: boolean) =>
  Effect.gen(function*() {
    const router = yield* HttpApiBuilder.Router
    const allowed = yield* Effect.cached(Methods.fromRouter(router.router))
    return Guard.make(token, loopbackOnly, Effect.flatten(allowed))
  })

/** The `HttpApp` of the API: handlers, routes and guard, on a router of their own. */
const app = (
  root: Supervisor.Supervisor,
  placements: Option.Option<Handlers.Placements>,
  streams: Sse.Streams,
  token: Redacted.Redacted<string>,
  loopbackOnly: boolean
) =>
  Effect.gen(function*() {
    const parts = Layer.mergeAll(
      HttpApiBuilder.api(AdminHttpApi).pipe(
        Layer.provide(Handlers.layer(root, placements, token, streams.stopping))
      ),
      Routes.layer(root, streams),
      HttpApiBuilder.middleware(AdminHttpApi, guard(token, loopbackOnly)).pipe(
        Layer.provide(HttpApiBuilder.Router.Live)
      ),
      HttpApiBuilder.Router.Live,
      HttpApiBuilder.Middleware.layer
    )
    // A memo map of its own: `Router.Live` and `Middleware.layer` are global values, which the application's
    // layers (an `HttpApi` of its own) would otherwise share with these.
    const context = yield* Layer.buildWithMemoMap(parts, yield* Layer.makeMemoMap, yield* Effect.scope)
    return yield* Effect.provide(HttpApiBuilder.httpApp, context)
  })

const listenFailed = (settings: Settings, cause: unknown) =>
  new AdminApiError({
    reason: "listen_failed",
    host: settings.host,
    port: settings.port,
    ...(typeof (cause as NodeJS.ErrnoException)?.code === "string"
      ? { code: (cause as NodeJS.ErrnoException).code }
      : {}),
    detail: messageOf(cause)
  })

/** Ends the event streams, then closes the server: gracefully for {@link CLOSE_GRACE}, then by cutting connections. */
const close = (server: Http.Server, streams: Sse.Streams): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* Deferred.succeed(streams.closing, undefined)
    const closed = yield* Deferred.make<void>()
    server.close(() => Deferred.unsafeDone(closed, Effect.void))
    // A finalizer is uninterruptible: its timeouts fire only around interruptible waits.
    const graceful = yield* Effect.interruptible(Deferred.await(closed)).pipe(Effect.timeoutOption(CLOSE_GRACE))
    if (Option.isNone(graceful)) {
      server.closeAllConnections()
      yield* Effect.interruptible(Deferred.await(closed)).pipe(Effect.timeoutOption(CLOSE_GRACE))
    }
  })

/** Listens on the settings' address and serves the API until the scope closes; `/api/cluster` from `placements`. */
export const make = (
  root: Supervisor.Supervisor,
  settings: Settings,
  token: Redacted.Redacted<string>,
  placements: Option.Option<Handlers.Placements> = Option.none()
): Effect.Effect<Running, AdminApiError, Scope.Scope> =>
  Effect.gen(function*() {
    const NodeServer = yield* loadNode
    const streams = yield* Sse.make(settings.keepAlive)
    // Built before listening: no request may come before there is a handler for it.
    const handler = yield* app(root, placements, streams, token, Guard.isLoopback(settings.host))
    const node = Http.createServer()
    const server = yield* NodeServer.make(() => node, { port: settings.port, host: settings.host }).pipe(
      Effect.mapError((error) => listenFailed(settings, error.cause))
    )
    yield* HttpServer.serveEffect()(handler).pipe(
      Effect.provideService(HttpServer.HttpServer, server),
      Effect.provide(NodeServer.layerContext)
    )
    // Added last, so run first: before the platform's own close, which would wait for every connection.
    yield* Effect.addFinalizer(() => close(node, streams))
    const port = server.address._tag === "TcpAddress" ? server.address.port : settings.port
    return {
      url: urlOf(settings.host, port),
      host: settings.host,
      port,
      streams: streams.open,
      stopping: Deferred.succeed(streams.stopping, undefined)
    }
  })

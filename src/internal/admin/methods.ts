/**
 * Which methods a path of the API takes, for a 405 and its `Allow` header (RFC 9110): read from the routes on the
 * router, and matched by the router's own matcher, so that a path is known here exactly when the router would match
 * it with some method (its trailing slash, case and percent-encoding rules included).
 *
 * @internal
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"

/** What is read of a route: its method (`"*"`: any) and its path. */
export interface Route {
  readonly method: string
  readonly path: HttpRouter.PathInput
}

/** The methods of the request's path, in `Allow` order: empty for a path no route has, `"*"` for one that takes any. */
export type Allowed = Effect.Effect<ReadonlyArray<string>, never, HttpServerRequest.HttpServerRequest>

/** No route known: every path is left to the router. */
export const none: Allowed = Effect.succeed([])

const matched = Effect.sync(() => HttpServerResponse.empty())

/**
 * The methods of `routes`, path by path. A route's method is known from its path alone by one router per method, whose
 * routes take any method: asked with the request as it is, it matches when the real router would with that method.
 * The router falls back from HEAD to GET, so a path that takes GET takes HEAD.
 */
export const make = (routes: Iterable<Route>): Effect.Effect<Allowed> =>
  Effect.gen(function*() {
    const byMethod = new Map<string, Array<HttpRouter.PathInput>>()
    for (const route of routes) byMethod.set(route.method, [...(byMethod.get(route.method) ?? []), route.path])
    const probes = yield* Effect.forEach(byMethod, ([method, paths]) =>
      Effect.map(
        HttpRouter.toHttpApp(HttpRouter.fromIterable(paths.map((path) => HttpRouter.makeRoute("*", path, matched)))),
        (probe) => [method, Effect.isSuccess(probe)] as const
      ))
    return Effect.map(
      Effect.filter(probes, ([, matches]) => matches),
      (found) => {
        const methods = found.map(([method]) => method)
        if (methods.includes("*")) return ["*"]
        if (methods.includes("GET") && !methods.includes("HEAD")) methods.push("HEAD")
        return methods.sort()
      }
    )
  })

/** The routes of a router, read when asked (at the first request, every route is on it). */
export const fromRouter = (router: Effect.Effect<{ readonly routes: Iterable<Route> }>): Effect.Effect<Allowed> =>
  Effect.flatMap(router, (current) => make(current.routes))

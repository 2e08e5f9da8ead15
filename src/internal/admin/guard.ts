/**
 * What every request of the admin API goes through, JSON endpoints and other routes alike: a request for another
 * host than this machine is a 403 when the API listens on loopback; a state-changing call
 * needs the bearer token (401 otherwise) and a body that is empty or JSON (400 otherwise); a request the API cannot
 * decode is a 400 `BadRequest` with the problems listed; an unknown route a 404; a defect a 500. Each answer is a
 * JSON body `{ "_tag", "message" }`, never a stack.
 *
 * @internal
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as IncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { BadRequest, Unauthorized } from "./api.js"
import * as Auth from "./auth.js"

/** Methods that only read. Every other one changes state, and needs the token. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"])

const json = (status: number, body: { readonly _tag: string; readonly message: string }, headers = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

const encodeUnauthorized = Schema.encodeSync(Unauthorized)
const encodeBadRequest = Schema.encodeSync(BadRequest)

/** As the contract's `Unauthorized` is encoded, with the scheme to use (RFC 6750). */
const unauthorized = (message: string) =>
  json(401, encodeUnauthorized(new Unauthorized({ message })), {
    "www-authenticate": "Bearer realm=\"agent-supervisor\""
  })

/** As the contract's `BadRequest` is encoded. */
const badRequest = (message: string) => json(400, encodeBadRequest(new BadRequest({ message })))

/** The largest body read: these calls take none, or a small one (`scale`'s). */
const MAX_BODY_BYTES = 64 * 1024

/**
 * Why the body of a state-changing call is refused: these calls take no body, or a JSON one (ignored but by
 * `scale` and `reload`, whose routes decode it). One that
 * says it is too large is not read at all (the server discards it, and the client still gets the answer).
 */
const bodyProblem = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<string | undefined> => {
  const tooLarge = `The request body is over ${MAX_BODY_BYTES} bytes: the API's calls take no body, or a small JSON one`
  if (Number(request.headers["content-length"] ?? 0) > MAX_BODY_BYTES) return Effect.succeed(tooLarge)
  return request.text.pipe(
    IncomingMessage.withMaxBodySize(Option.some(MAX_BODY_BYTES)),
    Effect.map((text) => {
      if (text.trim() === "") return undefined
      try {
        JSON.parse(text)
        return undefined
      } catch (error) {
        return `The request body is not valid JSON (${(error as Error).message}): the API's calls take no body, or JSON`
      }
    }),
    Effect.orElseSucceed(() => tooLarge)
  )
}

/**
 * The problems of a request the API could not decode, the first one of each field (an optional field's union adds
 * a second that only says it is not absent): `lines: Unable to decode "abc" into a number`.
 */
const decodeMessage = (error: { readonly issues?: ReadonlyArray<Issue>; readonly message: string }): string => {
  const byField = new Map<string, string>()
  for (const issue of error.issues ?? []) {
    const field = issue.path.map(String).join(".")
    if (!byField.has(field)) byField.set(field, field === "" ? issue.message : `${field}: ${issue.message}`)
  }
  return `Bad request: ${byField.size === 0 ? error.message : [...byField.values()].join("; ")}`
}

interface Issue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

const tagOf = (error: unknown): unknown => (error as { readonly _tag?: unknown } | null)?._tag

/** Failures and defects as JSON answers; interruptions and the platform's own responses as they are. */
const answer = (request: HttpServerRequest.HttpServerRequest) => (cause: Cause.Cause<unknown>) => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    if (tagOf(error) === "HttpApiDecodeError") {
      return Effect.succeed(badRequest(decodeMessage(error as { readonly message: string })))
    }
    if (tagOf(error) === "RouteNotFound") {
      return Effect.succeed(json(404, {
        _tag: "NotFound",
        message: `No route ${request.method} ${request.url.split("?")[0]}: /api/openapi.json lists the API`
      }))
    }
    return Effect.failCause(cause)
  }
  const defect = Cause.dieOption(cause)
  if (Option.isNone(defect) || HttpServerResponse.isServerResponse(defect.value)) return Effect.failCause(cause)
  return Effect.as(
    Effect.logError(`admin API: ${request.method} ${request.url} failed`, cause),
    json(500, { _tag: "InternalError", message: "The admin API failed on this request; its log has the details" })
  )
}

/** The name in a `Host` header, without its port: `localhost`, `127.0.0.1`, `[::1]`. */
const hostName = (header: string): string =>
  header.startsWith("[") ? header.slice(0, header.indexOf("]") + 1) : header.split(":")[0]

/** An address or name that only reaches this machine (IPv6 with or without brackets). */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

/**
 * The guard around the API's whole router, for `HttpApiBuilder.middleware`. `loopbackOnly` (an API bound to a
 * loopback address): a request must name this machine in its `Host` header, so that a web page whose name was made
 * to resolve to 127.0.0.1 (DNS rebinding) cannot read the API from a browser.
 */
export const make =
  (token: Redacted.Redacted<string>, loopbackOnly: boolean) => (app: HttpApp.Default): HttpApp.Default =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const host = request.headers.host
      if (loopbackOnly && host !== undefined && !isLoopback(hostName(host.toLowerCase()))) {
        return json(403, {
          _tag: "Forbidden",
          message: `The admin API listens on a loopback address and answers requests for this machine only, not for ` +
            `"${host}"`
        })
      }
      if (!SAFE_METHODS.has(request.method)) {
        const refusal = Auth.refusal(token, request.headers.authorization)
        if (refusal !== undefined) return unauthorized(refusal)
        const problem = yield* bodyProblem(request)
        if (problem !== undefined) return badRequest(problem)
      }
      return yield* app.pipe(Effect.catchAllCause(answer(request)))
      // The other failures go on as they were: the API's own errors, for `HttpApiBuilder` to encode.
    }) as HttpApp.Default

/**
 * What every request of the admin API goes through, JSON endpoints and other routes alike: a request for another
 * host than this machine is a 403 when the API listens on loopback; a state-changing call needs the bearer token
 * (401 otherwise; the read of a task's outcome checks it in its handler, on the route the router matched); a known path asked with a method it does not take is a 405 with `Allow` (RFC 9110); a
 * state-changing call's body must be empty or JSON (415 for another media type, 400 for JSON that does not parse); a
 * request the API cannot decode is a 400 `BadRequest` with the problems listed; an unknown route a 404; a defect a
 * 500. Each answer is a JSON body `{ "_tag", "message" }`, never a stack. A state-changing call refused here, and a
 * request for another host, is logged (Warning: `admin API: refused POST /api/children/echo/call (415): its body is
 * text/plain, not JSON`), as sshd logs a refused login: with why, never with its body or token.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as IncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { BadRequest, Unauthorized, UnsupportedMediaType } from "./api.js"
import * as Auth from "./auth.js"
import * as Methods from "./methods.js"
import { MAX_PAYLOAD_BYTES } from "./workApi.js"

/** Methods that only read. Every other one changes state, and needs the token. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"])

const json = (status: number, body: { readonly _tag: string; readonly message: string }, headers = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

const encodeUnauthorized = Schema.encodeSync(Unauthorized)
const encodeBadRequest = Schema.encodeSync(BadRequest)
const encodeUnsupportedMediaType = Schema.encodeSync(UnsupportedMediaType)

/** As the contract's `Unauthorized` is encoded, with the scheme to use (RFC 6750). */
const unauthorized = (message: string) =>
  json(401, encodeUnauthorized(new Unauthorized({ message })), {
    "www-authenticate": "Bearer realm=\"agent-supervisor\""
  })

/** As the contract's `BadRequest` is encoded. */
const badRequest = (message: string) => json(400, encodeBadRequest(new BadRequest({ message })))

/** A request refused here: the answer, and why for the log (never the body's content: a payload, a token). */
interface Refusal {
  readonly response: HttpServerResponse.HttpServerResponse
  readonly why: string
}

/** The request's path, as the router reads it (without its query). */
const pathOf = (request: HttpServerRequest.HttpServerRequest): string => request.url.split("?")[0]

/** A known path asked with a method it does not take: the methods it takes, in `Allow` and in the message. */
const methodNotAllowed = (request: HttpServerRequest.HttpServerRequest, allowed: ReadonlyArray<string>) => {
  const allow = allowed.join(", ")
  return json(405, {
    _tag: "MethodNotAllowed",
    message: `${request.method} is not allowed on ${pathOf(request)}: it takes ${allow}`
  }, { allow })
}

/** The largest body read: the operations take none, or a small one (`scale`'s). */
const MAX_BODY_BYTES = 64 * 1024

/** The paths whose body is a payload for an agent (`call`, `publish`). */
const PAYLOAD_PATH = /^\/api\/(children\/[^/]+\/call|topics\/[^/]+\/publish)\/?$/

/** The most bytes the body of a request to `path` may have. */
const maxBodyOf = (path: string): number => PAYLOAD_PATH.test(path) ? MAX_PAYLOAD_BYTES : MAX_BODY_BYTES

const tooLarge = (max: number): Refusal => ({
  response: badRequest(
    max === MAX_BODY_BYTES
      ? `The request body is over ${max} bytes: the API's calls take no body, or a small JSON one`
      : `The request body is over ${max} bytes: send large data to an agent by reference (a file path or URL)`
  ),
  why: `its body is over ${max} bytes`
})

/** The media type of a `Content-Type` header, without its parameters, in lower case; undefined for none. */
const mediaType = (header: string | undefined): string | undefined => {
  const type = header?.split(";")[0].trim().toLowerCase()
  return type === "" ? undefined : type
}

/** JSON: `application/json`, or a type with the `+json` suffix (RFC 6839), such as `application/merge-patch+json`. */
const isJson = (type: string): boolean => type === "application/json" || /^[^/\s]+\/[^/\s]+\+json$/.test(type)

/** As the contract's `UnsupportedMediaType` is encoded. */
const unsupported = (type: string): Refusal => ({
  response: json(
    415,
    encodeUnsupportedMediaType(
      new UnsupportedMediaType({
        message: `The request body must be JSON (Content-Type: application/json, or a +json type), not ${type}: ` +
          `the API's calls take no body, or a JSON one`
      })
    )
  ),
  why: `its body is ${type}, not JSON`
})

/** Why the body of `type` and `text` is refused; undefined for none (an empty body is none, whatever its type). */
const bodyProblem = (type: string | undefined, text: string): Refusal | undefined => {
  if (text === "") return undefined
  if (type !== undefined && !isJson(type)) return unsupported(type)
  try {
    JSON.parse(text)
    return undefined
  } catch (error) {
    // (the parser's message quotes the body: the log says less)
    return {
      response: badRequest(`The request body is not valid JSON: ${(error as Error).message}`),
      why: "its body is not valid JSON"
    }
  }
}

/** The platform's failure of a body read past its `withMaxBodySize` (Node's stream reader says `maxBytes exceeded`). */
const isOverMax = (error: unknown): boolean =>
  (error as { readonly cause?: { readonly message?: unknown } } | null)?.cause?.message === "maxBytes exceeded"

/**
 * A state-changing call's request as its route is to read it, or the answer that refuses its body. These calls take
 * no body or a JSON one (ignored but by `scale`, `reload`, `call` and `publish`, whose routes decode it), the same
 * rules for each, up to 64 KiB (16 MiB for `call` and `publish`, whose payload goes to an agent). One
 * that says it is too large, or of another type, is not read at all (the server discards it, and the client still
 * gets the answer). The request handed on says `application/json`: the platform decodes by `Content-Type`, and would
 * take a form's `size=3` for a record without `size`, or read the body of a `+json` type again (read here already, it
 * would never end).
 */
const checkBody = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<Either.Either<HttpServerRequest.HttpServerRequest, Refusal>> => {
  const type = mediaType(request.headers["content-type"])
  const length = Number(request.headers["content-length"] ?? 0)
  const max = maxBodyOf(pathOf(request))
  if (length > max) return Effect.succeed(Either.left(tooLarge(max)))
  if (type !== undefined && !isJson(type) && length > 0) return Effect.succeed(Either.left(unsupported(type)))
  const asJson = request.modify({ headers: Headers.set(request.headers, "content-type", "application/json") })
  return asJson.text.pipe(
    IncomingMessage.withMaxBodySize(Option.some(max)),
    Effect.map((text) => {
      const problem = bodyProblem(type, text)
      return problem === undefined ? Either.right(asJson) : Either.left(problem)
    }),
    Effect.catchAll((error) =>
      Effect.succeed(Either.left(
        isOverMax(error) ? tooLarge(max) : {
          response: badRequest("The request body could not be read"),
          why: "its body could not be read (the client went away?)"
        }
      ))
    )
  )
}

/**
 * The problems of a request the API could not decode, the first one of each field (an optional field's union adds
 * a second that only says it is not absent): `lines: Unable to decode "abc" into a number`.
 */
const decodeRefusal = (error: { readonly issues?: ReadonlyArray<Issue>; readonly message: string }): Refusal => {
  const issues = error.issues ?? []
  const byField = new Map<string, string>()
  for (const issue of issues) {
    const field = fieldOf(issue)
    if (!byField.has(field)) byField.set(field, field === "" ? issue.message : `${field}: ${issue.message}`)
  }
  // The log names the fields the route knows (a problem's message may quote the value given) and counts the keys
  // it does not know (a body's keys are the client's text: a token, a payload)
  const unknown = new Set(issues.filter((issue) => issue.message.startsWith("is unexpected")).map(fieldOf))
  const fields = [...byField.keys()].filter((field) => !unknown.has(field)).map((field) =>
    field === "" ? "its body" : clip(field, 40)
  )
  if (unknown.size > 0) fields.push(`${unknown.size} unknown key${unknown.size === 1 ? "" : "s"}`)
  return {
    response: badRequest(`Bad request: ${byField.size === 0 ? error.message : [...byField.values()].join("; ")}`),
    why: `it does not decode${fields.length === 0 ? "" : ` (${fields.join(", ")})`}`
  }
}

interface Issue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

const fieldOf = (issue: Issue): string => issue.path.map(String).join(".")

/** `text` cut to `max` characters (a request's path and host are the client's, of any length). */
const clip = (text: string, max: number): string => text.length <= max ? text : `${text.slice(0, max)}...`

/** At most this many refusals are logged one by one per minute; the rest are counted, and said at the next. */
const LOGGED_PER_MINUTE = 20

/** The refusals an admin API (known by its token) logged in its current minute, and those it did not. */
const refusalsOf = new WeakMap<Redacted.Redacted<string>, { windowStart: number; logged: number; unlogged: number }>()

/**
 * Logs a refusal of the admin API whose token is `token` (Warning), at most {@link LOGGED_PER_MINUTE} a minute:
 * past them, a refusal is counted, and the count said with the first refusal of a later minute (a page in a browser
 * can POST to a loopback port as often as it likes: it must not fill the log). Annotated with the client's address
 * (`client`), as sshd says where a refused login came from.
 *
 * @internal
 */
export const logRefused = (
  token: Redacted.Redacted<string>,
  request: HttpServerRequest.HttpServerRequest,
  status: number,
  why: string
): Effect.Effect<void> =>
  Effect.suspend(() => {
    let refusals = refusalsOf.get(token)
    if (refusals === undefined) refusalsOf.set(token, refusals = { windowStart: 0, logged: 0, unlogged: 0 })
    const now = Date.now()
    const lines: Array<string> = []
    if (now - refusals.windowStart >= 60_000) {
      if (refusals.unlogged > 0) {
        lines.push(
          `admin API: ${refusals.unlogged} more request(s) refused in the minute before, not logged one by one`
        )
      }
      Object.assign(refusals, { windowStart: now, logged: 0, unlogged: 0 })
    }
    const summary = Effect.forEach(lines, (line) => Effect.logWarning(line), { discard: true })
    if (refusals.logged >= LOGGED_PER_MINUTE) {
      refusals.unlogged++
      return summary
    }
    refusals.logged++
    // (the summary's refusals may have come from other clients: only this request's line names its client)
    const client = Option.getOrUndefined(request.remoteAddress)
    return Effect.zipRight(
      summary,
      Effect.logWarning(`admin API: refused ${request.method} ${clip(pathOf(request), 200)} (${status}): ${why}`).pipe(
        Effect.annotateLogs(client === undefined ? {} : { client })
      )
    )
  })

const tagOf = (error: unknown): unknown => (error as { readonly _tag?: unknown } | null)?._tag

/** For a path that goes on below a child's id, how a child's path is written: one segment, its "/" encoded. */
const unencodedHint = (path: string): string => {
  const steps = /^\/api\/children\/([^/]+)\/([^/]+)/.exec(path)
  return steps === null ? "" : ` (a child's path is one segment of the URL, its "/" encoded: ` +
    `/api/children/${steps[1]}%2F${steps[2]})`
}

/**
 * The answer to a request refused here. Logged when the request would have changed state (or, with `always`, asked
 * for another host): what was asked, the status and why.
 */
const refuse = (
  token: Redacted.Redacted<string>,
  request: HttpServerRequest.HttpServerRequest,
  refusal: Refusal,
  always = false
) =>
  always || !SAFE_METHODS.has(request.method)
    ? Effect.as(
      logRefused(token, request, refusal.response.status, refusal.why),
      refusal.response
    )
    : Effect.succeed(refusal.response)

/** Failures and defects as JSON answers; interruptions and the platform's own responses as they are. */
const answer =
  (token: Redacted.Redacted<string>, request: HttpServerRequest.HttpServerRequest) => (cause: Cause.Cause<unknown>) => {
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure)) {
      const error = failure.value
      if (tagOf(error) === "HttpApiDecodeError") {
        return refuse(token, request, decodeRefusal(error as { readonly message: string }))
      }
      if (tagOf(error) === "RouteNotFound") {
        return refuse(token, request, {
          response: json(404, {
            _tag: "NotFound",
            message: `No route ${request.method} ${pathOf(request)}: /api/openapi.json lists the API` +
              unencodedHint(pathOf(request))
          }),
          why: "no such route"
        })
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
 * to resolve to 127.0.0.1 (DNS rebinding) cannot read the API from a browser. `allowed`: the methods of the request's
 * path (`methods.ts`), none by default; a state-changing call without the token learns nothing of them.
 */
export const make =
  (token: Redacted.Redacted<string>, loopbackOnly: boolean, allowed: Methods.Allowed = Methods.none) =>
  (app: HttpApp.Default): HttpApp.Default =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const host = request.headers.host
      if (loopbackOnly && host !== undefined && !isLoopback(hostName(host.toLowerCase()))) {
        const response = json(403, {
          _tag: "Forbidden",
          message: `The admin API listens on a loopback address and answers requests for this machine only, not for ` +
            `"${host}"`
        })
        return yield* refuse(
          token,
          request,
          { response, why: `it is for host ${JSON.stringify(clip(host, 200))}` },
          true
        )
      }
      const safe = SAFE_METHODS.has(request.method)
      if (!safe) {
        const refusal = Auth.refusal(token, request.headers.authorization)
        if (refusal !== undefined) {
          return yield* refuse(token, request, { response: unauthorized(refusal), why: refusal })
        }
      }
      const methods = yield* allowed
      if (methods.length > 0 && !methods.includes("*") && !methods.includes(request.method)) {
        const why = `it takes ${methods.join(", ")}`
        return yield* refuse(token, request, { response: methodNotAllowed(request, methods), why })
      }
      const checked = safe ? Either.right(request) : yield* checkBody(request)
      if (Either.isLeft(checked)) return yield* refuse(token, request, checked.left)
      return yield* app.pipe(
        Effect.provideService(HttpServerRequest.HttpServerRequest, checked.right),
        Effect.catchAllCause(answer(token, request))
      )
      // The other failures go on as they were: the API's own errors, for `HttpApiBuilder` to encode.
    }) as HttpApp.Default

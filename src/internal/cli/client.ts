/**
 * The admin API of a running `up`, as the CLI calls it: the typed client of its `HttpApi`, and its Server-Sent
 * Events as a stream. Every failure becomes a `CliError` whose message says what to do.
 *
 * @internal
 */
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AdminHttpApi, STREAM_END } from "../admin/api.js"
import type { Address } from "./address.js"
import { CliError } from "./errors.js"
import * as Sse from "./sse.js"

/** The `code`s on an error's chain of causes (`ECONNRESET` under the client's `RequestError`). */
const codes = (error: unknown): Array<string> => {
  const found: Array<string> = []
  for (let at: unknown = error, depth = 0; at !== null && typeof at === "object" && depth < 8; depth++) {
    const code = (at as { readonly code?: unknown }).code
    if (typeof code === "string") found.push(code)
    at = (at as { readonly cause?: unknown }).cause
  }
  return found
}

/** The codes of a connection the server closed (or lost) after it took the request: it was reached. */
const CUT = new Set(["UND_ERR_SOCKET", "ECONNRESET", "EPIPE"])

/** Whether `error` is of a connection the server closed (or lost) under the request. */
const cutOff = (error: unknown): boolean => codes(error).some((code) => CUT.has(code))

/**
 * What a failed call answers, as a line for the terminal; `sent` tells whether its request went out (a `ParseError`
 * is then the answer's, not the request's).
 */
const describe = (address: Address, sent: () => boolean = () => false) => (error: unknown): CliError => {
  if (error instanceof CliError) return error
  const tag = (error as { readonly _tag?: unknown })?._tag
  switch (tag) {
    case "ChildNotFound":
    case "BadRequest":
    case "OperationFailed":
    case "NotClustered":
    case "ClusterUnavailable":
    case "CallFailed":
    case "CallTimedOut":
    case "TopicFull":
    case "TaskNotFound":
    case "TopicNotFound":
      return new CliError({ message: (error as { readonly message: string }).message })
    case "Unauthorized":
      return new CliError({
        message: Option.isNone(address.token)
          ? "This needs the admin token: give --token (or AGENT_SUPERVISOR_TOKEN), or --file for the state file."
          : `The admin API refused the token: ${(error as { readonly message: string }).message}`
      })
    case "ParseError": {
      // An answer that is not the API's (another server on that port, say)
      if (sent()) return unexpected(address, error)
      // The request itself did not encode (a value the API's schema refuses, checked before anything is sent).
      // The first problem of each field: an optional field's union adds a second that only says it is not absent.
      const byField = new Map<string, string>()
      for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error as ParseResult.ParseError)) {
        const field = issue.path.join(".") || "the request"
        if (!byField.has(field)) byField.set(field, `${field}: ${issue.message}`)
      }
      return new CliError({ message: `Not sent: ${[...byField.values()].join("; ")}` })
    }
    case "RequestError":
      return new CliError({
        message: cutOff(error)
          ? `The admin API at ${address.url} closed the connection before it answered: up is stopping, or was ` +
            "killed (what was asked may be done in part)"
          : `Cannot reach the admin API at ${address.url}: is "agent-supervisor up" running there?`
      })
    case "ResponseError":
      // An answer that broke off half way (its connection closed under it) is no answer that makes no sense
      return cutOff(error)
        ? new CliError({
          message: `The admin API at ${address.url} closed the connection before its answer ended: up is stopping, ` +
            "or was killed (what was asked may be done in part)"
        })
        : unexpected(address, error)
    default:
      return unexpected(address, error)
  }
}

/** An answer the client could not read (not the API's, or not whole). */
const unexpected = (address: Address, error: unknown): CliError =>
  new CliError({
    message: `Unexpected answer from the admin API at ${address.url}: ${
      (error as { readonly message?: unknown })?.message ?? String(error)
    }`
  })

const withToken = (address: Address) => (client: HttpClient.HttpClient) =>
  Option.match(address.token, {
    onNone: () => client,
    onSome: (token) => HttpClient.mapRequest(client, HttpClientRequest.bearerToken(token))
  })

/**
 * The HTTP client the CLI talks to the admin API with: Node's `http`, which waits for an answer as long as the
 * server takes (each route bounds its own waits: a call by its timeout, a task's wait by `MAX_TASK_WAIT_MILLIS`).
 * Node's `fetch` gave up on any answer after 300 seconds (undici's `headersTimeout`), so a `call` with a longer
 * timeout failed half way. The event streams stay on `fetch`: their headers come at once, and a keep-alive every
 * few seconds keeps their body going. Loaded when a command first talks to the API: its module loads undici too
 * (for its other client), a fifth of a second of every command's start on a slow machine.
 */
const httpClient = Layer.unwrapEffect(
  Effect.promise(() => import("@effect/platform-node/NodeHttpClient")).pipe(Effect.map((module) => module.layer))
)

/**
 * The typed client of a running `up`'s admin API (over the `HttpClient` in context); `onSend` is called as each
 * request goes out.
 */
export const make = (address: Address, onSend: () => void = () => {}) =>
  HttpApiClient.make(AdminHttpApi, {
    baseUrl: address.url,
    transformClient: (client) => HttpClient.tapRequest(withToken(address)(client), () => Effect.sync(onSend))
  })

/** The client's type. */
export type Client = Effect.Effect.Success<ReturnType<typeof make>>

/** Runs one call of the client, with failures as `CliError`s. */
export const call = <A>(
  address: Address,
  f: (client: Client) => Effect.Effect<A, unknown>
): Effect.Effect<A, CliError> =>
  Effect.suspend(() => {
    let sent = false
    // The client's layer (its `http` agent) lives as long as the call
    return Effect.flatMap(make(address, () => (sent = true)), f).pipe(
      Effect.provide(httpClient),
      Effect.mapError(describe(address, () => sent))
    )
  })

/** The `reason` of an `end` event's data, if it has one. */
const reasonOf = (data: string): unknown => {
  try {
    return (JSON.parse(data) as { readonly reason?: unknown } | null)?.reason
  } catch {
    return undefined
  }
}

/** What a follower says on stderr when the server ends its stream (`end`), by its reason. */
const endedBy = (address: Address, reason: unknown): string =>
  reason === "closing"
    ? `The admin API at ${address.url} closed: up is stopping (the stream ended)`
    : `The stream from ${address.url} ended: what it followed is gone`

/**
 * The Server-Sent Events of `path`, as long as the server sends them. The request is answered (the server is
 * listening) when this succeeds: what happens after is in the stream. The server's `end` event ends it, said on
 * stderr; a stream that breaks off without it fails: the server is lost (killed, or the network went away).
 */
export const events = (
  address: Address,
  path: string
): Effect.Effect<Stream.Stream<Sse.Event, CliError>, CliError, Scope.Scope> =>
  Effect.gen(function*() {
    const client = withToken(address)(yield* HttpClient.HttpClient)
    const response = yield* client.get(`${address.url}${path}`, { headers: { accept: "text/event-stream" } })
    if (response.status !== 200) {
      const body = yield* response.json.pipe(Effect.orElseSucceed(() => ({})))
      return yield* Effect.fail(body)
    }
    const tooLong = () =>
      new CliError({
        message: `${address.url}${path} sent a line of more than ${Sse.MAX_LINE} characters: not an admin API`
      })
    const lost = () =>
      new CliError({
        message: `Lost the admin API at ${address.url}: the stream broke off without its end (up was killed, or ` +
          "the network went away)"
      })
    let ended: Sse.Event | undefined
    return Sse.decode(response.stream, tooLong).pipe(
      Stream.takeWhile((event) => {
        if (event.event === STREAM_END) ended = event
        return ended === undefined
      }),
      Stream.mapError((error) => error instanceof CliError ? error : lost()),
      Stream.concat(Stream.suspend(() => {
        if (ended === undefined) return Stream.fail(lost())
        return Stream.drain(Stream.fromEffect(Console.error(endedBy(address, reasonOf(ended.data)))))
      }))
    )
  }).pipe(Effect.mapError(describe(address)), Effect.provide(FetchHttpClient.layer))

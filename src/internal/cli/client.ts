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
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AdminHttpApi } from "../admin/api.js"
import type { Address } from "./address.js"
import { CliError } from "./errors.js"
import * as Sse from "./sse.js"

/** The `code`s on an error's chain of causes (`UND_ERR_HEADERS_TIMEOUT` under fetch's "fetch failed"). */
const codes = (error: unknown): Array<string> => {
  const found: Array<string> = []
  for (let at: unknown = error, depth = 0; at !== null && typeof at === "object" && depth < 8; depth++) {
    const code = (at as { readonly code?: unknown }).code
    if (typeof code === "string") found.push(code)
    at = (at as { readonly cause?: unknown }).cause
  }
  return found
}

/** What a failed call answers, as a line for the terminal. */
const describe = (address: Address) => (error: unknown): CliError => {
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
        message: codes(error).includes("UND_ERR_HEADERS_TIMEOUT")
          ? `The admin API at ${address.url} did not answer within 300 seconds, the longest this command waits ` +
            "(Node's fetch), and the call was given up: a longer one needs a client of the API that waits longer " +
            "(curl, for one)"
          : `Cannot reach the admin API at ${address.url}: is "agent-supervisor up" running there?`
      })
    default:
      return new CliError({
        message: `Unexpected answer from the admin API at ${address.url}: ${
          (error as { readonly message?: unknown })?.message ?? String(error)
        }`
      })
  }
}

const withToken = (address: Address) => (client: HttpClient.HttpClient) =>
  Option.match(address.token, {
    onNone: () => client,
    onSome: (token) => HttpClient.mapRequest(client, HttpClientRequest.bearerToken(token))
  })

/** The typed client of a running `up`'s admin API. */
export const make = (address: Address) =>
  HttpApiClient.make(AdminHttpApi, { baseUrl: address.url, transformClient: withToken(address) }).pipe(
    Effect.provide(FetchHttpClient.layer)
  )

/** The client's type. */
export type Client = Effect.Effect.Success<ReturnType<typeof make>>

/** Runs one call of the client, with failures as `CliError`s. */
export const call = <A>(
  address: Address,
  f: (client: Client) => Effect.Effect<A, unknown>
): Effect.Effect<A, CliError> => Effect.flatMap(make(address), f).pipe(Effect.mapError(describe(address)))

/**
 * The Server-Sent Events of `path`, as long as the server sends them. The request is answered (the server is
 * listening) when this succeeds: what happens after is in the stream.
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
    return Sse.decode(response.stream, tooLong).pipe(Stream.mapError(describe(address)))
  }).pipe(Effect.mapError(describe(address)), Effect.provide(FetchHttpClient.layer))

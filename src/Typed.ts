/**
 * Typed agents: an agent's (or a tree child's) requests and replies described by a `Schema` each. A call encodes
 * its request with the request schema before anything is written, and decodes the reply (JSON that crossed a
 * process boundary, typed `unknown` by `handleEvent`) with the response schema. A value that does not match fails
 * with an `AgentSchemaError` listing each problem with its path:
 *
 * ```text
 * Agent "summarizer": response does not match: ["words"]: Expected number, actual "two"
 * ```
 *
 * The schemas describe what crosses the wire on their encoded side: JSON (a date as a string or a number, never
 * a `Date`). Keys the response schema does not name are dropped, as `Schema.decodeUnknown` drops them.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import type * as AgentSupervisor from "./Agent/AgentSupervisor.js"
import type {
  AgentSchemaError,
  AgentStreamError,
  RequestError,
  StreamRequestError,
  SupervisorChildError,
  SupervisorIntensityError
} from "./Errors.js"
import * as internal from "./internal/typed/handles.js"
import type * as Supervisor from "./Supervisor.js"

/**
 * The two schemas of a typed agent. Their encoded sides are what the agent's callback receives and returns.
 *
 * @since 0.1.0
 * @category models
 */
export interface Schemas<Req extends Schema.Schema.Any, Res extends Schema.Schema.Any> {
  /** Encodes what a call is given into the callback's `payload`. */
  readonly request: Req
  /** Decodes the callback's reply into what a call returns. */
  readonly response: Res
}

/**
 * What the two schemas need from the context (usually nothing).
 *
 * @since 0.1.0
 * @category models
 */
export type Context<Req extends Schema.Schema.Any, Res extends Schema.Schema.Any> =
  | Schema.Schema.Context<Req>
  | Schema.Schema.Context<Res>

/**
 * The errors of a typed agent's `handleEvent`: those of an untyped request, and `AgentSchemaError`.
 *
 * @since 0.1.0
 * @category errors
 */
export type AgentError = RequestError | AgentSchemaError

/**
 * The errors of a typed child's `call`: those of a tree's `call`, and `AgentSchemaError`.
 *
 * @since 0.1.0
 * @category errors
 */
export type ChildError = RequestError | SupervisorChildError | SupervisorIntensityError | AgentSchemaError

/**
 * An agent whose requests and replies are typed.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedAgent<Req, Res, R = never> {
  /** The untyped handle: state, metadata, health, events, start, stop, restart. */
  readonly agent: AgentSupervisor.AgentSupervisor
  /**
   * Encodes `request` (a failure is an `AgentSchemaError` with `direction: "request"`, and nothing is written),
   * sends it as `handleEvent` does, with the same options, and decodes the reply (a reply that does not match is
   * an `AgentSchemaError` with `direction: "response"`; the agent did the work).
   */
  readonly handleEvent: (request: Req, options?: AgentSupervisor.HandleOptions) => Effect.Effect<Res, AgentError, R>
}

/**
 * A tree's agent child whose requests and replies are typed.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedChild<Req, Res, R = never> {
  readonly supervisor: Supervisor.Supervisor
  readonly id: string
  /**
   * `supervisor.call(id, ...)` with the request encoded and the reply decoded, as {@link TypedAgent}'s
   * `handleEvent`. The child is looked up at each call: it may come and go.
   */
  readonly call: (request: Req, options?: AgentSupervisor.HandleOptions) => Effect.Effect<Res, ChildError, R>
}

/**
 * Types an agent's requests and replies. Fails with what `handleEvent` fails with, and `AgentSchemaError`: a
 * request its schema cannot encode (not sent), a reply its schema cannot decode.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * class Summarize extends Schema.Class<Summarize>("Summarize")({ text: Schema.String }) {}
 * const Summary = Schema.Struct({ words: Schema.Number })
 *
 * const agent = yield* AgentSupervisor.make({ name: "summarizer", ...Adapters.pythonCallback("summarize.py") })
 * const summarizer = Typed.agent(agent, { request: Summarize, response: Summary })
 * const { words } = yield* summarizer.handleEvent(new Summarize({ text: "process this" })) // words: number
 * ```
 */
export const agent: <Req extends Schema.Schema.Any, Res extends Schema.Schema.Any>(
  handle: AgentSupervisor.AgentSupervisor,
  schemas: Schemas<Req, Res>
) => TypedAgent<Schema.Schema.Type<Req>, Schema.Schema.Type<Res>, Context<Req, Res>> = internal.agent

/**
 * Types the requests and replies of a tree's agent child. Its `call` fails with what the tree's `call` fails with
 * (`SupervisorChildError` when there is no such agent child), and `AgentSchemaError`.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const tree = yield* Supervisor.make({ children: [Supervisor.agent({ id: "summarizer", config: summarizer })] })
 * const summarize = Typed.child(tree, "summarizer", { request: Summarize, response: Summary })
 * const { words } = yield* summarize.call(new Summarize({ text: "routed to a child agent" }))
 * ```
 */
export const child: <Req extends Schema.Schema.Any, Res extends Schema.Schema.Any>(
  tree: Supervisor.Supervisor,
  id: string,
  schemas: Schemas<Req, Res>
) => TypedChild<Schema.Schema.Type<Req>, Schema.Schema.Type<Res>, Context<Req, Res>> = internal.child

/**
 * The schemas of a streaming agent (protocol 1.1 `stream`): the request's and the final result's, as for
 * {@link agent}, and each chunk's.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamSchemas<
  Req extends Schema.Schema.Any,
  Res extends Schema.Schema.Any,
  C extends Schema.Schema.Any
> extends Schemas<Req, Res> {
  /** Decodes each chunk's `data`. */
  readonly chunk: C
}

/**
 * What the schemas of a streaming agent need from the context.
 *
 * @since 0.1.0
 * @category models
 */
export type StreamContext<Req extends Schema.Schema.Any, Res extends Schema.Schema.Any, C extends Schema.Schema.Any> =
  | Context<Req, Res>
  | Schema.Schema.Context<C>

/**
 * A decoded event of a typed stream: a chunk, or the final result (as `StreamEvent`, typed).
 *
 * @since 0.1.0
 * @category models
 */
export type TypedStreamEvent<C, Res> =
  | { readonly _tag: "Chunk"; readonly data: C }
  | { readonly _tag: "Done"; readonly result: Res }

/**
 * The schema error of a typed call.
 *
 * @since 0.1.0
 * @category errors
 */
export type AgentSchemaErrorOf = AgentSchemaError

/**
 * A typed agent that streams: `handleEvent` as {@link TypedAgent}'s, and `handleEventStream`, which encodes the
 * request, streams as `AgentSupervisor.handleEventStream` does, and decodes each chunk (a chunk that does not match
 * ends the stream with an `AgentSchemaError`, `direction: "chunk"`, after the chunks before it; the task goes on in
 * the agent until the stream's cancel reaches it) and the final result.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedStreamingAgent<Req, Res, C, R = never> extends TypedAgent<Req, Res, R> {
  readonly handleEventStream: (
    request: Req,
    options?: AgentSupervisor.HandleStreamOptions
  ) => Stream.Stream<TypedStreamEvent<C, Res>, StreamRequestError | AgentSchemaError, R>
}

/**
 * A typed child that streams: `call` as {@link TypedChild}'s, and `callStream`, typed as
 * {@link TypedStreamingAgent}'s `handleEventStream`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypedStreamingChild<Req, Res, C, R = never> extends TypedChild<Req, Res, R> {
  readonly callStream: (
    request: Req,
    options?: AgentSupervisor.HandleStreamOptions
  ) => Stream.Stream<TypedStreamEvent<C, Res>, ChildError | AgentStreamError | AgentSchemaError, R>
}

/**
 * {@link agent} for an agent that streams (protocol 1.1 `stream`), with a schema for its chunks.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const writer = Typed.streaming(agent, { request: Prompt, response: Usage, chunk: Schema.String })
 * yield* Stream.runForEach(writer.handleEventStream(new Prompt({ text })), (event) =>
 *   event._tag === "Chunk" ? Console.log(event.data) : Console.log(event.result.tokens))
 * ```
 */
export const streaming: <Req extends Schema.Schema.Any, Res extends Schema.Schema.Any, C extends Schema.Schema.Any>(
  handle: AgentSupervisor.AgentSupervisor,
  schemas: StreamSchemas<Req, Res, C>
) => TypedStreamingAgent<
  Schema.Schema.Type<Req>,
  Schema.Schema.Type<Res>,
  Schema.Schema.Type<C>,
  StreamContext<Req, Res, C>
> = internal.streaming

/**
 * {@link child} for a child that streams: `callStream` besides `call`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const streamingChild: <
  Req extends Schema.Schema.Any,
  Res extends Schema.Schema.Any,
  C extends Schema.Schema.Any
>(
  tree: Supervisor.Supervisor,
  id: string,
  schemas: StreamSchemas<Req, Res, C>
) => TypedStreamingChild<
  Schema.Schema.Type<Req>,
  Schema.Schema.Type<Res>,
  Schema.Schema.Type<C>,
  StreamContext<Req, Res, C>
> = internal.streamingChild

/**
 * Typed handles over the untyped ones: a call encodes its request, hands the encoded value to `handleEvent` (or a
 * tree's `call`), and decodes what comes back. Nothing else changes: timeouts, replays, crashes and restarts are
 * the untyped handle's.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type { AgentSupervisor, HandleOptions, HandleStreamOptions } from "../../Agent/AgentSupervisor.js"
import type { StreamEvent } from "../../Agent/StreamEvent.js"
import type { Supervisor } from "../../Supervisor.js"
import type * as Typed from "../../Typed.js"
import { decoder, encoder, type Target } from "./codec.js"

/** A schema with its three types spelled out, as the codec takes it. */
type Explicit<S extends Schema.Schema.Any> = Schema.Schema<
  Schema.Schema.Type<S>,
  Schema.Schema.Encoded<S>,
  Schema.Schema.Context<S>
>

/** One typed exchange: encode, send through `send`, decode. */
const exchange = <Req extends Schema.Schema.Any, Res extends Schema.Schema.Any, E>(
  schemas: Typed.Schemas<Req, Res>,
  target: Target,
  send: (payload: unknown, options: HandleOptions | undefined) => Effect.Effect<unknown, E>
) => {
  const encode = encoder(schemas.request as Explicit<Req>, target)
  const decode = decoder(schemas.response as Explicit<Res>, target)
  return (request: Schema.Schema.Type<Req>, options?: HandleOptions) =>
    Effect.flatMap(encode(request), (payload) => Effect.flatMap(send(payload, options), decode))
}

/** @internal */
export const agent = <Req extends Schema.Schema.Any, Res extends Schema.Schema.Any>(
  handle: AgentSupervisor,
  schemas: Typed.Schemas<Req, Res>
): Typed.TypedAgent<Schema.Schema.Type<Req>, Schema.Schema.Type<Res>, Typed.Context<Req, Res>> => ({
  agent: handle,
  handleEvent: exchange(schemas, { agent: handle.name }, handle.handleEvent)
})

/** @internal */
export const child = <Req extends Schema.Schema.Any, Res extends Schema.Schema.Any>(
  tree: Supervisor,
  id: string,
  schemas: Typed.Schemas<Req, Res>
): Typed.TypedChild<Schema.Schema.Type<Req>, Schema.Schema.Type<Res>, Typed.Context<Req, Res>> => ({
  supervisor: tree,
  id,
  call: exchange(schemas, { agent: id, supervisor: tree.name }, (payload, options) => tree.call(id, payload, options))
})

/** One typed stream: encode, open through `open`, decode each chunk and the result. */
const streamExchange = <Req extends Schema.Schema.Any, Res extends Schema.Schema.Any, C extends Schema.Schema.Any, E>(
  schemas: Typed.StreamSchemas<Req, Res, C>,
  target: Target,
  open: (payload: unknown, options: HandleStreamOptions | undefined) => Stream.Stream<StreamEvent, E>
) => {
  const encode = encoder(schemas.request as Explicit<Req>, target)
  const decodeChunk = decoder(schemas.chunk as Explicit<C>, target, "chunk")
  const decodeResult = decoder(schemas.response as Explicit<Res>, target)
  return (request: Schema.Schema.Type<Req>, options?: HandleStreamOptions) =>
    Stream.unwrap(Effect.map(encode(request), (payload) =>
      Stream.mapEffect(
        open(payload, options),
        (event): Effect.Effect<
          Typed.TypedStreamEvent<Schema.Schema.Type<C>, Schema.Schema.Type<Res>>,
          Typed.AgentSchemaErrorOf,
          Typed.StreamContext<Req, Res, C>
        > =>
          event._tag === "Chunk"
            ? Effect.map(decodeChunk(event.data), (data) => ({ _tag: "Chunk" as const, data }))
            : Effect.map(decodeResult(event.result), (result) => ({ _tag: "Done" as const, result }))
      )))
}

/** @internal */
export const streaming = <Req extends Schema.Schema.Any, Res extends Schema.Schema.Any, C extends Schema.Schema.Any>(
  handle: AgentSupervisor,
  schemas: Typed.StreamSchemas<Req, Res, C>
): Typed.TypedStreamingAgent<
  Schema.Schema.Type<Req>,
  Schema.Schema.Type<Res>,
  Schema.Schema.Type<C>,
  Typed.StreamContext<Req, Res, C>
> => ({
  ...agent(handle, schemas),
  handleEventStream: streamExchange(schemas, { agent: handle.name }, handle.handleEventStream)
})

/** @internal */
export const streamingChild = <
  Req extends Schema.Schema.Any,
  Res extends Schema.Schema.Any,
  C extends Schema.Schema.Any
>(
  tree: Supervisor,
  id: string,
  schemas: Typed.StreamSchemas<Req, Res, C>
): Typed.TypedStreamingChild<
  Schema.Schema.Type<Req>,
  Schema.Schema.Type<Res>,
  Schema.Schema.Type<C>,
  Typed.StreamContext<Req, Res, C>
> => ({
  ...child(tree, id, schemas),
  callStream: streamExchange(
    schemas,
    { agent: id, supervisor: tree.name },
    (payload, options) => tree.callStream(id, payload, options)
  )
})

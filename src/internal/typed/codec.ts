/**
 * The two conversions of a typed call: the request encoded before it is written, the reply decoded after it is
 * read, each failing with an `AgentSchemaError` that names the agent and every problem's path.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { ParseOptions } from "effect/SchemaAST"
import { AgentSchemaError } from "../../Errors.js"
import { issuesOf } from "./issues.js"

/** Who is called: an agent by name, or a tree's child by id (with the tree's path). */
export interface Target {
  readonly agent: string
  readonly supervisor?: string | undefined
}

/** Every problem, not only the first: the error lists them (bounded) as `ConfigError` does. */
const parseOptions: ParseOptions = { errors: "all" }

const schemaError = (target: Target, direction: "request" | "response" | "chunk") => (error: ParseResult.ParseError) =>
  new AgentSchemaError({ ...target, direction, ...issuesOf(error) })

/** Encodes a request with its schema; a failure is an `AgentSchemaError` about the request. */
export const encoder = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  target: Target
): (request: A) => Effect.Effect<I, AgentSchemaError, R> => {
  const encode = Schema.encode(schema, parseOptions)
  const fail = schemaError(target, "request")
  return (request) => Effect.mapError(encode(request), fail)
}

/** Decodes a reply (or a chunk) with its schema; a failure is an `AgentSchemaError` about it. */
export const decoder = <A, I, R>(
  schema: Schema.Schema<A, I, R>,
  target: Target,
  direction: "response" | "chunk" = "response"
): (reply: unknown) => Effect.Effect<A, AgentSchemaError, R> => {
  const decode = Schema.decodeUnknown(schema, parseOptions)
  const fail = schemaError(target, direction)
  return (reply) => Effect.mapError(decode(reply), fail)
}

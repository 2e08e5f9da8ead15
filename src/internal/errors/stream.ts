/**
 * The text of `AgentStreamError`: a streaming request (protocol 1.1, `stream`) whose consumer fell too far behind
 * the agent's chunks, and the schema of its fields.
 *
 * Plain fields in, strings out (and the schema of those fields): this module knows nothing of the error classes
 * (`Errors.ts` imports it, never the other way round).
 *
 * @internal
 */
import * as Schema from "effect/Schema"

/**
 * The fields of `Errors.AgentStreamError`, by their type first: a named type keeps each field's comment in the
 * published declarations.
 *
 * @internal
 */
export type StreamErrorFields = {
  readonly agent: typeof Schema.String
  /** The id of the streaming request on the wire. */
  readonly requestId: typeof Schema.String
  /** `overflow`: more than `maxBufferedChunks` chunks waited for the consumer. */
  readonly reason: Schema.Literal<["overflow"]>
  /** The bound that was passed. */
  readonly maxBufferedChunks: typeof Schema.Number
  readonly pid: Schema.optional<typeof Schema.Number>
}

/**
 * The fields of `Errors.AgentStreamError`.
 *
 * @internal
 */
export const streamErrorFields: StreamErrorFields = {
  agent: Schema.String,
  requestId: Schema.String,
  reason: Schema.Literal("overflow"),
  maxBufferedChunks: Schema.Number,
  pid: Schema.optional(Schema.Number)
}

/**
 * The facts of a stream failure (the fields of `Errors.AgentStreamError`).
 *
 * @internal
 */
export interface StreamFacts extends Schema.Struct.Type<typeof streamErrorFields> {}

/**
 * The message of an `AgentStreamError`.
 *
 * @internal
 */
export const streamMessage = (e: StreamFacts): string => {
  const pid = e.pid !== undefined ? ` (pid ${e.pid})` : ""
  return `The stream of task ${e.requestId} from agent "${e.agent}"${pid} overflowed: its consumer fell more ` +
    `than ${e.maxBufferedChunks} chunks behind; the agent was sent a cancel`
}

/**
 * What to do about an `AgentStreamError`.
 *
 * @internal
 */
export const streamRemediation = (_: StreamFacts): string =>
  "Consume the stream faster (move slow work per chunk off the stream, or batch it), raise maxBufferedChunks for " +
  "this call, or have the agent send fewer, larger chunks."

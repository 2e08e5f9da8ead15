/**
 * Wire protocol v1, with the 1.1 features (`stream`, `checkpoint`): the messages exchanged with an agent, one JSON
 * object per line (`docs/PROTOCOL.md`). A 1.1 message is sent only to an agent that announced its feature.
 *
 * The schemas are the specification. The reader's hot path uses {@link decodeIncoming}, a hand-written check
 * that accepts exactly what {@link Incoming} accepts (a property test holds the two together), because running
 * a schema decoder over every response costs more than the rest of the round trip.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as StrictJson from "../internal/standalone/strictJson.js"

/**
 * The protocol version this library speaks.
 *
 * @since 0.1.0
 */
export const PROTOCOL_VERSION = 1

/**
 * The 1.1 and 1.2 features this supervisor speaks, as an agent lists them in `ready`'s `features`: `stream` (tasks
 * answered in chunks), `checkpoint` (checkpoints kept, and sent back in `restore`) and `publish` (tasks the agent
 * hands to its tree's topics).
 *
 * @since 0.1.0
 */
export const FEATURES: ReadonlyArray<string> = ["stream", "checkpoint", "publish"]

// ---------------------------------------------------------------------------------------------------------------
// supervisor -> agent
// ---------------------------------------------------------------------------------------------------------------

/**
 * A request for the agent's callback. With `stream: true` (only to an agent that announced `stream`), the agent
 * may answer with {@link Chunk}s before its response.
 *
 * @since 0.1.0
 * @category supervisor to agent
 */
export const Task = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("task"),
  payload: Schema.Unknown,
  stream: Schema.optional(Schema.Literal(true)),
  /** The caller's idempotency key: the same on every delivery of one task (a cluster delivers at least once). */
  key: Schema.optional(Schema.String)
})

/**
 * A heartbeat; the agent answers with its health report.
 *
 * @since 0.1.0
 * @category supervisor to agent
 */
export const Ping = Schema.Struct({ id: Schema.String, type: Schema.Literal("ping") })

/**
 * The request with this id timed out or was interrupted: stop working on it, send nothing.
 *
 * @since 0.1.0
 * @category supervisor to agent
 */
export const Cancel = Schema.Struct({ id: Schema.String, type: Schema.Literal("cancel") })

/**
 * Phase 1 of shutdown: finish in-flight work and exit 0. stdin is closed right after it.
 *
 * @since 0.1.0
 * @category supervisor to agent
 */
export const Shutdown = Schema.Struct({ type: Schema.Literal("shutdown") })

/**
 * Sent right after `ready`, before any task, to an agent that announced `checkpoint`, when there is something to
 * restore: `data`, the agent's last checkpoint (absent when none), and `requests`, the checkpoints of the requests
 * that were in flight when the last incarnation died, by their old ids.
 *
 * @since 0.1.0
 * @category supervisor to agent
 */
export const Restore = Schema.Struct({
  type: Schema.Literal("restore"),
  data: Schema.optional(Schema.Unknown),
  requests: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

/**
 * @since 0.1.0
 * @category supervisor to agent
 */
export type Restore = typeof Restore.Type

/**
 * Any message the supervisor sends.
 *
 * @since 0.1.0
 * @category supervisor to agent
 */
export const Outgoing = Schema.Union(Task, Ping, Cancel, Shutdown, Restore)

/**
 * @since 0.1.0
 * @category supervisor to agent
 */
export type Outgoing = typeof Outgoing.Type

// ---------------------------------------------------------------------------------------------------------------
// agent -> supervisor
// ---------------------------------------------------------------------------------------------------------------

/**
 * Sent once when the callback is loaded: STARTING becomes RUNNING on it. `features` lists the 1.1 features the
 * agent speaks (see {@link FEATURES}; unknown names are ignored); a v1 agent sends none.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const Ready = Schema.Struct({
  type: Schema.Literal("ready"),
  protocol: Schema.Number,
  /**
   * The 1.1 features the agent speaks (`"stream"`, `"checkpoint"`). Read leniently, as an unknown feature is: a
   * value that is not an array keeps the agent a v1 agent, and items that are not strings are ignored
   * (`featuresOf`), so that a malformed field never stops a `ready` (logged by the supervisor).
   */
  features: Schema.optional(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category agent to supervisor
 */
export type Ready = typeof Ready.Type

/**
 * A successful response.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const ResponseOk = Schema.Struct({ id: Schema.String, status: Schema.Literal("ok"), result: Schema.Unknown })

/**
 * @since 0.1.0
 * @category agent to supervisor
 */
export type ResponseOk = typeof ResponseOk.Type

/**
 * What the callback raised.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const ErrorInfo = Schema.Struct({
  message: Schema.String,
  type: Schema.String,
  stack: Schema.optional(Schema.String)
})

/**
 * A failed response: the callback raised.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const ResponseError = Schema.Struct({ id: Schema.String, status: Schema.Literal("error"), error: ErrorInfo })

/**
 * @since 0.1.0
 * @category agent to supervisor
 */
export type ResponseError = typeof ResponseError.Type

/**
 * A piece of the result of a task sent with `stream: true`, before its response; chunks of one request arrive in
 * the order sent.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const Chunk = Schema.Struct({ id: Schema.String, type: Schema.Literal("chunk"), data: Schema.Unknown })

/**
 * @since 0.1.0
 * @category agent to supervisor
 */
export type Chunk = typeof Chunk.Type

/**
 * A checkpoint: without `id`, the agent's own (kept in the store, the latest wins); with `id`, that request's
 * (kept while it is in flight). Sent back in {@link Restore} to the next incarnation.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const Checkpoint = Schema.Struct({
  type: Schema.Literal("checkpoint"),
  id: Schema.optional(Schema.String),
  data: Schema.Unknown
})

/**
 * @since 0.1.0
 * @category agent to supervisor
 */
export type Checkpoint = typeof Checkpoint.Type

/**
 * Protocol 1.2: a task the agent hands to a topic of its tree (`Supervisor.publish`), fire and forget: no reply.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const Publish = Schema.Struct({
  type: Schema.Literal("publish"),
  topic: Schema.String.pipe(Schema.minLength(1)),
  payload: Schema.Unknown
})

/**
 * @since 0.1.0
 * @category agent to supervisor
 */
export type Publish = typeof Publish.Type

/**
 * Any message an agent sends.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const Incoming = Schema.Union(Ready, ResponseOk, ResponseError, Chunk, Checkpoint, Publish)

/**
 * @since 0.1.0
 * @category agent to supervisor
 */
export type Incoming = typeof Incoming.Type

/**
 * The agent's own report, the `result` of a ping.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const HealthReport = Schema.Struct({
  health: Schema.Struct({
    uptime_seconds: Schema.Number,
    total_requests: Schema.Number,
    memory_mb: Schema.Number,
    cpu_percent: Schema.Number
  })
})

/**
 * @since 0.1.0
 * @category agent to supervisor
 */
export type HealthReport = typeof HealthReport.Type

// ---------------------------------------------------------------------------------------------------------------
// hot path
// ---------------------------------------------------------------------------------------------------------------

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const isErrorInfo = (u: unknown): boolean =>
  isRecord(u) && typeof u.message === "string" && typeof u.type === "string" &&
  (u.stack === undefined || typeof u.stack === "string")

/**
 * Checks a parsed JSON value against the response members of {@link Incoming} without a schema run.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeResponse = (u: unknown): ResponseOk | ResponseError | undefined => {
  if (!isRecord(u) || typeof u.id !== "string") return undefined
  if (u.status === "ok" && "result" in u) return u as unknown as ResponseOk
  if (u.status === "error" && isErrorInfo(u.error)) return u as unknown as ResponseError
  return undefined
}

/**
 * Checks a parsed JSON value against {@link Ready} without a schema run.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeReady = (u: unknown): Ready | undefined =>
  isRecord(u) && u.type === "ready" && typeof u.protocol === "number" ? u as unknown as Ready : undefined

/**
 * The features a `ready` announces: its `features`' string items; none when the field is absent or not an array.
 *
 * @since 0.1.0
 * @category decoding
 */
export const featuresOf = (ready: Ready): ReadonlyArray<string> =>
  Array.isArray(ready.features) ? ready.features.filter((item): item is string => typeof item === "string") : []

/**
 * Checks a parsed JSON value against {@link Publish} without a schema run: a non-empty `topic` and a `payload`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodePublish = (u: unknown): Publish | undefined =>
  isRecord(u) && u.type === "publish" && typeof u.topic === "string" && u.topic.length > 0 && "payload" in u
    ? u as unknown as Publish
    : undefined

/**
 * Checks a parsed JSON value against {@link Chunk} or {@link Checkpoint} without a schema run: the 1.1 messages an
 * agent sends besides responses and `ready`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeNotice = (u: unknown): Chunk | Checkpoint | undefined => {
  if (!isRecord(u) || !("data" in u)) return undefined
  if (u.type === "chunk") return typeof u.id === "string" ? u as unknown as Chunk : undefined
  if (u.type === "checkpoint") {
    return u.id === undefined || typeof u.id === "string" ? u as unknown as Checkpoint : undefined
  }
  return undefined
}

/**
 * Checks a parsed JSON value against {@link Incoming} without a schema run: `undefined` when it is not a message.
 * A value that fits both a response and another message is a response, as in the union. The reader calls the
 * parts itself, so that it knows which one matched (a response first: the hot path).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeIncoming = (u: unknown): Incoming | undefined =>
  decodeResponse(u) ?? decodeReady(u) ?? decodeNotice(u) ?? decodePublish(u)

/**
 * Encodes a task line, with the caller's idempotency `key` when there is one. Throws a `TypeError` for a payload
 * JSON cannot send as it is: what `JSON.stringify` throws (BigInt, cycles), and what it would change without a word
 * (a `Map` or `Set` sent as `{}`, a typed array, `NaN` or `Infinity` sent as `null`, a function or a symbol left out),
 * naming where it is (`payload.tags is a Set, ...`); `undefined` is left out (a key) or `null` (in an array), as
 * JSON writes an optional field. Callers turn the throw into a typed error.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeTask = (id: string, payload: unknown, key?: string): string => {
  // `payload: undefined` would vanish from the object: send null so the agent always gets the key.
  const json: string | undefined = StrictJson.stringify(payload === undefined ? null : payload, "payload")
  if (json === undefined) throw new TypeError(`a ${typeof payload} is not JSON`)
  const keyed = key === undefined ? "" : `,"key":${JSON.stringify(key)}`
  return `{"id":${JSON.stringify(id)},"type":"task","payload":${json}${keyed}}\n`
}

/**
 * Encodes the line of a task sent as a stream (`"stream":true`: only to an agent that announced `stream`). Throws
 * as {@link encodeTask} does.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeStreamTask = (id: string, payload: unknown, key?: string): string => {
  const line = encodeTask(id, payload, key)
  return `${line.slice(0, -2)},"stream":true}\n`
}

/**
 * Encodes a restore line: `data` when there is an agent checkpoint, `requests` when there are request ones. Throws
 * what `JSON.stringify` throws (never, for values that came from the agent's JSON).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRestore = (restore: Restore): string => `${JSON.stringify(restore)}\n`

/**
 * Encodes a ping line.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodePing = (id: string): string => `{"id":${JSON.stringify(id)},"type":"ping"}\n`

/**
 * Encodes a cancel line.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeCancel = (id: string): string => `{"id":${JSON.stringify(id)},"type":"cancel"}\n`

/**
 * The shutdown line.
 *
 * @since 0.1.0
 * @category encoding
 */
export const shutdownLine = `{"type":"shutdown"}\n`

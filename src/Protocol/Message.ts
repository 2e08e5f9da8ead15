/**
 * Wire protocol v1: the messages exchanged with an agent, one JSON object per line.
 *
 * The schemas are the specification. The reader's hot path uses {@link decodeIncoming}, a hand-written check
 * that accepts exactly what {@link Incoming} accepts (a property test holds the two together), because running
 * a schema decoder over every response costs more than the rest of the round trip.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The protocol version this library speaks.
 *
 * @since 0.1.0
 */
export const PROTOCOL_VERSION = 1

// ---------------------------------------------------------------------------------------------------------------
// supervisor -> agent
// ---------------------------------------------------------------------------------------------------------------

/**
 * A request for the agent's callback.
 *
 * @since 0.1.0
 * @category supervisor to agent
 */
export const Task = Schema.Struct({ id: Schema.String, type: Schema.Literal("task"), payload: Schema.Unknown })

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
 * Any message the supervisor sends.
 *
 * @since 0.1.0
 * @category supervisor to agent
 */
export const Outgoing = Schema.Union(Task, Ping, Cancel, Shutdown)

/**
 * @since 0.1.0
 * @category supervisor to agent
 */
export type Outgoing = typeof Outgoing.Type

// ---------------------------------------------------------------------------------------------------------------
// agent -> supervisor
// ---------------------------------------------------------------------------------------------------------------

/**
 * Sent once when the callback is loaded: STARTING becomes RUNNING on it.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const Ready = Schema.Struct({ type: Schema.Literal("ready"), protocol: Schema.Number })

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
 * Any message an agent sends.
 *
 * @since 0.1.0
 * @category agent to supervisor
 */
export const Incoming = Schema.Union(Ready, ResponseOk, ResponseError)

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
 * Checks a parsed JSON value against {@link Incoming} without a schema run: `undefined` when it is not a message.
 * A value that fits both a response and `ready` is a response, as in the union. The reader calls the two parts
 * itself, so that it knows which one matched.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeIncoming = (u: unknown): Incoming | undefined => decodeResponse(u) ?? decodeReady(u)

/**
 * Encodes a task line. Throws what `JSON.stringify` throws (BigInt, cycles): callers turn that into a typed error.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeTask = (id: string, payload: unknown): string => {
  // `payload: undefined` would vanish from the object: send null so the agent always gets the key.
  const json: string | undefined = JSON.stringify(payload === undefined ? null : payload)
  if (json === undefined) throw new TypeError(`a ${typeof payload} is not JSON`)
  return `{"id":${JSON.stringify(id)},"type":"task","payload":${json}}\n`
}

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

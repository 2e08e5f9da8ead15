/**
 * What an agent writes, line by line: stdout lines become responses (or the `ready` message, a stream's chunks, a
 * checkpoint, stray output, protocol errors), stderr lines are logged and the last few kept for error reports.
 *
 * Called synchronously from Node's event handlers; stdout is the hot path: a chunk of complete, valid lines is
 * decoded once and each line parsed once, with no allocation here beyond the parse.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { AgentTaskError, ProtocolError } from "../../Errors.js"
import * as StrictJson from "../../internal/standalone/strictJson.js"
import * as Message from "../../Protocol/Message.js"
import { decodeUtf8Lenient, decodeUtf8Strict, type Line, LineSplitter } from "../../Protocol/Ndjson.js"
import type * as Config from "../Config.js"
import type * as AgentProcess from "../Process.js"
import type * as Output from "./output.js"
import type * as Requests from "./requests.js"

/** Where a log line longer than this is cut: logs need the start of a line, not 16 MiB of it. */
const STDERR_LINE_BYTES = 16 * 1024

/** Protocol errors logged per incarnation; the rest are counted (`stats.protocolErrors`), not logged. */
const LOGGED_PROTOCOL_ERRORS = 10

/** The start of an over-long response line, where both adapters write the request's `id` first. */
const LEADING_ID = /^\s*\{\s*"id"\s*:\s*"([^"\\]{1,200})"/
/** A line that goes on, after its leading id, as a chunk does (`"type":"chunk"`, as every adapter writes it). */
const CHUNK_AFTER_ID = /^\s*\{\s*"id"\s*:\s*"[^"\\]{1,200}"\s*,\s*"type"\s*:\s*"chunk"/

/** The counters of {@link AgentProcess.Stats} that are counted as events happen. @internal */
export type Counters = {
  -readonly [K in Exclude<keyof AgentProcess.Stats, "inFlight" | "waiting">]: number
}

/** Counters at zero. @internal */
export const makeCounters = (): Counters => ({
  requests: 0,
  responses: 0,
  lateResponses: 0,
  lateChunks: 0,
  droppedCheckpoints: 0,
  protocolErrors: 0,
  outputLines: 0,
  stderrLines: 0
})

/** The reader of an agent's stdout and stderr, fed chunk by chunk by the child's listeners. @internal */
export interface Channel {
  /** A chunk of stdout. */
  readonly onStdout: (chunk: Uint8Array) => void
  /** A chunk of stderr. */
  readonly onStderr: (chunk: Uint8Array) => void
  /** Both pipes have closed: the lines they left unterminated are delivered. */
  readonly end: () => void
  /** The most recent stderr lines, oldest first (a copy). */
  readonly recentStderr: () => Array<string>
}

/** Where the lines go: the request table, the counters, the output log, the `ready` signal. @internal */
export interface Options {
  readonly config: Config.AgentConfig
  readonly table: Requests.Table
  readonly counters: Counters
  readonly output: Output.OutputLog
  /** Hands a log entry to the incarnation's logging fiber (we are outside any fiber here). */
  readonly log: (effect: Effect.Effect<void>) => void
  /** The agent said it is ready (called for every `ready` message; the first one counts). */
  readonly onReady: (ready: Message.Ready) => void
  /** The agent sent its checkpoint (no id), within `maxCheckpointBytes`. */
  readonly onCheckpoint: (data: unknown) => void
  /** Called with each stderr line as it is read (after the ring and the log have it). */
  readonly onStderrLine?: ((text: string) => void) | undefined
  /** The agent published a task to a topic (protocol 1.2); without it, such a message is a protocol error. */
  readonly onPublish?: ((topic: string, payload: unknown) => void) | undefined
}

/** A channel with empty splitters and an empty stderr ring. @internal */
export const make = (
  { config, counters, log, onCheckpoint, onPublish, onReady, onStderrLine: onLine, output, table }: Options
): Channel => {
  const name = config.name
  const stderrRing: Array<string> = []

  /** A protocol error: counted always, logged for the first few only (an agent may break the protocol per byte). */
  const protocolError = (message: string) => {
    counters.protocolErrors++
    if (counters.protocolErrors <= LOGGED_PROTOCOL_ERRORS) log(Effect.logWarning(message))
    if (counters.protocolErrors === LOGGED_PROTOCOL_ERRORS) {
      log(Effect.logWarning(`${LOGGED_PROTOCOL_ERRORS} protocol errors: further ones are counted, not logged`))
    }
  }

  // ---- stdout: lines -> responses ----
  const onStdoutLine = (line: Line): void => {
    if (line.droppedBytes > 0) return onTooLong(line)
    const text = decodeUtf8Strict(line.bytes)
    if (text === undefined) {
      protocolError(`agent stdout: a line of ${line.bytes.length} bytes is not valid UTF-8; discarded`)
      return
    }
    onStdoutText(text)
  }
  const onTooLong = (line: Line): void => {
    const size = line.bytes.length + line.droppedBytes
    const error = new ProtocolError({
      agent: name,
      reason: "too_long",
      detail: `a stdout line of ${size} bytes exceeds maxMessageBytes (${config.maxMessageBytes}); discarded`
    })
    // The adapters write `id` first: the request it answers fails now rather than at its timeout.
    const head = decodeUtf8Lenient(line.bytes.subarray(0, 512))
    const id = LEADING_ID.exec(head)?.[1]
    if (id !== undefined && CHUNK_AFTER_ID.test(head)) {
      // A chunk: its stream fails and is cancelled; a chunk for a plain task (never asked for) is only dropped.
      table.failStream(
        id,
        new ProtocolError({
          agent: name,
          reason: "too_long",
          detail: `a chunk of request ${id} is ${size} bytes, over maxMessageBytes (${config.maxMessageBytes}); ` +
            "discarded, and the stream cancelled"
        })
      )
      return protocolError(error.message)
    }
    // The ids this supervisor makes need no escapes: an id with one is no id of ours.
    const entry = id === undefined ? undefined : table.answer(id)
    if (entry !== undefined) {
      entry.resume(Exit.fail(
        new ProtocolError({
          agent: name,
          reason: "too_long",
          detail: `the response to request ${entry.id} is ${size} bytes, over maxMessageBytes ` +
            `(${config.maxMessageBytes}); discarded`
        })
      ))
    }
    protocolError(error.message)
  }
  const onStdoutText = (text: string): void => {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    const response = Message.decodeResponse(json)
    if (response !== undefined) return onResponse(response)
    const notice = Message.decodeNotice(json)
    if (notice !== undefined) return notice.type === "chunk" ? onChunk(notice) : onAgentCheckpoint(notice)
    const published = Message.decodePublish(json)
    if (published !== undefined) {
      if (onPublish !== undefined) return onPublish(published.topic, published.payload)
      return protocolError(`agent published to "${published.topic}", but it runs outside a supervision tree: dropped`)
    }
    const hello = Message.decodeReady(json)
    if (hello === undefined) {
      if (text.length === 0) return
      counters.outputLines++
      output.push(text, "stdout")
      return
    }
    if (hello.protocol !== Message.PROTOCOL_VERSION) {
      log(Effect.logWarning(`agent speaks protocol ${hello.protocol}, this supervisor ${Message.PROTOCOL_VERSION}`))
    }
    onReady(hello)
  }
  const onChunk = (chunk: Message.Chunk): void => {
    switch (table.chunk(chunk.id, chunk.data)) {
      case "late":
        counters.lateChunks++
        return
      case "unasked":
        protocolError(`agent sent a chunk for request ${chunk.id}, which was not sent as a stream; dropped`)
    }
  }
  const onAgentCheckpoint = (checkpoint: Message.Checkpoint): void => {
    let json: string
    try {
      // Kept, stored and sent back as JSON: what cannot be written again as it came is no checkpoint, and must not
      // throw in this handler: nested past the stack's depth (which `JSON.parse` reads but `JSON.stringify` throws
      // on), or a number past a double's range (`1e400`, which `JSON.parse` reads as Infinity: `StrictJson`)
      json = StrictJson.stringify(checkpoint.data, "data") ?? "null"
    } catch (error) {
      protocolError(`agent sent a checkpoint that cannot be encoded again (${String(error)}); dropped`)
      return
    }
    const max = config.maxCheckpointBytes
    if (json.length * 3 > max && Buffer.byteLength(json) > max) {
      counters.droppedCheckpoints++
      // Logged once per incarnation: an agent that checkpoints too much does so at every step.
      if (counters.droppedCheckpoints === 1) {
        log(Effect.logWarning(
          `agent sent a checkpoint of ${Buffer.byteLength(json)} bytes, over maxCheckpointBytes (${max}): dropped, ` +
            "the one before is kept; further ones are counted (droppedCheckpoints), not logged"
        ))
      }
      return
    }
    if (checkpoint.id === undefined) onCheckpoint(checkpoint.data)
    else table.checkpoint(checkpoint.id, checkpoint.data)
  }
  const onResponse = (response: Message.ResponseOk | Message.ResponseError): void => {
    const entry = table.answer(response.id)
    if (entry === undefined) {
      counters.lateResponses++
      return
    }
    counters.responses++
    if (response.status === "ok") {
      entry.resume(Exit.succeed(response.result))
    } else {
      entry.resume(Exit.fail(
        new AgentTaskError({
          agent: name,
          requestId: response.id,
          errorType: response.error.type,
          errorMessage: response.error.message,
          ...(response.error.stack !== undefined ? { stack: response.error.stack } : {})
        })
      ))
    }
  }

  // ---- stderr: drained always (a full pipe blocks the child), logged, last lines kept ----
  const onStderrLine = (line: Line): void => {
    let text = decodeUtf8Lenient(line.bytes)
    if (line.droppedBytes > 0) text += ` [... ${line.droppedBytes} more bytes]`
    counters.stderrLines++
    stderrRing.push(text)
    if (stderrRing.length > config.stderrLines) stderrRing.shift()
    output.push(text, "stderr")
    onLine?.(text)
  }

  const stdoutSplitter = new LineSplitter(config.maxMessageBytes)
  const stderrSplitter = new LineSplitter(STDERR_LINE_BYTES)
  return {
    onStdout: (chunk) => stdoutSplitter.pushText(chunk, onStdoutText, onStdoutLine),
    onStderr: (chunk) => stderrSplitter.push(chunk, onStderrLine),
    end: () => {
      stdoutSplitter.end(onStdoutLine)
      stderrSplitter.end(onStderrLine)
    },
    recentStderr: () => [...stderrRing]
  }
}

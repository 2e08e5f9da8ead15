/**
 * What the adapter writes. Response, chunk, checkpoint and publish lines (a result, or a failure with the
 * description of a thrown value, none of which may throw: a hostile getter, proxy or `toJSON` must not kill the
 * agent), batched so that the lines produced within one turn of the event loop leave in a single write, with
 * backpressure (stdin pauses while stdout is full, and a stream's producer waits, through `writable` and
 * `whenWritable`, while the batch is past its high-water mark, so that at most about two batches are held while
 * stdout is full); the adapter's own log on stderr; and `exit`, which lets both pipes empty first.
 *
 * Importing this module takes stdout over: it keeps the real writer for the protocol before any user code can
 * run, then sends everything else that targets stdout (the global console writes through
 * `process.stdout.write` too) to stderr.
 *
 * @internal
 */
import * as StrictJson from "../../internal/standalone/strictJson.js"

/** The prefix of every line this adapter writes to stderr, to tell it apart from the user's output. */
const LOG_PREFIX = "[node-adapter]"

const stdout = process.stdout
const stderr = process.stderr

/**
 * Writes straight to the real stdout, bypassing the batch (the `ready` line, which nothing can precede).
 *
 * @internal
 */
export const protocolWrite = stdout.write.bind(stdout) as (
  chunk: string,
  callback?: (error?: Error | null) => void
) => boolean
const stderrWrite = stderr.write.bind(stderr) as (...args: Array<unknown>) => boolean
stdout.write = ((...args: Array<unknown>) => stderrWrite(...args)) as typeof stdout.write

/**
 * Writes one line of the adapter's own log to stderr.
 *
 * @internal
 */
export const log = (text: string): void => {
  stderrWrite(`${LOG_PREFIX} ${text}\n`)
}

/**
 * Past this many characters queued, a stream's producer waits for the batch to be handed to stdout. It bounds what
 * a fast generator can pile up between two flushes (which happen only once its microtasks let the event loop
 * turn), and is large enough that a batch of small chunks still leaves in one write. While stdout is full the
 * producer may fill the next batch, no more: at most about two batches are held.
 */
const HIGH_WATER_CHARS = 65_536

let output = ""
/** The producers waiting for room, woken once the batch has been handed to stdout. */
let waiters: Array<() => void> = []
let flushScheduled = false
let blocked = false
let exiting = false
let reading = false

/**
 * Whether `exit` has begun: nothing more is written, and nothing more need be handled.
 *
 * @internal
 */
export const isExiting = (): boolean => exiting

/**
 * Notes that stdin is being read, so that backpressure and `exit` pause it (and a drain resumes it).
 *
 * @internal
 */
export const startReading = (): void => {
  reading = true
}

/**
 * Queues one protocol line; the batch is written once the current turn of the event loop is over.
 *
 * @internal
 */
export const send = (line: string): void => {
  if (exiting) return
  output += line + "\n"
  if (!flushScheduled && !blocked) {
    flushScheduled = true
    // setImmediate runs right after the I/O callbacks of this turn and their microtasks: it gathers every
    // response they produced, sync or async, without a timer
    setImmediate(flush)
  }
}

/**
 * Whether a producer may queue more: the batch is under its high-water mark. Never once `exit` has begun: a
 * producer that waits lets the event loop reach the exit, where one whose lines are dropped would spin.
 *
 * @internal
 */
export const writable = (): boolean => !exiting && output.length < HIGH_WATER_CHARS

/**
 * Calls `wake` once there is room again (see `writable`); never after `exit` has begun.
 *
 * @internal
 */
export const whenWritable = (wake: () => void): void => {
  waiters.push(wake)
  if (!flushScheduled && !blocked) {
    flushScheduled = true
    setImmediate(flush)
  }
}

/**
 * Writes the queued lines (or, while the pipe is full, waits for `drain`), then wakes the waiting producers: they
 * fill the next batch while this one drains.
 */
const flush = (): void => {
  flushScheduled = false
  if (blocked || exiting) return
  if (output !== "") {
    const chunk = output
    output = ""
    if (!protocolWrite(chunk)) {
      // Backpressure: stop reading requests until the supervisor has read our responses
      blocked = true
      if (reading) process.stdin.pause()
      stdout.once("drain", onDrain)
    }
  }
  if (waiters.length > 0) {
    const woken = waiters
    waiters = []
    for (const wake of woken) wake()
  }
}

/** Resumes after backpressure. */
const onDrain = (): void => {
  blocked = false
  if (exiting) return
  if (reading) process.stdin.resume()
  flush()
}

/**
 * Writes what is queued, waits until stdout and stderr have handed everything to the OS, then exits.
 *
 * @internal
 */
export const exit = (code: number): void => {
  if (exiting) return
  exiting = true
  if (reading) process.stdin.pause()
  let pending = 2
  const done = (): void => {
    pending -= 1
    if (pending === 0) process.exit(code)
  }
  // Pipes are asynchronous on POSIX: exiting before these callbacks would cut the last responses short.
  // A write's callback runs once everything written before it has gone, so an empty write is a barrier.
  const chunk = output
  output = ""
  protocolWrite(chunk, done)
  stderrWrite("", done)
}

/**
 * What a response says about a thrown value.
 *
 * @internal
 */
export interface ErrorInfo {
  readonly message: string
  readonly type: string
  readonly stack?: string
}

/**
 * Describes a thrown value without ever throwing itself (a hostile getter or proxy must not kill the agent).
 *
 * @internal
 */
export const describeError = (error: unknown): ErrorInfo => {
  try {
    if (typeof error === "object" && error !== null) {
      const e = error as { readonly name?: unknown; readonly message?: unknown; readonly stack?: unknown }
      const name = typeof e.name === "string" && e.name !== "" ? e.name : undefined
      const constructor = (error as { readonly constructor?: unknown }).constructor
      const constructorName = typeof constructor === "function" && constructor.name !== "" ?
        constructor.name :
        undefined
      // A subclass that does not set `name` still says "Error": its constructor's name says more
      const type = name !== undefined && (name !== "Error" || constructorName === undefined) ?
        name :
        constructorName ?? "Error"
      const message = typeof e.message === "string" ? e.message : String(error)
      return typeof e.stack === "string" ? { message, type, stack: e.stack } : { message, type }
    }
    return { message: String(error), type: typeof error }
  } catch {
    return { message: "the error could not be described", type: "Error" }
  }
}

/**
 * The line of a failed response.
 *
 * @internal
 */
export const errorLine = (id: string, error: ErrorInfo): string =>
  JSON.stringify({ id, status: "error", error: { message: error.message, type: error.type, stack: error.stack } })

/**
 * A value's JSON (`undefined` is `null`), or a SerializationError that says which `what` JSON cannot encode: a
 * BigInt, a cycle, or a value JSON would change without a word, named by its path from `name` (`result.tags is a
 * Set, which JSON sends as {}`; NaN, a Map, a typed array...: `StrictJson`, as the supervisor refuses a payload).
 *
 * @internal
 */
export const encode = (value: unknown, what: string, name: string): string | ErrorInfo => {
  let json: string | undefined
  try {
    json = StrictJson.stringify(value === undefined ? null : value, name)
  } catch (error) {
    const info = describeError(error)
    return { ...info, message: `${what} cannot be encoded as JSON: ${info.message}`, type: "SerializationError" }
  }
  // JSON.stringify answers undefined for a function or a symbol: sending `null` would hide a bug
  return json ?? {
    message: `${what} cannot be encoded as JSON: a value of type ${typeof value}`,
    type: "SerializationError"
  }
}

/**
 * The line of a successful response, or of a SerializationError when JSON cannot encode the result.
 *
 * @internal
 */
export const okLine = (id: string, result: unknown): string => {
  const json = encode(result, "the result", "result")
  return typeof json === "string" ? `{"id":${JSON.stringify(id)},"status":"ok","result":${json}}` : errorLine(id, json)
}

/**
 * What a chunk line of the task `id` starts with; its data's JSON and a closing brace follow.
 *
 * @internal
 */
export const chunkPrefix = (id: string): string => `{"id":${JSON.stringify(id)},"type":"chunk","data":`

/**
 * The line of a publish (protocol 1.2), or a SerializationError when JSON cannot encode the payload.
 *
 * @internal
 */
export const publishLine = (topic: string, payload: unknown): string | ErrorInfo => {
  const json = encode(payload, "the publish payload", "payload")
  return typeof json === "string" ? `{"type":"publish","topic":${JSON.stringify(topic)},"payload":${json}}` : json
}

/**
 * The line of a checkpoint (the task's when `id` is given, else the agent's), or a SerializationError.
 *
 * @internal
 */
export const checkpointLine = (id: string | undefined, data: unknown): string | ErrorInfo => {
  const json = encode(data, "the checkpoint", "checkpoint")
  if (typeof json !== "string") return json
  return id === undefined ?
    `{"type":"checkpoint","data":${json}}` :
    `{"type":"checkpoint","id":${JSON.stringify(id)},"data":${json}}`
}

/**
 * What the adapter writes. Response lines (a result, or a failure with the description of a thrown value, none
 * of which may throw: a hostile getter, proxy or `toJSON` must not kill the agent), batched so that the lines
 * produced within one turn of the event loop leave in a single write, with backpressure (stdin pauses while
 * stdout is full); the adapter's own log on stderr; and `exit`, which lets both pipes empty first.
 *
 * Importing this module takes stdout over: it keeps the real writer for the protocol before any user code can
 * run, then sends everything else that targets stdout (the global console writes through
 * `process.stdout.write` too) to stderr.
 *
 * @internal
 */

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

let output = ""
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

/** Writes the queued lines, or waits for `drain` while the pipe is full. */
const flush = (): void => {
  flushScheduled = false
  if (blocked || output === "" || exiting) return
  const chunk = output
  output = ""
  if (!protocolWrite(chunk)) {
    // Backpressure: stop reading requests until the supervisor has read our responses
    blocked = true
    if (reading) process.stdin.pause()
    stdout.once("drain", onDrain)
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
 * The line of a successful response, or of a SerializationError when JSON cannot encode the result.
 *
 * @internal
 */
export const okLine = (id: string, result: unknown): string => {
  let json: string | undefined
  try {
    json = JSON.stringify(result === undefined ? null : result)
  } catch (error) {
    const info = describeError(error)
    return errorLine(id, {
      ...info,
      message: `the result cannot be encoded as JSON: ${info.message}`,
      type: "SerializationError"
    })
  }
  if (json === undefined) {
    // JSON.stringify answers undefined for a function or a symbol: sending `null` would hide a bug
    return errorLine(id, {
      message: `the result cannot be encoded as JSON: a value of type ${typeof result}`,
      type: "SerializationError"
    })
  }
  return `{"id":${JSON.stringify(id)},"status":"ok","result":${json}}`
}

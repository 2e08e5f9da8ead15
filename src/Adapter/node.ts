#!/usr/bin/env node
/**
 * The Node callback adapter: runs a user's JavaScript function as an agent that speaks wire protocol v1.
 *
 * `node dist/Adapter/node.js path/to/module.(js|mjs|cjs)[:exportName] [--check]`
 *
 * Without `:exportName` the module's `default` export is used when it is a function, else `handleRequest`.
 *
 * `shutdown` drains: no new task is accepted, the tasks in flight finish and are answered, then the process exits
 * (stdin EOF after `shutdown` changes nothing). stdin EOF without `shutdown` means the supervisor is gone (killed,
 * say) and nobody can receive a result: the tasks in flight are cancelled (their signals abort), get 0.5 s to
 * settle, and the process exits within 1 s even when one ignores its signal. Responses sent before stay sent.
 *
 * Exit codes: 0 after `shutdown`, or after stdin EOF with nothing in flight; 1 on an uncaught error outside any
 * task (or when stdout fails); 2 when the module fails to load (or the command line is wrong); 3 when the
 * function is missing; 4 on stdin EOF without `shutdown` while tasks were in flight (they were cancelled).
 *
 * This file runs on plain `node` with no loader and imports only `node:` built-ins: every dependency would be
 * paid for at each agent start.
 *
 * @since 0.1.0
 */
import { AsyncLocalStorage } from "node:async_hooks"
import { resolve } from "node:path"
import { performance } from "node:perf_hooks"
import { pathToFileURL } from "node:url"

/** The protocol version announced in the ready line. */
const PROTOCOL_VERSION = 1

/** Exit code when the module cannot be loaded or the command line is wrong. */
const EXIT_LOAD_FAILED = 2

/** Exit code when the module loads but exports no such function. */
const EXIT_NOT_FOUND = 3

/** Exit code when stdin ended without `shutdown` while tasks were in flight: they were cancelled, work was lost. */
const EXIT_ABANDONED = 4

/** After stdin EOF without `shutdown`: how long the cancelled tasks may take to settle. */
const ABANDON_GRACE_MS = 500

/** After stdin EOF without `shutdown`: when the process exits even if a flush of its output has not completed. */
const ABANDON_DEADLINE_MS = 900

/** The prefix of every line this adapter writes to stderr, to tell it apart from the user's output. */
const LOG_PREFIX = "[node-adapter]"

/** How much of an unusable line a warning quotes. */
const PREVIEW_CHARS = 200

/** The second argument the user's function receives. */
interface TaskContext {
  readonly id: string
  readonly signal: AbortSignal
}

/** The user's function. */
type Callback = (payload: unknown, context: TaskContext) => unknown

/** What a response says about a thrown value. */
interface ErrorInfo {
  readonly message: string
  readonly type: string
  readonly stack?: string
}

// Keep the real stdout writer for the protocol before any user code can run, then send everything else that
// targets stdout (the global console writes through `process.stdout.write` too) to stderr.
const stdout = process.stdout
const stderr = process.stderr
const protocolWrite = stdout.write.bind(stdout) as (chunk: string, callback?: (error?: Error | null) => void) => boolean
const stderrWrite = stderr.write.bind(stderr) as (...args: Array<unknown>) => boolean
stdout.write = ((...args: Array<unknown>) => stderrWrite(...args)) as typeof stdout.write

/** Writes one line of the adapter's own log to stderr. */
const log = (text: string): void => {
  stderrWrite(`${LOG_PREFIX} ${text}\n`)
}

// ---------------------------------------------------------------------------------------------------------------
// output: the lines produced within one turn of the event loop leave in a single write
// ---------------------------------------------------------------------------------------------------------------

let output = ""
let flushScheduled = false
let blocked = false
let exiting = false
let reading = false

/** Queues one protocol line; the batch is written once the current turn of the event loop is over. */
const send = (line: string): void => {
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

/** Writes what is queued, waits until stdout and stderr have handed everything to the OS, then exits. */
const exit = (code: number): void => {
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

// ---------------------------------------------------------------------------------------------------------------
// encoding responses
// ---------------------------------------------------------------------------------------------------------------

/** Describes a thrown value without ever throwing itself (a hostile getter or proxy must not kill the agent). */
const describeError = (error: unknown): ErrorInfo => {
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

/** The line of a failed response. */
const errorLine = (id: string, error: ErrorInfo): string =>
  JSON.stringify({ id, status: "error", error: { message: error.message, type: error.type, stack: error.stack } })

/** The line of a successful response, or of a SerializationError when JSON cannot encode the result. */
const okLine = (id: string, result: unknown): string => {
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

// ---------------------------------------------------------------------------------------------------------------
// tasks
// ---------------------------------------------------------------------------------------------------------------

/** Which task the running code belongs to, so that an uncaught error can be reported as that task's failure. */
const taskStorage = new AsyncLocalStorage<Task>()
const tasks = new Map<string, Task>()
let totalRequests = 0
let draining = false
let shutdownReceived = false
/** The tasks cancelled because stdin ended without `shutdown`; the drain waits (bounded) for them to settle. */
let abandoned: ReadonlyArray<Task> | undefined = undefined
let drainExitCode = 0
let callback: Callback = () => undefined

/**
 * A task in flight. It is also the context the user's function receives, so that one object per task is all the
 * bookkeeping costs; its state is private and its operations static, so that function sees only `id` and `signal`.
 */
class Task implements TaskContext {
  #controller: AbortController | undefined = undefined
  #cancelled = false
  #settled = false

  constructor(readonly id: string) {}

  /** Made on first use: most functions never look at it, and an AbortController is not free. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#cancelled) this.#controller.abort()
    }
    return this.#controller.signal
  }

  /** Whether the outcome is known (a late uncaught error can no longer be reported). */
  static isSettled(task: Task): boolean {
    return task.#settled
  }

  /** Aborts the signal; the outcome will not be sent, and a drain no longer waits for it (as in Python). */
  static cancel(task: Task): void {
    if (task.#cancelled) return
    task.#cancelled = true
    forget(task)
    const controller = task.#controller
    // Abort listeners are the user's code: run them as the task, so that one that throws fails only this task
    if (controller !== undefined) taskStorage.run(task, () => controller.abort())
    finishIfDrained()
  }

  /** Ends the task with its result. */
  static succeed(task: Task, result: unknown): void {
    if (task.#settled) return
    task.#settled = true
    forget(task)
    if (!task.#cancelled) send(okLine(task.id, result))
    finishIfDrained()
  }

  /** Ends the task with an error. */
  static fail(task: Task, error: unknown): void {
    if (task.#settled) return
    task.#settled = true
    forget(task)
    if (!task.#cancelled) send(errorLine(task.id, describeError(error)))
    finishIfDrained()
  }
}

/** Takes a task out of the ones in flight (only itself: a later task may reuse the id of a cancelled one). */
const forget = (task: Task): void => {
  if (tasks.get(task.id) === task) tasks.delete(task.id)
}

/** Calls the user's function for one task. */
const runTask = (id: string, payload: unknown): void => {
  totalRequests += 1
  if (draining) {
    send(errorLine(id, { message: "the agent is shutting down and accepts no new task", type: "AgentShuttingDown" }))
    return
  }
  if (tasks.has(id)) {
    // Answering would settle the first request with the second one's outcome: say it here and drop it
    log(`warning: ignoring task "${id}": a task with that id is already in flight`)
    return
  }
  const task = new Task(id)
  tasks.set(id, task)
  let result: unknown
  try {
    result = taskStorage.run(task, callback, payload, task)
  } catch (error) {
    Task.fail(task, error)
    return
  }
  if (typeof result === "object" && result !== null && typeof (result as PromiseLike<unknown>).then === "function") {
    // Promise.resolve returns a native promise as is and calls a foreign `then` safely
    Promise.resolve(result).then((value) => Task.succeed(task, value), (error) => Task.fail(task, error))
  } else {
    Task.succeed(task, result)
  }
}

/** Stops taking tasks; exits 0 once the tasks in flight have settled. */
const drain = (): void => {
  draining = true
  finishIfDrained()
}

/**
 * stdin ended without `shutdown`: nobody can receive a result, so rather than drain, cancels the tasks in flight
 * and exits once they have settled, within bounds, because settling is up to the user's code.
 */
const abandon = (): void => {
  const inFlight = [...tasks.values()]
  draining = true
  abandoned = inFlight
  drainExitCode = inFlight.length === 0 ? 0 : EXIT_ABANDONED
  const what = inFlight.length === 0 ? "exiting" : `cancelling ${inFlight.length} task(s) in flight and exiting`
  log(`stdin closed without shutdown: nobody can receive results; ${what}`)
  // A task that ignores its signal never settles; a flush into a pipe nobody reads never completes
  setTimeout(() => exit(drainExitCode), ABANDON_GRACE_MS)
  setTimeout(() => process.exit(drainExitCode), ABANDON_DEADLINE_MS)
  for (const task of inFlight) Task.cancel(task)
  finishIfDrained()
}

/** Exits once draining and nothing is in flight (after an EOF without `shutdown`: once the cancelled settled). */
const finishIfDrained = (): void => {
  if (draining && tasks.size === 0 && (abandoned === undefined || abandoned.every(Task.isSettled))) {
    exit(drainExitCode)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// health
// ---------------------------------------------------------------------------------------------------------------

// The first ping reports the CPU used since the process started: performance.now() counts from the same origin
let lastCpu: NodeJS.CpuUsage = { user: 0, system: 0 }
let lastWallMs = 0

/** The `result` of a ping. */
const health = (): string => {
  const cpu = process.cpuUsage()
  const wallMs = performance.now()
  const usedMicros = cpu.user - lastCpu.user + cpu.system - lastCpu.system
  const elapsedMicros = (wallMs - lastWallMs) * 1000
  lastCpu = cpu
  lastWallMs = wallMs
  const cpuPercent = elapsedMicros > 0 ? (usedMicros / elapsedMicros) * 100 : 0
  return JSON.stringify({
    health: {
      uptime_seconds: Math.round(process.uptime() * 1000) / 1000,
      total_requests: totalRequests,
      // memoryUsage.rss() reads one number; memoryUsage() walks every heap space
      memory_mb: Math.round((process.memoryUsage.rss() / 1048576) * 100) / 100,
      cpu_percent: Math.round(cpuPercent * 100) / 100
    }
  })
}

// ---------------------------------------------------------------------------------------------------------------
// input: split on newline bytes, decode a line only once it is complete
// ---------------------------------------------------------------------------------------------------------------

/** A short, printable quotation of an unusable line. */
const preview = (line: string): string =>
  JSON.stringify(line.length > PREVIEW_CHARS ? line.slice(0, PREVIEW_CHARS) + "..." : line)

/** Handles one complete line from the supervisor. */
const handleLine = (line: string): void => {
  let message: unknown
  try {
    message = JSON.parse(line)
  } catch {
    if (line.trim() !== "") log(`warning: ignoring a line that is not JSON: ${preview(line)}`)
    return
  }
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    log(`warning: ignoring a line that is not a JSON object: ${preview(line)}`)
    return
  }
  const { id, type } = message as { readonly id?: unknown; readonly type?: unknown }
  if (type === "shutdown") {
    shutdownReceived = true
    return drain()
  }
  if (typeof id !== "string" || (type !== "task" && type !== "ping" && type !== "cancel")) {
    log(`warning: ignoring a message that is not a task, ping, cancel or shutdown: ${preview(line)}`)
    return
  }
  if (type === "task") return runTask(id, (message as { readonly payload?: unknown }).payload)
  if (type === "ping") return send(`{"id":${JSON.stringify(id)},"status":"ok","result":${health()}}`)
  // An unknown id is the ordinary race with a task that has just finished
  const task = tasks.get(id)
  if (task !== undefined) Task.cancel(task)
}

// The pieces of a line that is still arriving: a line of several MiB comes in many chunks and is joined once
let partial: Array<Buffer> = []
let partialBytes = 0

/** Splits a chunk of stdin into lines. */
const onData = (chunk: Buffer): void => {
  let start = 0
  let newline = chunk.indexOf(10)
  while (newline !== -1) {
    if (partial.length === 0) {
      handleLine(chunk.toString("utf8", start, newline))
    } else {
      partial.push(chunk.subarray(start, newline))
      const line = Buffer.concat(partial, partialBytes + newline - start)
      partial = []
      partialBytes = 0
      handleLine(line.toString("utf8"))
    }
    if (exiting) return
    start = newline + 1
    newline = chunk.indexOf(10, start)
  }
  if (start < chunk.length) {
    partial.push(start === 0 ? chunk : chunk.subarray(start))
    partialBytes += chunk.length - start
  }
}

let inputEnded = false

/** stdin EOF (or a failed read): a last line without its newline still counts; then drain or abandon. */
const onEnd = (): void => {
  if (inputEnded) return
  inputEnded = true
  if (partialBytes > 0) {
    const line = Buffer.concat(partial, partialBytes).toString("utf8")
    partial = []
    partialBytes = 0
    handleLine(line)
  }
  if (exiting) return
  if (shutdownReceived) drain()
  else abandon()
}

// ---------------------------------------------------------------------------------------------------------------
// uncaught errors
// ---------------------------------------------------------------------------------------------------------------

/** An error no task owns: the process state is unknown, so log it and exit 1. */
const fatal = (error: unknown): void => {
  const info = describeError(error)
  log(`uncaught ${info.type} outside any task, exiting: ${info.stack ?? info.message}`)
  exit(1)
}

/**
 * Routes an uncaught exception or unhandled rejection to the task whose code raised it. Node runs these handlers
 * in the async context of the failing callback or of the rejected promise, so the task storage still holds it.
 */
const onUncaught = (error: unknown): void => {
  const task = taskStorage.getStore()
  if (task === undefined) return fatal(error)
  if (!Task.isSettled(task)) return Task.fail(task, error)
  const info = describeError(error)
  log(`warning: uncaught ${info.type} from task "${task.id}" after it settled: ${info.stack ?? info.message}`)
}

// ---------------------------------------------------------------------------------------------------------------
// loading the module
// ---------------------------------------------------------------------------------------------------------------

/** The usage line, shown with a command-line error. */
const USAGE = "usage: node-adapter path/to/module.(js|mjs|cjs)[:exportName] [--check]"

/** Splits `path[:exportName]`; a colon is a separator only after a file extension (so not `C:\` nor `a:b/`). */
const parseTarget = (target: string): { readonly file: string; readonly exportName: string | undefined } => {
  const match = /^(.+\.\w+):([^/\\:]+)$/.exec(target)
  return match === null ? { file: target, exportName: undefined } : { file: match[1], exportName: match[2] }
}

/** A CommonJS module's `module.exports` object (also an ESM default export that is an object). */
const defaultObject = (namespace: Record<string, unknown>): Record<string, unknown> | undefined => {
  const value = namespace.default
  return typeof value === "object" && value !== null ? value as Record<string, unknown> : undefined
}

/** Looks an exported function up; for CommonJS also on `module.exports`, which Node may not expose by name. */
const lookup = (namespace: Record<string, unknown>, name: string): Callback | undefined => {
  const value = namespace[name]
  if (typeof value === "function") return value as Callback
  const property = defaultObject(namespace)?.[name]
  return typeof property === "function" ? property as Callback : undefined
}

/** The sorted names of the exported functions, for a message that says what could have been meant. */
const exportedFunctions = (namespace: Record<string, unknown>): Array<string> => {
  const names = new Set<string>()
  for (const [name, value] of Object.entries(namespace)) {
    if (typeof value === "function") names.add(name)
  }
  const object = defaultObject(namespace)
  if (object !== undefined) {
    for (const [name, value] of Object.entries(object)) {
      if (typeof value === "function") names.add(name)
    }
  }
  return [...names].sort()
}

/** Reports a module that could not be loaded (or a wrong command line) and exits 2. */
const loadFailed = (check: boolean, info: ErrorInfo, what: string): void => {
  if (check) {
    send(JSON.stringify({ type: "check", ok: false, error: "load_failed", message: info.message, stack: info.stack }))
  } else {
    log(`${what}: ${info.stack ?? info.message}`)
  }
  exit(EXIT_LOAD_FAILED)
}

/** Loads the callback, then serves the protocol (or, with `--check`, reports and exits). */
const main = async (): Promise<void> => {
  const args = process.argv.slice(2)
  const check = args.includes("--check")
  const positional = args.filter((arg) => arg !== "--check")
  if (positional.length !== 1 || positional[0].startsWith("-")) {
    const message = `expected one module and optionally --check, got ${JSON.stringify(args)}`
    return loadFailed(check, { message, type: "UsageError" }, USAGE)
  }
  const { exportName, file } = parseTarget(positional[0])
  const path = resolve(process.cwd(), file)
  let namespace: Record<string, unknown>
  try {
    namespace = await import(pathToFileURL(path).href) as Record<string, unknown>
  } catch (error) {
    return loadFailed(check, describeError(error), `cannot load ${path}`)
  }
  const name = exportName ?? "handleRequest"
  const found = exportName === undefined && typeof namespace.default === "function" ?
    namespace.default as Callback :
    lookup(namespace, name)
  if (found === undefined) {
    const functions = exportedFunctions(namespace)
    if (check) {
      send(JSON.stringify({ type: "check", ok: false, error: "callback_not_found", function: name, functions }))
    } else {
      const wanted = exportName === undefined ? `a default export or "handleRequest"` : `"${exportName}"`
      const listed = functions.length === 0 ? "none" : functions.join(", ")
      log(`no function ${wanted} in ${path}; exported functions: ${listed}. Name one with ${file}:exportName.`)
    }
    return exit(EXIT_NOT_FOUND)
  }
  if (check) {
    send(`{"type":"check","ok":true}`)
    return exit(0)
  }
  callback = found
  protocolWrite(`{"type":"ready","protocol":${PROTOCOL_VERSION}}\n`)
  const stdin = process.stdin
  reading = true
  stdin.on("data", onData)
  stdin.on("end", onEnd)
  stdin.on("error", (error) => {
    log(`stdin failed, treating it as EOF: ${describeError(error).message}`)
    onEnd()
  })
}

// With stderr gone the log has nowhere to go, which is no reason to stop serving
stderr.on("error", () => {})
stdout.on("error", (error) => {
  // The supervisor is gone (EPIPE): nobody can read a response any more, and waiting for a flush would hang
  log(`stdout failed, exiting: ${describeError(error).message}`)
  process.exit(1)
})
process.on("uncaughtException", onUncaught)
process.on("unhandledRejection", onUncaught)
main().catch(fatal)

/**
 * The adapter's input: stdin split on newline bytes (a line is decoded only once it is complete, so a multi-byte
 * character split across chunks survives), each line parsed and dispatched (task, ping, cancel, shutdown,
 * restore; a type this adapter does not know is ignored, as protocol 1.1 asks, with one warning per type), and
 * stdin's end: a drain after `shutdown`, an abandon without it. A ping is answered here, with the agent's own
 * health report: uptime, tasks received, resident memory, and the CPU used since the previous ping.
 *
 * @internal
 */
import { performance } from "node:perf_hooks"
import { describeError, isExiting, log, send, startReading } from "./output.js"
import { abandon, cancelTask, drain, requestCount, restore, runTask } from "./tasks.js"

/** How much of an unusable line a warning quotes. */
const PREVIEW_CHARS = 200

/** How many unknown message types get their warning; past that, they are ignored without one. */
const MAX_UNKNOWN_TYPES = 32

/** The unknown message types already warned about. */
const unknownTypes = new Set<unknown>()

let shutdownReceived = false

/** A short, printable quotation of an unusable line. */
const preview = (line: string): string =>
  JSON.stringify(line.length > PREVIEW_CHARS ? line.slice(0, PREVIEW_CHARS) + "..." : line)

// The first ping reports the CPU used since the process started: performance.now() counts from the same origin
let lastCpu: NodeJS.CpuUsage = { user: 0, system: 0 }
let lastWallMs = 0

/** The `result` of a ping, as JSON. */
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
      total_requests: requestCount(),
      // memoryUsage.rss() reads one number; memoryUsage() walks every heap space
      memory_mb: Math.round((process.memoryUsage.rss() / 1048576) * 100) / 100,
      cpu_percent: Math.round(cpuPercent * 100) / 100
    }
  })
}

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
  if (type === "restore") return onRestore(message as RestoreMessage, line)
  if (type !== "task" && type !== "ping" && type !== "cancel") {
    // A later protocol's message: ignored, as the protocol asks (one warning per type, to find typos)
    if (!unknownTypes.has(type) && unknownTypes.size < MAX_UNKNOWN_TYPES) {
      unknownTypes.add(type)
      log(`warning: ignoring messages of type ${JSON.stringify(type) ?? "undefined"}, unknown here: ${preview(line)}`)
    }
    return
  }
  if (typeof id !== "string") {
    log(`warning: ignoring a ${type} without a string id: ${preview(line)}`)
    return
  }
  if (type === "task") {
    const task = message as { readonly payload?: unknown; readonly stream?: unknown; readonly key?: unknown }
    return runTask(id, task.payload, task.stream === true, typeof task.key === "string" ? task.key : undefined)
  }
  if (type === "ping") return send(`{"id":${JSON.stringify(id)},"status":"ok","result":${health()}}`)
  cancelTask(id)
}

/** A `restore` message (protocol 1.1): the last agent checkpoint, and the checkpoints of the requests cut short. */
interface RestoreMessage {
  readonly data?: unknown
  readonly requests?: unknown
}

/** Keeps a `restore` for the tasks' context; `requests` that is not an object is ignored, with a warning. */
const onRestore = (message: RestoreMessage, line: string): void => {
  const { data, requests } = message
  const valid = typeof requests === "object" && requests !== null && !Array.isArray(requests)
  if (requests !== undefined && !valid) {
    log(`warning: ignoring the requests of a restore, which are not an object: ${preview(line)}`)
  }
  restore(data, valid ? requests as Readonly<Record<string, unknown>> : undefined)
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
    if (isExiting()) return
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
  if (isExiting()) return
  if (shutdownReceived) drain()
  else abandon()
}

/**
 * Starts reading requests from stdin (once the `ready` line is out); a failed read counts as EOF.
 *
 * @internal
 */
export const listen = (): void => {
  const stdin = process.stdin
  startReading()
  stdin.on("data", onData)
  stdin.on("end", onEnd)
  stdin.on("error", (error) => {
    log(`stdin failed, treating it as EOF: ${describeError(error).message}`)
    onEnd()
  })
}

/**
 * The adapter's input: stdin split on newline bytes (a line is decoded only once it is complete, so a multi-byte
 * character split across chunks survives), each line parsed and dispatched (task, ping, cancel, shutdown), and
 * stdin's end: a drain after `shutdown`, an abandon without it. A ping is answered here, with the agent's own
 * health report: uptime, tasks received, resident memory, and the CPU used since the previous ping.
 *
 * @internal
 */
import { performance } from "node:perf_hooks"
import { describeError, isExiting, log, send, startReading } from "./output.js"
import { abandon, cancelTask, drain, requestCount, runTask } from "./tasks.js"

/** How much of an unusable line a warning quotes. */
const PREVIEW_CHARS = 200

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
  if (typeof id !== "string" || (type !== "task" && type !== "ping" && type !== "cancel")) {
    log(`warning: ignoring a message that is not a task, ping, cancel or shutdown: ${preview(line)}`)
    return
  }
  if (type === "task") return runTask(id, (message as { readonly payload?: unknown }).payload)
  if (type === "ping") return send(`{"id":${JSON.stringify(id)},"status":"ok","result":${health()}}`)
  cancelTask(id)
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

/**
 * The conformance contract (`docs/CONFORMANCE.md`) as a callback for the Node adapter:
 * `node dist/Adapter/node.js dist/internal/conformance/nodeAgent.js`, or `Conformance.nodeAgent`. It ships with the
 * package (as `dist/internal/conformance/nodeAgent.js`), so that the adapter can be checked where it is installed.
 *
 * It is written as any user's callback is, with nothing to help the adapter: `print` is `console.log`, and
 * `spawn`'s child inherits the process's stdout (`stdio: "inherit"`), which the Node adapter cannot redirect (the
 * README's "Writing an agent" says so, and `stdout-child` shows it). It imports only `node:` built-ins: the
 * adapter loads it on plain `node`.
 *
 * The protocol 1.1 operations use the adapter's 1.1 API: `stream` returns an async generator (chunks for a task
 * sent with `"stream":true`, the list of its pieces for one without), `checkpoint` calls
 * `context.checkpoint(data, { task: false })` (the agent's checkpoint), `restored` reads `context.restored`; protocol
 * 1.2's `publish` calls `context.publish(topic, payload)` (which throws a TypeError for an empty topic: an error
 * response).
 *
 * @internal
 */
import { spawn } from "node:child_process"

/** What `fail` throws: its name is the error's `type`. */
class ConformanceFailure extends Error {
  override name = "ConformanceFailure"
}

/** Sleeps started so far; the latest one's number, and whether a cancel cut it short. */
let sleeps = 0
let latestCutShort = false

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const mine = ++sleeps
    latestCutShort = false
    const cut = () => {
      clearTimeout(timer)
      if (mine === sleeps) latestCutShort = true
      reject(new Error("cancelled"))
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", cut)
      resolve()
    }, ms)
    if (signal.aborted) cut()
    else signal.addEventListener("abort", cut, { once: true })
  })

/** A pause between two pieces of a stream that a cancel cuts short (the generator then throws, and stops). */
const pause = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const cut = () => {
      clearTimeout(timer)
      reject(new Error("cancelled"))
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", cut)
      resolve()
    }, ms)
    if (signal.aborted) cut()
    else signal.addEventListener("abort", cut, { once: true })
  })

/** `n` pieces `{ i }`, `ms` apart, then `value`: the adapter streams or collects them. */
async function* pieces(n: number, ms: number, value: unknown, signal: AbortSignal): AsyncGenerator<unknown, unknown> {
  for (let i = 0; i < n; i++) {
    if (ms > 0) await pause(ms, signal)
    yield { i }
  }
  return value
}

/** The part of the adapter's task context the contract uses (`src/Adapter/node.ts`). */
interface TaskContext {
  readonly signal: AbortSignal
  readonly checkpoint: (data: unknown, options?: { readonly task?: boolean }) => unknown
  readonly restored: unknown
  readonly publish: (topic: string, payload: unknown) => void
}

const run = (text: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", "echo \"$1\"", "sh", text], { stdio: ["ignore", "inherit", "inherit"] })
    child.on("error", reject)
    child.on("exit", () => resolve())
  })

/** The contract: `payload.op` says what to do. */
export default async function conformance(
  payload: { readonly op?: unknown; readonly [key: string]: unknown },
  context: TaskContext
): Promise<unknown> {
  switch (payload?.op) {
    case "echo":
      return payload.value
    case "sleep":
      await sleep(Number(payload.ms), context.signal)
      return payload.value
    case "fail":
      throw new ConformanceFailure(String(payload.message))
    case "print":
      console.log(String(payload.text))
      return "printed"
    case "spawn":
      await run(String(payload.text))
      return "spawned"
    case "wasCancelled":
      return latestCutShort
    case "stream":
      return pieces(Number(payload.n), Number(payload.ms ?? 0), payload.value, context.signal)
    case "checkpoint":
      context.checkpoint("data" in payload ? payload.data : null, { task: false })
      return "checkpointed"
    case "restored":
      return context.restored ?? null
    case "publish":
      context.publish(payload.topic as string, payload.payload)
      return "published"
    default:
      throw new TypeError(`unknown operation: ${JSON.stringify(payload?.op)}`)
  }
}

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

const run = (text: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", "echo \"$1\"", "sh", text], { stdio: ["ignore", "inherit", "inherit"] })
    child.on("error", reject)
    child.on("exit", () => resolve())
  })

/** The contract: `payload.op` says what to do. */
export default async function conformance(
  payload: { readonly op?: unknown; readonly [key: string]: unknown },
  context: { readonly signal: AbortSignal }
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
    default:
      throw new TypeError(`unknown operation: ${JSON.stringify(payload?.op)}`)
  }
}

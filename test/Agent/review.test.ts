/**
 * Regressions found by review: ways an agent or the machine could still crash the host process.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as AgentProcess from "../../src/Agent/Process.js"
import { emfileHost, TestLive } from "../support.js"

/** An agent whose first task gets a 2 MiB reply line that starts like a response but with an id JSON rejects. */
const oddIdAgent = `
process.stdout.write(JSON.stringify({ type: "ready", protocol: 1 }) + "\\n")
let first = true
require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const msg = JSON.parse(line)
  if (msg.type === "shutdown") process.exit(0)
  if (msg.type !== "task") return
  if (first) {
    first = false
    process.stdout.write('{"id":"\\\\x1' + "\\t" + '","status":"ok","result":"' + "y".repeat(2 * 1024 * 1024) + '"}\\n')
  }
  process.stdout.write(JSON.stringify({ id: msg.id, status: "ok", result: msg.payload }) + "\\n")
})
`

describe.sequential("review regressions", () => {
  it.scopedLive("an over-long stdout line whose id is no valid JSON string is discarded; the agent goes on", () =>
    Effect.gen(function*() {
      let uncaught = 0
      const count = () => void uncaught++
      process.on("uncaughtExceptionMonitor", count)
      yield* Effect.addFinalizer(() => Effect.sync(() => process.off("uncaughtExceptionMonitor", count)))
      const agent = yield* AgentProcess.make({
        name: "odd-id",
        command: process.execPath,
        args: ["-e", oddIdAgent],
        maxMessageBytes: 1024 * 1024,
        requestTimeout: "20 seconds"
      })
      assert.strictEqual(yield* agent.request("first"), "first")
      assert.strictEqual(yield* agent.request("second"), "second")
      assert.strictEqual((yield* agent.stats).protocolErrors, 1)
      assert.strictEqual(uncaught, 0)
    }).pipe(Effect.provide(TestLive)))

  it.live(
    "no file descriptors left: the start fails with AgentStartupError EMFILE, the process lives on",
    () =>
      Effect.gen(function*() {
        const result = yield* emfileHost()
        assert.deepStrictEqual(result, { tag: "AgentStartupError", code: "EMFILE", uncaught: 0 })
      }),
    90_000
  )
})

/**
 * Protocol 1.1 end to end through the library, for each adapter: the Python and Node adapters running their
 * conformance agents, and the Go adapter's echo-agent (built here; skipped with the reason where there is no `go`,
 * a failure under `REQUIRE_SERVICES=1`). Through `AgentSupervisor.handleEventStream`: chunks in order then the
 * result; and a checkpoint the agent sent is restored to the next incarnation after a SIGKILL.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Adapters from "../../src/Adapters.js"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import type * as Config from "../../src/Agent/Config.js"
import * as Conformance from "../../src/Conformance.js"
import { buildEchoAgent, probeGo } from "../fixtures/go.js"
import { root, TestLive } from "../support.js"

const go = probeGo()
let goScratch = ""
let goAgent = ""

beforeAll(async () => {
  if (!("goroot" in go)) return
  goScratch = fs.mkdtempSync(path.join(os.tmpdir(), "stream-go-"))
  goAgent = await buildEchoAgent(goScratch)
}, 300_000)

afterAll(() => {
  if (goScratch !== "") fs.rmSync(goScratch, { recursive: true, force: true })
})

const adapters: ReadonlyArray<readonly [string, () => Adapters.CommandLine | undefined]> = [
  ["python", () => Adapters.pythonCallback(path.join(root, "adapters", "python", "conformance_agent.py"))],
  ["node", () => Conformance.nodeAgent],
  ["go", () => goAgent === "" ? undefined : { command: goAgent, args: [] }]
]

describe.each(adapters)("protocol 1.1 through the %s adapter", (name, commandLine) => {
  const config = (suffix: string): Config.AgentConfigInput => ({
    name: `stream-${name}-${suffix}`,
    ...commandLine()!,
    restartBackoff: 0,
    startupTimeout: "30 seconds",
    requestTimeout: "30 seconds"
  })
  const skipped = () => {
    if (commandLine() !== undefined) return false
    const why = "unavailable" in go ? go.unavailable : "no echo-agent"
    if (process.env.REQUIRE_SERVICES === "1") assert.fail(`Go is required (REQUIRE_SERVICES=1): ${why}`)
    console.warn(`skipping the Go adapter's protocol 1.1 test: ${why}`)
    return true
  }

  it.scopedLive("handleEventStream: the chunks in order, then the result", () =>
    Effect.gen(function*() {
      if (skipped()) return
      const agent = yield* AgentSupervisor.make(config("chunks"))
      assert.deepStrictEqual((yield* agent.metadata).features, ["stream", "checkpoint", "publish"])
      const events = yield* Stream.runCollect(agent.handleEventStream({ op: "stream", n: 5, value: "done" }))
      assert.deepStrictEqual(Chunk.toArray(events), [
        ...Array.from({ length: 5 }, (_, i) => ({ _tag: "Chunk" as const, data: { i } })),
        { _tag: "Done" as const, result: "done" }
      ])
    }).pipe(Effect.provide(TestLive)), 60_000)

  it.scopedLive("a checkpoint is restored to the next incarnation after a SIGKILL", () =>
    Effect.gen(function*() {
      if (skipped()) return
      const agent = yield* AgentSupervisor.make(config("checkpoint"))
      const events = yield* agent.subscribe
      assert.strictEqual(yield* agent.handleEvent({ op: "restored" }), null)
      assert.strictEqual(yield* agent.handleEvent({ op: "checkpoint", data: { n: 7 } }), "checkpointed")
      // The supervisor has it before the kill: the agent's next answer comes after its checkpoint line.
      assert.deepStrictEqual(Option.getOrNull((yield* agent.metadata).checkpoint), { n: 7 })
      const pid = Option.getOrThrow((yield* agent.metadata).pid)
      process.kill(-pid, "SIGKILL")
      while (true) {
        const event = yield* Queue.take(events)
        if (event._tag === "StateChanged" && event.to === "RUNNING") break
      }
      assert.deepStrictEqual(yield* agent.handleEvent({ op: "restored" }), { n: 7 })
    }).pipe(Effect.provide(TestLive)), 60_000)
})

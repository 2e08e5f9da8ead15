import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as path from "node:path"
import * as AgentProcess from "../../src/Agent/Process.js"
import { failureOf, fixture, root, TestLive } from "../support.js"

const adapters = {
  python: (target: string) => ({
    command: "python3",
    args: [path.join(root, "adapters", "python", "supervisor_adapter.py"), target]
  }),
  node: (target: string) => ({
    command: process.execPath,
    args: [path.join(root, "dist", "Adapter", "node.js"), target]
  })
}

const cases = [
  {
    language: "python",
    echo: adapters.python(`${fixture("python", "echo_agent.py")}:handle_request`),
    slow: adapters.python(`${fixture("python", "async_agent.py")}:handle_request`),
    raising: adapters.python(`${fixture("python", "raising_agent.py")}:handle_request`),
    errorType: "ValueError"
  },
  {
    language: "node",
    echo: adapters.node(fixture("node", "echo.mjs")),
    slow: adapters.node(fixture("node", "slow.mjs")),
    raising: adapters.node(`${fixture("node", "throws.mjs")}`),
    errorType: "TypeError"
  }
] as const

describe.sequential("adapters through AgentProcess", () => {
  for (const c of cases) {
    it.scopedLive(`${c.language}: echo, health report, and many requests at once`, () =>
      Effect.gen(function*() {
        const agent = yield* AgentProcess.make({ name: `${c.language}-echo`, ...c.echo })
        assert.deepStrictEqual(yield* agent.request({ text: "héllo ✓", n: [1, 2] }), { text: "héllo ✓", n: [1, 2] })
        const results = yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => i), (i) => agent.request(i), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(results, Array.from({ length: 200 }, (_, i) => i))
        const pong = yield* agent.ping()
        const report = Option.getOrThrow(pong.report)
        assert.isAtLeast(report.total_requests, 201)
        assert.isAbove(report.memory_mb, 1)
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive(`${c.language}: a raising callback gives AgentTaskError with its type and stack`, () =>
      Effect.gen(function*() {
        const agent = yield* AgentProcess.make({ name: `${c.language}-raise`, ...c.raising })
        const error = failureOf(yield* Effect.exit(agent.request("sync")))
        assert.strictEqual(error._tag, "AgentTaskError")
        if (error._tag === "AgentTaskError") {
          assert.strictEqual(error.errorType, c.errorType)
          assert.isString(error.stack)
        }
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive(`${c.language}: a timed-out request is cancelled in the agent; the agent keeps serving`, () =>
      Effect.gen(function*() {
        const agent = yield* AgentProcess.make({ name: `${c.language}-slow`, ...c.slow })
        const error = failureOf(
          yield* Effect.exit(agent.request({ ms: 5000, sleep: 5, value: 1 }, { timeout: "200 millis" }))
        )
        assert.strictEqual(error._tag, "AgentTimeoutError")
        const pong = yield* agent.ping()
        assert.isTrue(Option.isSome(pong.report))
        const stats = yield* agent.stats
        assert.strictEqual(stats.inFlight, 0)
      }).pipe(Effect.provide(TestLive)))
  }
})

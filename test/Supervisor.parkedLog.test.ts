/**
 * The log line of an agent parked by its circuit breaker names the agent, in its text and its annotations (from a
 * new user's trial: it said only "agent crashed 1 times in a row", annotated with its supervisor). A real agent.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as LogLevel from "effect/LogLevel"
import * as path from "node:path"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, eventually, logMessages, tempDir, TestLive } from "./support.js"

describe("a parked agent's log line", () => {
  it.scopedLive("names the agent parked", () => {
    const { entries, provide } = logMessages(LogLevel.Error)
    return Effect.gen(function*() {
      const dir = yield* tempDir("parked-log")
      // Crashes right after ready while this file is missing; parked at its first crash.
      const config = agentConfig("crash-unless", { name: "fragile-one", maxRestartAttempts: 0 })
      yield* Supervisor.make({
        intensity: { maxRestarts: 10, window: "10 seconds" },
        children: [Supervisor.agent({ id: "a", config: { ...config, args: [...config.args!, path.join(dir, "no")] } })]
      })
      yield* eventually("the park is logged", () => entries.some((l) => l.text.includes("circuit open")))
      const parked = entries.find((l) => l.text.includes("circuit open"))!
      assert.match(parked.text, /^agent "fragile-one" crashed 1 times in a row: circuit open/)
      assert.strictEqual(parked.annotations.agent, "fragile-one")
    }).pipe(provide, Effect.provide(TestLive))
  })
})

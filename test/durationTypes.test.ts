/**
 * The short forms of a duration (`"5s"`, `"250ms"`, `"1h30m"`) in TypeScript: every setting, option and parameter
 * of the library is typed to take them, as a tree file, the CLI and the admin API do (a reviewer's finding: a
 * README that said `"5s"` everywhere, and a type error for it in code). This file type-checks them (`tsc` reads the
 * tests) and runs them: each reaches its setting as the duration written, where Effect's `Duration.decode` alone
 * throws on `"5s"`. Text that is no duration is still a type error.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Config from "../src/Agent/Config.js"
import * as ProcessTree from "../src/Agent/ProcessTree.js"
import * as ChildSpec from "../src/ChildSpec.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, TestLive } from "./support.js"

describe("durations' short forms in TypeScript", () => {
  it.effect("an agent's settings take them, and decode to the durations written", () =>
    Effect.gen(function*() {
      const config = yield* Config.make({
        name: "typed",
        command: "x",
        requestTimeout: "5s",
        heartbeatInterval: "1h30m",
        gracefulTimeout: "250 ms",
        pingTimeout: "2 seconds",
        restartBackoff: "1.5s"
      })
      assert.strictEqual(Duration.toMillis(config.requestTimeout), 5_000)
      assert.strictEqual(Duration.toMillis(config.heartbeatInterval), 90 * 60_000)
      assert.strictEqual(Duration.toMillis(config.gracefulTimeout), 250)
      assert.strictEqual(Duration.toMillis(config.pingTimeout), 2_000)
      assert.strictEqual(Duration.toMillis(config.restartBackoff), 1_500)
    }))

  it.scoped("a tree's intensity and shutdown, a call's timeout, a store's and a sample's options take them", () =>
    Effect.gen(function*() {
      const tree = yield* Supervisor.make({
        name: "typed",
        intensity: { maxRestarts: 3, window: "1h30m" },
        storeFlushTimeout: "2s",
        children: [
          ChildSpec.agent({ id: "echo", config: agentConfig("echo", { heartbeatInterval: "30s" }), shutdown: "2s" })
        ]
      })
      const echo = yield* tree.child("echo")
      assert.deepStrictEqual(yield* echo.handleEvent({ ping: 1 }, { timeout: "10s" }), { ping: 1 })
      const pid = Option.getOrThrow((yield* echo.metadata).pid)
      // A sample of the agent's group, read no more than a second old (it threw on "1s")
      const sample = yield* ProcessTree.sample(pid, { maxAge: "1s" })
      assert.isDefined(sample)
      const store = Store.resilient(yield* Store.Store, { timeout: "2s", summaryInterval: "10s" })
      assert.isDefined(store)
    }).pipe(Effect.provide(TestLive)))

  it("text that is no duration is a type error", () => {
    // @ts-expect-error: a unit the grammar does not know
    const potatoes: Config.AgentConfigInput = { name: "x", command: "x", requestTimeout: "5 potatoes" }
    // @ts-expect-error: a number without its unit is text, not milliseconds
    const unitless: Config.AgentConfigInput = { name: "x", command: "x", requestTimeout: "30" }
    assert.isDefined(potatoes)
    assert.isDefined(unitless)
  })
})

/**
 * The short forms of a duration (`"5s"`, `"250ms"`, `"1h30m"`) in TypeScript: every setting, option and parameter
 * of the library is typed to take them, as a tree file, the CLI and the admin API do (a reviewer's finding: a
 * README that said `"5s"` everywhere, and a type error for it in code). This file type-checks them (`tsc` reads the
 * tests) and runs them: each reaches its setting as the duration written, where Effect's `Duration.decode` alone
 * throws on `"5s"`. Text that is no duration is still a type error.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Config from "../src/Agent/Config.js"
import * as ProcessTree from "../src/Agent/ProcessTree.js"
import * as RestartPolicy from "../src/Agent/RestartPolicy.js"
import * as ChildSpec from "../src/ChildSpec.js"
import * as Cluster from "../src/Cluster.js"
import * as Memory from "../src/Store/Memory.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, configErrorOf, TestLive } from "./support.js"

/** The problems of the ConfigError `effect` fails with (the test fails on a throw, a defect or any other error). */
const problemsOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(configErrorOf(effect), (error) => error.problems.map(({ field, value }) => ({ field, value })))

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
      const store = yield* Store.resilient(yield* Store.Store, { timeout: "2s", summaryInterval: "10s" })
      // the wrapper works: what is written through it is read back through it
      yield* store.saveState({ agent_name: "wrapped", state: "RUNNING", restart_count: 2, updated_at: 1 })
      assert.strictEqual(Option.getOrThrow(yield* store.getState("wrapped")).restart_count, 2)
    }).pipe(Effect.provide(TestLive)))

  // A reviewer's finding: these four took the text straight to `Duration.decode`, which threw (a defect, not the
  // setting's error), and read a negative number as zero.
  it.effect("typed text the decoder refuses, and negative numbers, fail with the setting's ConfigError", () =>
    Effect.gen(function*() {
      const memory = yield* Memory.make()
      assert.deepStrictEqual(yield* problemsOf(ProcessTree.sample(process.pid, { maxAge: "-5s" })), [
        { field: "maxAge", value: "\"-5s\"" }
      ])
      assert.deepStrictEqual(
        yield* problemsOf(ProcessTree.sample(process.pid, { stale: "server" as "serve" })),
        [{ field: "stale", value: "\"server\"" }]
      )
      assert.deepStrictEqual(
        yield* problemsOf(Store.resilient(memory, { timeout: "1e3ms", summaryInterval: -1 })),
        [{ field: "timeout", value: "\"1e3ms\"" }, { field: "summaryInterval", value: "-1" }]
      )
      assert.deepStrictEqual(
        yield* problemsOf(Store.restore("echo", { timeout: "-2s" }).pipe(Effect.provideService(Store.Store, memory))),
        [{ field: "timeout", value: "\"-2s\"" }]
      )
      assert.deepStrictEqual(yield* problemsOf(RestartPolicy.makeIntensity({ maxRestarts: 1, window: "-5s" })), [
        { field: "window", value: "\"-5s\"" }
      ])
      assert.deepStrictEqual(yield* problemsOf(RestartPolicy.makeIntensity({ maxRestarts: Number.NaN, window: 5 })), [
        { field: "maxRestarts", value: "NaN" }
      ])
      // Refused before the database is touched: no client is needed to find the timeout wrong.
      assert.deepStrictEqual(
        yield* problemsOf(
          Cluster.migrate("typed", "-1m").pipe(Effect.provideService(SqlClient.SqlClient, {} as never))
        ),
        [{ field: "timeout", value: "\"-1m\"" }]
      )
    }))

  it("text that is no duration is a type error", () => {
    // @ts-expect-error: a unit the grammar does not know
    const potatoes: Config.AgentConfigInput = { name: "x", command: "x", requestTimeout: "5 potatoes" }
    // @ts-expect-error: a number without its unit is text, not milliseconds
    const unitless: Config.AgentConfigInput = { name: "x", command: "x", requestTimeout: "30" }
    assert.isDefined(potatoes)
    assert.isDefined(unitless)
  })
})

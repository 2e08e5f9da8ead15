/**
 * A call to a child the tree has stopped is refused by the tree, the same for an agent and a pool: a
 * `SupervisorChildError` `stopped` after `terminateChild` (restartChild it), `supervisor_stopped` once the tree
 * itself has stopped, for every operation on its children, a child it does not know included. Before, an agent child's call went to its stopped agent, whose `AgentStoppedError` advised to
 * wait for its supervisor to start it, which nothing would. And `childSupervisor` of an agent child says it is one.
 * Real agent processes (test/fixtures/agents/agent.mjs).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import { SupervisorChildError } from "../src/Errors.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, closeableScope, eventuallyEffect, failureOf, tempDir, TestLive } from "./support.js"

const tree = () =>
  Supervisor.make({
    name: "calls",
    children: [
      Supervisor.agent({ id: "a", config: agentConfig("echo", { name: "calls-a" }) }),
      Supervisor.pool({ id: "p", size: 1, config: agentConfig("echo", { name: "calls-p" }) })
    ]
  })

/** The reason of the `SupervisorChildError` an effect fails with (a test failure otherwise). */
const reasonOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    const error = failureOf(exit)
    assert.instanceOf(error, SupervisorChildError, String(error))
    return (error as unknown as SupervisorChildError).reason
  })

describe.concurrent("a call to a child the tree has stopped", () => {
  it.scopedLive(
    "after terminateChild: stopped, for an agent and a pool, a call and a stream; restartChild ends it",
    () =>
      Effect.gen(function*() {
        const sup = yield* tree()
        assert.deepStrictEqual(yield* sup.call("a", { echo: 1 }), 1)
        yield* sup.terminateChild("a")
        yield* sup.terminateChild("p")
        assert.deepStrictEqual(
          [
            yield* reasonOf(sup.call("a", { echo: 2 })),
            yield* reasonOf(sup.call("p", { echo: 2 })),
            yield* reasonOf(Stream.runDrain(sup.callStream("a", { echo: 2 })))
          ],
          ["stopped", "stopped", "stopped"]
        )
        const error = failureOf(yield* Effect.exit(sup.call("a", { echo: 2 })))
        assert.include(String((error as SupervisorChildError).remediation), "restartChild")
        yield* sup.restartChild("a")
        assert.deepStrictEqual(yield* sup.call("a", { echo: 3 }), 3)
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "childSupervisor of an agent child: not_a_supervisor, saying what it is (it said not found)",
    () =>
      Effect.gen(function*() {
        const sup = yield* tree()
        const error = failureOf(yield* Effect.exit(sup.childSupervisor("a"))) as SupervisorChildError
        assert.deepInclude(error, { _tag: "SupervisorChildError", reason: "not_a_supervisor" })
        assert.include(error.message, "it is an agent, not a nested supervisor or a pool")
        assert.include(error.remediation, "child(id)")
        assert.deepInclude(failureOf(yield* Effect.exit(sup.childSupervisor("nope"))), { reason: "not_found" })
        assert.strictEqual((yield* sup.childSupervisor("p")).name, "calls/p")
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "after the tree's stop: supervisor_stopped, for an agent and a pool, and every operation",
    () =>
      Effect.gen(function*() {
        const scope = yield* closeableScope
        const sup = yield* tree().pipe(Scope.extend(scope))
        assert.deepStrictEqual(yield* sup.call("p", { echo: 1 }), 1)
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(
          [yield* reasonOf(sup.call("a", { echo: 2 })), yield* reasonOf(sup.call("p", { echo: 2 }))],
          ["supervisor_stopped", "supervisor_stopped"]
        )
        // Whatever the child, known or not: the tree is down (before, a call of an unknown id said not_found, and
        // terminateChild and deleteChild went on as if the tree ran: deleteChild forgot a child's stored spec)
        const operations: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown>]> = [
          ["call nope", sup.call("nope", { echo: 2 })],
          ["callStream nope", Stream.runDrain(sup.callStream("nope", { echo: 2 }))],
          ["child a", sup.child("a")],
          ["child nope", sup.child("nope")],
          ["childSupervisor p", sup.childSupervisor("p")],
          ["childSupervisor nope", sup.childSupervisor("nope")],
          ["terminateChild a", sup.terminateChild("a")],
          ["terminateChild nope", sup.terminateChild("nope")],
          ["deleteChild a", sup.deleteChild("a")],
          ["restartChild a", sup.restartChild("a")],
          ["scale p", sup.scale("p", 2)],
          ["scale nope", sup.scale("nope", 2)],
          ["reload a", sup.reload("a")],
          ["startChild b", sup.startChild(Supervisor.agent({ id: "b", config: agentConfig("echo", { name: "b" }) }))]
        ]
        for (const [what, operation] of operations) {
          assert.strictEqual(yield* reasonOf(operation), "supervisor_stopped", what)
        }
        // The views still answer: every child listed, stopped
        assert.deepStrictEqual((yield* sup.whichChildren).map((c) => [c.id, c.status]), [["p", "stopped"], [
          "a",
          "stopped"
        ]])
        // Stopped by its scope: the remediation does not say it escalated, nor that its await tells (it succeeds)
        const error = failureOf(yield* Effect.exit(sup.call("a", { echo: 3 })))
        const remediation = String((error as SupervisorChildError).remediation)
        assert.include(
          remediation,
          "The supervisor has stopped, or is stopping: its scope closed, or it shut itself down"
        )
        assert.notInclude(remediation, "await")
        yield* sup.await
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "during and after the tree's stop: a call to any child, parked or not reached yet, is refused; poolInfo is a view",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("call-during-stop")
        const scope = yield* closeableScope
        // Crashes right after ready (parked at its first crash); ignores shutdown (its stop waits for its SIGTERM)
        const fragile = agentConfig("crash-unless", { name: "stop-park", maxRestartAttempts: 0 })
        const sup = yield* Supervisor.make({
          name: "stopping",
          intensity: { maxRestarts: 10, window: "10 seconds" },
          children: [
            Supervisor.agent({ id: "park", config: { ...fragile, args: [...fragile.args!, path.join(dir, "no")] } }),
            Supervisor.pool({ id: "p", size: 1, config: agentConfig("echo", { name: "stop-p" }) }),
            Supervisor.agent({ id: "a", config: agentConfig("echo", { name: "stop-a" }) }),
            Supervisor.agent({
              id: "slow",
              config: agentConfig("ignore-shutdown", { name: "stop-slow", gracefulTimeout: "20 seconds" })
            })
          ]
        }).pipe(Scope.extend(scope))
        const events = yield* sup.subscribe
        yield* eventuallyEffect("park is parked", Effect.map(sup.whichChildren, (all) => all.some((c) => c.parked)))
        const slow = Option.getOrThrow((yield* sup.whichChildren).find((c) => c.id === "slow")!.pid)
        // Ends the stop's wait for "slow" even when an assertion fails before the test does
        let killed = false
        yield* Effect.addFinalizer(() =>
          killed ? Effect.void : Effect.try(() => process.kill(slow, "SIGKILL")).pipe(Effect.ignore)
        )
        // The stop begins with "slow" (reverse order) and waits for it: "a" and "p" still run meanwhile
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        yield* Queue.take(events).pipe(
          Effect.repeat({
            until: (e) =>
              e._tag === "Agent" && e.child === "slow" && e.event._tag === "StateChanged" && e.event.to === "STOPPING"
          })
        )
        // Before, "a" answered and "park" said its circuit was open
        assert.deepStrictEqual(
          [yield* reasonOf(sup.call("a", { echo: 1 })), yield* reasonOf(sup.call("park", { echo: 1 }))],
          ["supervisor_stopped", "supervisor_stopped"]
        )
        // Before, poolInfo failed once the stop had begun (the admin API showed no pool)
        assert.strictEqual((yield* sup.poolInfo("p")).members.length, 1)
        process.kill(slow, "SIGKILL")
        killed = true
        yield* Fiber.join(closing)
        assert.deepStrictEqual(
          [yield* reasonOf(sup.call("a", { echo: 1 })), yield* reasonOf(sup.call("park", { echo: 1 }))],
          ["supervisor_stopped", "supervisor_stopped"]
        )
        assert.deepInclude(yield* sup.poolInfo("p"), { size: 1, members: [] })
        assert.strictEqual(yield* reasonOf(sup.poolInfo("a")), "not_a_pool")
      }).pipe(Effect.provide(TestLive)),
    30_000
  )
})

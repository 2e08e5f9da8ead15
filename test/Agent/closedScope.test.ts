/**
 * An agent whose scope has closed (the end of the scope it was made in, or its tree's stop): a `start` or `restart`
 * of it fails at once, and a request says the agent is gone and what to do, `AgentStoppedError` with `closed: true`.
 * Before, its `restart` never returned (STARTING, no process: the start's fiber was to run in the closed scope), and
 * a request waited its whole timeout for that start (a new user's trial). Real agent processes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as Supervisor from "../../src/Supervisor.js"
import { agentConfig, closeableScope, failureOf, TestLive } from "../support.js"

/** The failure of `effect`, which must come long before the request's timeout (a test failure if it does not). */
const refusal = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(
    Effect.timeout(Effect.exit(effect), "20 seconds"),
    (exit) => failureOf(exit) as unknown as { _tag: string; closed?: boolean; during?: string; message: string }
  )

/** What every operation of an agent gone with its scope answers. */
const gone = (agent: AgentSupervisor.AgentSupervisor) =>
  Effect.gen(function*() {
    for (const [what, operation] of [["start", agent.start], ["restart", agent.restart]] as const) {
      const error = yield* refusal(operation)
      assert.deepInclude(error, { _tag: "AgentStoppedError", closed: true, during: "start" }, what)
      assert.include(error.message, `Agent "${agent.name}" is gone: its scope has closed`, what)
      assert.include(error.message, "no start reaches it any more", what)
    }
    // A long timeout: the request must be refused at once, not wait for a start that cannot come
    const request = yield* refusal(agent.handleEvent({ echo: 1 }, { timeout: "1 hour" }))
    assert.deepInclude(request, { _tag: "AgentStoppedError", closed: true })
    assert.include(request.message, "no request reaches it any more")
    assert.include(
      (request as unknown as { remediation: string }).remediation,
      "Make a new agent in a scope that is open"
    )
    // restartChild only while the tree lists the child (a deleted one's restart is not_found)
    assert.include(
      (request as unknown as { remediation: string }).remediation,
      "restartChild(id) starts a new agent while the tree still lists the child (whichChildren), startChild once"
    )
    assert.deepInclude(yield* refusal(agent.health), { _tag: "AgentStoppedError", closed: true })
    // Nothing was started: no process, stopped
    const metadata = yield* agent.metadata
    assert.deepStrictEqual([metadata.state, metadata.pid], ["STOPPED", Option.none()])
  })

describe.concurrent("an agent whose scope has closed", () => {
  it.scopedLive(
    "AgentSupervisor.make's: start, restart and requests are refused at once",
    () =>
      Effect.gen(function*() {
        const scope = yield* closeableScope
        const agent = yield* AgentSupervisor.make(agentConfig("echo", { name: "closed-own" })).pipe(Scope.extend(scope))
        assert.strictEqual(yield* agent.handleEvent({ echo: 1 }), 1)
        yield* Scope.close(scope, Exit.void)
        yield* gone(agent)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive("a tree's child, its handle kept past the tree's stop: the same", () =>
    Effect.gen(function*() {
      const scope = yield* closeableScope
      const sup = yield* Supervisor.make({
        name: "closed-tree",
        children: [Supervisor.agent({ id: "a", config: agentConfig("echo", { name: "closed-child" }) })]
      }).pipe(Scope.extend(scope))
      const agent = yield* sup.child("a")
      yield* Scope.close(scope, Exit.void)
      yield* gone(agent)
    }).pipe(Effect.provide(TestLive)), 60_000)
})

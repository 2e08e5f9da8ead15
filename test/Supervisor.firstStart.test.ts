/**
 * A child's agent during the start that makes it (the tree's, `startChild`'s): `whichChildren` shows it STARTING
 * with the pid of its process, a call to it waits for the start as a call to any STARTING agent does, and
 * `child(id)` waits for the start to end. Before, the child had no agent until its start ended: no pid, and
 * `child(id)` failed with "stopped" (a new user's trial). And `child(id)` of a pool or a nested supervisor says
 * which it is. Real agent processes (test/fixtures/agents/agent.mjs).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, failureOf, tempDir, TestLive } from "./support.js"

/** A child whose start ends when `file` exists (agent.mjs `ready-when`). */
const readyWhen = (id: string, file: string) => {
  const config = agentConfig("ready-when", { name: id })
  return Supervisor.agent({ id, config: { ...config, args: [...config.args!, file] } })
}

/** The pid of the next agent process the tree spawns. */
const spawned = (events: Queue.Dequeue<Supervisor.SupervisorEvent>) =>
  Queue.take(events).pipe(
    Effect.repeat({ until: (e) => e._tag === "Agent" && e.event._tag === "Spawned" }),
    Effect.map((e) => e._tag === "Agent" && e.event._tag === "Spawned" ? e.event.pid : 0)
  )

/** Waits until `fiber` has run and is waiting (or has ended): the state a test reads it in. */
const settled = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Fiber.status(fiber).pipe(
    Effect.tap(() => Effect.yieldNow()),
    Effect.repeat({ until: (status) => status._tag !== "Running" })
  )

describe.concurrent("a child while its agent first starts", () => {
  it.scopedLive(
    "startChild: STARTING with its pid; a call and child(id) wait for the start and get its answer",
    () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir("first-start"), "ready")
        const sup = yield* Supervisor.make({ name: "first", children: [] })
        const events = yield* sup.subscribe
        const starting = yield* Effect.fork(sup.startChild(readyWhen("slow", file)))
        const pid = yield* spawned(events)
        const info = (yield* sup.whichChildren).find((c) => c.id === "slow")!
        assert.deepStrictEqual([info.state, info.pid], ["STARTING", Option.some(pid)])
        const call = yield* Effect.fork(sup.call("slow", { echo: "after the start" }))
        const child = yield* Effect.fork(sup.child("slow"))
        // Both wait: neither failed nor answered before the agent is ready
        for (const fiber of [call, child]) assert.strictEqual((yield* settled(fiber))._tag, "Suspended")
        fs.writeFileSync(file, "")
        yield* Fiber.join(starting)
        assert.strictEqual(yield* Fiber.join(call), "after the start")
        const agent = yield* Fiber.join(child)
        assert.deepStrictEqual((yield* agent.metadata).pid, Option.some(pid))
        const after = (yield* sup.whichChildren).find((c) => c.id === "slow")!
        assert.deepStrictEqual([after.state, after.pid], ["RUNNING", Option.some(pid)])
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "a start that fails: the waiting call and child(id) fail, they do not hang",
    () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir("first-start"), "never")
        const sup = yield* Supervisor.make({ name: "first", children: [] })
        const events = yield* sup.subscribe
        const spec = readyWhen("never", file)
        const starting = yield* Effect.fork(
          sup.startChild({ ...spec, config: { ...spec.config, startupTimeout: "1 second" } })
        )
        yield* spawned(events)
        const call = yield* Effect.fork(sup.call("never", { echo: 1 }))
        const child = yield* Effect.fork(sup.child("never"))
        for (const fiber of [call, child]) assert.strictEqual((yield* settled(fiber))._tag, "Suspended")
        assert.strictEqual(failureOf(yield* Fiber.await(starting))._tag, "AgentStartupError")
        // A dynamic child whose start failed was never added (OTP's start_child)
        assert.deepInclude(failureOf(yield* Fiber.await(child)), { _tag: "SupervisorChildError", reason: "not_found" })
        assert.strictEqual(failureOf(yield* Fiber.await(call))._tag, "AgentStoppedError")
      }).pipe(Effect.provide(TestLive)),
    30_000
  )
  it.scopedLive(
    "child(id) of a pool or a nested supervisor says which it is and where its agents are",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          name: "kinds",
          children: [
            Supervisor.pool({ id: "p", size: 1, config: agentConfig("echo", { name: "kinds-p" }) }),
            Supervisor.supervisor({
              id: "n",
              children: [Supervisor.agent({ id: "a", config: agentConfig("echo", { name: "kinds-a" }) })]
            })
          ]
        })
        const pool = failureOf(yield* Effect.exit(sup.child("p")))
        assert.deepInclude(pool, { reason: "not_an_agent", kind: "pool", operation: "get the agent of" })
        assert.strictEqual(
          pool.message,
          `Supervisor "kinds" cannot get the agent of child "p": it is a pool, not an agent`
        )
        assert.include(pool.remediation, "call(id, ...) routes to one of them")
        const nested = failureOf(yield* Effect.exit(sup.child("n")))
        assert.deepInclude(nested, { reason: "not_an_agent", kind: "supervisor" })
        assert.strictEqual(
          nested.message,
          `Supervisor "kinds" cannot get the agent of child "n": it is a nested supervisor, not an agent`
        )
        assert.include(nested.remediation, "childSupervisor(id) gives the nested supervisor")
      }).pipe(Effect.provide(TestLive)),
    30_000
  )
})

/**
 * A child's agent during the start that makes it (the tree's, `startChild`'s): `whichChildren` shows it STARTING
 * with the pid of its process, a call to it waits for the start as a call to any STARTING agent does, and
 * `child(id)` waits for the start to end. Before, the child had no agent until its start ended: no pid, and
 * `child(id)` failed with "stopped" (a new user's trial). And `child(id)` of a pool or a nested supervisor says
 * which it is. A call that waited for a start that failed is told so, with the start-up error (`AgentCrashError`
 * `start_failed`; before, "stopped" in a tree, and "exited" for an agent's manual start, as if it had crashed while it
 * answered). Real agent processes (test/fixtures/agents/agent.mjs).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"
import * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, failStartUnless, failureOf, tempDir, TestLive } from "./support.js"

/** An agent whose start ends when `file` exists, or fails (exit 4) when `fail` does (agent.mjs `ready-when`). */
const readyWhenConfig = (name: string, file: string, fail: string) => {
  const config = agentConfig("ready-when", { name })
  return { ...config, args: [...config.args!, file, fail] }
}

/** A child whose start ends when `file` exists, or fails when `fail` does. */
const readyWhen = (id: string, file: string, fail = `${file}.fail`) =>
  Supervisor.agent({ id, config: readyWhenConfig(id, file, fail) })

/** The start-up failure a call that waited for it is told of (`AgentCrashError` `start_failed`). */
const startFailed = (error: unknown, agent: string) => {
  assert.deepInclude(error, { _tag: "AgentCrashError", reason: "start_failed", exitCode: 4 })
  const { message, remediation } = error as { readonly message: string; readonly remediation: string }
  assert.include(message, `Agent "${agent}" is not running: its start failed: Agent "${agent}" (pid `)
  assert.include(message, `exited with code 4 before it sent "ready"`)
  assert.include(message, "cannot start: told to fail", "the start's stderr")
  assert.include(remediation, "start it again")
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
    "a start that fails: the waiting call is told the start failed and why, child(id) fails; neither hangs",
    () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir("first-start"), "never")
        const sup = yield* Supervisor.make({ name: "first", children: [] })
        const events = yield* sup.subscribe
        const starting = yield* Effect.fork(sup.startChild(readyWhen("never", file)))
        yield* spawned(events)
        const call = yield* Effect.fork(sup.call("never", { echo: 1 }))
        const stream = yield* Effect.fork(Stream.runDrain(sup.callStream("never", { echo: 1 })))
        const child = yield* Effect.fork(sup.child("never"))
        for (const fiber of [call, stream, child]) assert.strictEqual((yield* settled(fiber))._tag, "Suspended")
        fs.writeFileSync(`${file}.fail`, "")
        assert.strictEqual(failureOf(yield* Fiber.await(starting))._tag, "AgentStartupError")
        // A dynamic child whose start failed was never added (OTP's start_child)
        assert.deepInclude(failureOf(yield* Fiber.await(child)), { _tag: "SupervisorChildError", reason: "not_found" })
        // Before, "was stopped before it could answer" (AgentStoppedError): not why
        startFailed(failureOf(yield* Fiber.await(call)), "never")
        startFailed(failureOf(yield* Fiber.await(stream)), "never")
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "an agent's manual start that fails: the waiting call, and a call after it, are told the start failed and why",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("manual-start")
        const file = path.join(dir, "ready")
        fs.writeFileSync(file, "")
        const agent = yield* AgentSupervisor.make(readyWhenConfig("manual", file, path.join(dir, "fail")))
        yield* agent.stop
        fs.rmSync(file)
        const starting = yield* Effect.fork(agent.start)
        // STARTING from the start's first step (under the agent's lock): a call from then on waits for it
        yield* Effect.repeat(agent.state, { until: (state) => state === "STARTING" })
        const call = yield* Effect.fork(agent.handleEvent({ echo: 1 }))
        assert.strictEqual((yield* settled(call))._tag, "Suspended")
        fs.writeFileSync(path.join(dir, "fail"), "")
        assert.strictEqual(failureOf(yield* Fiber.await(starting))._tag, "AgentStartupError")
        // Before, "(pid N) exited with code 4", as if it had crashed while it answered
        startFailed(failureOf(yield* Fiber.await(call)), "manual")
        assert.strictEqual(yield* agent.state, "CRASHED")
        startFailed(failureOf(yield* Effect.exit(agent.handleEvent({ echo: 2 }))), "manual")
        startFailed(failureOf(yield* Effect.exit(agent.health)), "manual")
      }).pipe(Effect.provide(TestLive)),
    30_000
  )
  it.scopedLive(
    "a start that failed and a start that worked after it: a call that waited through both is not told the first failed",
    () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir("later-end"), "present")
        fs.writeFileSync(file, "")
        const agent = yield* AgentSupervisor.make(failStartUnless(file, { name: "later-end" }))
        const events = yield* agent.subscribe
        const first = Option.getOrThrow((yield* agent.metadata).pid)
        // Sent to this incarnation, and to the next after its crash (replayOnCrash)
        const call = yield* Effect.fork(
          agent.handleEvent({ sleep: 600_000 }, { replayOnCrash: true, timeout: "60 seconds" })
        )
        assert.strictEqual((yield* settled(call))._tag, "Suspended")
        // Its next start fails; the one after works
        fs.rmSync(file)
        process.kill(first, "SIGKILL")
        yield* Queue.take(events).pipe(
          Effect.repeat({ until: (e) => e._tag === "RestartScheduled" && e.reason === "start_failed" })
        )
        fs.writeFileSync(file, "")
        yield* Queue.take(events).pipe(
          Effect.repeat({ until: (e) => e._tag === "StateChanged" && e.to === "RUNNING" })
        )
        yield* agent.stop
        // Before, "its start failed": a start that later worked was blamed for the stop
        const error = failureOf(yield* Fiber.await(call))
        assert.notInclude(error.message, "start failed")
        assert.strictEqual(error._tag, "AgentStoppedError")
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

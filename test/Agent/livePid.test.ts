/**
 * A view's pid is that of the agent's process while it runs, from its spawn to its exit: while STARTING (spawned,
 * not yet ready) and while STOPPING (the process the stop is ending, a start's included), as well as RUNNING; none
 * once its exit is reported (a failed start's), and no RUNNING then (a crash's). Both `Metadata.pid` and
 * `whichChildren`'s (the admin API's `status`) say it. Real agent processes (test/fixtures/agents/agent.mjs).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as fs from "node:fs"
import * as path from "node:path"
import type * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as Supervisor from "../../src/Supervisor.js"
import { agentConfig, isAlive, tempDir, TestLive } from "../support.js"

/** The pid of the next process spawned. */
const spawnedPid = (events: Queue.Dequeue<AgentSupervisor.AgentEvent>) =>
  Effect.map(
    Queue.take(events).pipe(Effect.repeat({ until: (e) => e._tag === "Spawned" })),
    (e) => e._tag === "Spawned" ? e.pid : 0
  )

/** Waits for the stderr line of `pid` that holds `text`. */
const lineOf = (stderr: Queue.Dequeue<AgentSupervisor.StderrLine>, pid: number, text: string) =>
  Queue.take(stderr).pipe(Effect.repeat({ until: (l) => l.pid === pid && l.line.includes(text) }))

/**
 * A tree of one agent `id` (agent.mjs `MODE FILE`: it hangs before ready while FILE is missing), ready while FILE was
 * there; then FILE removed and its process killed: `pid` is the restart's, spawned without it. Its events and stderr
 * were subscribed before the kill.
 */
const restartedWithoutFile = (mode: string, id: string, overrides: Parameters<typeof agentConfig>[1] = {}) =>
  Effect.gen(function*() {
    const file = path.join(yield* tempDir("live-pid"), "ready")
    fs.writeFileSync(file, "")
    const config = agentConfig(mode, { name: id, restartBackoff: 0, ...overrides })
    const sup = yield* Supervisor.make({
      children: [Supervisor.agent({ id, config: { ...config, args: [...config.args!, file] } })]
    })
    const agent = yield* sup.child(id)
    const events = yield* agent.subscribe
    const stderr = yield* agent.subscribeStderr
    const first = Option.getOrThrow((yield* agent.metadata).pid)
    fs.rmSync(file)
    process.kill(first, "SIGKILL")
    const pid = yield* spawnedPid(events)
    assert.notStrictEqual(pid, first)
    return { sup, events, stderr, pid }
  })

/** The one child's state and pid as `whichChildren` and its agent's `metadata` say them. */
const views = (sup: Supervisor.Supervisor, id: string) =>
  Effect.gen(function*() {
    const info = (yield* sup.whichChildren).find((c) => c.id === id)!
    const metadata = yield* (yield* sup.child(id)).metadata
    return { which: [info.state, info.pid], metadata: [metadata.state, metadata.pid] }
  })

describe.concurrent("a view's pid while the agent's process runs", () => {
  it.scopedLive(
    "STOPPING: the pid of the process the stop is ending, until it has exited",
    () =>
      Effect.gen(function*() {
        // It ignores shutdown and SIGTERM: the stop takes its graceful phase, then its SIGTERM one, then kills it.
        const config = agentConfig("ignore-sigterm", { name: "slow-stop", gracefulTimeout: "2 seconds" })
        const sup = yield* Supervisor.make({ children: [Supervisor.agent({ id: "slow-stop", config })] })
        const agent = yield* sup.child("slow-stop")
        const pid = Option.getOrThrow((yield* agent.metadata).pid)
        const stderr = yield* agent.subscribeStderr
        const stopping = yield* Effect.fork(sup.terminateChild("slow-stop"))
        // Its shutdown line was sent (the stop has begun) and it is still running.
        yield* lineOf(stderr, pid, "ignoring shutdown")
        assert.deepStrictEqual(yield* views(sup, "slow-stop"), {
          which: ["STOPPING", Option.some(pid)],
          metadata: ["STOPPING", Option.some(pid)]
        })
        yield* Fiber.join(stopping)
        assert.deepStrictEqual(yield* views(sup, "slow-stop"), {
          which: ["STOPPED", Option.none()],
          metadata: ["STOPPED", Option.none()]
        })
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "STARTING: the pid of the process spawned, before it is ready; STOPPING with it while a stop ends it",
    () =>
      Effect.gen(function*() {
        // It hangs before ready and ignores SIGTERM
        const { pid, sup, stderr } = yield* restartedWithoutFile("no-ready-unless-stubborn", "slow-start")
        // (it ignores SIGTERM from then on: a signal in Node's own start would end it)
        yield* lineOf(stderr, pid, "loading forever")
        assert.deepStrictEqual(yield* views(sup, "slow-start"), {
          which: ["STARTING", Option.some(pid)],
          metadata: ["STARTING", Option.some(pid)]
        })
        // A stop ends the start: STOPPING at once, its process still running through the SIGTERM phase
        const stopping = yield* Effect.fork(sup.terminateChild("slow-start"))
        yield* lineOf(stderr, pid, "ignoring SIGTERM")
        assert.deepStrictEqual(yield* views(sup, "slow-start"), {
          which: ["STOPPING", Option.some(pid)],
          metadata: ["STOPPING", Option.some(pid)]
        })
        yield* Fiber.join(stopping)
        assert.deepStrictEqual(yield* views(sup, "slow-start"), {
          which: ["STOPPED", Option.none()],
          metadata: ["STOPPED", Option.none()]
        })
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "a crash: no view says RUNNING once a call has failed with AgentCrashError",
    () =>
      Effect.gen(function*() {
        // The restart waits a minute: the views read the crash, not the next incarnation.
        const config = agentConfig("echo", { name: "crashing", restartBackoff: "1 minute" })
        const sup = yield* Supervisor.make({ children: [Supervisor.agent({ id: "crashing", config })] })
        const agent = yield* sup.child("crashing")
        const error = yield* Effect.flip(agent.handleEvent({ crash: 3 }))
        assert.strictEqual(error._tag, "AgentCrashError")
        // Read at once: the exit is handled under the agent's lock a moment after the call heard of it.
        const { metadata, which } = yield* views(sup, "crashing")
        const state = yield* agent.state
        for (const seen of [which[0], metadata[0], state]) assert.include(["CRASHED", "RESTARTING"], seen)
        assert.deepStrictEqual([which[1], metadata[1]], [Option.none(), Option.none()])
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive("a start that failed: no pid once its process has exited", () =>
    Effect.gen(function*() {
      // One failure allowed: the kill is it, the restart that never gets ready opens the circuit (no more starts).
      const { events, pid, sup } = yield* restartedWithoutFile("no-ready-unless", "failed-start", {
        startupTimeout: "1 second",
        maxRestartAttempts: 1
      })
      yield* Queue.take(events).pipe(Effect.repeat({ until: (e) => e._tag === "CircuitOpened" }))
      assert.deepStrictEqual(yield* views(sup, "failed-start"), {
        which: ["CRASHED", Option.none()],
        metadata: ["CRASHED", Option.none()]
      })
      assert.isFalse(isAlive(pid), `the failed start's process ${pid} is gone`)
    }).pipe(Effect.provide(TestLive)), 30_000)
})

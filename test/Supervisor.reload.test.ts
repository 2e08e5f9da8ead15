/**
 * Rolling reload (`Supervisor.reload`): an agent child and a pool of 4 reloaded under a steady 200 calls a second
 * with no failed call; a new version that does not start leaves the old one serving; what reload refuses.
 * Real agent processes (test/fixtures/agents/agent.mjs).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, eventually, failureOf, isAlive, TestLive } from "./support.js"

const config = (name: string, overrides: Parameters<typeof agentConfig>[1] = {}) =>
  agentConfig("echo", { name, restartBackoff: "50 millis", jitter: 0, ...overrides })

type Reply = { readonly pid: number }

/**
 * Calls `call` every 5 ms (200 a second) from now until `stop`, each in a fiber of its own; `stop` waits for the
 * calls under way and gives every outcome.
 */
const steadyLoad = (call: Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    const outcomes: Array<Exit.Exit<unknown, unknown>> = []
    const calls: Array<Fiber.RuntimeFiber<unknown>> = []
    let running = true
    const loop = yield* Effect.fork(Effect.gen(function*() {
      while (running) {
        // Daemons: a fiber's own forks end with it, and the loop ends before its calls do.
        calls.push(
          yield* Effect.forkDaemon(Effect.flatMap(Effect.exit(call), (exit) => Effect.sync(() => outcomes.push(exit))))
        )
        yield* Effect.sleep("5 millis")
      }
    }))
    const stop = Effect.gen(function*() {
      running = false
      yield* Fiber.join(loop)
      yield* Fiber.joinAll(calls)
      return outcomes
    })
    return { stop, sent: () => calls.length }
  })

const pidsOf = (outcomes: ReadonlyArray<Exit.Exit<unknown, unknown>>) =>
  new Set(outcomes.flatMap((exit) => Exit.isSuccess(exit) ? [(exit.value as Reply).pid] : []))

const failures = (outcomes: ReadonlyArray<Exit.Exit<unknown, unknown>>) =>
  outcomes.filter(Exit.isFailure).map((exit) => String(failureOf(exit)))

const pidOf = (sup: Supervisor.Supervisor, id: string) =>
  Effect.map(sup.whichChildren, (children) => Option.getOrThrow(children.find((c) => c.id === id)!.pid))

describe("Supervisor.reload", () => {
  it.scopedLive(
    "an agent under 200 calls a second: no call fails; the new incarnation serves, the old is gone",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [Supervisor.agent({ id: "echo", config: config("echo") })] })
        const old = yield* pidOf(sup, "echo")
        const load = yield* steadyLoad(sup.call("echo", { whoami: true, sleep: 20 }))
        yield* eventually("calls under way", () => load.sent() >= 20)
        const events = yield* sup.subscribe
        yield* sup.reload("echo", { config: config("echo", { env: { RELOADED: "yes" } }) })
        const fresh = yield* pidOf(sup, "echo")
        yield* eventually("calls to the new one", () => load.sent() >= 60)
        const outcomes = yield* load.stop
        assert.deepStrictEqual(failures(outcomes), [])
        assert.notStrictEqual(fresh, old)
        assert.includeMembers([...pidsOf(outcomes)], [old, fresh], "both served: no gap, no failure")
        assert.isFalse(isAlive(old), "the old incarnation stopped")
        const seen: Array<string> = []
        while (true) {
          const event = yield* events.take
          seen.push(event._tag)
          if (event._tag === "ChildStopped") break
        }
        assert.include(seen, "ChildStarted")
        assert.deepStrictEqual(yield* sup.restartHistory, [], "a reload is no restart")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "a pool of 4 under 200 calls a second: member by member, no call fails, every member new",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          children: [Supervisor.pool({ id: "pool", size: 4, config: config("worker") })]
        })
        const members = Effect.flatMap(sup.childSupervisor("pool"), (pool) =>
          Effect.map(pool.whichChildren, (children) =>
            children.map((c) =>
              [c.id, Option.getOrThrow(c.pid)] as const
            ).sort((a, b) =>
              Number(a[0]) - Number(b[0])
            )))
        const before = yield* members
        const load = yield* steadyLoad(sup.call("pool", { whoami: true, sleep: 20 }))
        yield* eventually("calls under way", () => load.sent() >= 20)
        yield* sup.reload("pool")
        yield* eventually("calls after the reload", () => load.sent() >= 100)
        const outcomes = yield* load.stop
        assert.deepStrictEqual(failures(outcomes), [])
        const after = yield* members
        assert.deepStrictEqual(after.map(([id]) => id), ["0", "1", "2", "3"])
        for (let i = 0; i < 4; i++) assert.notStrictEqual(after[i][1], before[i][1], `member ${i} is new`)
        for (const [, pid] of before) assert.isFalse(isAlive(pid))
      }).pipe(Effect.provide(TestLive)),
    90_000
  )

  it.scopedLive(
    "a new version that does not start: the reload fails with why, the old one serves on",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [Supervisor.agent({ id: "echo", config: config("echo") })] })
        const old = yield* pidOf(sup, "echo")
        const load = yield* steadyLoad(sup.call("echo", { whoami: true }))
        yield* eventually("calls under way", () => load.sent() >= 10)
        const broken = agentConfig("exit-at-start", { name: "echo" })
        const error = failureOf(yield* Effect.exit(sup.reload("echo", { config: broken })))
        assert.strictEqual(error._tag, "AgentStartupError")
        const outcomes = yield* load.stop
        assert.deepStrictEqual(failures(outcomes), [])
        assert.deepStrictEqual([...pidsOf(outcomes)], [old])
        assert.strictEqual(yield* pidOf(sup, "echo"), old)
        assert.deepStrictEqual(yield* sup.call("echo", { echo: 1 }), 1)

        // What a reload refuses: another name, a child that is not running, one that is not there.
        const renamed = failureOf(yield* Effect.exit(sup.reload("echo", { config: config("other") })))
        assert.strictEqual(renamed._tag === "ConfigError" && renamed.field, "config.name")
        yield* sup.terminateChild("echo")
        const stopped = failureOf(yield* Effect.exit(sup.reload("echo")))
        assert.strictEqual(stopped._tag === "SupervisorChildError" && stopped.reason, "stopped")
        const missing = failureOf(yield* Effect.exit(sup.reload("nope")))
        assert.strictEqual(missing._tag === "SupervisorChildError" && missing.reason, "not_found")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )
})

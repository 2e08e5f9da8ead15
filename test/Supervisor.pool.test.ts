/**
 * Pools (`Supervisor.pool`): members routed to by least calls in flight or in turn, a member's crash that member's
 * alone, calls that wait for a member within their timeout, `scale` up and down (down drains what is in flight),
 * the pool's restarts counted in its parent's intensity, and every problem of a pool spec in one ConfigError.
 * Real agent processes (test/fixtures/agents/agent.mjs).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Metrics from "../src/Metrics.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, closeableScope, eventuallyEffect, failureOf, TestLive } from "./support.js"

const member = (name: string, overrides: Parameters<typeof agentConfig>[1] = {}) =>
  agentConfig("echo", { name, restartBackoff: "50 millis", jitter: 0, ...overrides })

const pool = (size: number, routing?: Supervisor.Routing, overrides: Partial<Supervisor.PoolSpec> = {}) =>
  Supervisor.pool({ id: "pool", size, config: member("worker"), ...(routing ? { routing } : {}), ...overrides })

const whoami = (sup: Supervisor.Supervisor, sleep = 0) =>
  Effect.map(sup.call("pool", { whoami: true, sleep }), (reply) => (reply as { pid: number }).pid)

/** The pool's members: id, name, state and pid, in id order. */
const members = (sup: Supervisor.Supervisor) =>
  Effect.flatMap(
    sup.childSupervisor("pool"),
    (p) =>
      Effect.map(p.whichChildren, (children) =>
        children.map((c) => ({ id: c.id, name: c.name, state: c.state, pid: Option.getOrUndefined(c.pid) }))
          .sort((a, b) =>
            Number(a.id) - Number(b.id)
          ))
  )

describe("Supervisor.pool", () => {
  it.scopedLive("a call of a pool scaled to 0 times out saying the pool has no members, not that an agent starts", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        name: "app",
        children: [Supervisor.pool({ id: "empty", size: 0, config: agentConfig("echo", { name: "member" }) })]
      })
      const error = failureOf(yield* Effect.exit(sup.call("empty", { x: 1 }, { timeout: "100 millis" })))
      assert.strictEqual(error._tag, "AgentTimeoutError")
      assert.deepStrictEqual([(error as any).operation, (error as any).poolMembers], ["start", 0])
      assert.match(
        error.message,
        /^A request to pool "app\/empty" timed out waiting for a member \(after 100 ms\): the pool has no members/
      )
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a call waiting for a member when the tree stops fails AgentStoppedError at once, not an interruption", () =>
    Effect.gen(function*() {
      const scope = yield* closeableScope
      const sup = yield* Supervisor.make({
        name: "app",
        children: [Supervisor.pool({ id: "empty", size: 0, config: agentConfig("echo", { name: "member" }) })]
      }).pipe(Scope.extend(scope))
      const call = yield* Effect.fork(sup.call("empty", { x: 1 }, { timeout: "60 seconds" }))
      // Waiting for a member: the fiber is suspended on the pool's events.
      yield* eventuallyEffect("the call waits", Effect.map(Fiber.status(call), (status) => status._tag === "Suspended"))
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(call)
      assert.isBelow(Date.now() - started, 10_000)
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "AgentStoppedError", String(error))
      assert.strictEqual((error as { agent: string }).agent, "app/empty")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive(
    "a stopped pool or nested supervisor is the tree's, stopped, not \"not found\": call and childSupervisor say so",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          name: "app",
          children: [pool(1), Supervisor.supervisor({ id: "group", children: [] })]
        })
        yield* sup.terminateChild("pool")
        yield* sup.terminateChild("group")
        const refusals = [
          yield* Effect.flip(sup.call("pool", { x: 1 })),
          yield* Effect.flip(sup.childSupervisor("pool")),
          yield* Effect.flip(sup.childSupervisor("group"))
        ]
        for (const refused of refusals) {
          assert.strictEqual(refused._tag === "SupervisorChildError" && refused.reason, "stopped", refused.message)
        }
        assert.strictEqual(
          refusals[0].message,
          `Supervisor "app" cannot call child "pool": stopped`
        )
        const missing = yield* Effect.flip(sup.call("nothing", { x: 1 }))
        assert.strictEqual(missing._tag === "SupervisorChildError" && missing.reason, "not_found")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "round-robin: each RUNNING member in turn; members named <name>-<i> under ids 0..n-1",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [pool(3, "round-robin")] })
        const before = yield* members(sup)
        assert.deepStrictEqual(before.map((m) => [m.id, m.name, m.state]), [
          ["0", "worker-0", "RUNNING"],
          ["1", "worker-1", "RUNNING"],
          ["2", "worker-2", "RUNNING"]
        ])
        const answered: Array<number> = []
        for (let i = 0; i < 6; i++) answered.push(yield* whoami(sup))
        const counts = new Map<number, number>()
        for (const pid of answered) counts.set(pid, (counts.get(pid) ?? 0) + 1)
        assert.deepStrictEqual([...counts.keys()].sort(), before.map((m) => m.pid!).sort())
        assert.deepStrictEqual([...counts.values()], [2, 2, 2])
        const [info] = yield* sup.whichChildren
        assert.deepStrictEqual([info.id, info.kind, info.state], ["pool", "supervisor", "RUNNING"])
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "least-in-flight: concurrent calls go to idle members first; a member's crash is its own",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [pool(3)] })
        const before = yield* members(sup)
        const concurrent = yield* Effect.all([whoami(sup, 300), whoami(sup, 300), whoami(sup, 300)], {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual([...concurrent].sort(), before.map((m) => m.pid!).sort(), "one call on each member")

        // Member 0 dies: the others take every call meanwhile, it comes back, the pool is not restarted.
        const poolHandle = yield* sup.childSupervisor("pool")
        process.kill(before[0].pid!, "SIGKILL")
        // Until its exit is read, the member still counts as RUNNING (as a lone agent would): wait for that.
        yield* eventuallyEffect(
          "member 0's exit seen",
          Effect.map(members(sup), (now) => now[0].state !== "RUNNING" || now[0].pid !== before[0].pid)
        )
        for (let i = 0; i < 6; i++) assert.notStrictEqual(yield* whoami(sup), before[0].pid)
        yield* eventuallyEffect(
          "member 0 running again",
          Effect.map(members(sup), (now) => now[0].state === "RUNNING" && now[0].pid !== before[0].pid)
        )
        const after = yield* members(sup)
        assert.deepStrictEqual(after.slice(1).map((m) => m.pid), before.slice(1).map((m) => m.pid))
        assert.strictEqual(yield* sup.childSupervisor("pool"), poolHandle, "the same pool: not restarted")
        assert.deepStrictEqual((yield* sup.restartHistory).map((r) => r.child), [], "no restart of the pool itself")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "with no member running a call waits for one within its timeout, then fails as a start timeout",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [pool(1)] })
        const poolHandle = yield* sup.childSupervisor("pool")
        yield* poolHandle.terminateChild("0")
        const timedOut = failureOf(yield* Effect.exit(sup.call("pool", { whoami: true }, { timeout: "200 millis" })))
        assert.strictEqual(timedOut._tag, "AgentTimeoutError")
        if (timedOut._tag === "AgentTimeoutError") {
          assert.deepStrictEqual([timedOut.agent, timedOut.operation, timedOut.requestId], [
            "root/pool",
            "start",
            "(not sent)"
          ])
        }
        const waiting = yield* Effect.fork(whoami(sup))
        // Nothing can answer it before the member starts.
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
        yield* poolHandle.restartChild("0")
        const pid = yield* Fiber.join(waiting)
        assert.strictEqual(pid, (yield* members(sup))[0].pid)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "scale: up adds members from the lowest free number; down drains the highest and removes them",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          children: [pool(2), Supervisor.agent({ id: "solo", config: member("solo") })]
        })
        yield* sup.scale("pool", 4)
        const four = yield* members(sup)
        assert.deepStrictEqual(four.map((m) => [m.id, m.name, m.state]), [
          ["0", "worker-0", "RUNNING"],
          ["1", "worker-1", "RUNNING"],
          ["2", "worker-2", "RUNNING"],
          ["3", "worker-3", "RUNNING"]
        ])
        // One slow call on each member, then down to 2: members 2 and 3 finish theirs before they stop.
        const slow = yield* Effect.fork(Effect.all(
          [whoami(sup, 1500), whoami(sup, 1500), whoami(sup, 1500), whoami(sup, 1500)],
          { concurrency: "unbounded" }
        ))
        // The four are routed as soon as the fork runs (routing is synchronous): one per member.
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        const scaling = yield* Effect.fork(sup.scale("pool", 2))
        // The scale marks 2 and 3 draining as soon as its fiber runs (no lock is held: nothing restarts).
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        const info = yield* sup.poolInfo("pool")
        assert.deepStrictEqual(
          [info.name, info.size, info.routing],
          ["root/pool", 2, "least-in-flight"]
        )
        assert.deepStrictEqual(info.members.map((m) => [m.id, m.state, m.inFlight, m.draining]), [
          ["0", "RUNNING", 1, false],
          ["1", "RUNNING", 1, false],
          ["2", "RUNNING", 1, true],
          ["3", "RUNNING", 1, true]
        ])
        // While 2 and 3 drain, new calls go to 0 and 1 only (they queue behind the slow ones there).
        const during = yield* whoami(sup)
        assert.include([four[0].pid, four[1].pid], during)
        assert.deepStrictEqual([...(yield* Fiber.join(slow))].sort(), four.map((m) => m.pid!).sort(), "none failed")
        yield* Fiber.join(scaling)
        assert.deepStrictEqual((yield* members(sup)).map((m) => m.id), ["0", "1"])
        // Back up: the free numbers 2 and 3 again.
        yield* sup.scale("pool", 3)
        assert.deepStrictEqual((yield* members(sup)).map((m) => m.name), ["worker-0", "worker-1", "worker-2"])
        const gauge = (metric: typeof Metrics.poolSize) => Metric.value(Metric.tagged(metric, "pool", "root/pool"))
        assert.strictEqual((yield* gauge(Metrics.poolSize)).value, 3)
        assert.strictEqual((yield* gauge(Metrics.poolInFlight)).value, 0, "every call through the pool ended")

        const bad = failureOf(yield* Effect.exit(sup.scale("pool", 1.5)))
        assert.strictEqual(bad._tag, "ConfigError")
        const notPool = failureOf(yield* Effect.exit(sup.scale("solo", 2)))
        assert.strictEqual(notPool._tag === "SupervisorChildError" && notPool.reason, "not_a_pool")
        const soloInfo = failureOf(yield* Effect.exit(sup.poolInfo("solo")))
        assert.strictEqual(soloInfo._tag === "SupervisorChildError" && soloInfo.reason, "not_a_pool")
        const missing = failureOf(yield* Effect.exit(sup.scale("nope", 2)))
        assert.strictEqual(missing._tag === "SupervisorChildError" && missing.reason, "not_found")

        // Stopped, a pool is still the tree's pool: scale and reload say it is stopped, its info its size
        yield* sup.terminateChild("pool")
        const stopped = failureOf(yield* Effect.exit(sup.scale("pool", 4)))
        assert.strictEqual(stopped._tag === "SupervisorChildError" && stopped.reason, "stopped")
        const reloadStopped = failureOf(yield* Effect.exit(sup.reload("pool")))
        assert.strictEqual(reloadStopped._tag === "SupervisorChildError" && reloadStopped.reason, "stopped")
        const stoppedInfo = yield* sup.poolInfo("pool")
        assert.deepStrictEqual([stoppedInfo.size, stoppedInfo.members.length], [3, 0])
      }).pipe(Effect.provide(TestLive)),
    90_000
  )

  it.scopedLive(
    "without an intensity of its own, members' restarts count in the parent's: the tree escalates",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          intensity: { maxRestarts: 1, window: "30 seconds" },
          children: [pool(2)]
        })
        const [first] = yield* members(sup)
        process.kill(first.pid!, "SIGKILL")
        yield* eventuallyEffect(
          "member 0 back",
          Effect.map(members(sup), (now) => now[0].state === "RUNNING" && now[0].pid !== first.pid)
        )
        const [, second] = yield* members(sup)
        process.kill(second.pid!, "SIGKILL")
        const escalated = yield* Effect.exit(sup.await)
        assert.isTrue(Exit.isFailure(escalated))
        const error = failureOf(escalated)
        assert.strictEqual(error._tag, "SupervisorIntensityError")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.effect("a bad pool spec: every problem in one ConfigError, with paths", () =>
    Effect.gen(function*() {
      const error = failureOf(
        yield* Effect.exit(Supervisor.make({
          children: [
            Supervisor.pool({
              id: "p",
              size: -1,
              routing: "random" as any,
              config: member("w", { requestTimeout: "soon" as any })
            })
          ]
        }))
      )
      assert.strictEqual(error._tag, "ConfigError")
      if (error._tag !== "ConfigError") return
      assert.sameMembers(error.problems.map((p) => p.field), [
        "children[0].size",
        "children[0].routing",
        "children[0].config.requestTimeout"
      ])
    }).pipe(Effect.scoped, Effect.provide(TestLive)))

  it.effect("a pool's size, autoscale.max and maxSize beyond their bound: one ConfigError, with paths", () =>
    Effect.gen(function*() {
      const error = failureOf(
        yield* Effect.exit(Supervisor.make({
          children: [
            Supervisor.pool({ id: "huge", size: 1_000_000, config: member("h") }),
            Supervisor.pool({
              id: "scaled",
              size: 2,
              maxSize: 4,
              autoscale: { min: 1, max: 10, target: 2 },
              config: member("s")
            }),
            Supervisor.pool({ id: "none", size: 0, maxSize: 0, config: member("n") })
          ]
        }))
      )
      assert.strictEqual(error._tag, "ConfigError")
      if (error._tag !== "ConfigError") return
      assert.deepStrictEqual(error.problems.map((p) => [p.field, p.rule, p.value]), [
        [
          "children[0].size",
          "must be at most the pool's maxSize, 1000 (each member is a process; give the pool a larger maxSize to " +
          "run more)",
          "1000000"
        ],
        [
          "children[1].autoscale.max",
          "must be at most the pool's maxSize, 4 (each member is a process; give the pool a larger maxSize to run " +
          "more)",
          "10"
        ],
        ["children[2].maxSize", "must be a whole number of 1 or more", "0"]
      ])
    }).pipe(Effect.scoped, Effect.provide(TestLive)))

  it.scopedLive(
    "scale above the pool's maxSize is a ConfigError and starts nothing; poolInfo says the bound",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          name: "app",
          children: [Supervisor.pool({ id: "pool", size: 1, maxSize: 2, config: member("worker") })]
        })
        const refused = yield* Effect.flip(sup.scale("pool", 100_000))
        assert.strictEqual(refused._tag, "ConfigError")
        assert.match(refused.message, /size.*must be at most the pool's maxSize, 2.*100000/s)
        const info = yield* sup.poolInfo("pool")
        assert.deepStrictEqual([info.size, info.maxSize, info.members.length], [1, 2, 1])
        yield* sup.scale("pool", 2)
        assert.strictEqual((yield* sup.poolInfo("pool")).members.length, 2)
        // The default bound
        const other = yield* Supervisor.make({ children: [Supervisor.pool({ id: "p", size: 0, config: member("o") })] })
        assert.strictEqual((yield* other.poolInfo("p")).maxSize, 1000)
        assert.strictEqual((yield* Effect.flip(other.scale("p", 1001)))._tag, "ConfigError")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )
})

/**
 * Regression tests from a review of pools, reload and topics: each case a race or a stop that once left a process
 * behind, a child stuck, a caller hanging, or a wake-up lost. Real agent processes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, eventuallyEffect, failureOf, isAlive, tempDir, TestLive } from "./support.js"

const echo = (id: string, overrides: Parameters<typeof agentConfig>[1] = {}, topics: ReadonlyArray<string> = []) =>
  Supervisor.agent({ id, topics, config: agentConfig("echo", { name: id, ...overrides }) })

const children = (sup: Supervisor.Supervisor) =>
  Effect.map(sup.whichChildren, (all) => all.map((c) => [c.id, c.status, c.state, Option.getOrUndefined(c.pid)]))

describe("races of reload, scale and topics", () => {
  it.scopedLive(
    "two reloads of one child at once: the second is refused (reloading); one process remains",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [echo("a")] })
        const [first, second] = yield* Effect.all([Effect.exit(sup.reload("a")), Effect.exit(sup.reload("a"))], {
          concurrency: 2
        })
        const exits = [first, second]
        assert.strictEqual(exits.filter(Exit.isSuccess).length, 1)
        const refused = failureOf(exits.find(Exit.isFailure)!)
        assert.strictEqual(refused._tag === "SupervisorChildError" && refused.reason, "reloading")
        const [[, status, state, pid]] = yield* children(sup)
        assert.deepStrictEqual([status, state], ["running", "RUNNING"])
        assert.isTrue(isAlive(pid as number))
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "the old incarnation crashes while the new one starts: the child runs the new one, and restarts it",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          intensity: { maxRestarts: 5, window: "5 seconds" },
          children: [echo("a", { restartBackoff: "3 seconds", jitter: 0 })]
        })
        const reload = yield* Effect.fork(sup.reload("a"))
        yield* Effect.exit(sup.call("a", { crash: 1 }))
        yield* Fiber.join(reload)
        const [[, status, state, pid]] = yield* children(sup)
        assert.deepStrictEqual([status, state], ["running", "RUNNING"])
        // The new one is the child's: its crash is restarted as any would be.
        yield* Effect.exit(sup.call("a", { crash: 1 }))
        yield* eventuallyEffect(
          "restarted after its crash",
          Effect.map(children(sup), ([[, s, st, p]]) => s === "running" && st === "RUNNING" && p !== pid),
          "20 seconds"
        )
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "a pool reload whose new version does not start leaves the pool's spec as it was",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          children: [Supervisor.pool({ id: "p", size: 2, config: agentConfig("echo", { name: "w" }) })]
        })
        const broken = failureOf(
          yield* Effect.exit(sup.reload("p", { config: agentConfig("exit-at-start", { name: "w" }) }))
        )
        assert.strictEqual(broken._tag, "AgentStartupError")
        yield* sup.scale("p", 3) // would fail if the broken version had become the pool's
        const info = yield* sup.poolInfo("p")
        assert.deepStrictEqual(info.members.map((m) => m.state), ["RUNNING", "RUNNING", "RUNNING"])
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "the tree stops: pending tasks fail with TopicError stopped, a blocked publisher too, results end",
    () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const sup = yield* Supervisor.make({
          topics: { nowhere: { maxQueued: 1, backpressure: true } },
          children: []
        }).pipe(Scope.extend(scope))
        const id = yield* sup.publish("nowhere", 1)
        const waiting = yield* Effect.fork(sup.awaitResult(id))
        const blocked = yield* Effect.fork(sup.publish("nowhere", 2))
        const results = yield* Effect.fork(Stream.runDrain(sup.results))
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        yield* Scope.close(scope, Exit.void)
        const stopped = failureOf(yield* Fiber.await(waiting))
        assert.strictEqual(stopped._tag === "TopicError" && stopped.reason, "stopped")
        const cut = failureOf(yield* Fiber.await(blocked))
        assert.strictEqual(cut._tag === "TopicError" && cut.reason, "stopped")
        const again = failureOf(yield* Effect.exit(sup.awaitResult(id)))
        assert.strictEqual(again._tag === "TopicError" && again.reason, "stopped")
        yield* Fiber.join(results) // the stream ended with the tree
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "backpressure: a publisher that gives up passes its turn on; a subscriber back wakes waiting tasks",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          topics: { narrow: { maxQueued: 1, backpressure: true } },
          children: [echo("s", {}, ["narrow"])]
        })
        yield* sup.terminateChild("s")
        const a = yield* sup.publish("narrow", "A") // waits for a subscriber, holding the room
        const b = yield* Effect.exit(sup.publish("narrow", "B").pipe(Effect.timeout("100 millis")))
        assert.isTrue(Exit.isFailure(b), "B gave up")
        const c = yield* Effect.fork(sup.publish("narrow", "C"))
        yield* sup.restartChild("s") // the subscriber is back: A goes, and C gets the room
        assert.strictEqual(yield* sup.awaitResult(a), "A")
        assert.strictEqual(yield* sup.awaitResult(yield* Fiber.join(c)), "C")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "fanout to a topic no child takes waits for a subscriber instead of succeeding with none",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [] })
        const id = yield* sup.publish("news", "x", { fanout: true })
        yield* sup.startChild(echo("late", {}, ["news"]))
        assert.deepStrictEqual(yield* sup.awaitResult(id), { "root/late": "x" })
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive("startChildren: a child that does not start leaves no watcher behind", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("races-watch")
      const sup = yield* Supervisor.make({ children: [] })
      const result = yield* sup.startChildren([
        Supervisor.agent({
          id: "x",
          config: agentConfig("exit-at-start", { name: "x" }),
          watch: { paths: [dir], debounce: "50 millis" }
        })
      ])
      assert.deepStrictEqual(result.failed.map((f) => f.id), ["x"])
      yield* sup.startChild(echo("x"))
      const [[, , , before]] = yield* children(sup)
      const events = yield* sup.subscribe
      for (let i = 0; i < 3; i++) {
        fs.writeFileSync(path.join(dir, `f${i}`), "x")
        yield* Effect.sleep("200 millis")
      }
      const [[, , , after]] = yield* children(sup)
      assert.strictEqual(after, before, "no reload of the new x")
      assert.isFalse(Array.from(yield* Queue.takeAll(events)).some((e) => e._tag === "ChildStarted"))
    }).pipe(Effect.provide(TestLive)), 60_000)
})

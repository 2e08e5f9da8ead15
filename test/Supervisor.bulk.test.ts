/**
 * `startChildren` (a batch of dynamic children started with bounded concurrency), the shutdown of dynamic
 * children all at once, and the views read in one synchronous step.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type { ConfigError, SupervisorChildError } from "../src/Errors.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, closeableScope, failureOf, fixture, groupMembers, TestLive } from "./support.js"

type Event = Supervisor.SupervisorEvent

const tiny = (id: string) =>
  Supervisor.agent({ id, config: { name: id, command: "/bin/sh", args: [fixture("agents", "tiny.sh")] } })

const live = (sup: Supervisor.Supervisor) =>
  Effect.map(sup.whichChildren, (children) => children.flatMap((c) => Option.toArray(c.pid)))

describe.sequential("Supervisor.startChildren", () => {
  it.scopedLive("starts a batch: every child runs, in the batch's order in the tree, one ChildStarted each", () =>
    Effect.gen(function*() {
      const events: Array<Event> = []
      const sup = yield* Supervisor.make({
        children: [tiny("static")],
        onEvent: (e) => Effect.sync(() => events.push(e))
      })
      const ids = Array.from({ length: 40 }, (_, i) => `w${i}`)
      const result = yield* sup.startChildren(ids.map(tiny), { concurrency: 8 })
      assert.deepStrictEqual(result, { started: ids, failed: [] })
      assert.deepStrictEqual((yield* sup.whichChildren).map((c) => c.id), [...ids].reverse().concat("static"))
      assert.deepStrictEqual(yield* sup.countChildren, { specs: 41, active: 41, supervisors: 0, workers: 41 })
      for (const child of yield* sup.whichChildren) {
        assert.strictEqual(child.state, "RUNNING")
        assert.isTrue(Option.isSome(child.pid) && groupMembers(child.pid.value).length > 0)
      }
      const started = events.flatMap((e) => e._tag === "ChildStarted" ? [e.child] : [])
      assert.deepStrictEqual([...started].sort(), ["static", ...ids].sort())
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a bad batch starts nothing: every problem in one ConfigError, an id taken a SupervisorChildError", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({ children: [tiny("a")] })
      const bad = Supervisor.agent({
        id: "bad",
        config: {
          name: "bad",
          command: "/bin/sh",
          args: [fixture("agents", "tiny.sh")],
          requestTimeout: "5 secs" as never
        }
      })
      const error = failureOf(yield* Effect.exit(sup.startChildren([tiny("b"), bad, tiny("b")]))) as ConfigError
      assert.strictEqual(error._tag, "ConfigError")
      // positions after the one child already there: children[1] is the first of the batch
      assert.deepStrictEqual(error.problems.map((p) => p.field).sort(), [
        "children[2].config.requestTimeout",
        "children[3].id"
      ])
      const taken = failureOf(yield* Effect.exit(sup.startChildren([tiny("c"), tiny("a")]))) as SupervisorChildError
      assert.deepStrictEqual([taken._tag, taken.child, taken.reason], ["SupervisorChildError", "a", "already_started"])
      const notASpec = failureOf(yield* Effect.exit(sup.startChildren([tiny("d"), { id: "e" } as never])))
      assert.strictEqual(notASpec._tag, "ConfigError")
      for (const concurrency of [0, 1.5, Number.NaN, Infinity, "4" as never]) {
        const wrong = failureOf(yield* Effect.exit(sup.startChildren([tiny("f")], { concurrency }))) as ConfigError
        assert.strictEqual(wrong._tag, "ConfigError")
        // one problem, in the library's words
        assert.deepStrictEqual(wrong.problems.map((p) => p.field), ["concurrency"])
        assert.match(wrong.message, /must be a whole number of 1 or more/)
      }
      // a JavaScript caller's mistakes: a typed error, never a throw
      for (const notAnArray of [tiny("g"), null, "h", undefined]) {
        const wrong = failureOf(yield* Effect.exit(sup.startChildren(notAnArray as never))) as ConfigError
        assert.strictEqual(wrong._tag, "ConfigError")
        assert.match(wrong.message, /takes an array of child specs/)
      }
      assert.deepStrictEqual(yield* sup.startChildren([]), { started: [], failed: [] })
      // nothing of any of them started
      assert.deepStrictEqual((yield* sup.whichChildren).map((c) => c.id), ["a"])
      assert.strictEqual((yield* live(sup)).length, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a child that does not start is left out with its error; the others run", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({})
      const broken = Supervisor.agent({ id: "broken", config: agentConfig("exit-at-start", { name: "broken" }) })
      const result = yield* sup.startChildren([tiny("a"), broken, tiny("b")], { concurrency: 1 })
      assert.deepStrictEqual(result.started, ["a", "b"])
      assert.deepStrictEqual(result.failed.map((f) => [f.id, f.error._tag]), [["broken", "AgentStartupError"]])
      // several that fail, started at once: listed in the batch's order, whatever order their starts ended in
      const nowhere = (id: string) => Supervisor.agent({ id, config: { name: id, command: "/nonexistent/agent" } })
      const many = yield* sup.startChildren([
        broken,
        Supervisor.agent({ id: "broken2", config: agentConfig("exit-at-start", { name: "broken2" }) }),
        nowhere("n1"),
        nowhere("n2")
      ])
      assert.deepStrictEqual(many.failed.map((f) => f.id), ["broken", "broken2", "n1", "n2"])
      assert.deepStrictEqual((yield* sup.whichChildren).map((c) => c.id), ["b", "a"])
      // the id is free again
      assert.deepStrictEqual(yield* sup.startChildren([tiny("broken")]), { started: ["broken"], failed: [] })
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("shutdown: dynamic children stop all at once, then static ones one by one in reverse order", () =>
    Effect.gen(function*() {
      const events: Array<Event> = []
      const scope = yield* closeableScope
      // Each ignores `shutdown`: its stop takes its graceful phase, long enough to see whether stops overlap.
      const slow = (id: string) =>
        Supervisor.agent({
          id,
          config: agentConfig("ignore-shutdown", { name: id, gracefulTimeout: "300 millis" })
        })
      const sup = yield* Supervisor.make({
        children: [slow("s1"), slow("s2")],
        onEvent: (e) => Effect.sync(() => events.push(e))
      }).pipe(Scope.extend(scope))
      yield* sup.startChild(slow("d1"))
      yield* sup.startChildren([slow("d2"), slow("d3")])
      events.length = 0
      yield* Scope.close(scope, Exit.void)
      const order = events.flatMap((e) =>
        e._tag === "ChildStopped"
          ? [`stopped ${e.child}`]
          : e._tag === "Agent" && e.event._tag === "StateChanged" && e.event.to === "STOPPING"
          ? [`stopping ${e.child}`]
          : []
      )
      // every dynamic child began to stop before any of them had stopped
      const firstStopped = order.findIndex((line) => line.startsWith("stopped"))
      assert.deepStrictEqual(order.slice(0, firstStopped).sort(), ["stopping d1", "stopping d2", "stopping d3"])
      assert.deepStrictEqual(order.slice(firstStopped, firstStopped + 3).sort(), [
        "stopped d1",
        "stopped d2",
        "stopped d3"
      ])
      assert.deepStrictEqual(order.slice(firstStopped + 3), ["stopping s2", "stopped s2", "stopping s1", "stopped s1"])
    }).pipe(Effect.provide(TestLive)))
})

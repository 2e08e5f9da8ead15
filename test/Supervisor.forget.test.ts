/**
 * An agent that leaves its tree for good leaves the store's last states too (`Store.deleteAgent`, after its own last
 * writes): `deleteChild`, a `temporary` child's exit, a pool member scaled away. An agent of the same name anywhere
 * in the tree keeps its state, and so does every agent that only stopped. Real agent processes (test/fixtures/agents).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, closeableScope, eventuallyEffect, takeUntil, TestLive } from "./support.js"

const echo = (id: string, overrides: Parameters<typeof agentConfig>[1] = {}) =>
  Supervisor.agent({ id, config: agentConfig("echo", { name: id, restartBackoff: 0, ...overrides }) })

/** A tree of `children` in a scope of its own, its events, and the store's last state of an agent by name. */
const treeOf = (children: ReadonlyArray<Supervisor.ChildSpec>) =>
  Effect.gen(function*() {
    const store = yield* Store.Store
    const scope = yield* closeableScope
    const sup = yield* Supervisor.make({ intensity: { maxRestarts: 10, window: "10 seconds" }, children }).pipe(
      Scope.extend(scope)
    )
    const events = yield* sup.subscribe
    const stateOf = (agent: string) =>
      Effect.map(Effect.orDie(store.getState(agent)), (record) => Option.getOrUndefined(record)?.state)
    return { store, scope, sup, events, stateOf }
  })

describe("Supervisor: an agent gone for good is forgotten by the store", () => {
  it.scopedLive("deleteChild, a temporary child's exit, a pool scaled down; a stopped agent and a namesake stay", () =>
    Effect.gen(function*() {
      const { events, scope, stateOf, store, sup } = yield* treeOf([
        echo("stopped"),
        echo("deleted"),
        Supervisor.agent({ id: "temp", restart: "temporary", config: agentConfig("echo", { name: "temp" }) }),
        echo("twin-1", { name: "twin" }),
        // A namesake in another subtree
        Supervisor.supervisor({ id: "sub", children: [echo("twin-2", { name: "twin" })] }),
        Supervisor.pool({ id: "pool", size: 2, config: agentConfig("echo", { name: "member" }) }),
        // A namesake in a nested supervisor that is stopped: still in the tree
        echo("lone", { name: "shadow" }),
        Supervisor.supervisor({ id: "parked", children: [echo("shadow-in", { name: "shadow" })] })
      ])
      yield* sup.terminateChild("stopped")
      yield* sup.terminateChild("twin-1")
      yield* sup.deleteChild("twin-1")
      yield* sup.terminateChild("parked")
      yield* sup.terminateChild("lone")
      yield* sup.deleteChild("lone")
      yield* sup.terminateChild("deleted")
      yield* sup.deleteChild("deleted")
      // The store takes the tree's writes in order: once "deleted" is gone, so would "twin" be, wrongly
      yield* eventuallyEffect(
        "the deleted agent forgotten",
        Effect.map(stateOf("deleted"), (state) => state === undefined)
      )
      // The name's last write (twin-1's stop; states are kept by name) stays: sub/twin-2 runs under it
      assert.strictEqual(yield* stateOf("twin"), "STOPPED", "not forgotten")
      assert.strictEqual(yield* stateOf("shadow"), "STOPPED", "parked/shadow-in, stopped, is still in the tree")
      yield* Effect.exit(sup.call("temp", { crash: 1 }))
      yield* takeUntil(events, (e) => e._tag === "ChildRemoved" && e.child === "temp")
      yield* sup.scale("pool", 1)
      // Closing the tree flushes its writer: every write and deletion has reached the store
      yield* Scope.close(scope, Exit.void)
      for (const agent of ["deleted", "temp", "member-1"]) {
        assert.strictEqual(yield* stateOf(agent), undefined, agent)
      }
      for (const agent of ["stopped", "twin", "member-0", "shadow"]) {
        assert.strictEqual(yield* stateOf(agent), "STOPPED", agent)
      }
      // Its history stays
      const changes = yield* Effect.orDie(store.listMetrics({ agent: "deleted", event: "agent_state_change" }))
      assert.isAbove(changes.length, 0)
    }).pipe(Effect.provide(Layer.merge(TestLive, Store.layerMemory))))

  it.scopedLive("a nested supervisor or pool deleted whole: every agent it had, dynamic ones and scaled members too", () =>
    Effect.gen(function*() {
      const { events, scope, stateOf, sup } = yield* treeOf([
        echo("namesake", { name: "shared" }),
        Supervisor.supervisor({
          id: "team",
          children: [
            echo("team-a"),
            Supervisor.pool({ id: "inner", size: 2, config: agentConfig("echo", { name: "inner" }) })
          ]
        }),
        Supervisor.pool({ id: "crew", size: 1, config: agentConfig("echo", { name: "crew" }) }),
        // Escalates at its first crash and, temporary, leaves the tree as it ends (its agents already stopped)
        Supervisor.supervisor({
          id: "brittle",
          restart: "temporary",
          intensity: { maxRestarts: 0, window: "10 seconds" },
          children: [echo("brittle-a")]
        }),
        // Stopped with a dynamic child named as an agent deleted below: that name stays in the tree
        echo("solo", { name: "x" }),
        Supervisor.supervisor({ id: "hold", children: [] })
      ])
      const team = yield* Effect.orDie(sup.childSupervisor("team"))
      yield* Effect.orDie(team.startChild(echo("team-dyn")))
      yield* Effect.orDie(team.startChild(echo("team-twin", { name: "shared" })))
      const brittle = yield* Effect.orDie(sup.childSupervisor("brittle"))
      yield* Effect.orDie(brittle.startChild(echo("brittle-dyn")))
      const hold = yield* Effect.orDie(sup.childSupervisor("hold"))
      yield* Effect.orDie(hold.startChild(echo("hold-x", { name: "x" })))
      yield* Effect.orDie(sup.scale("crew", 3))
      const gone = [
        "team-a",
        "team-dyn",
        "inner-0",
        "inner-1",
        "crew-0",
        "crew-1",
        "crew-2",
        "brittle-a",
        "brittle-dyn"
      ]
      yield* eventuallyEffect(
        "every agent's state written",
        Effect.map(Effect.forEach([...gone, "shared", "x"], stateOf), (states) => states.every((s) => s === "RUNNING"))
      )

      // Stopped first (its dynamic children go with it), then deleted
      yield* sup.terminateChild("team")
      yield* sup.deleteChild("team")
      yield* sup.terminateChild("crew")
      yield* sup.deleteChild("crew")
      // Deleted as it ends
      yield* Effect.exit(brittle.call("brittle-a", { crash: 1 }))
      yield* takeUntil(events, (e) => e._tag === "ChildRemoved" && e.child === "brittle")
      // "x": the stopped "hold" still has an agent of that name
      yield* sup.terminateChild("hold")
      yield* sup.terminateChild("solo")
      yield* sup.deleteChild("solo")
      // The tree's writes reach the store in order: once "brittle-dyn" is gone, so would "x" and "shared" be, wrongly
      yield* eventuallyEffect(
        "the deleted agents forgotten",
        Effect.map(Effect.forEach(gone, stateOf), (states) => states.every((state) => state === undefined))
      )
      // (states are kept by name: the last write is team-twin's stop; the root's "shared" writes nothing until the end)
      assert.strictEqual(yield* stateOf("shared"), "STOPPED", "the root's agent of a name a deleted one had")
      assert.strictEqual(yield* stateOf("x"), "STOPPED", "a stopped supervisor's dynamic child of that name")
      // Deleted in turn, "hold" takes "x" with it
      yield* sup.deleteChild("hold")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* stateOf("x"), undefined)
    }).pipe(Effect.provide(Layer.merge(TestLive, Store.layerMemory))))
})

/**
 * A heartbeat's `HealthChecked` event is not made when nobody can hear it (no subscriber to any hub it would go
 * through, no `onEvent` of the user's above it): its sample, metrics and health-check record are kept all the same,
 * and the event is made again from the moment somebody listens, at any level of the tree.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { eventuallyEffect, fixture, TestLive } from "./support.js"

const pong = (id: string) =>
  Supervisor.agent({
    id,
    config: { name: id, command: "/bin/sh", args: [fixture("agents", "pong.sh")], heartbeatInterval: "100 millis" }
  })

/** The agent's health-check records in the store. */
const healthRecords = (agent: string) =>
  Effect.flatMap(Store.Store, (store) => store.listMetrics({ agent, event: "supervisor_health_check" }))

/** Takes events until a `HealthChecked` of `agent` comes (the next beat's, 100 ms away). */
const nextHealthChecked = (queue: Queue.Dequeue<Supervisor.SupervisorEvent>, agent: string) =>
  Effect.gen(function*() {
    while (true) {
      const event = yield* Queue.take(queue)
      if (event._tag === "Agent" && event.event._tag === "HealthChecked" && event.event.agent === agent) return event
    }
  }).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error(`no HealthChecked of ${agent}`) }))

describe("Supervisor: a heartbeat nobody hears", () => {
  it.scopedLive(
    "keeps the sample, the metrics and the store's records; a subscription at the root or in a nested tree gets the events from then on",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          children: [pong("top"), Supervisor.supervisor({ id: "nested", children: [pong("inner")] })]
        })
        // Nobody listens: the beats still reach the store and the agents' last samples.
        for (const agent of ["top", "inner"]) {
          yield* eventuallyEffect(
            `three health checks of ${agent} in the store`,
            Effect.map(healthRecords(agent), (records) => records.length >= 3),
            "20 seconds"
          )
        }
        const top = yield* sup.child("top")
        const sample = (yield* top.metadata).lastHealth.pipe(Option.getOrThrow)
        assert.strictEqual(sample.agent, "top")
        assert.isAbove(sample.processes, 0)

        // A subscription to the root hears both, the nested tree's agent through its parent.
        const root = yield* sup.subscribe
        const [fromTop, fromInner] = yield* Effect.all([
          nextHealthChecked(root, "top"),
          nextHealthChecked(root, "inner")
        ], { concurrency: 1 })
        assert.strictEqual(fromTop.child, "top")
        assert.deepStrictEqual([fromInner.supervisor, fromInner.child], ["root/nested", "inner"])
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "a subscription to a nested tree alone hears its agents; an onEvent at the root hears every beat",
    () =>
      Effect.gen(function*() {
        const heard = yield* Deferred.make<string>()
        const sup = yield* Supervisor.make({
          children: [Supervisor.supervisor({ id: "nested", children: [pong("inner")] })],
          onEvent: (event) =>
            event._tag === "Agent" && event.event._tag === "HealthChecked"
              ? Deferred.succeed(heard, event.child)
              : Effect.void
        })
        const first = yield* Deferred.await(heard).pipe(
          Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("onEvent heard no HealthChecked") })
        )
        assert.strictEqual(first, "inner")
        const nested = yield* sup.childSupervisor("nested")
        const queue = yield* nested.subscribe
        const event = yield* nextHealthChecked(queue, "inner")
        assert.strictEqual(event.child, "inner")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )
})

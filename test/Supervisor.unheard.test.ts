/**
 * A heartbeat's `HealthChecked` event is not made when nobody can hear it (no subscription open on any hub it would
 * go through, no `onEvent` of the user's above it): its sample, metrics and health-check record are kept all the
 * same, no fiber runs for it, and the event is made again from the moment somebody listens, at any level of the tree.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { eventuallyEffect, fixture, forkCounter, sleepLive, TestLive } from "./support.js"

const pong = (id: string) =>
  Supervisor.agent({
    id,
    config: { name: id, command: "/bin/sh", args: [fixture("agents", "pong.sh")], heartbeatInterval: "100 millis" }
  })

/** The agent's health-check records in the store. */
const healthRecords = (agent: string) =>
  Effect.flatMap(Store.Store, (store) => store.listMetrics({ agent, event: "supervisor_health_check" }))

/** How many heartbeat latencies the metric registry holds for `agent`. */
const latenciesMeasured = (agent: string): number =>
  Metric.unsafeSnapshot().reduce((sum, pair) =>
    pair.metricKey.name === "agent_supervisor_heartbeat_latency_seconds" &&
      pair.metricKey.tags.some((tag) => tag.key === "agent" && tag.value === agent) &&
      MetricState.isHistogramState(pair.metricState)
      ? sum + pair.metricState.count
      : sum, 0)

const TIMEOUT = { duration: "20 seconds" } as const

/** Takes events until a `HealthChecked` of `agent` comes (the next beat's, 100 ms away). */
const nextHealthChecked = (queue: Queue.Dequeue<Supervisor.SupervisorEvent>, agent: string) =>
  Effect.gen(function*() {
    while (true) {
      const event = yield* Queue.take(queue)
      if (event._tag === "Agent" && event.event._tag === "HealthChecked" && event.event.agent === agent) return event
    }
  }).pipe(Effect.timeoutFail({ ...TIMEOUT, onTimeout: () => new Error(`no HealthChecked of ${agent}`) }))

/** The same from an agent's own subscription. */
const nextOwnHealthChecked = (queue: Queue.Dequeue<AgentSupervisor.AgentEvent>) =>
  Effect.gen(function*() {
    while (true) {
      const event = yield* Queue.take(queue)
      if (event._tag === "HealthChecked") return event
    }
  }).pipe(Effect.timeoutFail({ ...TIMEOUT, onTimeout: () => new Error("no HealthChecked on the agent's own hub") }))

/** A tree of an agent `top` and a nested tree `nested` of an agent `inner`, nobody listening. */
const twoLevels = Supervisor.make({
  children: [pong("top"), Supervisor.supervisor({ id: "nested", children: [pong("inner")] })]
})

describe("Supervisor: a heartbeat nobody hears", () => {
  it.scopedLive(
    "keeps the sample, the latency metric and the store's records; a subscription at the root hears a nested tree's agent from then on",
    () =>
      Effect.gen(function*() {
        const sup = yield* twoLevels
        // Nobody listens: the beats still reach the store, the metrics and the agents' last samples.
        for (const agent of ["top", "inner"]) {
          yield* eventuallyEffect(
            `three health checks of ${agent} in the store`,
            Effect.map(healthRecords(agent), (records) => records.length >= 3),
            "20 seconds"
          )
          assert.isAtLeast(latenciesMeasured(agent), 3, `${agent}'s heartbeat latencies in the registry`)
        }
        const sample = (yield* (yield* sup.child("top")).metadata).lastHealth.pipe(Option.getOrThrow)
        assert.strictEqual(sample.agent, "top")
        assert.isAbove(sample.processes, 0)

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
    "a subscription to a nested tree alone, or to one agent alone, hears that agent's beats",
    () =>
      Effect.gen(function*() {
        const sup = yield* twoLevels
        const nested = yield* (yield* sup.childSupervisor("nested")).subscribe
        assert.strictEqual((yield* nextHealthChecked(nested, "inner")).child, "inner")
        const own = yield* (yield* sup.child("top")).subscribe
        assert.strictEqual((yield* nextOwnHealthChecked(own)).agent, "top")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive("an onEvent at the root hears every beat", () =>
    Effect.gen(function*() {
      const heard = yield* Deferred.make<string>()
      yield* Supervisor.make({
        children: [Supervisor.supervisor({ id: "nested", children: [pong("inner")] })],
        onEvent: (event) =>
          event._tag === "Agent" && event.event._tag === "HealthChecked"
            ? Deferred.succeed(heard, event.child)
            : Effect.void
      })
      const first = yield* Deferred.await(heard).pipe(
        Effect.timeoutFail({ ...TIMEOUT, onTimeout: () => new Error("onEvent heard no HealthChecked") })
      )
      assert.strictEqual(first, "inner")
    }).pipe(Effect.provide(TestLive)), 60_000)

  it.scopedLive("unheard beats start no fiber; once someone subscribes, the reports run in fibers again", () => {
    const counter = forkCounter()
    return Effect.gen(function*() {
      const sup = yield* Supervisor.make({ children: ["a", "b", "c", "d", "e", "f"].map(pong) })
      // Six agents beating every 100 ms: about 60 beats a second.
      const beatsIn = (seconds: number) =>
        Effect.gen(function*() {
          const before = counter.started()
          const checks = (yield* healthRecords("a")).length
          yield* sleepLive(`${seconds} seconds`)
          yield* eventuallyEffect(
            "more beats recorded",
            Effect.map(healthRecords("a"), (records) => records.length >= checks + 5),
            "20 seconds"
          )
          return counter.started() - before
        })
      yield* eventuallyEffect("the agents beat", Effect.map(healthRecords("f"), (r) => r.length >= 2), "20 seconds")
      const unheard = yield* beatsIn(2)
      const subscription = yield* sup.subscribe
      yield* nextHealthChecked(subscription, "a")
      const heard = yield* beatsIn(2)
      // A report runner's fiber per batch of reports when heard (tens a second); a stray one at most otherwise.
      // (Measured: 0 unheard; 10-38 a second heard, fewer when the agents' phases fall in one batch.)
      assert.isAtMost(unheard, 2, `fibers started in 2 s of unheard beats: ${unheard}`)
      assert.isAtLeast(heard, 5, `fibers started in 2 s of heard beats: ${heard}`)
    }).pipe(Effect.provide(TestLive), Effect.supervised(counter.supervisor))
  }, 60_000)
})

import { assert, describe, it } from "@effect/vitest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as EffectSupervisor from "effect/Supervisor"
import * as Supervisor from "../src/Supervisor.js"
import { fixture, sleepLive, TestLive } from "./support.js"

const AGENTS = 300

/** Counts the fibers started in a region that have not ended yet. */
const liveFibers = () => {
  let live = 0
  const supervisor = new (class extends EffectSupervisor.AbstractSupervisor<void> {
    value = Effect.void
    override onStart() {
      live++
    }
    override onEnd() {
      live--
    }
  })()
  return { supervisor, live: () => live }
}

const pong = (id: string, heartbeatInterval: Duration.DurationInput) =>
  Supervisor.agent({
    id,
    config: {
      name: id,
      command: "/bin/sh",
      args: [fixture("agents", "pong.sh")],
      heartbeatInterval,
      startupTimeout: "60 seconds"
    }
  })
const WINDOW_SECONDS = 5

describe("Supervisor at scale", () => {
  it.live(
    `${AGENTS} tiny agents beating every 200 ms for ${WINDOW_SECONDS} s: each pinged at least 10 times, none hung`,
    () =>
      Effect.gen(function*() {
        const beats = new Map<string, number>()
        const missed: Array<string> = []
        const exited: Array<string> = []
        let counting = false
        const sup = yield* Supervisor.make({
          intensity: { maxRestarts: 0, window: "1 minute" },
          onEvent: (e) =>
            Effect.sync(() => {
              if (e._tag !== "Agent") return
              const event = e.event
              if (event._tag === "HealthChecked") {
                if (counting) beats.set(e.child, (beats.get(e.child) ?? 0) + 1)
              } else if (event._tag === "HealthCheckFailed") missed.push(`${e.child}: ${event.error}`)
              else if (event._tag === "Exited") exited.push(e.child)
            })
        })
        const specs = Array.from({ length: AGENTS }, (_, i) => pong(`a${i}`, "200 millis"))
        const result = yield* sup.startChildren(specs)
        assert.deepStrictEqual(result.failed, [])
        assert.strictEqual(result.started.length, AGENTS)
        // Counted over a window of real time: 25 beats are due in it, at least 10 are asked of each agent.
        counting = true
        yield* sleepLive(`${WINDOW_SECONDS} seconds`)
        counting = false
        const fewest = Math.min(...specs.map((spec) => beats.get(spec.id) ?? 0))
        assert.isAtLeast(fewest, 10, `the agent pinged least often had ${fewest} beats`)
        // None declared hung (that takes unhealthyAfter missed pings in a row): no ping missed, none exited.
        assert.deepStrictEqual(missed, [])
        assert.deepStrictEqual(exited, [])
        const counts = yield* sup.countChildren
        assert.deepStrictEqual(counts, { specs: AGENTS, active: AGENTS, supervisors: 0, workers: AGENTS })
      }).pipe(Effect.scoped, Effect.provide(TestLive)),
    120_000
  )

  it.live(
    "an idle agent holds no fiber, its heartbeat included; requests and beats leave none behind",
    () =>
      Effect.gen(function*() {
        const counter = liveFibers()
        const agents = 50
        const beats = new Map<string, number>()
        const live = yield* Effect.gen(function*() {
          const sup = yield* Supervisor.make({
            onEvent: (e) =>
              Effect.sync(() => {
                if (e._tag === "Agent" && e.event._tag === "HealthChecked") {
                  beats.set(e.child, (beats.get(e.child) ?? 0) + 1)
                }
              })
          })
          const ids = Array.from({ length: agents }, (_, i) => `f${i}`)
          yield* sup.startChildren(ids.map((id) => pong(id, "100 millis")))
          // a few beats of every agent: each one pinged, sampled, published and written to the store
          while (ids.some((id) => (beats.get(id) ?? 0) < 3)) yield* sleepLive("50 millis")
          const afterBeats = counter.live()
          // requests, each in the caller's fiber
          yield* Effect.forEach(ids, (id) => sup.call(id, { type: "ping" }).pipe(Effect.ignore), { concurrency: 10 })
          return { afterBeats, afterRequests: counter.live() }
        }).pipe(
          Effect.scoped,
          Effect.supervised(counter.supervisor),
          Effect.flatMap((result) => Effect.succeed(result))
        )
        // none per agent, only a few of the tree's (its store writer's drain and watchdog, the ticker): six per
        // agent before (log, output, timeout sweeper and its alarm, exit watcher, heartbeat), then one (the heartbeat)
        assert.isAtLeast(live.afterBeats, 1) // the count sees the tree's own
        assert.isAtMost(live.afterBeats, 8, `live fibers: ${live.afterBeats}`)
        assert.isAtMost(live.afterRequests, 8, `live fibers: ${live.afterRequests}`)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )
})

import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Supervisor from "../src/Supervisor.js"
import { fixture, sleepLive, TestLive } from "./support.js"

const AGENTS = 300
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
        const specs = Array.from({ length: AGENTS }, (_, i) =>
          Supervisor.agent({
            id: `a${i}`,
            config: {
              name: `a${i}`,
              command: "/bin/sh",
              args: [fixture("agents", "pong.sh")],
              heartbeatInterval: "200 millis",
              startupTimeout: "60 seconds"
            }
          }))
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
})

/**
 * Pool autoscaling: the decision (`autoscale.ts` `decide`) property-tested on its rules (bounds, cool-down, the
 * size that carries the load), and a real pool that grows under slow concurrent calls and shrinks once idle.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as TestClock from "effect/TestClock"
import * as Autoscale from "../src/internal/supervisor/autoscale.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, eventuallyEffect, failureOf, TestLive } from "./support.js"

const settingsArb = FastCheck.record({
  min: FastCheck.integer({ min: 0, max: 5 }),
  span: FastCheck.integer({ min: 0, max: 6 }),
  metric: FastCheck.constantFrom("in-flight" as const, "queue" as const),
  target: FastCheck.double({ min: 0.5, max: 8, noNaN: true }),
  coolDown: FastCheck.integer({ min: 0, max: 10_000 })
}).map(({ coolDown, min, span, ...rest }) => ({
  ...rest,
  min,
  max: Math.max(1, min + span),
  interval: Duration.seconds(1),
  coolDown: Duration.millis(coolDown)
}))

const readingArb = FastCheck.record({
  inFlight: FastCheck.array(FastCheck.integer({ min: 0, max: 40 }), { minLength: 0, maxLength: 11 }),
  maxInFlight: FastCheck.integer({ min: 1, max: 8 }),
  sinceChange: FastCheck.option(FastCheck.integer({ min: 0, max: 20_000 }), { nil: undefined })
})

/** A tree of one pool, `pool`, of echo agents named `name`: one member to begin with, autoscaled by `autoscale`. */
const autoscaledPool = (name: string, autoscale: Supervisor.PoolSpec["autoscale"]) =>
  Supervisor.make({
    children: [Supervisor.pool({ id: "pool", size: 1, config: agentConfig("echo", { name }), autoscale })]
  })

describe("pool autoscaling", () => {
  it.prop(
    "decide: within min and max, never inside the cool-down, and (in-flight) the fewest members that carry the load",
    [settingsArb, readingArb],
    ([settings, { inFlight, maxInFlight, sinceChange }]) => {
      const now = 1_000_000
      const reading = {
        size: inFlight.length,
        members: inFlight.map((n) => ({ inFlight: n, maxInFlight })),
        lastChange: sinceChange === undefined ? undefined : now - sinceChange,
        now
      }
      const size = Autoscale.decide(settings, reading)
      if (size === undefined) return true
      assert.isAtLeast(size, settings.min)
      assert.isAtMost(size, settings.max)
      assert.notStrictEqual(size, reading.size)
      if (sinceChange !== undefined) assert.isAtLeast(sinceChange, Duration.toMillis(settings.coolDown))
      if (settings.metric === "in-flight") {
        const load = Autoscale.load(settings, reading.members)
        if (size < settings.max) assert.isAtLeast(size * settings.target, load - 1e-9)
        if (size > settings.min) assert.isBelow((size - 1) * settings.target, load)
      }
      return true
    }
  )

  it.scopedLive(
    "a pool grows under slow concurrent calls, up to max, and shrinks to min once idle",
    () =>
      Effect.gen(function*() {
        const sup = yield* autoscaledPool(
          "auto",
          { min: 1, max: 3, target: 1, interval: "100 millis", coolDown: "200 millis" }
        )
        const slow = yield* Effect.fork(Effect.all(
          Array.from({ length: 6 }, () => sup.call("pool", { whoami: true, sleep: 2500 })),
          { concurrency: "unbounded" }
        ))
        yield* eventuallyEffect("grown to 3", Effect.map(sup.poolInfo("pool"), (info) => info.size === 3), "20 seconds")
        const grown = yield* sup.poolInfo("pool")
        assert.isAtMost(grown.members.length, 3, "never past max")
        yield* Effect.fromFiber(slow)
        yield* eventuallyEffect(
          "back to 1 once idle",
          Effect.map(sup.poolInfo("pool"), (info) => info.size === 1 && info.members.length === 1),
          "20 seconds"
        )
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scoped(
    "a scale by hand stays within min..max and holds for the cool-down; the autoscaler decides after it",
    () =>
      Effect.gen(function*() {
        const sup = yield* autoscaledPool(
          "by-hand",
          { min: 1, max: 4, target: 1, interval: "1 second", coolDown: "10 seconds" }
        )
        const refused = yield* Effect.flip(sup.scale("pool", 10))
        assert.strictEqual(refused._tag, "ConfigError")
        assert.include(refused.message, "must be within the pool's autoscale, 1 to 4")
        yield* sup.scale("pool", 3)
        const members = Effect.map(sup.poolInfo("pool"), (info) => [info.size, info.members.length])
        assert.deepStrictEqual(yield* members, [3, 3])
        // Idle, the autoscaler wants 1 at each look; not within the cool-down of the scale by hand
        for (let second = 0; second < 8; second++) {
          yield* TestClock.adjust("1 second")
          assert.deepStrictEqual(yield* members, [3, 3], `after ${second + 1} s`)
        }
        yield* TestClock.adjust("3 seconds")
        yield* eventuallyEffect(
          "back to 1 after the cool-down",
          Effect.map(members, ([size, n]) => size === 1 && n === 1),
          "20 seconds"
        )
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.effect("a size outside min..max, or min above max: a ConfigError at the pool's autoscale", () =>
    Effect.gen(function*() {
      const error = failureOf(
        yield* Effect.exit(Supervisor.make({
          children: [
            Supervisor.pool({
              id: "p",
              size: 5,
              config: agentConfig("echo"),
              autoscale: { min: 1, max: 3, target: 1 }
            })
          ]
        }))
      )
      assert.strictEqual(error._tag === "ConfigError" && error.field, "children[0].autoscale")
    }).pipe(Effect.scoped, Effect.provide(TestLive)))
})

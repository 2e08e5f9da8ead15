/**
 * Polled limits (`limits/soft.ts`) on `TestClock` with readings made up: memory above its limit for the whole grace
 * kills, a dip below starts the grace again; CPU averaged over the window is reported once per window, and kills
 * only with `onCpuLimit: "restart"`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import * as Config from "../../../src/Agent/Config.js"
import * as Soft from "../../../src/Agent/internal/limits/soft.js"
import type { GroupReading } from "../../../src/Agent/internal/processTable.js"

const MiB = 1024 * 1024

/** A watch over readings that `reading` makes at each sample (the sample's index and its clock millis). */
const watching = (
  limits: Config.Limits,
  reading: (sample: number, millis: number) => { readonly rssBytes: number; readonly cpuTicks: number }
) =>
  Effect.gen(function*() {
    const events: Array<string> = []
    let sample = 0
    const fiber = yield* Effect.fork(Soft.watch({
      limits,
      read: () =>
        Effect.map(TestClock.currentTimeMillis, (millis): GroupReading => {
          const usage = reading(sample++, millis)
          return { usage: { processes: 1, ...usage }, takenAt: millis }
        }),
      onExceeded: (exceeded) =>
        Effect.map(TestClock.currentTimeMillis, (millis) => {
          events.push(
            `${millis}: ${exceeded.limit} ${exceeded.observed.toFixed(2)} > ${exceeded.max} ${exceeded.killing}`
          )
        }),
      kill: (reason) =>
        Effect.map(TestClock.currentTimeMillis, (millis) => void events.push(`${millis}: kill ${reason}`))
    }))
    return { events, fiber }
  })

const limitsOf = (input: NonNullable<Config.AgentConfigInput["limits"]>) =>
  Effect.map(Config.make({ name: "soft", command: "/bin/true", limits: input }), (config) => config.limits!)

describe("polled limits", () => {
  it.effect("samples a quarter of the grace or a fifth of the window apart, from 100 ms to 1 s", () =>
    Effect.gen(function*() {
      assert.strictEqual(Soft.sampleMillis(yield* limitsOf({ memory: "64 MiB" })), 500)
      assert.strictEqual(Soft.sampleMillis(yield* limitsOf({ memory: "64 MiB", memoryGrace: "10 seconds" })), 1000)
      assert.strictEqual(Soft.sampleMillis(yield* limitsOf({ memory: "64 MiB", memoryGrace: 100 })), 100)
      assert.strictEqual(Soft.sampleMillis(yield* limitsOf({ cpu: 0.5, cpuWindow: "2 seconds" })), 400)
      assert.isFalse(Soft.watches(yield* limitsOf({ pids: 3 })))
    }))

  it.effect("memory above the limit for the grace kills; a dip below starts the grace again", () =>
    Effect.gen(function*() {
      const limits = yield* limitsOf({ memory: "64 MiB", memoryGrace: "2 seconds" })
      // Samples every 500 ms: above at 500..1500, below at 2000, above from 2500 on.
      const { events, fiber } = yield* watching(limits, (_, millis) => ({
        rssBytes: millis === 2000 ? 10 * MiB : 100 * MiB,
        cpuTicks: 0
      }))
      yield* TestClock.adjust("4 seconds")
      assert.deepStrictEqual(events, [], "the dip at 2 s restarted the grace")
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(events, [
        `4500: memory ${(100 * MiB).toFixed(2)} > ${64 * MiB} true`,
        "4500: kill memory_limit"
      ])
      assert.isTrue((yield* Fiber.await(fiber))._tag === "Success", "the watch ends with the kill")
    }))

  it.effect("CPU above the limit over a window is reported once per window; logged only, by default", () =>
    Effect.gen(function*() {
      const limits = yield* limitsOf({ cpu: 0.25, cpuWindow: "2 seconds" })
      // Half a core: 50 ticks a second.
      const { events, fiber } = yield* watching(limits, (_, millis) => ({ rssBytes: 0, cpuTicks: millis / 20 }))
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(events, [])
      yield* TestClock.adjust("400 millis")
      assert.deepStrictEqual(events, ["2400: cpu 0.50 > 0.25 false"])
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(events, ["2400: cpu 0.50 > 0.25 false", "4400: cpu 0.50 > 0.25 false"])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("CPU under the limit is never reported; with onCpuLimit restart, above it kills", () =>
    Effect.gen(function*() {
      const quiet = yield* watching(yield* limitsOf({ cpu: 1, cpuWindow: "1 second" }), (_, millis) => ({
        rssBytes: 0,
        cpuTicks: millis / 20
      }))
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(quiet.events, [])
      yield* Fiber.interrupt(quiet.fiber)
      const limits = yield* limitsOf({ cpu: 0.25, cpuWindow: "1 second", onCpuLimit: "restart" })
      const busy = yield* watching(limits, (_, millis) => ({ rssBytes: 0, cpuTicks: millis / 10 }))
      yield* TestClock.adjust("2 seconds")
      assert.match(busy.events[0], /: cpu 1\.00 > 0\.25 true$/)
      assert.match(busy.events[1], /: kill cpu_limit$/)
      assert.strictEqual(busy.events.length, 2)
    }))
})

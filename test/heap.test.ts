import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as childProcess from "node:child_process"
import { fixture } from "./support.js"

const CRASHES = 300
const MANUAL = 150
/**
 * Before restarts stopped chaining fibers, each cost about 3-4 KiB of heap for ever (measured with this probe:
 * 2.9 KiB per crash restart, 3.5 KiB per manual one); since, under 0.4 KiB and flat.
 */
const BOUND_BYTES_PER_RESTART = 1024

/** Runs the heap probe in a process of its own, so that no other test's garbage is measured. */
/**
 * Heap growth per restart between the median of the first three samples and the median of the last three: one
 * sample may catch a one-off (the previous phase's garbage collected late, a table growing once), a leak grows
 * every sample.
 */
const perRestart = (samples: ReadonlyArray<number>, step: number): number => {
  const median3 = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[1]
  return (median3(samples.slice(-3)) - median3(samples.slice(0, 3))) / ((samples.length - 3) * step)
}

interface ProbeResult {
  readonly restarts: number
  readonly step: number
  readonly crashSamples: ReadonlyArray<number>
  readonly manualSamples: ReadonlyArray<number>
}

const probe = Effect.async<ProbeResult, Error>((resume) => {
  childProcess.execFile(
    process.execPath,
    // The JIT tiers off: compiled code grows for the first few hundred restarts (about 1 MB, then flat) and
    // would hide what is measured here, the objects the supervisor keeps.
    [
      "--expose-gc",
      "--no-opt",
      "--no-sparkplug",
      "--no-maglev",
      fixture("heap", "restarts.mjs"),
      String(CRASHES),
      String(MANUAL),
      "50"
    ],
    { timeout: 280_000, maxBuffer: 16 * 1024 * 1024 },
    (error, stdout, stderr) => {
      if (error) return resume(Effect.fail(new Error(`heap probe failed: ${error.message}\n${stderr.slice(-4000)}`)))
      resume(Effect.succeed(JSON.parse(stdout.trim().split("\n").pop()!)))
    }
  )
})

describe("heap over a long life", () => {
  it.live("crash restarts and manual restarts leave the heap flat after GC", () =>
    Effect.gen(function*() {
      const result = yield* probe
      const perCrash = perRestart(result.crashSamples, result.step)
      const perManual = perRestart(result.manualSamples, result.step)
      assert.isAtLeast(result.restarts, CRASHES, JSON.stringify(result))
      assert.isBelow(perCrash, BOUND_BYTES_PER_RESTART, `heap per crash restart: ${JSON.stringify(result)}`)
      assert.isBelow(perManual, BOUND_BYTES_PER_RESTART, `heap per manual restart: ${JSON.stringify(result)}`)
    }), 300_000)
})

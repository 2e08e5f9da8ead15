import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import type * as Health from "../../../src/Agent/Health.js"
import { LastSample } from "../../../src/Agent/internal/supervisor/lastSample.js"

const option = <A>(value: FastCheck.Arbitrary<A>) =>
  FastCheck.option(value, { nil: undefined }).map((a) => Option.fromNullable(a) as Option.Option<A>)

const sample: FastCheck.Arbitrary<Health.HealthSample> = FastCheck.record({
  agent: FastCheck.string(),
  pid: FastCheck.integer({ min: 1 }),
  latencyMillis: FastCheck.double({ min: 0, max: 1e6, noNaN: true }),
  report: option(FastCheck.record({
    uptime_seconds: FastCheck.nat(),
    total_requests: FastCheck.nat(),
    memory_mb: FastCheck.double({ min: 0, max: 1e6, noNaN: true }),
    cpu_percent: FastCheck.double({ min: 0, max: 800, noNaN: true })
  })),
  memoryMb: option(FastCheck.double({ min: 0, max: 1e6, noNaN: true })),
  cpuPercent: option(FastCheck.double({ min: 0, max: 800, noNaN: true })),
  processes: FastCheck.nat(),
  timestamp: FastCheck.integer({ min: 0, max: 2 ** 45 })
})

describe("LastSample", () => {
  it("nothing before the first sample", () => {
    assert.isUndefined(new LastSample().get())
  })

  it.prop("gives back the last sample noted, equal to it, whatever came before", [
    FastCheck.array(sample, { minLength: 1 })
  ], ([samples]) => {
    const last = new LastSample()
    for (const s of samples) last.note(s)
    const got = last.get()!
    const noted = samples[samples.length - 1]
    assert.deepStrictEqual(got, noted)
    // The agent's own report is the one it sent, not a copy.
    assert.strictEqual(Option.getOrUndefined(got.report), Option.getOrUndefined(noted.report))
  })
})

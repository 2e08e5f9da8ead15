import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as TestClock from "effect/TestClock"
import * as RestartPolicy from "../../src/Agent/RestartPolicy.js"

// Schedule delays are fractional milliseconds (jitter, nanosecond rounding), so caps are compared with slack.
const EPSILON = 1e-6

// Properties that step the TestClock many times per run: fewer runs keep them well inside the test timeout.
const DRIVEN = { fastCheck: { numRuns: 50 } }

const settings = (overrides: Partial<RestartPolicy.Settings> = {}): RestartPolicy.Settings => ({
  restartOnExit: true,
  restart: "permanent",
  maxRestartAttempts: 3,
  restartBackoff: Duration.seconds(5),
  backoffFactor: 2,
  jitter: 0.1,
  maxBackoff: Duration.minutes(5),
  resetAfter: Duration.seconds(60),
  ...overrides
})

const arbSettings: FastCheck.Arbitrary<RestartPolicy.Settings> = FastCheck.record({
  restartOnExit: FastCheck.boolean(),
  restart: FastCheck.constantFrom("permanent" as const, "transient" as const, "temporary" as const),
  maxRestartAttempts: FastCheck.integer({ min: 0, max: 12 }),
  restartBackoff: FastCheck.integer({ min: 0, max: 10_000 }).map(Duration.millis),
  backoffFactor: FastCheck.double({ min: 1, max: 10, noNaN: true }),
  jitter: FastCheck.double({ min: 0, max: 1, noNaN: true }),
  maxBackoff: FastCheck.integer({ min: 0, max: 600_000 }).map(Duration.millis),
  resetAfter: FastCheck.integer({ min: 0, max: 120_000 }).map(Duration.millis)
})

const arbRestarting = arbSettings.map((s) => ({ ...s, restartOnExit: true, restart: "permanent" as const }))

const millis = (delays: ReadonlyArray<Duration.Duration>) => delays.map(Duration.toMillis)

// Runs `schedule` with Effect.repeat under the TestClock, recording when each run happened and what each
// recurrence reported as its delay.
const driveSchedule = (s: RestartPolicy.Settings) =>
  Effect.gen(function*() {
    const runs = yield* Ref.make<ReadonlyArray<number>>([])
    const outputs = yield* Ref.make<ReadonlyArray<Duration.Duration>>([])
    const tick = Effect.flatMap(TestClock.currentTimeMillis, (now) => Ref.update(runs, (ts) => [...ts, now]))
    // Only recurrences count: the final `done` step also has an output, but nothing waits for it.
    const observed = RestartPolicy.schedule(s).pipe(
      Schedule.onDecision((out, decision) =>
        ScheduleDecision.isContinue(decision) ? Ref.update(outputs, (os) => [...os, out]) : Effect.void
      )
    )
    const fiber = yield* Effect.fork(Effect.repeat(tick, observed))
    const step = Duration.sum(s.maxBackoff, Duration.millis(1))
    // Each adjustment passes at least one pending sleep; the bound only guards against a schedule that never ends.
    for (let i = 0; i <= s.maxRestartAttempts + 1 && Option.isNone(yield* Fiber.poll(fiber)); i++) {
      yield* TestClock.adjust(step)
    }
    yield* Fiber.join(fiber)
    return { runs: yield* Ref.get(runs), outputs: yield* Ref.get(outputs) }
  })

describe("RestartPolicy", () => {
  describe("classifyExit", () => {
    it("a requested exit is a shutdown, whatever the code or signal", () => {
      assert.strictEqual(RestartPolicy.classifyExit({ exitCode: 0, signal: null, requested: true }), "shutdown")
      assert.strictEqual(RestartPolicy.classifyExit({ exitCode: 1, signal: null, requested: true }), "shutdown")
      assert.strictEqual(RestartPolicy.classifyExit({ exitCode: null, signal: "SIGKILL", requested: true }), "shutdown")
    })

    it("exit code 0 without a signal is normal", () => {
      assert.strictEqual(RestartPolicy.classifyExit({ exitCode: 0, signal: null, requested: false }), "normal")
    })

    it("a non-zero code, a signal or no code at all is abnormal", () => {
      assert.strictEqual(RestartPolicy.classifyExit({ exitCode: 1, signal: null, requested: false }), "abnormal")
      assert.strictEqual(
        RestartPolicy.classifyExit({ exitCode: null, signal: "SIGKILL", requested: false }),
        "abnormal"
      )
      assert.strictEqual(RestartPolicy.classifyExit({ exitCode: 0, signal: "SIGTERM", requested: false }), "abnormal")
      assert.strictEqual(RestartPolicy.classifyExit({ exitCode: null, signal: null, requested: false }), "abnormal")
    })
  })

  describe("decide", () => {
    it("a shutdown stops and is never counted, even for temporary children", () => {
      for (const restart of ["permanent", "transient", "temporary"] as const) {
        assert.deepStrictEqual(RestartPolicy.decide(settings({ restart }), "shutdown", 2), { _tag: "Stop" })
      }
      assert.deepStrictEqual(RestartPolicy.decide(settings({ maxRestartAttempts: 0 }), "shutdown", 99), {
        _tag: "Stop"
      })
    })

    it("temporary children are removed after any exit they did not ask for", () => {
      const s = settings({ restart: "temporary" })
      assert.deepStrictEqual(RestartPolicy.decide(s, "normal", 0), { _tag: "Remove" })
      assert.deepStrictEqual(RestartPolicy.decide(s, "abnormal", 0), { _tag: "Remove" })
    })

    it("restartOnExit false stops and keeps the spec", () => {
      const s = settings({ restartOnExit: false })
      assert.deepStrictEqual(RestartPolicy.decide(s, "abnormal", 0), { _tag: "Stop" })
      assert.deepStrictEqual(RestartPolicy.decide(s, "normal", 0), { _tag: "Stop" })
    })

    it("transient restarts after an abnormal exit only", () => {
      const s = settings({ restart: "transient" })
      assert.deepStrictEqual(RestartPolicy.decide(s, "normal", 0), { _tag: "Stop" })
      assert.deepStrictEqual(RestartPolicy.decide(s, "abnormal", 0), { _tag: "Restart", failures: 1 })
    })

    it("permanent restarts after a normal or abnormal exit, counting both", () => {
      const s = settings({ restart: "permanent" })
      assert.deepStrictEqual(RestartPolicy.decide(s, "normal", 0), { _tag: "Restart", failures: 1 })
      assert.deepStrictEqual(RestartPolicy.decide(s, "abnormal", 1), { _tag: "Restart", failures: 2 })
    })

    it("parks once the failures pass maxRestartAttempts", () => {
      const s = settings({ maxRestartAttempts: 3 })
      assert.deepStrictEqual(RestartPolicy.decide(s, "abnormal", 2), { _tag: "Restart", failures: 3 })
      assert.deepStrictEqual(RestartPolicy.decide(s, "abnormal", 3), { _tag: "Park", failures: 4 })
      assert.deepStrictEqual(RestartPolicy.decide(settings({ maxRestartAttempts: 0 }), "abnormal", 0), {
        _tag: "Park",
        failures: 1
      })
    })

    it.prop("exactly maxRestartAttempts restarts happen before the circuit opens", [arbSettings], ([s]) => {
      let failures = 0
      let restarts = 0
      let decision = RestartPolicy.decide(s, "abnormal", failures)
      while (decision._tag === "Restart") {
        restarts++
        failures = decision.failures
        decision = RestartPolicy.decide(s, "abnormal", failures)
      }
      if (s.restart === "temporary") {
        assert.deepStrictEqual(decision, { _tag: "Remove" })
      } else if (!s.restartOnExit) {
        assert.deepStrictEqual(decision, { _tag: "Stop" })
      } else {
        assert.strictEqual(restarts, s.maxRestartAttempts)
        assert.deepStrictEqual(decision, { _tag: "Park", failures: s.maxRestartAttempts + 1 })
      }
    })
  })

  describe("failuresAfterRun", () => {
    it("resets at exactly resetAfter and keeps the count just before", () => {
      const s = settings({ resetAfter: Duration.seconds(60) })
      assert.strictEqual(RestartPolicy.failuresAfterRun(s, 3, 60_000), 0)
      assert.strictEqual(RestartPolicy.failuresAfterRun(s, 3, 59_999), 3)
    })

    it.prop(
      "a stable period of at least resetAfter resets the count, a shorter one keeps it",
      [arbSettings, FastCheck.integer({ min: 0, max: 20 }), FastCheck.integer({ min: 0, max: 240_000 })],
      ([s, failures, ran]) => {
        const expected = ran >= Duration.toMillis(s.resetAfter) ? 0 : failures
        assert.strictEqual(RestartPolicy.failuresAfterRun(s, failures, ran), expected)
      }
    )
  })

  describe("backoff", () => {
    it("baseDelay doubles from the base and stops at the cap", () => {
      const s = settings({ restartBackoff: Duration.seconds(5), maxBackoff: Duration.seconds(30) })
      assert.deepStrictEqual(
        [1, 2, 3, 4, 5].map((n) => Duration.toMillis(RestartPolicy.baseDelay(s, n))),
        [5_000, 10_000, 20_000, 30_000, 30_000]
      )
    })

    it("baseDelay stays finite and capped for huge failure counts", () => {
      const s = settings({ backoffFactor: 10, maxBackoff: Duration.minutes(5) })
      assert.strictEqual(Duration.toMillis(RestartPolicy.baseDelay(s, 10_000)), 300_000)
    })

    it.effect("delays lists one delay per allowed restart", () =>
      Effect.gen(function*() {
        const planned = yield* RestartPolicy.delays(settings({ jitter: 0 }))
        assert.deepStrictEqual(millis(planned), [5_000, 10_000, 20_000])
      }))

    it.effect.prop("delays never exceed the cap, jitter included", [arbSettings], ([s]) =>
      Effect.gen(function*() {
        const planned = millis(yield* RestartPolicy.delays(s))
        assert.strictEqual(planned.length, s.maxRestartAttempts)
        const cap = Duration.toMillis(s.maxBackoff)
        for (const d of planned) assert.isAtMost(d, cap + EPSILON)
      }))

    it.effect.prop(
      "without jitter delays equal baseDelay and never shrink",
      [arbSettings.map((s) => ({ ...s, jitter: 0 }))],
      ([s]) =>
        Effect.gen(function*() {
          const planned = millis(yield* RestartPolicy.delays(s))
          planned.forEach((d, i) => {
            assert.closeTo(d, Duration.toMillis(RestartPolicy.baseDelay(s, i + 1)), EPSILON)
            if (i > 0) assert.isAtLeast(d, planned[i - 1] - EPSILON)
          })
        })
    )

    it.effect.prop(
      "jitter stays within [base, base * (1 + jitter)], capped",
      [arbSettings, FastCheck.integer({ min: 1, max: 30 })],
      ([s, failures]) =>
        Effect.gen(function*() {
          const base = Duration.toMillis(RestartPolicy.baseDelay(s, failures))
          const upper = Math.min(Duration.toMillis(s.maxBackoff), base * (1 + s.jitter))
          for (let i = 0; i < 5; i++) {
            const d = Duration.toMillis(yield* RestartPolicy.delay(s, failures))
            assert.isAtLeast(d, base - EPSILON)
            assert.isAtMost(d, upper + EPSILON)
          }
        })
    )

    it.effect("jitter actually varies the delay", () =>
      Effect.gen(function*() {
        const s = settings({ jitter: 0.5 })
        const draws = new Set<number>()
        for (let i = 0; i < 20; i++) draws.add(Duration.toMillis(yield* RestartPolicy.delay(s, 1)))
        assert.isAbove(draws.size, 1)
      }))

    it.effect.prop(
      "a base of 0 gives immediate restarts, whatever the factor and jitter",
      [arbSettings.map((s) => ({ ...s, restartBackoff: Duration.zero }))],
      ([s]) =>
        Effect.gen(function*() {
          const planned = millis(yield* RestartPolicy.delays(s))
          assert.deepStrictEqual(planned, planned.map(() => 0))
          const { runs } = yield* driveSchedule(s)
          assert.deepStrictEqual(runs, runs.map(() => 0))
        })
    )

    it.effect.prop(
      "driven by the TestClock, the schedule recurs maxRestartAttempts times and waits its output",
      [arbRestarting],
      ([s]) =>
        Effect.gen(function*() {
          const { outputs, runs } = yield* driveSchedule(s)
          assert.strictEqual(outputs.length, s.maxRestartAttempts)
          assert.strictEqual(runs.length, s.maxRestartAttempts + 1)
          outputs.forEach((out, i) => assert.closeTo(runs[i + 1] - runs[i], Duration.toMillis(out), EPSILON))
        }),
      DRIVEN
    )

    it.effect.prop(
      "delays plans exactly the waits the schedule makes under the same seed",
      [arbRestarting, FastCheck.integer()],
      ([s, seed]) =>
        Effect.gen(function*() {
          const planned = yield* Effect.withRandom(RestartPolicy.delays(s), Random.make(seed))
          const { outputs } = yield* Effect.withRandom(driveSchedule(s), Random.make(seed))
          assert.deepStrictEqual(millis(outputs), millis(planned))
        }),
      DRIVEN
    )
  })

  describe("intensity", () => {
    const at = (time: number) => TestClock.setTime(time)

    it.effect("maxRestarts 0 exceeds at the first restart", () =>
      Effect.gen(function*() {
        const intensity = yield* RestartPolicy.makeIntensity({ maxRestarts: 0, window: "5 seconds" })
        assert.isTrue(yield* intensity.record)
      }))

    it.effect("a timestamp exactly `window` old still counts, one millisecond more does not", () =>
      Effect.gen(function*() {
        const intensity = yield* RestartPolicy.makeIntensity({ maxRestarts: 1, window: "5 seconds" })
        yield* at(1_000)
        assert.isFalse(yield* intensity.record)
        yield* at(6_000)
        assert.deepStrictEqual(yield* intensity.recent, [1_000])
        assert.isTrue(yield* intensity.record)

        yield* intensity.reset
        assert.deepStrictEqual(yield* intensity.recent, [])
        yield* at(10_000)
        assert.isFalse(yield* intensity.record)
        yield* at(15_001)
        assert.deepStrictEqual(yield* intensity.recent, [])
        assert.isFalse(yield* intensity.record)
      }))

    it.effect.prop(
      "restarts spaced further apart than the window never exceed",
      [
        FastCheck.integer({ min: 1, max: 5 }),
        FastCheck.integer({ min: 0, max: 10_000 }),
        FastCheck.array(FastCheck.integer({ min: 1, max: 5_000 }), { minLength: 1, maxLength: 30 })
      ],
      ([maxRestarts, window, extraGaps]) =>
        Effect.gen(function*() {
          const intensity = yield* RestartPolicy.makeIntensity({ maxRestarts, window })
          for (const extra of extraGaps) {
            yield* TestClock.adjust(window + extra)
            assert.isFalse(yield* intensity.record)
          }
        }),
      DRIVEN
    )

    it.effect.prop(
      "a burst of maxRestarts + 1 within the window exceeds on the last one",
      [
        FastCheck.integer({ min: 0, max: 6 }),
        FastCheck.integer({ min: 0, max: 10_000 }),
        FastCheck.array(FastCheck.double({ min: 0, max: 1, noNaN: true }), { minLength: 7, maxLength: 7 })
      ],
      ([maxRestarts, window, fractions]) =>
        Effect.gen(function*() {
          const intensity = yield* RestartPolicy.makeIntensity({ maxRestarts, window })
          // Offsets inside [start, start + window], the last one possibly exactly on the inclusive boundary.
          const start = 1_000
          const offsets = fractions.slice(0, maxRestarts + 1).map((f) => Math.floor(f * window)).sort((a, b) => a - b)
          const results: Array<boolean> = []
          for (const offset of offsets) {
            yield* at(start + offset)
            results.push(yield* intensity.record)
          }
          assert.deepStrictEqual(results, offsets.map((_, i) => i === maxRestarts))
        })
    )

    it.effect.prop(
      "matches OTP's unbounded list and keeps at most maxRestarts + 1 timestamps",
      [
        FastCheck.integer({ min: 0, max: 4 }),
        FastCheck.integer({ min: 0, max: 1_000 }),
        FastCheck.array(
          FastCheck.oneof(
            FastCheck.record({
              op: FastCheck.constant("record" as const),
              gap: FastCheck.integer({ min: 0, max: 600 })
            }),
            FastCheck.record({
              op: FastCheck.constant("recent" as const),
              gap: FastCheck.integer({ min: 0, max: 600 })
            })
          ),
          { maxLength: 60 }
        )
      ],
      ([maxRestarts, window, ops]) =>
        Effect.gen(function*() {
          const intensity = yield* RestartPolicy.makeIntensity({ maxRestarts, window })
          // The reference keeps every timestamp ever recorded, as a list without pruning would.
          const all: Array<number> = []
          let now = 0
          for (const { gap, op } of ops) {
            now += gap
            yield* TestClock.adjust(gap)
            if (op === "record") {
              all.push(now)
              const inWindow = all.filter((t) => now - t <= window).length
              assert.strictEqual(yield* intensity.record, inWindow > maxRestarts)
            }
            const recent = yield* intensity.recent
            assert.isAtMost(recent.length, maxRestarts + 1)
            for (const t of recent) assert.isAtMost(now - t, window)
            const expected = all.filter((t) => now - t <= window).slice(-(maxRestarts + 1))
            assert.deepStrictEqual(recent, expected)
          }
        })
    )
  })
})

/**
 * Durations as text: Effect's form and the short forms of systemd's time spans and Go's durations, decoded by the one
 * schema every setting, CLI flag and API parameter uses, and allowed by the JSON Schema of tree files.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as Config from "../src/Agent/Config.js"
import { bareMillisNote, DURATION_TEXT_PATTERN } from "../src/internal/durationText.js"
import { DurationInput } from "../src/internal/schema.js"

const decode = Schema.decodeUnknownEither(DurationInput)
const millisOf = (input: unknown): number | string =>
  Either.match(decode(input), { onLeft: (error) => error.message, onRight: Duration.toMillis })
const pattern = new RegExp(DURATION_TEXT_PATTERN)

const UNITS: ReadonlyArray<readonly [string, number]> = [
  ["ns", 1e-6],
  ["us", 1e-3],
  ["µs", 1e-3],
  ["ms", 1],
  ["msec", 1],
  ["s", 1000],
  ["sec", 1000],
  ["m", 60_000],
  ["min", 60_000],
  ["h", 3_600_000],
  ["hr", 3_600_000],
  ["d", 86_400_000],
  ["w", 604_800_000]
]

describe("durations as text", () => {
  it("reads the short forms, alone and summed, as systemd and Go write them", () => {
    const cases: ReadonlyArray<readonly [string, number]> = [
      ["5s", 5000],
      ["250ms", 250],
      ["2m", 120_000],
      ["1h30m", 5_400_000],
      ["1h 30min", 5_400_000],
      ["2 h", 7_200_000],
      ["1.5s", 1500],
      ["55s500ms", 55_500],
      ["0s", 0],
      ["1w2d", 9 * 86_400_000],
      // systemd's long forms, summed too; the micro sign or the Greek mu
      ["2 minutes 30 seconds", 150_000],
      ["1 hour 2min", 3_720_000],
      ["2hours", 7_200_000],
      ["5µs", 0.005],
      ["5μs", 0.005],
      ["5 usec", 0.005],
      // Effect's own form, as before
      ["5 seconds", 5000],
      ["250 millis", 250],
      ["1 minute", 60_000]
    ]
    for (const [text, millis] of cases) {
      assert.strictEqual(millisOf(text), millis, text)
      assert.isTrue(pattern.test(text), `the JSON Schema allows ${text}`)
    }
  })

  it("refuses what is no duration, with the forms it takes", () => {
    for (
      const text of [
        "soon",
        "5 secs",
        "5M",
        "5S",
        "1h30",
        "5 fortnights",
        "s",
        "5s 3",
        "5 s s",
        "5 Seconds",
        " 5s",
        "5s ",
        "1e3s",
        ".5s",
        "5.s",
        "-"
      ]
    ) {
      assert.include(String(millisOf(text)), `must be a duration like "5 seconds", "250ms" or "1h30m"`, text)
      assert.isFalse(pattern.test(text), `the JSON Schema refuses ${text}`)
    }
    for (const text of ["-5 seconds", "-5s", "-0 minute"]) {
      assert.include(String(millisOf(text)), "must not be negative", text)
      assert.isFalse(pattern.test(text), text)
    }
    // A number as text has no unit: as a number (unquoted in a file) it would be milliseconds
    assert.include(
      String(millisOf("30")),
      `must be a duration with its unit ("30s", "30 millis"); a number alone, not quoted, is milliseconds`
    )
    assert.include(String(millisOf(`${"9".repeat(400)}s`)), "must be a finite duration")
  })

  it.prop(
    "a sum of short parts is the sum of their durations, with or without spaces",
    [
      FastCheck.array(
        FastCheck.tuple(FastCheck.nat(10_000), FastCheck.constantFrom(...UNITS), FastCheck.constantFrom("", " ")),
        { minLength: 1, maxLength: 5 }
      ),
      FastCheck.constantFrom("", " ")
    ],
    ([parts, between]) => {
      const text = parts.map(([amount, [unit], space]) => `${amount}${space}${unit}`).join(between)
      const expected = parts.reduce((sum, [amount, [, millis]]) => sum + amount * millis, 0)
      const got = millisOf(text)
      assert.isNumber(got, text)
      assert.approximately(got as number, expected, Math.max(1e-6, expected * 1e-12), text)
      assert.isTrue(pattern.test(text), text)
    }
  )

  it.prop(
    "the JSON Schema pattern takes exactly what the decoder takes",
    [FastCheck.array(FastCheck.constantFrom(..."0159. -emsuhdwinµμcor"), { maxLength: 12 }).map((cs) => cs.join(""))],
    ([text]) => {
      assert.strictEqual(pattern.test(text), typeof millisOf(text) === "number", JSON.stringify(text))
    },
    { fastCheck: { numRuns: 5000 } }
  )

  it.effect("an agent's settings take them", () =>
    Effect.gen(function*() {
      const config = yield* Config.make({
        name: "a",
        command: "x",
        requestTimeout: "1h30m" as never,
        pingTimeout: "250ms" as never
      })
      assert.strictEqual(Duration.toMillis(config.requestTimeout), 5_400_000)
      assert.strictEqual(Duration.toMillis(config.pingTimeout), 250)
    }))
})

describe("bareMillisNote", () => {
  it("a bare number above 0 and under 1000 is told it is milliseconds; anything else nothing", () => {
    assert.strictEqual(
      bareMillisNote("--timeout", 5),
      `--timeout: 5 is 5 milliseconds (a bare number is milliseconds): write "5s" for seconds, or "5ms" to say ` +
        "milliseconds"
    )
    assert.include(bareMillisNote("x", 1), "1 is 1 millisecond (")
    assert.isDefined(bareMillisNote("x", 999.5))
    for (const value of [0, 1000, 30_000, -5, "5", "5s", undefined]) assert.isUndefined(bareMillisNote("x", value))
  })
})

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
import { DURATION_TEXT_PATTERN } from "../src/internal/durationText.js"
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
        "5",
        "5 secs",
        "5M",
        "5S",
        "1h30",
        "5 fortnights",
        "-5s",
        "s",
        "5s 3",
        "5 s s",
        "5 Seconds"
      ]
    ) {
      assert.include(String(millisOf(text)), `must be a duration like "5 seconds", "250ms" or "1h30m"`, text)
      assert.isFalse(pattern.test(text), `the JSON Schema refuses ${text}`)
    }
    assert.include(String(millisOf("-5 seconds")), "must not be negative")
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

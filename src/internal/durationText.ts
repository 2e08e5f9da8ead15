/**
 * Durations as people write them in a file or on a command line: Effect's text (`"5 seconds"`, `"250 millis"`) and
 * the forms of systemd's time spans and Go's durations (`"5s"`, `"250ms"`, `"2m"`, `"1h30m"`, `"1h 30min"`,
 * `"2 minutes 30 seconds"`), the forms `agent-supervisor status` shows uptimes in. A duration is one or more parts,
 * each a number and its unit, summed; no sign, no space before or after. Not systemd's months and years.
 *
 * The decoder and the JSON Schema pattern of tree files are made from the one grammar below: what one takes, the
 * other does.
 *
 * @internal
 */
import * as Duration from "effect/Duration"

/**
 * Each unit in milliseconds, lower case only (systemd reads `M` as a month, others as mega): Effect's names, and
 * systemd's short ones below a month. `m` is a minute, as in systemd and Go; `µs` is written with the micro sign or
 * the Greek mu.
 */
const UNITS = {
  ns: 1e-6,
  nsec: 1e-6,
  nano: 1e-6,
  nanos: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  usec: 1e-3,
  micro: 1e-3,
  micros: 1e-3,
  ms: 1,
  msec: 1,
  milli: 1,
  millis: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000
} as const satisfies Readonly<Record<string, number>>

/** A unit of a duration's text: `"ms"`, `"s"`, `"seconds"`, `"min"`... (see `UNITS`). */
export type DurationUnit = keyof typeof UNITS

/** The units a duration of two parts is typed with (`"1h30m"`, `"2m30s"`). */
type ShortUnit = "w" | "d" | "h" | "m" | "s" | "ms"

/**
 * A duration's text as TypeScript checks it: a number and its unit, with or without a space between (`"5s"`,
 * `"250 ms"`, `"5 seconds"`), or two parts of the short units (`"1h30m"`). The decoder reads more (parts with spaces
 * between them, `"1h 30min"`; three parts or more); such text, typed `string`, is given as `"..." as DurationText`.
 * A number typed here may still be refused at run time (a sign: `"-5s"`; an exponent: `"1e3ms"`), with the
 * setting's typed error.
 */
export type DurationText =
  | `${number}${DurationUnit}`
  | `${number} ${DurationUnit}`
  | `${number}${ShortUnit}${number}${ShortUnit}`

/**
 * A duration as every setting, option and parameter of this library takes it: what Effect's `Duration.decode` takes
 * (milliseconds as a number, `"5 seconds"`, a `Duration`, `[seconds, nanos]`), or a {@link DurationText}.
 */
export type DurationInput = Duration.DurationInput | DurationText

/** The units, longest first: `ms` is tried before `m`, `minutes` before `min`. */
const ALTERNATIVES = Object.keys(UNITS).sort((a, b) => b.length - a.length).join("|")
const PART = `\\d+(?:\\.\\d+)?\\s*(?:${ALTERNATIVES})`

/**
 * What JSON Schema says a duration's text may be (a file's editor checks it): the grammar the decoder reads. No
 * lookaround: validators built on RE2 compile it too.
 *
 * @internal
 */
export const DURATION_TEXT_PATTERN = `^${PART}(?:\\s*${PART})*$`

const TEXT = new RegExp(DURATION_TEXT_PATTERN)
const PARTS = new RegExp(`(\\d+(?:\\.\\d+)?)\\s*(${ALTERNATIVES})`, "g")

/** How messages show the forms a duration's text may take. @internal */
export const DURATION_EXAMPLES = `"5 seconds", "250ms" or "1h30m"`

/**
 * A duration's text read: the duration (its parts summed: `"1h30m"` is 90 minutes), or why it is none:
 * `"negative"` (a duration with a minus sign), `"no unit"` (a number alone: as text, it has no unit; as a number it
 * would be milliseconds), `"too long"` (more milliseconds than a number holds), `undefined` (neither form).
 *
 * @internal
 */
export const parseDurationText = (
  text: string
): Duration.Duration | "negative" | "no unit" | "too long" | undefined => {
  if (!TEXT.test(text)) {
    if (text.startsWith("-") && TEXT.test(text.slice(1))) return "negative"
    return /^\s*\d+(\.\d+)?\s*$/.test(text) ? "no unit" : undefined
  }
  let millis = 0
  for (const [, amount, unit] of text.matchAll(PARTS)) millis += Number(amount) * UNITS[unit as DurationUnit]
  return Number.isFinite(millis) ? Duration.millis(millis) : "too long"
}

/**
 * A duration as a setting takes it once checked: text in either form, or what `Duration.decode` takes. For the
 * places that receive what a user wrote, checked but not converted (a tree file's `retry.backoff`, a cluster's
 * timing), where `Duration.decode` alone throws on `"10ms"`.
 *
 * @internal
 */
export const toDuration = (input: DurationInput | string): Duration.Duration => {
  if (typeof input !== "string") return Duration.decode(input)
  const parsed = parseDurationText(input)
  return Duration.isDuration(parsed) ? parsed : Duration.decode(input as Duration.DurationInput)
}

/**
 * A duration as typed where everything is text (a query string, a command line's argument): digits alone are
 * milliseconds, as a number in a file is; any other text is a duration's text, for the decoder to read or refuse.
 *
 * @internal
 */
export const fromTyped = (text: string): number | DurationText =>
  /^\s*\d+(\.\d+)?\s*$/.test(text) ? Number(text) : text as DurationText

/**
 * What a duration written as a bare number above 0 and under 1000 is told where it is read as milliseconds
 * (`--timeout 5`, `heartbeatInterval: 5`): more likely seconds were meant. `undefined` for anything else.
 *
 * @internal
 */
export const bareMillisNote = (where: string, value: unknown): string | undefined =>
  typeof value === "number" && value > 0 && value < 1000
    ? `${where}: ${value} is ${value} ${value === 1 ? "millisecond" : "milliseconds"} (a bare number is ` +
      `milliseconds): write "${value}s" for seconds, or "${value}ms" to say milliseconds`
    : undefined

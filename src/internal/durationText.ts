/**
 * Durations as people write them in a file or on a command line: Effect's own text (`"5 seconds"`, `"250 millis"`)
 * and the short forms of systemd's time spans and Go's durations (`"5s"`, `"250ms"`, `"2m"`, `"1h30m"`,
 * `"1h 30min"`, `"2 h"`), the forms `agent-supervisor status` shows uptimes in. Not systemd's months and years.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

/** Effect's units, singular or plural, in lower case as `Duration.decode` reads them: `"5 seconds"`, `"1 minute"`. */
const LONG =
  /^\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s+(nano|nanos|micro|micros|milli|millis|second|seconds|minute|minutes|hour|hours|day|days|week|weeks)\s*$/

/**
 * Each short unit in milliseconds: systemd's (`systemd.time(7)`) below a month, in lower case only (systemd reads
 * `M` as a month, others as mega). `m` is a minute, as in systemd and Go.
 */
const SHORT_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  nsec: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  usec: 1e-3,
  ms: 1,
  msec: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  d: 86_400_000,
  w: 604_800_000
}

/** The short units, longest first, for a regular expression that takes `ms` before `m`. */
const SHORT_ALTERNATIVES = Object.keys(SHORT_UNITS).sort((a, b) => b.length - a.length).join("|")
const SHORT_PART = `\\d+(?:\\.\\d+)?\\s*(?:${SHORT_ALTERNATIVES})(?![a-zµ])`
const SHORT = new RegExp(`^\\s*(?:${SHORT_PART}\\s*)+$`)
const SHORT_PARTS = new RegExp(`(\\d+(?:\\.\\d+)?)\\s*(${SHORT_ALTERNATIVES})(?![a-zµ])`, "g")

/**
 * A duration's text: `undefined` when it is neither form, `"negative"` for Effect's form with a minus sign (the short
 * forms have none), else the duration (short parts summed: `"1h30m"` is 90 minutes).
 *
 * @internal
 */
export const parseDurationText = (text: string): Duration.Duration | "negative" | undefined => {
  const long = LONG.exec(text)
  if (long !== null) {
    if (Number(long[1]) < 0) return "negative"
    return Option.getOrUndefined(Duration.decodeUnknown(text))
  }
  if (!SHORT.test(text)) return undefined
  let millis = 0
  for (const [, amount, unit] of text.matchAll(SHORT_PARTS)) millis += Number(amount) * SHORT_UNITS[unit]
  return Duration.millis(millis)
}

/**
 * What JSON Schema says a duration's text may be (a file's editor checks it): Effect's form in lower case, or short
 * parts.
 *
 * @internal
 */
export const DURATION_TEXT_PATTERN =
  "^(\\d+(\\.\\d+)?\\s+(nanos?|micros?|millis?|seconds?|minutes?|hours?|days?|weeks?)" +
  `|(${SHORT_PART}\\s*)+)$`

/** How messages show the forms a duration's text may take. @internal */
export const DURATION_EXAMPLES = `"5 seconds", "250ms" or "1h30m"`

/**
 * Decoding at the edge: the one place where options a user wrote become typed settings, with one message format
 * for every failure (`ConfigError` naming the field, the rule and the value given).
 *
 * Public constructors call these; internal constructors take what they return and never see raw input.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ConfigError } from "../Errors.js"

const DURATION_TEXT =
  /^\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s+(nano|nanos|micro|micros|milli|millis|second|seconds|minute|minutes|hour|hours|day|days|week|weeks)\s*$/i

/**
 * A duration as users write it: milliseconds as a number, `"5 seconds"`, or a `Duration`. Negative and
 * non-numeric values are rejected rather than silently read as zero.
 */
export const DurationInput: Schema.Schema<Duration.Duration, Duration.DurationInput> = Schema.transformOrFail(
  Schema.Unknown,
  Schema.DurationFromSelf,
  {
    strict: true,
    decode: (input, _, ast) => {
      const bad = (why: string) => ParseResult.fail(new ParseResult.Type(ast, input, why))
      if (typeof input === "number" && !(input >= 0)) return bad("must be a duration of 0 or more milliseconds")
      if (typeof input === "string") {
        const match = DURATION_TEXT.exec(input)
        if (match === null) return bad(`must be a duration like "5 seconds" or "250 millis"`)
        if (Number(match[1]) < 0) return bad("must not be negative")
      }
      return Option.match(Duration.decodeUnknown(input), {
        onNone: () => bad(`must be a duration like "5 seconds" or a number of milliseconds`),
        onSome: ParseResult.succeed
      })
    },
    encode: ParseResult.succeed
  }
) as any

/** The value at `path` in `input`, as the error shows it (JSON where it can be), or `undefined` when absent. */
const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): string | undefined => {
  let value: unknown = input
  for (const key of path) {
    if (typeof value !== "object" || value === null) return undefined
    value = (value as Record<PropertyKey, unknown>)[key]
  }
  if (value === undefined) return undefined
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/**
 * Where the options being decoded sit, for the error: `field` of the whole value when it is not an object
 * (`"(config)"`, `"(store options)"`), and `prefix` put before every field path (`"children.1.config"`).
 */
export interface Where {
  readonly whole: string
  readonly prefix?: string | undefined
  /** Keys whose value is `undefined` count as absent (options objects typed `?: T | undefined`). */
  readonly undefinedIsAbsent?: boolean | undefined
}

/** The first problem of a failed decode, as a `ConfigError` naming its path. */
export const toConfigError = (input: unknown, error: ParseResult.ParseError, where: Where): ConfigError => {
  const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
  const path = issue.path.map(String).join(".")
  const field = path === ""
    ? (where.prefix ?? where.whole)
    : where.prefix === undefined
    ? path
    : `${where.prefix}.${path}`
  const rule = issue._tag === "Unexpected" ? "is not a known setting (check its spelling)" : issue.message
  const value = valueAt(input, issue.path)
  return new ConfigError({ field, rule, ...(value !== undefined ? { value } : {}) })
}

/**
 * Decodes `input` with `schema`: unknown keys are errors, and a failure is a
 * `ConfigError` for the first problem with its path. Never throws.
 */
export const decodeOptions = <A, I>(
  schema: Schema.Schema<A, I>,
  input: unknown,
  where: Where
): Either.Either<A, ConfigError> => {
  const defined =
    where.undefinedIsAbsent === true && typeof input === "object" && input !== null && !Array.isArray(input) &&
      Object.getPrototypeOf(input) === Object.prototype
      ? Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined))
      : input
  return Either.mapLeft(
    Schema.decodeUnknownEither(schema, { onExcessProperty: "error", errors: "first" })(defined),
    (error) => toConfigError(defined, error, where)
  )
}

const decodeDurationInput = Schema.decodeUnknownEither(DurationInput)

/**
 * Decodes one duration option given on its own (a per-call `timeout`, a `storeFlushTimeout`): the `ConfigError`
 * names `field` and the rule, never a throw.
 */
export const decodeDuration = (field: string, input: unknown): Either.Either<Duration.Duration, ConfigError> =>
  Either.mapLeft(decodeDurationInput(input), (error) =>
    new ConfigError({
      field,
      rule: ParseResult.ArrayFormatter.formatErrorSync(error)[0].message,
      value: String(input)
    }))

/**
 * Decoding at the edge: the one place where options a user wrote become typed settings, with one message format
 * for every failure (`ConfigError` listing every problem of the decode, each naming its field's path, the rule
 * and the value given).
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
import * as AST from "effect/SchemaAST"
import { ConfigError } from "../Errors.js"
import { DURATION_EXAMPLES, DURATION_TEXT_PATTERN, parseDurationText } from "./durationText.js"
import type * as Text from "./durationText.js"
import { issuesOf } from "./schemaIssues.js"
import { closest } from "./suggest.js"

/** A whole number of 0 or more (a count of restarts, of retries): one message for a wrong type and a wrong value. */
export const Count: Schema.Schema<number> = Schema.Number.annotations({
  message: () => ({ message: "must be a whole number of 0 or more", override: true })
}).pipe(
  Schema.filter((n) => Number.isInteger(n) && n >= 0, { message: () => "must be a whole number of 0 or more" })
)

/** A whole number of 1 or more (a pool's `maxSize`): one message for a wrong type and a wrong value. */
export const CountOfOne: Schema.Schema<number> = Schema.Number.annotations({
  message: () => ({ message: "must be a whole number of 1 or more", override: true })
}).pipe(
  Schema.filter((n) => Number.isSafeInteger(n) && n >= 1, {
    message: () => "must be a whole number of 1 or more",
    jsonSchema: { type: "integer", minimum: 1 }
  })
)

/**
 * A duration as users write it: milliseconds as a number, text (`"5 seconds"`, `"5s"`, `"1h30m"`: see
 * `durationText.ts`), or a `Duration`. Negative and non-numeric values are rejected rather than silently read as
 * zero.
 */
export const DurationInput: Schema.Schema<Duration.Duration, Text.DurationInput> = Schema.transformOrFail(
  Schema.Unknown,
  Schema.DurationFromSelf,
  {
    strict: true,
    decode: (input, _, ast) => {
      const bad = (why: string) => ParseResult.fail(new ParseResult.Type(ast, input, why))
      if (typeof input === "number" && !(input >= 0)) return bad("must be a duration of 0 or more milliseconds")
      if (typeof input === "string") {
        const parsed = parseDurationText(input)
        if (parsed === undefined) return bad(`must be a duration like ${DURATION_EXAMPLES}`)
        if (parsed === "negative") return bad("must not be negative")
        if (parsed === "no unit") {
          return bad(
            `must be a duration with its unit ("${input.trim()}s", "${input.trim()} millis"); a number alone, ` +
              `not quoted, is milliseconds`
          )
        }
        if (parsed === "too long") return bad("must be a finite duration")
        return ParseResult.succeed(parsed)
      }
      return Option.match(Duration.decodeUnknown(input), {
        onNone: () => bad(`must be a duration like "5 seconds" or a number of milliseconds`),
        onSome: ParseResult.succeed
      })
    },
    encode: ParseResult.succeed
  }
).annotations({
  // For JSON Schema (`JSONSchema.make`): what a file may hold, as `Duration.decode` reads text (lower-case units),
  // written once in `$defs` (an identifier for JSON Schema only: messages never name it).
  [AST.JSONIdentifierAnnotationId]: "Duration",
  jsonSchema: {
    description: `A duration: a number of milliseconds, or a number and a unit ("5 seconds", "250 millis", "5s", ` +
      `"250ms", "1h30m")`,
    anyOf: [{ type: "number", minimum: 0 }, { type: "string", pattern: DURATION_TEXT_PATTERN }]
  }
}) as any

const BYTE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4
}
const BYTES_TEXT = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)?\s*$/

/**
 * A size in bytes as users write it: a whole number of bytes, or a number and a unit (`"512 MiB"`, `"1.5 GiB"`,
 * `"64MB"`; binary `KiB MiB GiB TiB`, decimal `kB MB GB TB`, `B`; units in any case), at least `min` bytes.
 * Decodes to a whole number of bytes (rounded down).
 */
export const ByteSize = (min: number): Schema.Schema<number, number | string> =>
  Schema.transformOrFail(Schema.Unknown, Schema.Number, {
    strict: true,
    decode: (input, _, ast) => {
      const rule = `must be a size in bytes: a whole number, or a number and a unit such as "512 MiB"` +
        ` (B, KiB, MiB, GiB, TiB, kB, MB, GB, TB), of at least ${min} bytes`
      const bad = () => ParseResult.fail(new ParseResult.Type(ast, input, rule))
      let bytes: number | undefined
      if (typeof input === "number") bytes = Number.isSafeInteger(input) ? input : undefined
      else if (typeof input === "string") {
        const match = BYTES_TEXT.exec(input)
        const unit = match === null ? undefined : BYTE_UNITS[(match[2] ?? "b").toLowerCase()]
        if (match !== null && unit !== undefined) bytes = Math.floor(Number(match[1]) * unit)
      }
      return bytes === undefined || !Number.isSafeInteger(bytes) || bytes < min ? bad() : ParseResult.succeed(bytes)
    },
    encode: ParseResult.succeed
  }).annotations({
    jsonSchema: {
      description: `A size in bytes: a whole number, or a number and a unit ("512 MiB", "1 GiB")`,
      anyOf: [
        { type: "integer", minimum: min },
        { type: "string", pattern: "^\\s*\\d+(\\.\\d+)?\\s*(([KkMmGgTt][Ii]?)?[Bb])?\\s*$" }
      ]
    }
  }) as any

/** The value at `path` in `input`, as the error shows it (JSON where it can be), or `undefined` when absent. */
export const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): string | undefined => {
  let value: unknown = input
  for (const key of path) {
    if (typeof value !== "object" || value === null) return undefined
    value = (value as Record<PropertyKey, unknown>)[key]
  }
  return show(value)
}

/** A value as an error shows it: JSON where it can be, or `undefined` when there is none. */
export const show = (value: unknown): string | undefined => {
  if (value === undefined) return undefined
  // JSON writes NaN and the infinities as null, which is not what was given.
  if (typeof value === "number" && !Number.isFinite(value)) return String(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/** A key a path writes after a dot; any other (`doc.uploaded`, a topic's name) is written `["doc.uploaded"]`. */
const PLAIN_KEY = /^[A-Za-z_$][\w$-]*$/

/**
 * A field's path as errors and warnings write it: keys joined with dots, positions in brackets, a key that would
 * read as more than one in brackets and quotes (`children[1].config.requestTimeout`,
 * `topics["doc.uploaded"].maxQueued`), after `prefix` (a path written so already) when there is one.
 */
export const pathOf = (prefix: string | undefined, path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((text, key) => {
    if (typeof key === "number") return `${text}[${key}]`
    const name = String(key)
    if (!PLAIN_KEY.test(name)) return `${text}[${JSON.stringify(name)}]`
    return text === "" ? name : `${text}.${name}`
  }, prefix ?? "")

/**
 * Two paths written by {@link pathOf} as one: `inner` read from inside `outer` (`children[1]` and `config.name`).
 * An `inner` naming the whole value (`(config)`, see {@link Where}) is `outer` itself.
 */
export const joinPaths = (outer: string, inner: string): string =>
  outer === ""
    ? inner
    : inner === "" || inner.startsWith("(")
    ? outer
    : inner.startsWith("[")
    ? `${outer}${inner}`
    : `${outer}.${inner}`

/**
 * Where the options being decoded sit, for the error: `field` of the whole value when it is not an object
 * (`"(config)"`, `"(store options)"`), and `prefix` put before every field path (`"children[1].config"`).
 */
export interface Where {
  readonly whole: string
  readonly prefix?: string | undefined
  /** Keys whose value is `undefined` count as absent (options objects typed `?: T | undefined`). */
  readonly undefinedIsAbsent?: boolean | undefined
}

/** One problem of a decode: the path of its field, the rule it breaks, the value given. */
export type Problem = ConfigError["problems"][number]

/** `"a"`, `"a" or "b"`, `"a", "b" or "c"`. @internal */
export const quoted = (values: ReadonlyArray<string>): string =>
  values.length === 1
    ? `"${values[0]}"`
    : `${values.slice(0, -1).map((v) => `"${v}"`).join(", ")} or "${values[values.length - 1]}"`

/**
 * The rule broken by `key`, a key no setting has among `known`: the known one it is closest to, when one is close;
 * else the known ones (a far key, `agentDirectory` for `cwd`, got no hint when it only said to check its spelling).
 *
 * @internal
 */
export const unknownKeyRule = (key: PropertyKey | undefined, known: ReadonlyArray<string>): string => {
  const meant = typeof key === "string" ? closest(key, known) : undefined
  if (meant !== undefined) return `is not a known setting: did you mean "${meant}"?`
  return known.length === 0
    ? "is not a known setting (check its spelling)"
    : `is not a known setting here (known: ${quoted(known)})`
}

/** The keys a schema's `Unexpected` issue says it expected (`is unexpected, expected: "a" | "b"`). */
const expectedKeys = (message: string): ReadonlyArray<string> =>
  (/expected: (.*)$/.exec(message)?.[1] ?? "").split(" | ").flatMap((literal) => {
    try {
      const key: unknown = JSON.parse(literal)
      return typeof key === "string" ? [key] : []
    } catch {
      return []
    }
  })

/**
 * The keys of `T` as a list, every one of them: a key of `T` left out is a type error (`missing` names it), so a
 * setting added to an options type is never refused as unknown by a list that forgot it.
 *
 * @internal
 */
export const allKeysOf = <T>() =>
<const K extends ReadonlyArray<keyof T>>(
  keys:
    & K
    & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { readonly missing: Exclude<keyof T, K[number]> })
): K => keys

/**
 * A problem for each key of `input` (an options object) that is not one of `known`, at its path under `prefix`,
 * with the known key it is closest to: for options that are decoded a part at a time (a tree's, a child spec's, a
 * call's), where no schema sees the whole. Keys whose value is `undefined` count as absent (options typed
 * `?: T | undefined`).
 */
export const unknownKeys = (
  input: unknown,
  known: ReadonlyArray<string>,
  prefix: string | undefined,
  /** Keys that are settings elsewhere, and why they are none here (`replayOnCrash` of a streaming call). */
  elsewhere: Readonly<Record<string, string>> = {}
): Array<Problem> => {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return []
  const problems: Array<Problem> = []
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined || known.includes(key)) continue
    const shown = show(value)
    problems.push({
      field: pathOf(prefix, [key]),
      rule: Object.hasOwn(elsewhere, key) ? elsewhere[key] : unknownKeyRule(key, known),
      ...(shown !== undefined ? { value: shown } : {})
    })
  }
  return problems
}

/** The `ConfigError` of {@link unknownKeys}' problems, or `undefined` when there are none. @internal */
export const unknownKeysError = (
  input: unknown,
  known: ReadonlyArray<string>,
  prefix: string | undefined,
  elsewhere?: Readonly<Record<string, string>>
): ConfigError | undefined => {
  const [first, ...rest] = unknownKeys(input, known, prefix, elsewhere)
  return first === undefined ? undefined : configError([first, ...rest])
}

/** The schema's `Expected <what>, actual <value>`, split. */
const EXPECTED_ACTUAL = /^Expected ([\s\S]+?), actual [\s\S]*$/

/** Bare type names in a schema's message, in words. */
const TYPE_WORDS: Readonly<Record<string, string>> = {
  number: "a number",
  string: "a string",
  boolean: "true or false",
  object: "an object",
  bigint: "a bigint",
  symbol: "a symbol"
}

/**
 * The rule of a schema's issue `message` when the problem shows the value given (`(got ...)` follows it): its
 * `Expected number, actual "ten"` says `must be a number`, not the value twice.
 */
const ruleOf = (message: string): string => {
  const match = EXPECTED_ACTUAL.exec(message)
  return match === null ? message : `must be ${TYPE_WORDS[match[1]] ?? match[1]}`
}

/** Every problem of a failed decode, each with its path. */
export const problemsOf = (input: unknown, error: ParseResult.ParseError, where: Where): Array<Problem> =>
  issuesOf(error).map((issue) => {
    const path = pathOf(where.prefix, issue.path)
    const key = issue.path[issue.path.length - 1]
    const value = valueAt(input, issue.path)
    const rule = issue._tag === "Unexpected"
      ? unknownKeyRule(key, expectedKeys(issue.message))
      : value === undefined
      ? issue.message
      : ruleOf(issue.message)
    return { field: path === "" ? where.whole : path, rule, ...(value !== undefined ? { value } : {}) }
  })

/** A `ConfigError` listing `problems`; its `field`, `rule` and `value` are the first one's. */
export const configError = (problems: readonly [Problem, ...Array<Problem>]): ConfigError =>
  new ConfigError({ ...problems[0], problems })

/** A failed decode as a `ConfigError` listing every problem with its path. */
export const toConfigError = (input: unknown, error: ParseResult.ParseError, where: Where): ConfigError => {
  const [first, ...rest] = problemsOf(input, error, where)
  return configError([first, ...rest])
}

/** Options typed `?: T | undefined` given as a plain object: keys set to `undefined` count as absent. */
const withoutUndefined = (input: unknown, where: Where): unknown =>
  where.undefinedIsAbsent === true && typeof input === "object" && input !== null && !Array.isArray(input) &&
    Object.getPrototypeOf(input) === Object.prototype
    ? Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined))
    : input

/**
 * Decodes `input` with `schema`: unknown keys are errors, and a failure is a `ConfigError` listing every
 * problem, each with its path. Never throws.
 */
export const decodeOptions = <A, I>(
  schema: Schema.Schema<A, I>,
  input: unknown,
  where: Where
): Either.Either<A, ConfigError> => {
  const defined = withoutUndefined(input, where)
  return Either.mapLeft(
    Schema.decodeUnknownEither(schema, { onExcessProperty: "error", errors: "all" })(defined),
    (error) => toConfigError(defined, error, where)
  )
}

/**
 * Decodes like {@link decodeOptions}, for one part of a larger value (a child of a tree): every problem is added
 * to `problems`, and the result is `undefined` when there was one, so that the caller goes on to the next part.
 */
export const decodeInto = <A, I>(
  schema: Schema.Schema<A, I>,
  input: unknown,
  where: Where,
  problems: Array<Problem>
): A | undefined => {
  const defined = withoutUndefined(input, where)
  const result = Schema.decodeUnknownEither(schema, { onExcessProperty: "error", errors: "all" })(defined)
  if (Either.isRight(result)) return result.right
  problems.push(...problemsOf(defined, result.left, where))
  return undefined
}

/** {@link DurationInput}'s decode, its failure the schema's own (for callers that say it in their own words). */
export const decodeDurationInput = Schema.decodeUnknownEither(DurationInput)

/**
 * Decodes one duration option given on its own (a per-call `timeout`, a `storeFlushTimeout`): the `ConfigError`
 * names `field` and the rule, never a throw.
 */
export const decodeDuration = (field: string, input: unknown): Either.Either<Duration.Duration, ConfigError> =>
  Either.mapLeft(
    decodeDurationInput(input),
    (error) =>
      configError([{
        field,
        rule: ruleOf(ParseResult.ArrayFormatter.formatErrorSync(error)[0].message),
        value: show(input) ?? String(input)
      }])
  )

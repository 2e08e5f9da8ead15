/**
 * The settings of a rotated log file as users write them (`logs: { dir, maxBytes, keep }`), decoded at the edge
 * with their defaults, and the bounds that follow from them.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { ConfigError } from "../../Errors.js"
import * as Edge from "../schema.js"

/** `logs` as decoded: every default applied. */
export interface Settings {
  /** The directory of the files, as given (resolved against the working directory when a file is opened). */
  readonly dir: string
  /** The most bytes one file holds; a line that would pass it goes to a new file. */
  readonly maxBytes: number
  /** How many rotated files (`.1` ... `.keep`) are kept beside the current one. */
  readonly keep: number
}

/** 10 MiB, pm2-logrotate's `max_size` default. */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024

/** 5 rotated files, below pm2-logrotate's `retain` (30) so that the default bound stays at 60 MiB per file. */
export const DEFAULT_KEEP = 5

/** The smallest `maxBytes`: a file must hold at least a drop line and a cut line. */
export const MIN_MAX_BYTES = 1024

/** The most rotated files `keep` may ask for. */
export const MAX_KEEP = 1000

/** The most bytes of lines a writer holds (waiting or being written), whatever `maxBytes` is. */
export const QUEUE_BYTES_CAP = 4 * 1024 * 1024

/** The longest line written, newline included: a longer one is cut, and says how many bytes were cut. */
export const LINE_BYTES_CAP = 64 * 1024

/**
 * How many bytes of lines a writer holds at most, waiting or being written: four times `maxBytes` (a burst of four
 * files' worth rides out a rotation), at most `QUEUE_BYTES_CAP`.
 */
export const queueBytes = (settings: Settings): number => Math.min(4 * settings.maxBytes, QUEUE_BYTES_CAP)

/** The longest line a writer writes, newline included: `maxBytes`, at most `LINE_BYTES_CAP`. */
export const lineBytes = (settings: Settings): number => Math.min(settings.maxBytes, LINE_BYTES_CAP)

/**
 * An optional setting: absent or `undefined` gives `fallback`, anything else must pass `valid` or is a problem
 * saying `rule` (one problem per field, never one per alternative of a union).
 */
export const setting = <A>(rule: string, valid: (input: unknown) => input is A, fallback: A) =>
  Schema.optionalWith(
    Schema.transformOrFail(Schema.Unknown, Schema.Any as Schema.Schema<A>, {
      strict: true,
      decode: (input, _, ast) =>
        input === undefined
          ? ParseResult.succeed(fallback)
          : valid(input)
          ? ParseResult.succeed(input)
          : ParseResult.fail(new ParseResult.Type(ast, input, rule)),
      encode: ParseResult.succeed
    }),
    { default: () => fallback, exact: true }
  )

const isWhole = (min: number, max: number) => (input: unknown): input is number =>
  typeof input === "number" && Number.isSafeInteger(input) && input >= min && input <= max

/** The fields of `logs`, for schemas that add their own (the logger's). */
export const fields = {
  dir: Schema.transformOrFail(Schema.Unknown, Schema.String, {
    strict: true,
    decode: (input, _, ast) =>
      typeof input === "string" && input.length > 0 && !input.includes("\u0000")
        ? ParseResult.succeed(input)
        : ParseResult.fail(new ParseResult.Type(ast, input, "must be the path of a directory (a non-empty string)")),
    encode: ParseResult.succeed
  }),
  maxBytes: setting(
    `must be a whole number of bytes of at least ${MIN_MAX_BYTES}`,
    isWhole(MIN_MAX_BYTES, Number.MAX_SAFE_INTEGER),
    DEFAULT_MAX_BYTES
  ),
  keep: setting(`must be a whole number from 0 to ${MAX_KEEP}`, isWhole(0, MAX_KEEP), DEFAULT_KEEP)
}

const isObject = (input: unknown): input is object =>
  typeof input === "object" && input !== null && !Array.isArray(input)

/** `struct` for a value that must be an object: anything else is one problem, `shape` saying what is expected. */
export const objectOf = <A>(struct: Schema.Schema<A, any>, shape: string): Schema.Schema<A, unknown> =>
  Schema.compose(
    Schema.Unknown.pipe(Schema.filter(isObject, { message: () => `must be an object ${shape}` })),
    struct,
    { strict: false }
  )

/** `logs` as users write it: `maxBytes` and `keep` may be absent or `undefined` (then defaulted). */
export const SettingsSchema: Schema.Schema<Settings, unknown> = objectOf(
  Schema.Struct(fields),
  "{ dir, maxBytes?, keep? }"
)

/**
 * Decodes `logs` given on its own (an option of `AgentSupervisor.make`): a `ConfigError` names each field under
 * `field` (`logs.maxBytes`).
 */
export const decode = (input: unknown, field: string): Either.Either<Settings, ConfigError> =>
  Edge.decodeOptions(SettingsSchema, input, { whole: field, prefix: field, undefinedIsAbsent: true })

/** Decodes `logs`, or none when it is `undefined`. */
export const decodeOptional = (input: unknown, field: string): Either.Either<Settings | undefined, ConfigError> =>
  input === undefined ? Either.right(undefined) : decode(input, field)

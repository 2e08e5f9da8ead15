/**
 * The admin API's options as a user writes them, decoded once at the edge into settings with every default applied.
 * A bad value is a `ConfigError` naming the field; a token is never shown in it.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as nodePath from "node:path"
import type * as AdminApi from "../../AdminApi.js"
import type { ConfigError } from "../../Errors.js"
import { decodeOptions, DurationInput } from "../schema.js"

/** The options of `AdminApi.layer`, as written (the public module's, documented there). */
type Options = AdminApi.Options

/** The options decoded, defaults applied; `token` is undefined when one is to be generated. */
export interface Settings {
  readonly port: number
  readonly host: string
  readonly token: Redacted.Redacted<string> | undefined
  /** An absolute path. */
  readonly stateFile: string | undefined
  readonly keepAlive: Duration.Duration
}

/** Only this machine reaches the API unless told otherwise. */
export const DEFAULT_HOST = "127.0.0.1"
/** How often an idle event stream sends a comment, so that proxies and clients see it alive. */
export const DEFAULT_KEEP_ALIVE = Duration.seconds(15)
/** The shortest token accepted (a generated one has 43 characters). */
export const MIN_TOKEN_LENGTH = 16

/** A TCP port, 0 for any free one (the tree file's `admin.port` too). */
export const Port = Schema.Number.pipe(
  Schema.filter((n) => Number.isInteger(n) && n >= 0 && n <= 65535, {
    message: () => "must be a port number from 0 to 65535 (0: any free one)",
    jsonSchema: { type: "integer", minimum: 0, maximum: 65535 }
  })
)

/** A bearer token as given (the tree file's `admin.token` too). */
export const Token = Schema.String.pipe(
  Schema.filter((s) => s.length >= MIN_TOKEN_LENGTH, {
    message: () => `must be at least ${MIN_TOKEN_LENGTH} characters`
  }),
  // It travels in an `Authorization` header: visible ASCII only.
  Schema.filter((s) => /^[\x21-\x7e]*$/.test(s), {
    message: () => "must be visible ASCII characters without spaces (it travels in an HTTP header)"
  })
)

const Positive = DurationInput.pipe(
  Schema.filter((d) => Duration.greaterThan(d, Duration.zero), { message: () => "must be longer than 0" })
)

/** Absent or a value: `decodeOptions` drops keys set to `undefined` first. */
const optional = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

const OptionsSchema = Schema.Struct({
  port: optional(Port),
  host: optional(Schema.String.pipe(Schema.minLength(1, { message: () => "must be a host name or address" }))),
  // Redacted before decoding, so that an error never shows the token.
  token: optional(Schema.RedactedFromSelf(Token)),
  stateFile: optional(Schema.String.pipe(Schema.minLength(1, { message: () => "must be a file path" }))),
  keepAlive: optional(Positive)
})

/** Decodes the options: a `ConfigError` lists every bad one. */
export const decode = (options: Options | undefined): Effect.Effect<Settings, ConfigError> =>
  Effect.suspend(() => {
    const input = options ?? {}
    const token = input.token === undefined || Redacted.isRedacted(input.token)
      ? input.token
      : Redacted.make(input.token)
    return Effect.map(
      decodeOptions(OptionsSchema, { ...input, token }, { whole: "(admin options)", undefinedIsAbsent: true }),
      (decoded): Settings => ({
        port: decoded.port ?? 0,
        host: decoded.host ?? DEFAULT_HOST,
        token: decoded.token,
        stateFile: decoded.stateFile === undefined ? undefined : nodePath.resolve(decoded.stateFile),
        keepAlive: decoded.keepAlive ?? DEFAULT_KEEP_ALIVE
      })
    )
  })

/**
 * The options of `Conformance.run` as a user writes them, decoded once into settings with every default applied. A
 * bad value is a `ConfigError` naming the field; nothing about the agent is judged here.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Conformance from "../../Conformance.js"
import type { ConfigError } from "../../Errors.js"
import { decodeOptions, DurationInput } from "../schema.js"
import * as Names from "./names.js"

export * from "./names.js"

/** The options decoded: durations in milliseconds. */
export interface Settings {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string | undefined
  readonly env: Readonly<Record<string, string>>
  readonly startupTimeout: number
  readonly requestTimeout: number
  readonly pingTimeout: number
  readonly cancelTimeout: number
  readonly exitTimeout: number
  readonly concurrency: number | "unbounded"
  readonly only: ReadonlySet<Names.CheckName> | undefined
}

const optional = <S extends Schema.Schema.All>(schema: S) => Schema.optionalWith(schema, { exact: true })

const Positive = DurationInput.pipe(
  Schema.filter((d) => Duration.greaterThan(d, Duration.zero), { message: () => "must be longer than 0" })
)

const NonEmpty = (rule: string) => Schema.String.pipe(Schema.minLength(1, { message: () => rule }))

const CheckNameSchema = Schema.Literal(...Names.CHECK_NAMES).annotations({
  message: () => ({ message: `must be one of ${Names.CHECK_NAMES.map((n) => `"${n}"`).join(", ")}`, override: true })
})

const OptionsSchema = Schema.Struct({
  command: NonEmpty("must be the program to run (a name on PATH or a path)"),
  args: optional(Schema.Array(Schema.String)),
  cwd: optional(NonEmpty("must be a directory")),
  env: optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  startupTimeout: optional(Positive),
  requestTimeout: optional(Positive),
  pingTimeout: optional(Positive),
  cancelTimeout: optional(Positive),
  exitTimeout: optional(Positive),
  concurrency: optional(
    Schema.Union(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)), Schema.Literal("unbounded")).annotations({
      message: () => ({ message: `must be a whole number of 1 or more, or "unbounded"`, override: true })
    })
  ),
  only: optional(Schema.Array(CheckNameSchema))
})

/** Decodes the options: a `ConfigError` lists every bad one, each with its field. */
export const decode = (options: Conformance.Options): Effect.Effect<Settings, ConfigError> =>
  Effect.map(
    decodeOptions(OptionsSchema, options, { whole: "(conformance options)", undefinedIsAbsent: true }),
    (o): Settings => ({
      command: o.command,
      args: o.args ?? [],
      cwd: o.cwd,
      env: o.env ?? {},
      startupTimeout: Duration.toMillis(o.startupTimeout ?? Names.DEFAULT_STARTUP_TIMEOUT),
      requestTimeout: Duration.toMillis(o.requestTimeout ?? Names.DEFAULT_REQUEST_TIMEOUT),
      pingTimeout: Duration.toMillis(o.pingTimeout ?? Names.DEFAULT_PING_TIMEOUT),
      cancelTimeout: Duration.toMillis(o.cancelTimeout ?? Names.DEFAULT_CANCEL_TIMEOUT),
      exitTimeout: Duration.toMillis(o.exitTimeout ?? Names.DEFAULT_EXIT_TIMEOUT),
      concurrency: o.concurrency ?? "unbounded",
      only: o.only === undefined ? undefined : new Set(o.only)
    })
  )

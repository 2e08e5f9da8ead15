/**
 * The configuration of one agent: decoded from what a user writes, defaults applied, every rule checked, so a
 * bad value fails at once with a `ConfigError` naming the field instead of misbehaving later.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { ConfigError } from "../Errors.js"
import * as Edge from "../internal/schema.js"

/**
 * A duration as users write it: milliseconds as a number, `"5 seconds"`, or a `Duration`. Negative and
 * non-numeric values are rejected rather than silently read as zero.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DurationInput: Schema.Schema<Duration.Duration, Duration.DurationInput> = Edge.DurationInput

/**
 * Decodes one duration option given apart from an agent's configuration (a per-call `timeout`, a
 * `storeFlushTimeout`): the `ConfigError` names `field` and the rule, never a throw.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeDuration: (field: string, input: unknown) => Either.Either<Duration.Duration, ConfigError> =
  Edge.decodeDuration

const positiveInt = (rule: string) => Schema.Int.pipe(Schema.greaterThanOrEqualTo(1, { message: () => rule }))
const nonNegativeInt = (rule: string) => Schema.Int.pipe(Schema.greaterThanOrEqualTo(0, { message: () => rule }))
const withDefault = <A, I>(schema: Schema.Schema<A, I>, value: () => A) =>
  Schema.optionalWith(schema, { default: value, exact: true })

/**
 * What happens after an exit the supervisor did not ask for (OTP's restart types).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RestartType = Schema.Literal("permanent", "transient", "temporary")

/**
 * @since 0.1.0
 * @category models
 */
export type RestartType = typeof RestartType.Type

/**
 * The level at which an agent's output (stderr lines, stdout lines that are not protocol messages) is logged;
 * `"None"` logs none of it. The names are Effect's `LogLevel` literals.
 *
 * @since 0.1.0
 * @category schemas
 */
export const OutputLogLevel = Schema.Literal("Trace", "Debug", "Info", "Warning", "Error", "None").annotations({
  message: () => ({
    message: `must be one of "Trace", "Debug", "Info", "Warning", "Error" or "None" (logs no agent output)`,
    override: true
  })
})

/**
 * @since 0.1.0
 * @category models
 */
export type OutputLogLevel = typeof OutputLogLevel.Type

/**
 * The decoded agent configuration.
 *
 * @since 0.1.0
 * @category models
 */
export class AgentConfig extends Schema.Class<AgentConfig>("effect-agent-supervisor/AgentConfig")({
  /** Unique name: it appears in every log line, event, metric and error. */
  name: Schema.String.pipe(
    Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, {
      message: () =>
        "must be 1-128 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
    })
  ),
  /** The program to run. */
  command: Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty program name or path" })),
  args: withDefault(Schema.Array(Schema.String), () => []),
  /** Extra environment variables, on top of the supervisor's own. */
  env: withDefault(Schema.Record({ key: Schema.String, value: Schema.String }), () => ({})),
  cwd: Schema.optionalWith(Schema.String, { exact: true }),
  requestTimeout: withDefault(DurationInput, () => Duration.seconds(60)),
  gracefulTimeout: withDefault(DurationInput, () => Duration.seconds(5)),
  sigtermTimeout: withDefault(DurationInput, () => Duration.seconds(5)),
  startupTimeout: withDefault(DurationInput, () => Duration.seconds(30)),
  restartOnExit: withDefault(Schema.Boolean, () => true),
  /**
   * OTP's restart type. Under a supervisor it may be given here or on the child spec (`Supervisor.agent`), not
   * both with different values.
   */
  restart: withDefault(RestartType, () => "permanent" as const),
  maxRestartAttempts: withDefault(nonNegativeInt("must be an integer of 0 or more"), () => 3),
  /**
   * The first restart's delay. 1 second, so that under a supervisor's default intensity (1 restart in 5 seconds,
   * OTP's) a child that never starts escalates before its circuit opens (README "Configuration").
   */
  restartBackoff: withDefault(DurationInput, () => Duration.seconds(1)),
  backoffFactor: withDefault(
    Schema.Number.pipe(Schema.greaterThanOrEqualTo(1, { message: () => "must be a number of 1 or more" })),
    () => 2
  ),
  /** Jitter as a fraction of the delay, added on top: 0.1 means up to 10% more. */
  jitter: withDefault(
    Schema.Number.pipe(Schema.between(0, 1, { message: () => "must be a fraction between 0 and 1" })),
    () => 0.1
  ),
  maxBackoff: withDefault(DurationInput, () => Duration.minutes(5)),
  heartbeatInterval: withDefault(DurationInput, () => Duration.seconds(30)),
  pingTimeout: withDefault(DurationInput, () => Duration.seconds(5)),
  unhealthyAfter: withDefault(positiveInt("must be an integer of 1 or more"), () => 3),
  resetAfter: withDefault(DurationInput, () => Duration.seconds(60)),
  maxInFlight: withDefault(positiveInt("must be an integer of 1 or more"), () => 64),
  maxMessageBytes: withDefault(
    Schema.Int.pipe(
      Schema.between(1024, 1024 * 1024 * 1024, { message: () => "must be an integer from 1 KiB to 1 GiB" })
    ),
    () => 16 * 1024 * 1024
  ),
  /** How many recent stderr lines to keep for crash reports. */
  stderrLines: withDefault(positiveInt("must be an integer of 1 or more"), () => 50),
  /**
   * The level of the agent's output in the supervisor's log. Info, so that an agent's tracebacks show in the
   * default set-up (Effect's minimum level is Info); the rate limit, not the level, protects the supervisor.
   */
  outputLogLevel: withDefault(OutputLogLevel, () => "Info" as const),
  /** Agent output lines logged per second at most, on average; lines beyond are dropped, counted and summarised. */
  outputRateLimit: withDefault(
    Schema.Number.pipe(
      Schema.filter((n) => Number.isFinite(n) && n > 0, {
        message: () => `must be a number of lines per second above 0 (outputLogLevel "None" logs no output)`
      })
    ),
    () => 100
  ),
  /** Agent output lines that may be logged at once, above the rate, after a quiet spell. */
  outputBurst: withDefault(positiveInt("must be an integer of 1 or more"), () => 200)
}) {}

/**
 * What users write: every field but `name` and `command` is optional.
 *
 * @since 0.1.0
 * @category models
 */
export type AgentConfigInput = typeof AgentConfig.Encoded

/**
 * Decodes a user's configuration, applying defaults (an already decoded one is returned as it is).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const config = yield* Agent.Config.make({ name: "echo", command: "python3", args: ["agent.py"] })
 * ```
 */
export const make = (input: AgentConfigInput | AgentConfig): Effect.Effect<AgentConfig, ConfigError> =>
  decodeConfig(input)

/**
 * Like {@link make} for a value of unknown shape (JSON from a file, say).
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeConfig = (input: unknown): Effect.Effect<AgentConfig, ConfigError> =>
  input instanceof AgentConfig
    ? Effect.succeed(input)
    : Edge.decodeOptions(AgentConfig, input, { whole: "(config)" })

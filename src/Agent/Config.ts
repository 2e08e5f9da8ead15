/**
 * The configuration of one agent: decoded from what a user writes, defaults applied, every rule checked, so a
 * bad value fails at once with a `ConfigError` naming the field instead of misbehaving later.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { ConfigError } from "../Errors.js"
import type * as Text from "../internal/durationText.js"
import * as Edge from "../internal/schema.js"
import { AGENT_NAME } from "./internal/agentName.js"
import * as Identity from "./internal/limits/identity.js"

/**
 * The schema of a duration as users write it, decoded to a `Duration`: from milliseconds as a number, text
 * (`"5 seconds"`, `"5s"`, `"250ms"`, `"1h30m"`, `"1h 30min"`: a number and its unit, parts summed), or a `Duration`
 * (its encoded side is the type {@link DurationInput}). Negative and non-numeric values, and text without a unit
 * (`"30"`), are rejected rather than silently read as zero. Named as Effect names its own (`DurationFromMillis`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const DurationFromInput: Schema.Schema<Duration.Duration, Text.DurationInput> = Edge.DurationInput

/**
 * A duration as every setting, option and parameter of the library takes it in TypeScript: Effect's
 * `Duration.DurationInput` (milliseconds as a number, `"5 seconds"`, a `Duration`) or a {@link DurationText}.
 *
 * @since 0.1.0
 * @category models
 */
export type DurationInput = Text.DurationInput

/**
 * A duration's text as TypeScript checks it: a number and its unit with or without a space (`"5s"`, `"250 ms"`,
 * `"5 seconds"`; units `ns us µs ms s m h d w`, `nsec usec msec sec min hr`, Effect's names), or two parts of
 * `w d h m s ms` (`"1h30m"`). Other text the decoder reads (`"1h 30min"`, three parts) is given `as DurationText`.
 *
 * @since 0.1.0
 * @category models
 */
export type DurationText = Text.DurationText

/**
 * Decodes one duration option given apart from an agent's configuration (a per-call `timeout`, a
 * `storeFlushTimeout`): the `ConfigError` names `field` and the rule, never a throw.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeDuration: (field: string, input: unknown) => Either.Either<Duration.Duration, ConfigError> =
  Edge.decodeDuration

/** The rule of a timeout: a request (or ping) with none left could not be sent at all. */
const LONGER_THAN_ZERO = "must be a duration longer than 0"

/** An input that a timeout could only read as 0 or less (a negative one is told the same rule, not "0 or more"). */
const notPositive = (input: unknown): boolean =>
  (typeof input === "number" && !(input > 0)) || (typeof input === "string" && /^\s*-/.test(input))

/**
 * A timeout as users write it: a {@link DurationInput} longer than 0. A filter over `DurationFromInput`, so a tree
 * file's JSON Schema still refers to its one `Duration`.
 */
const Timeout: Schema.Schema<Duration.Duration, Text.DurationInput> = DurationFromInput.pipe(
  Schema.filter((duration) => Duration.toMillis(duration) > 0, {
    message: (issue) => ({ message: LONGER_THAN_ZERO, override: notPositive(issue.actual) })
  })
)

const decodeTimeoutInput = Schema.decodeUnknownEither(Timeout)

/**
 * Decodes a timeout given apart from an agent's configuration (a per-call `timeout` or `idleTimeout`): a duration
 * longer than 0, or a `ConfigError` naming `field` and the rule, never a throw.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeTimeout = (field: string, input: unknown): Either.Either<Duration.Duration, ConfigError> =>
  Either.mapLeft(decodeTimeoutInput(input), (error) =>
    Edge.configError([{
      field,
      rule: ParseResult.ArrayFormatter.formatErrorSync(error)[0].message,
      value: String(input)
    }]))

const positiveInt = (rule: string) => Schema.Int.pipe(Schema.greaterThanOrEqualTo(1, { message: () => rule }))
const nonNegativeInt = (rule: string) => Schema.Int.pipe(Schema.greaterThanOrEqualTo(0, { message: () => rule }))
/** An optional field with its default, and the text editors show for it (in a tree file's JSON Schema). */
const withDefault = <A, I>(schema: Schema.Schema<A, I>, value: () => A, description: string) =>
  Schema.optionalWith(schema, { default: value, exact: true }).annotations({ description })

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

/** One of `values`, with one message naming them all (a `Literal` union reports one problem per value). */
const oneOf = <const L extends ReadonlyArray<string>>(values: L) =>
  Schema.Literal(...(values as unknown as readonly [L[number], ...Array<L[number]>])).annotations({
    message: () => ({
      message: `must be one of ${values.map((value) => JSON.stringify(value)).join(", ")}`,
      override: true
    })
  })

/**
 * Resource limits of one agent (`limits` in its configuration). Enforced through a cgroup of its own per
 * incarnation where the supervisor can create one (systemd's `MemoryMax=`, `CPUQuota=`, `TasksMax=`; cgroup v2 or
 * v1), else by polling the agent's process group as PM2's `max_memory_restart` does (README "Limits and
 * containment"). Which mode is in force is in the agent's metadata (`limits`).
 *
 * @since 0.1.0
 * @category schemas
 */
export class Limits extends Schema.Class<Limits>("effect-agent-supervisor/Limits")({
  memory: Schema.optionalWith(Edge.ByteSize(1024 * 1024), { exact: true }).annotations({
    description: `Memory of the agent and its descendants, in bytes or as "512 MiB" (at least 1 MiB).`
  }),
  cpu: Schema.optionalWith(
    Schema.Number.pipe(
      Schema.filter((n) => Number.isFinite(n) && n >= 0.01 && n <= 1024, {
        message: () => "must be a number of cores from 0.01 to 1024, such as 0.5",
        jsonSchema: { minimum: 0.01, maximum: 1024 }
      })
    ),
    { exact: true }
  ).annotations({ description: "CPU time in cores, such as 0.5 (half of one core)." }),
  pids: Schema.optionalWith(positiveInt("must be a whole number of 1 or more"), { exact: true }).annotations({
    description: "Processes and threads of the agent and its descendants at once (hard mode only)."
  }),
  enforce: withDefault(
    oneOf(["auto", "soft"]),
    () => "auto" as const,
    `"auto" (the default): a cgroup where one can be created, else polling; "soft": polling only.`
  ),
  memoryGrace: withDefault(
    DurationFromInput,
    () => Duration.seconds(2),
    "Polling: how long memory may stay above the limit before the agent is restarted. 2 seconds by default."
  ),
  cpuWindow: withDefault(
    DurationFromInput,
    () => Duration.seconds(10),
    "Polling: the window CPU use is averaged over before it counts as above the limit. 10 seconds by default."
  ),
  onCpuLimit: withDefault(
    oneOf(["log", "restart"]),
    () => "log" as const,
    `Polling: CPU above the limit for a window is logged and an event ("log", the default), or also restarts.`
  )
}) {}

/** A user or group: a name (as in /etc/passwd, /etc/group) or a number. */
const Account = (what: string): Schema.Schema<string | number> =>
  Schema.Union(Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/)), Schema.NonNegativeInt)
    .annotations({ message: () => ({ message: `must be a ${what} name or a number of 0 or more`, override: true }) })

/**
 * The decoded agent configuration.
 *
 * @since 0.1.0
 * @category models
 */
export class AgentConfig extends Schema.Class<AgentConfig>("effect-agent-supervisor/AgentConfig")({
  /** The agent's name, one per agent of a tree: it appears in every log line, event, metric and error. */
  name: Schema.propertySignature(Schema.String.pipe(
    Schema.pattern(AGENT_NAME, {
      message: () =>
        "must be 1-128 characters of letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
    })
  )).annotations({
    description: "The agent's name, one per agent of a tree: in every log line, event, metric and error."
  }),
  /** The program to run. */
  command: Schema.propertySignature(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty program name or path" }))
  ).annotations({ description: "The program to run." }),
  args: withDefault(Schema.Array(Schema.String), () => [], "The program's arguments."),
  /** Extra environment variables, on top of the supervisor's own. */
  env: withDefault(
    Schema.Record({ key: Schema.String, value: Schema.String }),
    () => ({}),
    "Extra environment variables, on top of the supervisor's own."
  ),
  cwd: Schema.optionalWith(Schema.String, { exact: true }).annotations({ description: "The working directory." }),
  /**
   * Which of the supervisor's environment variables the agent inherits: all (`true`, the default), none (`false`:
   * it starts with only `env`, `PYTHONUNBUFFERED` and, for `user`, `HOME`/`USER`/`LOGNAME`), or those named.
   */
  inheritEnv: withDefault(
    // One problem with one rule, not one per member of the union.
    Schema.Union(Schema.Boolean, Schema.Array(Schema.String)).annotations({
      message: () => ({ message: "must be true, false or a list of variable names", override: true })
    }),
    () => true,
    "The supervisor's environment variables the agent inherits: true (all, the default), false (none), or names."
  ),
  /** Run the agent as this user (systemd's `User=`): a name or a uid; the supervisor must run as root. */
  user: Schema.optionalWith(Account("user"), { exact: true }).annotations({
    description: "Run the agent as this user (a name or a uid); the supervisor must run as root."
  }),
  /** Run the agent with this group (systemd's `Group=`); the user's primary group by default. */
  group: Schema.optionalWith(Account("group"), { exact: true }).annotations({
    description: "Run the agent with this group (a name or a gid); the user's primary group by default."
  }),
  /** Resource limits; none by default. */
  limits: Schema.optionalWith(Limits, { exact: true }).annotations({
    description: "Resource limits (memory, cpu, pids) and how they are enforced; none by default."
  }),
  requestTimeout: withDefault(
    Timeout,
    () => Duration.seconds(60),
    "Per request, overridable per call; waiting for a (re)start counts. 60 seconds by default."
  ),
  gracefulTimeout: withDefault(
    DurationFromInput,
    () => Duration.seconds(5),
    "Shutdown phase 1: after the shutdown message and stdin closed. 5 seconds by default."
  ),
  sigtermTimeout: withDefault(
    DurationFromInput,
    () => Duration.seconds(5),
    "Shutdown phase 2: after SIGTERM to the process group, before SIGKILL. 5 seconds by default."
  ),
  startupTimeout: withDefault(DurationFromInput, () => Duration.seconds(30), "Spawn to ready. 30 seconds by default."),
  restartOnExit: withDefault(
    Schema.Boolean,
    () => true,
    "Restart after an exit the supervisor did not ask for. true by default."
  ),
  /**
   * OTP's restart type. Under a supervisor it may be given here or on the child spec (`Supervisor.agent`), not
   * both with different values.
   */
  restart: withDefault(
    RestartType,
    () => "permanent" as const,
    `OTP's restart type: "permanent" (the default), "transient" (after abnormal exits only) or "temporary" (never).`
  ),
  maxRestartAttempts: withDefault(
    nonNegativeInt("must be a whole number of 0 or more"),
    () => 3,
    "Restarts in a row before the circuit opens (the agent is parked until a manual restart). 3 by default."
  ),
  /**
   * The first restart's delay. 1 second, so that under a supervisor's default intensity (1 restart in 5 seconds,
   * OTP's) a child that never starts escalates before its circuit opens (README "Configuration").
   */
  restartBackoff: withDefault(
    DurationFromInput,
    () => Duration.seconds(1),
    "The first restart's delay. 1 second by default."
  ),
  backoffFactor: withDefault(
    Schema.Number.pipe(Schema.greaterThanOrEqualTo(1, { message: () => "must be a number of 1 or more" })),
    () => 2,
    "Each restart's delay is the previous one times this. 2 by default."
  ),
  /** Jitter as a fraction of the delay, added on top: 0.1 means up to 10% more. */
  jitter: withDefault(
    Schema.Number.pipe(Schema.between(0, 1, { message: () => "must be a fraction between 0 and 1" })),
    () => 0.1,
    "Up to this fraction of a restart's delay is added at random. 0.1 by default."
  ),
  maxBackoff: withDefault(
    DurationFromInput,
    () => Duration.minutes(5),
    "The longest restart delay. 5 minutes by default."
  ),
  heartbeatInterval: withDefault(
    DurationFromInput,
    () => Duration.seconds(30),
    "How often the agent is pinged. 30 seconds by default."
  ),
  pingTimeout: withDefault(Timeout, () => Duration.seconds(5), "How long a ping may take. 5 seconds by default."),
  unhealthyAfter: withDefault(
    positiveInt("must be a whole number of 1 or more"),
    () => 3,
    "Missed pings in a row that mark the agent hung (it is killed and restarted). 3 by default."
  ),
  resetAfter: withDefault(
    DurationFromInput,
    () => Duration.seconds(60),
    "Running this long resets the count of failures in a row. 60 seconds by default."
  ),
  maxInFlight: withDefault(
    positiveInt("must be a whole number of 1 or more"),
    () => 64,
    "Requests in flight to the agent at once; callers beyond wait. 64 by default."
  ),
  maxMessageBytes: withDefault(
    Schema.Int.pipe(
      Schema.between(1024, 1024 * 1024 * 1024, { message: () => "must be a whole number from 1 KiB to 1 GiB" })
    ),
    () => 16 * 1024 * 1024,
    "The longest protocol line either way, in bytes. 16 MiB by default."
  ),
  /**
   * The largest checkpoint kept (protocol 1.1 `checkpoint`), as the UTF-8 bytes of its `data`'s JSON; a larger one
   * is dropped (logged once per incarnation, counted in `Metadata.droppedCheckpoints`) and the one before stays.
   */
  maxCheckpointBytes: withDefault(
    Edge.ByteSize(1),
    () => 1024 * 1024,
    `The largest checkpoint kept, as the bytes of its data's JSON, in bytes or as "1 MiB". 1 MiB by default.`
  ),
  /** How many recent stderr lines to keep for crash reports. */
  stderrLines: withDefault(
    positiveInt("must be a whole number of 1 or more"),
    () => 50,
    "Recent stderr lines kept for crash reports. 50 by default."
  ),
  /**
   * The level of the agent's output in the supervisor's log. Info, so that an agent's tracebacks show in the
   * default set-up (Effect's minimum level is Info); the rate limit, not the level, protects the supervisor.
   */
  outputLogLevel: withDefault(
    OutputLogLevel,
    () => "Info" as const,
    `The level of the agent's output in the supervisor's log; "None" logs none of it. "Info" by default.`
  ),
  /** Agent output lines logged per second at most, on average; lines beyond are dropped, counted and summarised. */
  outputRateLimit: withDefault(
    Schema.Number.pipe(
      Schema.filter((n) => Number.isFinite(n) && n > 0, {
        message: () => `must be a number of lines per second above 0 (outputLogLevel "None" logs no output)`
      })
    ),
    () => 100,
    "Agent output lines logged per second at most; lines beyond are dropped and counted. 100 by default."
  ),
  /** Agent output lines that may be logged at once, above the rate, after a quiet spell. */
  outputBurst: withDefault(
    positiveInt("must be a whole number of 1 or more"),
    () => 200,
    "Agent output lines logged at once, above the rate, after a quiet spell. 200 by default."
  )
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
    ? checkIdentity(input)
    : Either.match(Edge.decodeOptions(AgentConfig, input, { whole: "(config)" }), {
      onRight: checkIdentity,
      // The accounts are checked even when other fields are bad: every problem is reported at once.
      onLeft: (error) => {
        const more = identityProblems(accountsOf(input))
        return Either.left(
          more.length === 0 ? error : Edge.configError([error.problems[0], ...error.problems.slice(1), ...more])
        )
      }
    })

/**
 * The problems of a decoded configuration that its schema cannot see: `user` and `group` must name an account of
 * this machine, and the supervisor must be allowed to switch to it (it runs as root). Each field's path after
 * `prefix` (a tree child's `children[0].config`). Every decode of a configuration runs it (`decodeConfig`, a tree's
 * children).
 *
 * @since 0.1.0
 * @category validation
 */
export const identityProblems = (
  config: Pick<AgentConfig, "user" | "group">,
  prefix?: string
): Array<{ readonly field: string; readonly rule: string; readonly value?: string | undefined }> => {
  const resolved = Identity.resolve(config.user, config.group)
  return "identity" in resolved
    ? []
    : resolved.problems.map((problem) => ({
      ...problem,
      field: prefix === undefined ? problem.field : Edge.joinPaths(prefix, problem.field)
    }))
}

const UserAccount = Account("user")
const GroupAccount = Account("group")

/** The `user` and `group` of a configuration that failed to decode, each where it is valid on its own. */
const accountsOf = (input: unknown): Pick<AgentConfig, "user" | "group"> => {
  const raw: Record<string, unknown> = typeof input === "object" && input !== null ? input as any : {}
  const user = Either.getOrUndefined(Schema.decodeUnknownEither(UserAccount)(raw.user))
  const group = Either.getOrUndefined(Schema.decodeUnknownEither(GroupAccount)(raw.group))
  return { ...(user !== undefined ? { user } : {}), ...(group !== undefined ? { group } : {}) }
}

const checkIdentity = (config: AgentConfig): Either.Either<AgentConfig, ConfigError> => {
  const [first, ...rest] = identityProblems(config)
  return first === undefined ? Either.right(config) : Either.left(Edge.configError([first, ...rest]))
}

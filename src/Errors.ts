/**
 * Every error the supervisor can fail with. Each is a `Schema.TaggedError` carrying the facts that explain it,
 * a human `message` built from those facts, and a `remediation` saying what to do about it.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import type { AdminApiError } from "./internal/admin/errors.js"
import * as config from "./internal/errors/config.js"
import * as request from "./internal/errors/request.js"
import * as start from "./internal/errors/start.js"
import * as store from "./internal/errors/store.js"
import * as stream from "./internal/errors/stream.js"
import * as supervision from "./internal/errors/supervision.js"
import * as typed from "./internal/errors/typed.js"
import type { TaskFailedError, TopicError } from "./Topic.js"

/**
 * A unique symbol identifying the errors of this library.
 *
 * @since 0.1.0
 */
export const TypeId: unique symbol = Symbol.for("effect-agent-supervisor/Errors")

/**
 * @since 0.1.0
 */
export type TypeId = typeof TypeId

/**
 * The sizes `exec` was asked to copy into the new process: its argument strings and its environment (each
 * counted with its terminating NUL, environment entries as `NAME=value`).
 *
 * @since 0.1.0
 * @category models
 */
export const SpawnSizes = start.spawnSizes

/**
 * @since 0.1.0
 * @category models
 */
export type SpawnSizes = typeof SpawnSizes.Type

/**
 * The agent could not be started: spawn failed, it exited before `ready`, or sent no `ready` in time.
 *
 * A spawn failure carries the operating system's `code` (`ENOENT`, `EACCES`, `ENOTDIR`, `E2BIG`, `EMFILE`,
 * `ENFILE`, `EAGAIN`, `ENOMEM`, or another errno name), what the code is about (`subject`: the program or the
 * working directory), and the facts that explain it: the `PATH` directories searched, the file found, the
 * interpreter its `#!` line names, the sizes of the arguments and environment. The message and the remediation
 * are specific to the code.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentStartupError
  extends Schema.TaggedError<AgentStartupError>("effect-agent-supervisor/AgentStartupError")(
    "AgentStartupError",
    start.startupFields
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return start.startupMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return start.startupRemediation(this)
  }
}

/**
 * The callback function named in the configuration does not exist in the agent's module.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentCallbackNotFoundError
  extends Schema.TaggedError<AgentCallbackNotFoundError>("effect-agent-supervisor/AgentCallbackNotFoundError")(
    "AgentCallbackNotFoundError",
    start.callbackNotFoundFields
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return start.callbackNotFoundMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return start.callbackNotFoundRemediation(this)
  }
}

/**
 * Installing the agent's dependencies failed or timed out.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentDependencyError
  extends Schema.TaggedError<AgentDependencyError>("effect-agent-supervisor/AgentDependencyError")(
    "AgentDependencyError",
    {
      agent: Schema.String,
      installer: Schema.String,
      manifest: Schema.String,
      exitCode: Schema.optional(Schema.NullOr(Schema.Number)),
      timedOut: Schema.optionalWith(Schema.Boolean, { default: () => false }),
      output: Schema.String
    }
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return start.dependencyMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return start.dependencyRemediation(this)
  }
}

/**
 * A request got no response within its timeout: a task or ping that was sent (a `cancel` was sent to the agent
 * after it), or, with `operation: "start"`, a request that timed out waiting for the agent to (re)start and was
 * never sent. `timeoutMillis` is the caller's timeout; `waitedForStartMillis` is the part of it spent waiting for
 * the agent to start before the request was sent (or before it gave up). With `idle`, a streaming task that sent
 * nothing for its `idleTimeout` (`timeoutMillis`). `poolMembers`: a pool's call found none of them running.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentTimeoutError
  extends Schema.TaggedError<AgentTimeoutError>("effect-agent-supervisor/AgentTimeoutError")(
    "AgentTimeoutError",
    request.timeoutFields
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return request.timeoutMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return request.timeoutRemediation(this)
  }
}

/**
 * The agent process exited, its circuit is open, or its start failed (`reason`), for a request pending or made. With
 * `limit`, it was killed for a resource limit (`limitValue`: that limit's value in its configuration).
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentCrashError extends Schema.TaggedError<AgentCrashError>("effect-agent-supervisor/AgentCrashError")(
  "AgentCrashError",
  request.crashFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return request.crashMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return request.crashRemediation(this)
  }
}

/**
 * The agent's callback raised or rejected while handling a task; the agent itself is fine.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentTaskError extends Schema.TaggedError<AgentTaskError>("effect-agent-supervisor/AgentTaskError")(
  "AgentTaskError",
  request.taskFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Agent "${this.agent}" failed task ${this.requestId}: ${this.errorType}: ${this.errorMessage}`
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return "The callback raised this error; see `stack` for where. Fix the callback or the payload it was given."
  }
}

/**
 * The agent was stopped (by its supervisor or its scope) while a request, or a `start` (`during`), waited for it.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentStoppedError
  extends Schema.TaggedError<AgentStoppedError>("effect-agent-supervisor/AgentStoppedError")(
    "AgentStoppedError",
    request.stoppedFields
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return request.stoppedMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return request.stoppedRemediation(this)
  }
}

/**
 * A message could not be sent or a received line broke the protocol (invalid JSON, too long, wrong shape).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProtocolError extends Schema.TaggedError<ProtocolError>("effect-agent-supervisor/ProtocolError")(
  "ProtocolError",
  request.protocolFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Agent "${this.agent}" protocol error (${this.reason}): ${this.detail}`
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return request.protocolRemediation(this)
  }
}

/**
 * A streaming request (`handleEventStream`, protocol 1.1 `stream`) failed: with `reason: "overflow"`, its consumer
 * fell more than `maxBufferedChunks` chunks behind the agent (the agent was sent a cancel). The chunks buffered
 * before are delivered first.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentStreamError extends Schema.TaggedError<AgentStreamError>("effect-agent-supervisor/AgentStreamError")(
  "AgentStreamError",
  stream.streamErrorFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return stream.streamMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return stream.streamRemediation(this)
  }
}

/**
 * A typed agent's request did not match its `Schema` (it was not sent), or its response did not (see `Typed`).
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentSchemaError extends Schema.TaggedError<AgentSchemaError>("effect-agent-supervisor/AgentSchemaError")(
  "AgentSchemaError",
  typed.schemaErrorFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return typed.schemaMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return typed.schemaRemediation(this)
  }
}

/**
 * A supervisor restarted children more often than its intensity allows, so it stopped them all and gave up.
 *
 * @since 0.1.0
 * @category errors
 */
export class SupervisorIntensityError
  extends Schema.TaggedError<SupervisorIntensityError>("effect-agent-supervisor/SupervisorIntensityError")(
    "SupervisorIntensityError",
    {
      supervisor: Schema.String,
      maxRestarts: Schema.Number,
      windowMillis: Schema.Number,
      lastChild: Schema.optional(Schema.String)
    }
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return supervision.intensityMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return "A child keeps failing: read its crash reports. Raise intensity only if such bursts are expected."
  }
}

/**
 * A child administration call (start, terminate, restart, delete a child; route a call) that OTP answers with
 * an error: the child is already present or started, still running or restarting, or not there at all.
 *
 * @since 0.1.0
 * @category errors
 */
export class SupervisorChildError
  extends Schema.TaggedError<SupervisorChildError>("effect-agent-supervisor/SupervisorChildError")(
    "SupervisorChildError",
    supervision.childFields
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return supervision.childMessage(this)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return supervision.childRemediation(this)
  }
}

/**
 * The agent could not be reached through the cluster (`Cluster`): no answer in time (`reason` "timeout"), its
 * runner gone ("runner_unavailable"), its entity's mailbox full ("mailbox_full"), the message storage failing
 * ("persistence"), or a defect in transport ("defect"). The agent itself may be fine.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentUnavailableError
  extends Schema.TaggedError<AgentUnavailableError>("effect-agent-supervisor/AgentUnavailableError")(
    "AgentUnavailableError",
    request.unavailableFields
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Agent "${this.agent}" is unavailable through the cluster (${this.reason}): ${this.detail}`
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return request.unavailableRemediation(this.reason)
  }
}

/**
 * A configuration is invalid. `problems` lists every problem of one decode, each with the path of its field
 * (`children[1].config.requestTimeout`); `field`, `rule` and `value` are the first (`problems` defaults to it).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Schema.TaggedError<ConfigError>("effect-agent-supervisor/ConfigError")(
  "ConfigError",
  { ...config.problemFields, problems: Schema.Array(Schema.Struct(config.problemFields)) }
) {
  constructor(props: config.ConfigErrorProps, options?: Schema.MakeOptions) {
    super(config.withProblems(props), options)
  }
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return config.configMessage(this.problems)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return config.configRemediation(this.problems)
  }
}

/**
 * A store operation failed or timed out (an outage: logged and counted, it never fails the supervisor), or a store
 * layer could not be built: its `driver` did not load, or its `path` (`code`: errno or SQLite code) is unusable.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>("effect-agent-supervisor/StoreError")(
  "StoreError",
  store.storeFields
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Store ${this.operation} ${this.reason === "timeout" ? "timed out" : "failed"}: ${this.detail}`
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return store.storeRemediation(this)
  }
}

/**
 * Any error of this library: this module's, `Topic.TopicError`, `Topic.TaskFailedError`, `AdminApi.AdminApiError`.
 *
 * @since 0.1.0
 * @category errors
 */
export type SupervisorError =
  | AgentStartupError
  | AgentCallbackNotFoundError
  | AgentDependencyError
  | AgentTimeoutError
  | AgentCrashError
  | AgentTaskError
  | AgentStoppedError
  | ProtocolError
  | AgentStreamError
  | AgentSchemaError
  | SupervisorIntensityError
  | SupervisorChildError
  | ConfigError
  | StoreError
  | AgentUnavailableError
  | TopicError
  | TaskFailedError
  | AdminApiError

/**
 * Errors a request to an agent can fail with (`ConfigError`: a bad per-call option, such as a `timeout` that is
 * not a duration).
 *
 * @since 0.1.0
 * @category errors
 */
export type RequestError =
  | AgentTimeoutError
  | AgentCrashError
  | AgentTaskError
  | AgentStoppedError
  | ProtocolError
  | ConfigError

/**
 * Errors a streaming request can fail with: those of any request, and `AgentStreamError`.
 *
 * @since 0.1.0
 * @category errors
 */
export type StreamRequestError = RequestError | AgentStreamError

/**
 * Tells whether a value is one of this library's errors.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isSupervisorError = (u: unknown): u is SupervisorError => Predicate.hasProperty(u, TypeId)

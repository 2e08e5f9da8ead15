/**
 * Every error the supervisor can fail with. Each is a `Schema.TaggedError` carrying the facts that explain it,
 * a human `message` built from those facts, and a `remediation` saying what to do about it.
 *
 * @since 0.1.0
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

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

const ExitFacts = {
  pid: Schema.optional(Schema.Number),
  exitCode: Schema.optional(Schema.NullOr(Schema.Number)),
  signal: Schema.optional(Schema.NullOr(Schema.String)),
  stderr: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] })
}

const describeExit = (
  facts: { readonly exitCode?: number | null | undefined; readonly signal?: string | null | undefined }
) =>
  facts.signal ? `killed by ${facts.signal}` : facts.exitCode !== undefined && facts.exitCode !== null
    ? `exited with code ${facts.exitCode}`
    : "exited"

const stderrTail = (lines: ReadonlyArray<string>) =>
  lines.length === 0 ? "" : `\nLast stderr lines:\n  ${lines.slice(-10).join("\n  ")}`

/**
 * The agent could not be started: spawn failed, it exited before `ready`, or sent no `ready` in time.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentStartupError
  extends Schema.TaggedError<AgentStartupError>("effect-agent-supervisor/AgentStartupError")(
    "AgentStartupError",
    {
      agent: Schema.String,
      reason: Schema.Literal("spawn_failed", "exited_before_ready", "no_ready_in_time"),
      command: Schema.String,
      detail: Schema.optional(Schema.String),
      timeoutMillis: Schema.optional(Schema.Number),
      ...ExitFacts
    }
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    switch (this.reason) {
      case "spawn_failed":
        return `Agent "${this.agent}" could not be spawned (${this.command}): ${this.detail ?? "unknown error"}`
      case "exited_before_ready":
        return `Agent "${this.agent}" (pid ${this.pid}) ${describeExit(this)} before it sent "ready"` +
          stderrTail(this.stderr)
      case "no_ready_in_time":
        return `Agent "${this.agent}" (pid ${this.pid}) sent no "ready" within ${this.timeoutMillis} ms` +
          stderrTail(this.stderr)
    }
  }
  /** @since 0.1.0 */
  get remediation(): string {
    switch (this.reason) {
      case "spawn_failed":
        return `Check that "${this.command}" exists and is executable, and that cwd exists.`
      case "exited_before_ready":
        return "Read the stderr lines above: the agent failed while loading. Run its command by hand to reproduce."
      case "no_ready_in_time":
        return "Make the agent print {\"type\":\"ready\",\"protocol\":1} on stdout (flushed) once loaded, " +
          "or raise startupTimeout if loading is legitimately slow."
    }
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
    {
      agent: Schema.String,
      callback: Schema.String,
      module: Schema.String,
      available: Schema.Array(Schema.String)
    }
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Agent "${this.agent}": no function "${this.callback}" in ${this.module}` +
      (this.available.length > 0 ? ` (functions there: ${this.available.join(", ")})` : " (it defines no functions)")
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return `Set callbackFunction to one of the functions the module defines, or define "${this.callback}" in it.`
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
    const how = this.timedOut ? "timed out" : `failed (exit code ${this.exitCode ?? "unknown"})`
    return `Agent "${this.agent}": installing dependencies from ${this.manifest} with ${this.installer} ${how}\n` +
      this.output.slice(-4000)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return `Run "${this.installer}" on ${this.manifest} by hand to see the failure; fix the manifest, ` +
      "make the packages reachable, or raise the install timeout."
  }
}

/**
 * A request (task or ping) got no response within its timeout. A `cancel` was sent to the agent.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentTimeoutError
  extends Schema.TaggedError<AgentTimeoutError>("effect-agent-supervisor/AgentTimeoutError")(
    "AgentTimeoutError",
    {
      agent: Schema.String,
      requestId: Schema.String,
      operation: Schema.Literal("task", "ping", "start"),
      timeoutMillis: Schema.Number,
      pid: Schema.optional(Schema.Number)
    }
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Agent "${this.agent}" (pid ${this.pid}) did not answer ${this.operation} ${this.requestId} ` +
      `within ${this.timeoutMillis} ms`
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return "Raise requestTimeout (or pass { timeout } for this call) if the work is legitimately slow; " +
      "otherwise check the agent's stderr for a stuck or blocked callback."
  }
}

/**
 * The agent process exited (or its circuit is open) while requests were pending or being made.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentCrashError extends Schema.TaggedError<AgentCrashError>("effect-agent-supervisor/AgentCrashError")(
  "AgentCrashError",
  {
    agent: Schema.String,
    reason: Schema.optionalWith(Schema.Literal("exited", "circuit_open"), { default: () => "exited" as const }),
    ...ExitFacts
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return this.reason === "circuit_open"
      ? `Agent "${this.agent}" is parked: it crashed too often and its circuit breaker is open` +
        stderrTail(this.stderr)
      : `Agent "${this.agent}" (pid ${this.pid}) ${describeExit(this)}` + stderrTail(this.stderr)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return this.reason === "circuit_open"
      ? "Fix the cause shown in the agent's stderr, then restart it manually to close the circuit."
      : "Read the agent's last stderr lines; a crash is restarted by its supervisor per its restart policy."
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
  {
    agent: Schema.String,
    requestId: Schema.String,
    errorType: Schema.String,
    errorMessage: Schema.String,
    stack: Schema.optional(Schema.String)
  }
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
 * The agent was stopped (by its supervisor or its scope closing) while the request was pending or waiting.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentStoppedError
  extends Schema.TaggedError<AgentStoppedError>("effect-agent-supervisor/AgentStoppedError")(
    "AgentStoppedError",
    {
      agent: Schema.String,
      pid: Schema.optional(Schema.Number)
    }
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Agent "${this.agent}" was stopped before it could answer`
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return "Start the agent again (or wait for its supervisor to) and retry the request."
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
  {
    agent: Schema.String,
    reason: Schema.Literal("not_json", "not_a_message", "too_long", "invalid_utf8", "unencodable"),
    detail: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Agent "${this.agent}" protocol error (${this.reason}): ${this.detail}`
  }
  /** @since 0.1.0 */
  get remediation(): string {
    switch (this.reason) {
      case "unencodable":
        return "Send payloads that JSON can encode: no BigInt, no cycles, no functions."
      case "too_long":
        return "Raise maxMessageBytes, or send large data by reference (a file path or URL) instead of inline."
      default:
        return "Keep the agent's stdout for protocol messages only; write logs to stderr."
    }
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
    return `Supervisor "${this.supervisor}" exceeded ${this.maxRestarts} restarts in ${this.windowMillis} ms` +
      (this.lastChild ? ` (last failing child: ${this.lastChild})` : "")
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
    {
      supervisor: Schema.String,
      child: Schema.String,
      operation: Schema.String,
      reason: Schema.Literal(
        "already_present",
        "already_started",
        "running",
        "restarting",
        "not_found",
        "not_an_agent",
        "supervisor_stopped"
      )
    }
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Supervisor "${this.supervisor}" cannot ${this.operation} child "${this.child}": ` +
      this.reason.replace(/_/g, " ")
  }
  /** @since 0.1.0 */
  get remediation(): string {
    switch (this.reason) {
      case "already_present":
        return "The spec is kept but stopped: restartChild it, or deleteChild it before adding a new spec."
      case "already_started":
        return "The child runs already; give a new child a unique id."
      case "running":
      case "restarting":
        return "terminateChild it first."
      case "not_found":
        return "Check the id against whichChildren."
      case "not_an_agent":
        return "Route calls to agent children; a nested supervisor has no callback."
      case "supervisor_stopped":
        return "The supervisor escalated or shut itself down (see its await): start a new supervisor, or let its " +
          "parent restart it."
    }
  }
}

/**
 * A configuration value is invalid.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Schema.TaggedError<ConfigError>("effect-agent-supervisor/ConfigError")(
  "ConfigError",
  {
    field: Schema.String,
    rule: Schema.String,
    value: Schema.optional(Schema.String)
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Invalid configuration at "${this.field}": ${this.rule}` +
      (this.value !== undefined ? ` (got ${this.value})` : "")
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return `Fix "${this.field}" in the configuration: ${this.rule}.`
  }
}

/**
 * A store operation failed or timed out. The supervisor logs and counts these; it never fails because of them.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>("effect-agent-supervisor/StoreError")(
  "StoreError",
  {
    operation: Schema.String,
    reason: Schema.Literal("timeout", "failure"),
    detail: Schema.String
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    return `Store ${this.operation} ${this.reason === "timeout" ? "timed out" : "failed"}: ${this.detail}`
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return "Check the store's database is reachable and not overloaded; supervision goes on without it meanwhile."
  }
}

/**
 * Any error of this library.
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
  | SupervisorIntensityError
  | SupervisorChildError
  | ConfigError
  | StoreError

/**
 * Errors a request to an agent can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type RequestError = AgentTimeoutError | AgentCrashError | AgentTaskError | AgentStoppedError | ProtocolError

/**
 * Tells whether a value is one of this library's errors.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isSupervisorError = (u: unknown): u is SupervisorError => Predicate.hasProperty(u, TypeId)

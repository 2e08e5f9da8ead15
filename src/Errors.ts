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

const KiB = 1024
const MiB = 1024 * KiB

/** A byte count as people read it: `812 bytes`, `200 KiB`, `3.1 MiB`. */
const formatBytes = (bytes: number): string =>
  bytes < KiB
    ? `${bytes} bytes`
    : bytes < MiB
    ? `${Math.round(bytes / KiB)} KiB`
    : `${(bytes / MiB).toFixed(1).replace(/\.0$/, "")} MiB`

/** Linux's limit on one argument or environment string (`MAX_ARG_STRLEN`, 32 pages). */
const MAX_ARG_STRLEN = 128 * KiB

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`

/**
 * The sizes `exec` was asked to copy into the new process: its argument strings and its environment (each
 * counted with its terminating NUL, environment entries as `NAME=value`).
 *
 * @since 0.1.0
 * @category models
 */
export const SpawnSizes = Schema.Struct({
  argCount: Schema.Number,
  argsBytes: Schema.Number,
  largestArgBytes: Schema.Number,
  envCount: Schema.Number,
  envBytes: Schema.Number,
  largestEnvName: Schema.String,
  largestEnvBytes: Schema.Number
})

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
    {
      agent: Schema.String,
      reason: Schema.Literal("spawn_failed", "exited_before_ready", "no_ready_in_time"),
      /** The command line, long arguments abbreviated. */
      command: Schema.String,
      detail: Schema.optional(Schema.String),
      timeoutMillis: Schema.optional(Schema.Number),
      /** The errno name of a spawn failure, such as `"ENOENT"`. */
      code: Schema.optional(Schema.String),
      /** What `code` is about: the program, the interpreter that runs it, or the working directory. */
      subject: Schema.optional(Schema.Literal("command", "interpreter", "cwd")),
      /** The program as given (without its arguments). */
      program: Schema.optional(Schema.String),
      /** The file the program names: its absolute path, or the match found on `PATH`. */
      resolvedPath: Schema.optional(Schema.String),
      /** The interpreter named by the program's `#!` line, when that is what is missing. */
      interpreter: Schema.optional(Schema.String),
      /** The `PATH` directories searched for a program given without a slash. */
      searchPath: Schema.optional(Schema.Array(Schema.String)),
      cwd: Schema.optional(Schema.String),
      /** The program resolved to a directory (`EACCES`). */
      isDirectory: Schema.optional(Schema.Boolean),
      sizes: Schema.optional(SpawnSizes),
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
        return this.code === undefined
          ? `Agent "${this.agent}" could not be spawned (${this.command}): ${this.detail ?? "unknown error"}`
          : `Agent "${this.agent}" could not start \`${this.command}\`: ${spawnCause(this)}`
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
        return this.code === undefined
          ? `Check that "${this.command}" exists and is executable, and that cwd exists.`
          : spawnRemedy(this)
      case "exited_before_ready":
        return "Read the stderr lines above: the agent failed while loading. Run its command by hand to reproduce."
      case "no_ready_in_time":
        return "Make the agent print {\"type\":\"ready\",\"protocol\":1} on stdout (flushed) once loaded, " +
          "or raise startupTimeout if loading is legitimately slow."
    }
  }
}

/** Where the program was found, when that is not what the command line already says. */
const foundAt = (e: AgentStartupError): string =>
  e.resolvedPath !== undefined && e.resolvedPath !== e.program ? ` (${e.resolvedPath})` : ""

/** The cause of a spawn failure, from its code and facts. */
const spawnCause = (e: AgentStartupError): string => {
  const code = e.code
  const cwd = e.cwd ?? "."
  switch (code) {
    case "ENOENT":
      if (e.subject === "cwd") return `its working directory ${cwd} does not exist (ENOENT)`
      if (e.subject === "interpreter") {
        return `the program${foundAt(e)} exists, but ` + (e.interpreter !== undefined
          ? `the interpreter its #! line names, ${e.interpreter}, does not (ENOENT)`
          : "the loader it needs (its ELF interpreter) does not (ENOENT)")
      }
      if (e.searchPath !== undefined) {
        return e.searchPath.length === 0
          ? "the program is not on PATH, and PATH is empty (ENOENT)"
          : `the program is not on PATH (ENOENT); searched: ${e.searchPath.join(", ")}`
      }
      return `the program does not exist${e.resolvedPath !== e.program ? ` at ${e.resolvedPath}` : ""} (ENOENT)`
    case "ENOTDIR":
      return e.subject === "cwd"
        ? `its working directory ${cwd} is not a directory (ENOTDIR)`
        : "a component of the program's path is a file, not a directory (ENOTDIR)"
    case "EACCES":
      if (e.subject === "cwd") return `its working directory ${cwd} cannot be entered (EACCES)`
      return e.isDirectory === true
        ? `the program${foundAt(e)} is a directory (EACCES)`
        : `the program${foundAt(e)} is not executable (EACCES)`
    case "E2BIG": {
      const s = e.sizes
      if (s === undefined) return "the arguments and environment are too large for one exec (E2BIG)"
      const which = s.largestArgBytes > MAX_ARG_STRLEN
        ? `one argument of ${formatBytes(s.largestArgBytes)} is over Linux's 128 KiB limit for one string`
        : s.largestEnvBytes > MAX_ARG_STRLEN
        ? `the variable ${s.largestEnvName} (${formatBytes(s.largestEnvBytes)}) is over Linux's 128 KiB limit ` +
          "for one string"
        : "together they are over the system's limit (ARG_MAX)"
      return `the arguments (${formatBytes(s.argsBytes)} in ${plural(s.argCount, "argument", "arguments")}) and ` +
        `environment (${formatBytes(s.envBytes)} in ${plural(s.envCount, "variable", "variables")}) are too ` +
        `large to start a process (E2BIG): ${which}`
    }
    case "EMFILE":
      return "the supervisor has no file descriptors left for the agent's pipes (EMFILE)"
    case "ENFILE":
      return "the system's open file table is full (ENFILE)"
    case "EAGAIN":
      return "no more processes can be created for this user or container (EAGAIN)"
    case "ENOMEM":
      return "there is not enough memory to create the process (ENOMEM)"
    default:
      return `${e.detail ?? "the operating system refused"} (${code})`
  }
}

/** What to do about a spawn failure, by its code. */
const spawnRemedy = (e: AgentStartupError): string => {
  const program = e.resolvedPath ?? e.program ?? "the program"
  switch (e.code) {
    case "ENOENT":
      if (e.subject === "cwd") {
        return `Create ${e.cwd} or set cwd to a directory that exists (a relative cwd resolves against the ` +
          "supervisor's working directory)."
      }
      if (e.subject === "interpreter") {
        return e.interpreter !== undefined
          ? `Install ${e.interpreter} or fix the #! line of ${program}, or run the file through an interpreter ` +
            `that exists (command: "python3" or "node", args: ["${program}", ...]).`
          : `${program} is built for another system or its loader is not installed: install the matching ` +
            "runtime libraries or a build of the program for this system."
      }
      if (e.searchPath !== undefined) {
        return `Install "${e.program}", or add its directory to PATH (the agent's env.PATH, or the ` +
          "supervisor's own PATH), or set command to the program's absolute path."
      }
      return "Fix the program's path in command (a relative path resolves against the agent's cwd), or create " +
        "the file."
    case "ENOTDIR":
      return e.subject === "cwd"
        ? "Set cwd to a directory, not a file."
        : "Fix the program's path in command: one of its directories is a file."
    case "EACCES":
      if (e.subject === "cwd") {
        return `Give the supervisor's user search (x) permission on ${e.cwd} and its parents, or choose ` +
          "another cwd."
      }
      return e.isDirectory === true
        ? "Set command to the program inside that directory, not the directory itself."
        : `Make it executable (chmod +x ${program}), or run it through its interpreter (command: "python3" ` +
          `or "node", args: ["${program}", ...]).`
    case "E2BIG":
      return "Linux caps one argument or environment variable at 128 KiB and all of them together at ARG_MAX " +
        "(`getconf ARG_MAX`, a quarter of the stack limit). Pass large data as a task payload, or write it to " +
        "a file and pass the file's path, instead of putting it in args or env."
    case "EMFILE":
      return "Raise the supervisor's descriptor limit (`ulimit -n`, or LimitNOFILE= for a systemd unit), or look " +
        "for a descriptor leak: each agent holds three pipes."
    case "ENFILE":
      return "Raise the system's limit (`sysctl fs.file-max`) or find the process on the machine holding the " +
        "descriptors."
    case "EAGAIN":
      return "Raise the process limit (`ulimit -u`, or the container's pids limit), or run fewer agents or " +
        "agents that start fewer processes."
    case "ENOMEM":
      return "Free memory on the machine, or lower the supervisor's memory use, then start the agent again."
    default:
      return "Run the command by hand to reproduce; the code is the operating system's reason for refusing " +
        "to start it."
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
 * A request got no response within its timeout: a task or ping that was sent (a `cancel` was sent to the agent
 * after it), or, with `operation: "start"`, a request that timed out waiting for the agent to (re)start and was
 * never sent. `timeoutMillis` is the caller's timeout; `waitedForStartMillis` is the part of it spent waiting for
 * the agent to start before the request was sent (or before it gave up).
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
      pid: Schema.optional(Schema.Number),
      waitedForStartMillis: Schema.optional(Schema.Number)
    }
  )
{
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    const waited = this.waitedForStartMillis !== undefined ? Math.round(this.waitedForStartMillis) : undefined
    if (this.operation === "start") {
      const how = waited !== undefined && waited < this.timeoutMillis
        ? `after ${waited} ms of its ${this.timeoutMillis} ms timeout`
        : `after ${this.timeoutMillis} ms`
      return `A request to agent "${this.agent}" timed out waiting for the agent to start (${how}); ` +
        "it was not sent"
    }
    const pid = this.pid !== undefined ? ` (pid ${this.pid})` : ""
    return `Agent "${this.agent}"${pid} did not answer ${this.operation} ${this.requestId} ` +
      `within ${this.timeoutMillis} ms` +
      (waited !== undefined && waited > 0 ? ` (of which ${waited} ms waiting for a restart)` : "")
  }
  /** @since 0.1.0 */
  get remediation(): string {
    if (this.operation === "start") {
      return "The agent was not running and did not come up in time: read its crash reports and stderr (it may " +
        "be crash-looping, in its restart backoff, or slow to load), or give requests a timeout that covers a " +
        "restart (restartBackoff plus start-up time)."
    }
    return "Raise requestTimeout (or pass { timeout } for this call) if the work is legitimately slow; " +
      "otherwise check the agent's stderr for a stuck or blocked callback." +
      (this.waitedForStartMillis !== undefined && this.waitedForStartMillis > 0
        ? " Part of the time went to waiting for the agent to restart: a timeout should cover a restart too."
        : "")
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
 * Tells whether a value is one of this library's errors.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isSupervisorError = (u: unknown): u is SupervisorError => Predicate.hasProperty(u, TypeId)

/**
 * The text of the errors a request to a running agent fails with. Mostly `AgentTimeoutError`: a request that was
 * sent and got no answer in time, or one that timed out waiting for its agent to (re)start and was never sent;
 * either way, how much of the caller's timeout went to waiting for a start. Also `AgentCrashError` (the process
 * ended, or its circuit is open) and the remediation of a `ProtocolError`.
 *
 * Plain fields in, strings out: this module knows nothing of the error classes (`Errors.ts` imports it, never
 * the other way round).
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import { describeExit, exitFields, formatBytes, stderrTail } from "./format.js"

/**
 * The fields of `Errors.AgentTimeoutError`, by their type first: a named type keeps each field's comment in the
 * published declarations.
 *
 * @internal
 */
export type TimeoutFields = {
  readonly agent: typeof Schema.String
  readonly requestId: typeof Schema.String
  readonly operation: Schema.Literal<["task", "ping", "start"]>
  /** The caller's timeout; for an idle timeout (`idle`), the longest quiet spell allowed. */
  readonly timeoutMillis: typeof Schema.Number
  readonly pid: Schema.optional<typeof Schema.Number>
  /** The part of the caller's timeout spent waiting for the agent to (re)start. */
  readonly waitedForStartMillis: Schema.optional<typeof Schema.Number>
  /** A streaming task that sent nothing (no chunk, no response) for `timeoutMillis`: its idle timeout. */
  readonly idle: Schema.optional<typeof Schema.Boolean>
  /** A call of a pool that found no member running: how many members it had (0: scaled to 0). */
  readonly poolMembers: Schema.optional<typeof Schema.Number>
}

/**
 * The fields of `Errors.AgentTimeoutError`.
 *
 * @internal
 */
export const timeoutFields: TimeoutFields = {
  agent: Schema.String,
  requestId: Schema.String,
  operation: Schema.Literal("task", "ping", "start"),
  timeoutMillis: Schema.Number,
  pid: Schema.optional(Schema.Number),
  waitedForStartMillis: Schema.optional(Schema.Number),
  idle: Schema.optional(Schema.Boolean),
  poolMembers: Schema.optional(Schema.Number)
}

/**
 * The facts of a request timeout (the fields of `Errors.AgentTimeoutError`).
 *
 * @internal
 */
export interface TimeoutFacts {
  readonly agent: string
  readonly requestId: string
  readonly operation: "task" | "ping" | "start"
  readonly timeoutMillis: number
  readonly pid?: number | undefined
  readonly waitedForStartMillis?: number | undefined
  readonly idle?: boolean | undefined
  readonly poolMembers?: number | undefined
}

/**
 * The message of an `AgentTimeoutError`.
 *
 * @internal
 */
export const timeoutMessage = (e: TimeoutFacts): string => {
  const waited = e.waitedForStartMillis !== undefined ? Math.round(e.waitedForStartMillis) : undefined
  if (e.operation === "start") {
    const how = waited !== undefined && waited < e.timeoutMillis
      ? `after ${waited} ms of its ${e.timeoutMillis} ms timeout`
      : `after ${e.timeoutMillis} ms`
    if (e.poolMembers !== undefined) {
      const members = e.poolMembers === 0
        ? "the pool has no members (it is scaled to 0)"
        : `none of its ${e.poolMembers} members was running`
      return `A request to pool "${e.agent}" timed out waiting for a member (${how}): ${members}; it was not sent`
    }
    return `A request to agent "${e.agent}" timed out waiting for the agent to start (${how}); it was not sent`
  }
  const pid = e.pid !== undefined ? ` (pid ${e.pid})` : ""
  if (e.idle === true) {
    return `Agent "${e.agent}"${pid} sent nothing on the stream of task ${e.requestId} for ${e.timeoutMillis} ms ` +
      `(its idle timeout)`
  }
  return `Agent "${e.agent}"${pid} did not answer ${e.operation} ${e.requestId} within ${e.timeoutMillis} ms` +
    (waited !== undefined && waited > 0 ? ` (of which ${waited} ms waiting for a restart)` : "")
}

/**
 * What to do about an `AgentTimeoutError`.
 *
 * @internal
 */
export const timeoutRemediation = (e: TimeoutFacts): string => {
  if (e.operation === "start") {
    return "The agent was not running and did not come up in time: read its crash reports and stderr (it may " +
      "be crash-looping, in its restart backoff, or slow to load), or give requests a timeout that covers a " +
      "restart (restartBackoff plus start-up time)."
  }
  if (e.idle === true) {
    return "Raise idleTimeout for this call if the agent may legitimately pause that long between chunks; " +
      "otherwise check the agent's stderr for a stuck or blocked callback."
  }
  return "Raise requestTimeout (or pass { timeout } for this call) if the work is legitimately slow; " +
    "otherwise check the agent's stderr for a stuck or blocked callback." +
    (e.waitedForStartMillis !== undefined && e.waitedForStartMillis > 0
      ? " Part of the time went to waiting for the agent to restart: a timeout should cover a restart too."
      : "")
}

/**
 * The fields of `Errors.AgentCrashError`, by their type first: a named type keeps each field's comment in the
 * published declarations.
 *
 * @internal
 */
export type CrashFields = typeof exitFields & {
  readonly agent: typeof Schema.String
  /**
   * `exited` (its process ended), `circuit_open` (parked: it crashed too often), or `start_failed`: a start the call
   * waited for failed (or the agent never ran after its last start failed), with `startup` saying why.
   */
  readonly reason: Schema.optionalWith<
    Schema.Literal<["exited", "circuit_open", "start_failed"]>,
    { default: () => "exited" }
  >
  /** With `reason: "start_failed"`: the message of the start's `AgentStartupError`. */
  readonly startup: Schema.optional<typeof Schema.String>
  /**
   * The limit the process was killed for, when the exit was one (`ExitInfo.limit`): polled memory or CPU, a cgroup's
   * OOM kill, or an exit after a fork was refused at `limits.pids`.
   */
  readonly limit: Schema.optional<Schema.Literal<["memory_limit", "cpu_limit", "pids_limit"]>>
  /** That limit's value in the configuration: bytes (`limits.memory`), cores (`limits.cpu`) or tasks (`limits.pids`). */
  readonly limitValue: Schema.optional<typeof Schema.Number>
}

/**
 * The fields of `Errors.AgentCrashError`.
 *
 * @internal
 */
export const crashFields: CrashFields = {
  agent: Schema.String,
  reason: Schema.optionalWith(Schema.Literal("exited", "circuit_open", "start_failed"), {
    default: () => "exited" as const
  }),
  startup: Schema.optional(Schema.String),
  ...exitFields,
  limit: Schema.optional(Schema.Literal("memory_limit", "cpu_limit", "pids_limit")),
  limitValue: Schema.optional(Schema.Number)
}

/**
 * The facts of a crash (the fields of `Errors.AgentCrashError`).
 *
 * @internal
 */
export interface CrashFacts {
  readonly agent: string
  readonly reason: "exited" | "circuit_open" | "start_failed"
  readonly startup?: string | undefined
  readonly pid?: number | undefined
  readonly exitCode?: number | null | undefined
  readonly signal?: string | null | undefined
  readonly stderr: ReadonlyArray<string>
  readonly limit?: "memory_limit" | "cpu_limit" | "pids_limit" | undefined
  readonly limitValue?: number | undefined
}

/** The setting a limit comes from, with its value when known: `limits.memory 64 MiB`. */
const limitSetting = (e: CrashFacts): string => {
  const value = e.limitValue
  switch (e.limit) {
    case "memory_limit":
      return `limits.memory${value !== undefined ? ` ${formatBytes(value)}` : ""}`
    case "cpu_limit":
      return `limits.cpu${value !== undefined ? ` ${value} ${value === 1 ? "core" : "cores"}` : ""}`
    default:
      return `limits.pids${value !== undefined ? ` ${value}` : ""}`
  }
}

/** Why the process ended, when a limit ended it: ` for exceeding its memory limit (limits.memory 64 MiB)`. */
const limitCause = (e: CrashFacts): string => {
  switch (e.limit) {
    case undefined:
      return ""
    case "memory_limit":
      return ` for exceeding its memory limit (${limitSetting(e)})`
    case "cpu_limit":
      return ` for exceeding its CPU limit (${limitSetting(e)})`
    case "pids_limit":
      return ` after a fork was refused at its limit of processes and threads (${limitSetting(e)})`
  }
}

/**
 * The message of an `AgentCrashError`.
 *
 * @internal
 */
export const crashMessage = (e: CrashFacts): string => {
  switch (e.reason) {
    case "circuit_open":
      return `Agent "${e.agent}" is parked: it crashed too often and its circuit breaker is open` +
        stderrTail(e.stderr)
    case "start_failed":
      // The start-up error's message has the stderr tail already
      return `Agent "${e.agent}" is not running: its start failed: ${e.startup ?? "(no detail)"}`
    case "exited":
      return `Agent "${e.agent}" (pid ${e.pid}) ${describeExit(e)}${limitCause(e)}` + stderrTail(e.stderr)
  }
}

/**
 * What to do about an `AgentCrashError`.
 *
 * @internal
 */
export const crashRemediation = (e: CrashFacts): string => {
  if (e.reason === "circuit_open") {
    return "Fix the cause shown in the agent's stderr, then restart it manually to close the circuit."
  }
  if (e.reason === "start_failed") {
    return "Fix what kept the agent from starting (its start-up error, above), start it again (start, or the " +
      "tree's restartChild or startChild), and retry the request."
  }
  const restarted = "it is restarted by its supervisor per its restart policy."
  switch (e.limit) {
    case "memory_limit":
      return `Raise limits.memory or lower the agent's memory use (per task, or what it keeps between tasks); ${restarted}`
    case "cpu_limit":
      return `Raise limits.cpu, lower the agent's CPU use, or set limits.onCpuLimit to "log" to keep it running; ` +
        restarted
    case "pids_limit":
      return `Raise limits.pids or have the agent start fewer processes and threads; ${restarted}`
    default:
      return "Read the agent's last stderr lines; a crash is restarted by its supervisor per its restart policy."
  }
}

/**
 * The fields of `Errors.ProtocolError`.
 *
 * @internal
 */
export const protocolFields = {
  agent: Schema.String,
  reason: Schema.Literal("not_json", "not_a_message", "too_long", "invalid_utf8", "unencodable"),
  detail: Schema.String
}

/**
 * What to do about a `ProtocolError`, by its reason.
 *
 * @internal
 */
export const protocolRemediation = (
  e: { readonly reason: "not_json" | "not_a_message" | "too_long" | "invalid_utf8" | "unencodable" }
): string => {
  switch (e.reason) {
    case "unencodable":
      return "Send payloads that JSON carries as they are: no BigInt, no cycles, no functions, no Map or Set " +
        "(convert them to objects and arrays), no NaN or Infinity."
    case "too_long":
      return "Raise maxMessageBytes, or send large data by reference (a file path or URL) instead of inline."
    default:
      return "Keep the agent's stdout for protocol messages only; write logs to stderr."
  }
}

/** The fields of `AgentTaskError`. */
export const taskFields = {
  agent: Schema.String,
  requestId: Schema.String,
  errorType: Schema.String,
  errorMessage: Schema.String,
  stack: Schema.optional(Schema.String)
}

/** The fields of `AgentStoppedError`. */
export const stoppedFields = {
  agent: Schema.String,
  pid: Schema.optional(Schema.Number),
  /** `"start"`: what was stopped was the caller's `start` (or `restart`), not a request. */
  during: Schema.optional(Schema.Literal("start")),
  /**
   * `true`: the agent's scope has closed (the end of the scope it was made in, or its tree's stop of it): nothing
   * reaches it any more, and a `start` of it fails at once.
   */
  closed: Schema.optional(Schema.Boolean)
}

/** The facts of an `AgentStoppedError` its message tells. */
interface StoppedFacts {
  readonly agent: string
  readonly during?: "start" | undefined
  readonly closed?: boolean | undefined
}

/** The message of an `AgentStoppedError`. */
export const stoppedMessage = (e: StoppedFacts): string =>
  e.closed === true
    ? `Agent "${e.agent}" is gone: its scope has closed (the end of the scope it was made in, or its supervisor's ` +
      `stop of it), and no ${e.during === "start" ? "start" : "request"} reaches it any more`
    : e.during === "start"
    ? `Agent "${e.agent}" was stopped while it started: its start did not complete`
    : `Agent "${e.agent}" was stopped before it could answer`

/** What to do about an `AgentStoppedError`. */
export const stoppedRemediation = (e: StoppedFacts): string =>
  e.closed === true
    ? "Make a new agent in a scope that is open (AgentSupervisor.make). A tree's child: after a reload, child(id) " +
      "gives the running agent's handle; restartChild(id) starts a " +
      "new agent while the tree still lists the child (whichChildren), startChild once it does not (deleted, or a " +
      "temporary child stopped); child(id) gives the new agent's handle."
    : e.during === "start"
    ? "A stop (or the end of its scope) came while the agent started; start it again if it should run."
    : "Start the agent again (or wait for its supervisor to) and retry the request."

/** Why the cluster could not reach an agent (`AgentUnavailableError.reason`). */
export const UnavailableReason = Schema.Literal(
  "timeout",
  "runner_unavailable",
  "mailbox_full",
  "persistence",
  "defect"
)

/** The fields of `AgentUnavailableError`. */
export const unavailableFields = { agent: Schema.String, reason: UnavailableReason, detail: Schema.String }

/** What to do about an `AgentUnavailableError`, by its reason. */
export const unavailableRemediation = (reason: typeof UnavailableReason.Type): string => {
  switch (reason) {
    case "timeout":
      return "No runner answered in time: check that a runner is up and holds the agent's shard (GET /api/cluster), " +
        "or raise the call's timeout. A volatile call may have run; a task keeps its key, so send it again with it."
    case "runner_unavailable":
      return "The runner holding the agent is gone; its shards move to another runner after the shard lock expires."
    case "mailbox_full":
      return "The agent's entity has too many calls queued: slow down, or raise `mailboxCapacity`."
    case "persistence":
      return "The cluster's message storage failed: check its database (SQLite file or PostgreSQL)."
    case "defect":
      return "The cluster's transport failed unexpectedly; see `detail`. Retry the call."
  }
}

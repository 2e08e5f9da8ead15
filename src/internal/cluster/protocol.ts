/**
 * The agent's protocol across the cluster: one entity type whose messages (`Rpc`s) are a call, a persisted task,
 * a streaming call, its status and a restart. Every error is one of ours (`Schema.TaggedError`s), so a failure
 * crosses the wire typed: a crash on a remote runner is an `AgentCrashError` here.
 */
import * as ClusterSchema from "@effect/cluster/ClusterSchema"
import * as Entity from "@effect/cluster/Entity"
import * as Rpc from "@effect/rpc/Rpc"
import * as Schema from "effect/Schema"
import { AgentState } from "../../Agent/State.js"
import {
  AgentCrashError,
  AgentStartupError,
  AgentStoppedError,
  AgentStreamError,
  AgentTaskError,
  AgentTimeoutError,
  AgentUnavailableError,
  ConfigError,
  ProtocolError
} from "../../Errors.js"

/** The errors a call can fail with on the runner: a request's, a failed (lazy) start's, and the cluster's own. */
export const CallError = Schema.Union(
  AgentTimeoutError,
  AgentCrashError,
  AgentTaskError,
  AgentStoppedError,
  ProtocolError,
  ConfigError,
  AgentStartupError,
  AgentUnavailableError
)

/** The entity's type name: the `entity_type` of its rows in the cluster's tables. */
export const entityType = "effect-agent-supervisor/Agent"

/** `timeoutMillis`: the agent's deadline for the call; 0: its own `requestTimeout` (a task stored to run later). */
const callPayload = { input: Schema.Unknown, timeoutMillis: Schema.Number }

/** A volatile call: sent to the runner that holds the agent now, never stored. At least once (a lost runner's calls are re-sent). */
export const Call = Rpc.make("Call", { payload: callPayload, success: Schema.Unknown, error: CallError })

/**
 * A persisted task: stored in the cluster's message storage before it runs, keyed by `key`, so it survives the loss
 * of its runner, and the same key answers with the first reply. Uninterruptible from the client: a caller that gives
 * up (a timeout, an interruption, its process closing) stops waiting and never cancels it; otherwise the cluster
 * would store the interruption as the key's answer, for every caller of the key.
 */
export const Task = Rpc.make("Task", {
  payload: { ...callPayload, key: Schema.String },
  success: Schema.Unknown,
  error: CallError,
  primaryKey: (payload) => payload.key
}).annotate(ClusterSchema.Persisted, true).annotate(ClusterSchema.Uninterruptible, "client")

/** A streaming call: the agent's chunks, then its result. */
export const CallStream = Rpc.make("Stream", {
  payload: callPayload,
  stream: true,
  success: Schema.Union(
    Schema.TaggedStruct("Chunk", { data: Schema.Unknown }),
    Schema.TaggedStruct("Done", { result: Schema.Unknown })
  ),
  error: Schema.Union(CallError, AgentStreamError)
})

/** Where an agent runs, and how it is. */
export const AgentStatus = Schema.Struct({
  agent: Schema.String,
  state: AgentState,
  pid: Schema.OptionFromNullOr(Schema.Number),
  restartCount: Schema.Number,
  incarnations: Schema.Number,
  inFlight: Schema.Number,
  runner: Schema.String
})

/** The status of an agent (it starts the agent if its entity was passive). */
export const Status = Rpc.make("Status", { success: AgentStatus, error: CallError })

/** Stops and starts the agent (never counted as a failure). */
export const Restart = Rpc.make("Restart", { error: CallError })

/** The agent entity. */
export const AgentEntity = Entity.make(entityType, [Call, Task, CallStream, Status, Restart])

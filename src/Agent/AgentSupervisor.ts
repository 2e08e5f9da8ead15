/**
 * One agent over time: its lifecycle states, restarts with backoff and a circuit breaker, its heartbeat, its
 * events, and its records in the store.
 *
 * Every lifecycle change runs under one lock, so concurrent callers can never produce two live processes. The
 * slow parts (starting a process, the restart backoff) run in their own fibers and commit under the lock, so
 * `stop` can always interrupt them. Requests do not take the lock: they read the current status and go straight
 * to the live process.
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { AgentStartupError, AgentStoppedError, ConfigError, RequestError, StreamRequestError } from "../Errors.js"
import type { DurationInput } from "../internal/durationText.js"
import * as LogSettings from "../internal/logFiles/settings.js"
import type * as LogFiles from "../LogFiles.js"
import * as Writer from "../Store/internal/writer.js"
import type * as Store from "../Store/Store.js"
import * as Config from "./Config.js"
import type * as Health from "./Health.js"
import * as Directory from "./internal/directory/resolve.js"
import * as Owned from "./internal/owned.js"
import type * as AgentProcess from "./Process.js"
import type * as RestartPolicy from "./RestartPolicy.js"
import type { AgentState } from "./State.js"
import type { StreamEvent } from "./StreamEvent.js"

/**
 * Everything that happens to an agent, in order.
 *
 * @since 0.1.0
 * @category events
 */
export type AgentEvent =
  | {
    readonly _tag: "StateChanged"
    readonly agent: string
    readonly from: AgentState
    readonly to: AgentState
    readonly timestamp: number
  }
  | {
    readonly _tag: "Exited"
    readonly agent: string
    readonly pid: number
    readonly exitCode: number | null
    readonly signal: string | null
    readonly exitClass: RestartPolicy.ExitClass
    readonly reason: ExitReason
    /** The process outlived SIGKILL by 5 s and was given up on (see `AgentProcess.ExitInfo.leftBehind`). */
    readonly leftBehind?: true | undefined
    readonly timestamp: number
  }
  | {
    readonly _tag: "RestartScheduled"
    readonly agent: string
    readonly attempt: number
    readonly delayMillis: number
    readonly reason: ExitReason
    readonly timestamp: number
  }
  | { readonly _tag: "CircuitOpened"; readonly agent: string; readonly failures: number; readonly timestamp: number }
  | {
    /** An incarnation's process was spawned (before it is ready); `incarnation` counts from 1. */
    readonly _tag: "Spawned"
    readonly agent: string
    readonly pid: number
    readonly incarnation: number
    readonly timestamp: number
  }
  | { readonly _tag: "HealthChecked"; readonly agent: string; readonly sample: Health.HealthSample }
  | {
    /**
     * A limit polled by the supervisor was passed (`limits` in `polling` mode): `observed` and `max` in bytes for
     * memory, in cores for CPU; `killing` when the agent is killed for it (its `Exited` follows).
     */
    readonly _tag: "LimitExceeded"
    readonly agent: string
    readonly pid: number
    readonly limit: "memory" | "cpu"
    readonly observed: number
    readonly max: number
    readonly killing: boolean
    readonly timestamp: number
  }
  | {
    readonly _tag: "HealthCheckFailed"
    readonly agent: string
    readonly missed: number
    readonly error: string
    readonly timestamp: number
  }
  | {
    /**
     * An incarnation that announced `checkpoint` was sent `restore` right after its `ready`: with the agent's
     * checkpoint (`checkpoint`), and the checkpoints of the requests in flight at the last crash (their old ids).
     */
    readonly _tag: "Restored"
    readonly agent: string
    readonly pid: number
    readonly checkpoint: boolean
    readonly requests: ReadonlyArray<string>
    readonly timestamp: number
  }

/**
 * Why an incarnation ended: it exited by itself, failed to start, was killed for missed heartbeats, or was killed
 * for a limit (see `Config.Limits`: by the supervisor polling it, or by the kernel under its cgroup). Every reason
 * but `"exit"` makes the exit abnormal, whatever its code.
 *
 * @since 0.1.0
 * @category models
 */
export type ExitReason = "exit" | "start_failed" | "heartbeat" | AgentProcess.LimitReason

/**
 * A snapshot of the agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface Metadata {
  readonly name: string
  /**
   * The agent's state; CRASHED from the moment the exit of its RUNNING process is reported (when the calls in
   * flight fail with `AgentCrashError`), though its `StateChanged` event to CRASHED comes a moment later, once the
   * exit is handled. `state` and `whichChildren` say the same.
   */
  readonly state: AgentState
  /**
   * The pid of the agent's process while one runs: from its spawn (STARTING, before it is ready) until its exit
   * (while STOPPING, that of the process the stop is ending); none while no process runs (IDLE, CRASHED, STOPPED,
   * RESTARTING).
   */
  readonly pid: Option.Option<number>
  /** When the agent's process started (epoch milliseconds): while one runs, as `pid`. */
  readonly startedAt: Option.Option<number>
  /** Restarts decided since the supervisor was made. */
  readonly restartCount: number
  /** Failures in a row, reset after `resetAfter` of stable running and by manual operations. */
  readonly consecutiveFailures: number
  readonly circuitOpen: boolean
  /**
   * The running incarnation's last health sample (its heartbeat's, or `health`'s): none before its first, and none
   * once it is no longer running (a stopped, crashed or restarting agent has no health to show).
   */
  readonly lastHealth: Option.Option<Health.HealthSample>
  readonly lastExit: Option.Option<AgentProcess.ExitInfo>
  /**
   * How the limits and containment of the current (or last) incarnation are enforced (`cgroup-v2`, `cgroup-v1`,
   * `polling` or `none`, and why); none before the first process started.
   */
  readonly limits: Option.Option<AgentProcess.LimitsInForce>
  /** Requests sent to the current process and not answered yet. */
  readonly inFlight: number
  /** Processes spawned since the supervisor was made (every start and restart attempt). */
  readonly incarnations: number
  /** Responses that came after their request had timed out or been interrupted, over every incarnation. */
  readonly lateResponses: number
  /** Chunks that came after their streaming request had ended or been cancelled, over every incarnation. */
  readonly lateChunks: number
  /** Checkpoints dropped for being larger than `maxCheckpointBytes`, over every incarnation. */
  readonly droppedCheckpoints: number
  /** The protocol 1.1 features the current (or last) incarnation announced in its `ready`; none for a v1 agent. */
  readonly features: ReadonlyArray<string>
  /**
   * The agent's latest checkpoint (protocol 1.1 `checkpoint`, sent without a request id): the one its next
   * incarnation is sent in `restore`. Read from the store at the first start of an agent that announced
   * `checkpoint`, when a persistent store kept one from an earlier run.
   */
  readonly checkpoint: Option.Option<unknown>
  /** stdout lines that broke the protocol (too long, invalid UTF-8), over every incarnation. */
  readonly protocolErrors: number
  /** stdout lines that were not protocol messages (stray prints), over every incarnation. */
  readonly outputLines: number
  /** stderr lines, over every incarnation. */
  readonly stderrLines: number
}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * How long closing the scope waits for the store to take the last writes before giving up on them (they are
   * best effort). 1 second by default.
   */
  readonly storeFlushTimeout?: DurationInput | undefined
  /**
   * Writes the agent's stderr, over all its incarnations, to `<dir>/<name>.log` (the name made safe by
   * `LogFiles.fileName`), each line as `<ISO time> [pid N] <line>`, rotated by size with at most `keep` old files
   * (10 MiB and 5 by default): see `LogFiles` for the bounds on disk and memory. Opened when the agent is made;
   * closing the scope writes the last lines before it completes. Bad values are a `ConfigError` (`logs.maxBytes`).
   * None by default.
   */
  readonly logs?: LogFiles.Options | undefined
}

/**
 * Options of one call to the agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandleOptions {
  /** Overrides `requestTimeout`; it bounds the whole call, waiting for a (re)start included. */
  readonly timeout?: DurationInput | undefined
  /**
   * Send the request again to the next incarnation if the agent crashes while handling it. Off by default: the
   * agent may have done part of the work, and replaying it could do it twice.
   */
  readonly replayOnCrash?: boolean | undefined
  /**
   * Sent with the task as its `key` (protocol: an optional field of `task`; `ctx.key` in the adapters): the caller's
   * idempotency key, the same on every delivery of one task, so that an agent with side effects can tell a repeat.
   * The cluster passes a call's `idempotencyKey` and a published task's key. None by default.
   */
  readonly idempotencyKey?: string | undefined
}

/**
 * Options of one streaming call to the agent (`handleEventStream`).
 *
 * @since 0.1.0
 * @category models
 */
export interface HandleStreamOptions {
  /** Overrides `requestTimeout`; it bounds the whole stream, waiting for a (re)start included. */
  readonly timeout?: DurationInput | undefined
  /**
   * Fails the stream (`AgentTimeoutError` with `idle: true`) and cancels it when the agent sends nothing, no chunk
   * nor response, for this long. None by default: `timeout` bounds the stream, and a model may think for minutes
   * before its first token.
   */
  readonly idleTimeout?: DurationInput | undefined
  /**
   * How many chunks may wait for a consumer slower than the agent; one more fails the stream with
   * `AgentStreamError` (`overflow`) and cancels it. 1,024 by default.
   */
  readonly maxBufferedChunks?: number | undefined
  /** Sent with the task as its `key`, as `handleEvent`'s (`ctx.key` in the adapters). None by default. */
  readonly idempotencyKey?: string | undefined
}

/**
 * A supervised agent.
 *
 * @since 0.1.0
 * @category models
 */
export interface AgentSupervisor {
  readonly name: string
  readonly config: Config.AgentConfig
  /** Sends an event to the agent's callback and waits for the result (bounded by its timeout). */
  readonly handleEvent: (event: unknown, options?: HandleOptions) => Effect.Effect<unknown, RequestError>
  /**
   * Sends an event as a streaming task (protocol 1.1 `stream`): a `Chunk` for each chunk the agent sends, in order,
   * then one `Done` with the result, and the stream ends (`StreamEvent.runForEach` runs it: each chunk, then the
   * result). Routed as `handleEvent` is (it waits for a (re)start within its timeout); a failure ends it after the
   * chunks delivered, a crash mid-stream with `AgentCrashError` (it is never replayed). A consumer that stops early
   * (`Stream.take`) or is interrupted cancels the task. An agent that did not announce `stream` (a v1 agent) is
   * sent a plain task, and the stream is its one `Done`.
   */
  readonly handleEventStream: (
    event: unknown,
    options?: HandleStreamOptions
  ) => Stream.Stream<StreamEvent, StreamRequestError>
  readonly state: Effect.Effect<AgentState>
  readonly metadata: Effect.Effect<Metadata>
  /** Starts a stopped or crashed agent (closing an open circuit); waits until it runs. A running agent is left as is. */
  readonly start: Effect.Effect<void, AgentStartupError | AgentStoppedError>
  /** Stops the agent (3-phase shutdown) and cancels any pending restart. Pending requests fail at once. */
  readonly stop: Effect.Effect<void>
  /** Stops and starts the agent; closes an open circuit and resets the failure count. Never counted as a failure. */
  readonly restart: Effect.Effect<void, AgentStartupError | AgentStoppedError>
  /** Pings the agent now. */
  readonly health: Effect.Effect<Health.HealthSample, RequestError>
  /** Every event from the moment the stream is run. */
  readonly events: Stream.Stream<AgentEvent>
  /** A subscription to events, for callers that must not miss the ones caused right after subscribing. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<AgentEvent>, never, Scope.Scope>
  /**
   * The agent's last stderr lines over all its incarnations, oldest first: at most the configuration's
   * `stderrLines` (50 by default). Lines longer than 16 KiB are cut, with the number of bytes left out. A tree's
   * child keeps them over its rolling reloads too (`Supervisor.reload`): the new agent goes on with the old one's
   * lines, both processes' in the order they were read (while both run, as many as the larger `stderrLines`).
   */
  readonly recentStderr: Effect.Effect<ReadonlyArray<StderrLine>>
  /**
   * Each stderr line from the moment the stream is run, over restarts (and, for a tree's child, over its reloads:
   * the new process's lines from its first); it never ends by itself. A reader more than 4,096 lines behind loses
   * the oldest it has not read (a sliding buffer): the agent never waits for it.
   */
  readonly stderr: Stream.Stream<StderrLine>
  /**
   * A subscription to stderr lines from the moment it is made (`stderr` subscribes only once it runs): for
   * callers that must not miss a line written right after, such as `recentStderr` followed by new lines. A sliding
   * buffer of 4,096 lines, as `stderr`; it ends when the scope closes.
   */
  readonly subscribeStderr: Effect.Effect<Queue.Dequeue<StderrLine>, never, Scope.Scope>
}

/**
 * One line an agent wrote to stderr: the incarnation's pid, the text without its line break, when it was read
 * (epoch milliseconds, the `Clock`'s), and its number.
 *
 * @since 0.1.0
 * @category models
 */
export interface StderrLine {
  readonly pid: number
  readonly line: string
  readonly timestamp: number
  /**
   * The line's number: above every line's read before it in this process, by this agent (over its restarts, a
   * tree child's rolling reloads, a nested supervisor's restart) or another (so not consecutive). A reader of both
   * the kept lines and the live ones tells one line read twice by it, where two lines alike in the same millisecond
   * share the rest.
   */
  readonly seq: number
}

/**
 * Starts an agent under supervision; fails if its first start fails. Closing the scope stops it (3-phase
 * shutdown) and flushes its store writes. It writes to the `Store` it is given, which its type requires: choose
 * the in-memory one by providing `Store.layerMemory`.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * // The callback in agent.py gets `{ task: "process this" }` as it is.
 * const agent = yield* AgentSupervisor.make({ name: "echo", ...Adapters.pythonCallback("agent.py", "handle") })
 * const reply = yield* agent.handleEvent({ task: "process this" })
 * // ... .pipe(Effect.scoped, Effect.provide(Store.layerMemory))
 * ```
 */
export const make: (
  config: Config.AgentConfig | Config.AgentConfigInput,
  options?: Options
) => Effect.Effect<AgentSupervisor, AgentStartupError | ConfigError, Scope.Scope | Store.Store> = Effect.fn(
  "AgentSupervisor.make"
)(
  function*(config: Config.AgentConfig | Config.AgentConfigInput, options?: Options) {
    const settings = yield* Config.make(config)
    yield* Effect.annotateCurrentSpan("agent", settings.name)
    const storeFlushTimeout = options?.storeFlushTimeout === undefined
      ? Writer.DEFAULT_FLUSH_TIMEOUT
      : yield* Config.decodeDuration("storeFlushTimeout", options.storeFlushTimeout)
    const logs = yield* LogSettings.decodeOptional(options?.logs, "logs")
    return yield* Owned.makeOwned(settings, Owned.restartPolicyOwner(settings), { storeFlushTimeout, logs })
  }
)

/**
 * Starts an agent from a directory holding a Python or Node callback: `Directory.resolve`, then {@link make} on
 * the result. The agent is running when this succeeds, and stops when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const agent = yield* AgentSupervisor.fromDirectory({ agentName: "my-agent", agentDir: "agents/my_agent" })
 * const reply = yield* agent.handleEvent({ task: "process this" })
 * ```
 */
export const fromDirectory: (
  options: Directory.DirectoryOptions
) => Effect.Effect<
  AgentSupervisor,
  Directory.DirectoryError,
  FileSystem.FileSystem | Path.Path | Scope.Scope | Store.Store
> = Effect.fn("AgentSupervisor.fromDirectory")(function*(options: Directory.DirectoryOptions) {
  return yield* make(yield* Directory.resolve(options))
})

/**
 * One incarnation of an agent: a child process in its own process group, its NDJSON channel, request
 * correlation, and the 3-phase shutdown run as finalizers when its scope closes.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { AgentStartupError, ConfigError, RequestError, StreamRequestError } from "../Errors.js"
import type { DurationInput } from "../internal/durationText.js"
import type * as Message from "../Protocol/Message.js"
import * as Config from "./Config.js"
import * as Child from "./internal/child.js"
import * as internal from "./internal/process.js"
import * as Requests from "./internal/requests.js"
import * as Shutdown from "./internal/shutdown.js"
import type { StreamEvent } from "./StreamEvent.js"

/**
 * How the process ended.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExitInfo {
  readonly pid: number
  readonly exitCode: number | null
  readonly signal: string | null
  /** True when the supervisor asked for the exit (scope closed); false when the agent exited by itself. */
  readonly requested: boolean
  /** When the exit was seen (epoch milliseconds). */
  readonly at: number
  /**
   * The limit the process was killed for, when one was: by the supervisor polling it (`memory_limit`, `cpu_limit`),
   * or by the kernel under its cgroup (`memory_limit`: an OOM kill; `pids_limit`: it exited after a fork was
   * refused). Absent otherwise.
   */
  readonly limit?: LimitReason | undefined
  /**
   * True when the process outlived SIGKILL by 5 s (in uninterruptible sleep: a hung filesystem or device) and was
   * given up on, as systemd gives up a unit whose processes outlive its final SIGKILL: `signal` is `"SIGKILL"`,
   * `at` is when it was given up, and the process may still be in the process table (its real exit, if it comes, is
   * not reported again). Absent for a process that was reaped.
   */
  readonly leftBehind?: true | undefined
}

/**
 * The limit an incarnation was killed for (see `Config.Limits`).
 *
 * @since 0.1.0
 * @category models
 */
export type LimitReason = "memory_limit" | "cpu_limit" | "pids_limit"

/**
 * How an incarnation's limits and containment are enforced (README "Limits and containment"):
 * - `cgroup-v2` / `cgroup-v1`: a cgroup of its own, made before it started; the kernel holds the limits, and
 *   stopping it kills every process in the cgroup (systemd's `KillMode=control-group`).
 * - `polling`: its process group's memory and CPU read from /proc, above a limit for long enough restarts it
 *   (PM2's `max_memory_restart`); `pids` is not enforced; stopping it kills its process group.
 * - `none`: no limits asked for; stopping it kills its process group.
 *
 * `why` says why this mode and not a stronger one (e.g. no writable cgroup).
 *
 * @since 0.1.0
 * @category models
 */
export interface LimitsInForce {
  readonly mode: "cgroup-v2" | "cgroup-v1" | "polling" | "none"
  readonly why: string
  /** Bytes. */
  readonly memory?: number | undefined
  /** Cores. */
  readonly cpu?: number | undefined
  readonly pids?: number | undefined
  /** The cgroup directories, in a cgroup mode. */
  readonly cgroups?: ReadonlyArray<string> | undefined
}

/**
 * Counters of one incarnation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Requests sent and not answered yet (at most `maxInFlight` tasks, plus pings). */
  readonly inFlight: number
  /** Requests waiting for a slot in the `maxInFlight` window. */
  readonly waiting: number
  readonly requests: number
  readonly responses: number
  /** Responses whose request had already timed out or been interrupted: dropped. */
  readonly lateResponses: number
  /** Chunks whose streaming request had already ended, timed out or been cancelled: dropped. */
  readonly lateChunks: number
  /** Checkpoints larger than `maxCheckpointBytes`: dropped. */
  readonly droppedCheckpoints: number
  /** stdout lines that broke the protocol: too long, invalid UTF-8. */
  readonly protocolErrors: number
  /** stdout lines that were not protocol messages (stray prints): logged as agent output. */
  readonly outputLines: number
  readonly stderrLines: number
}

/**
 * The result of a ping: round-trip latency and the agent's own report (when it sent a well-formed one).
 *
 * @since 0.1.0
 * @category models
 */
export interface PingResult {
  readonly latencyMillis: number
  readonly report: Option.Option<Message.HealthReport["health"]>
}

/**
 * Options of one request.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions {
  /** Overrides the agent's `requestTimeout` (or `pingTimeout`) for this call: longer than 0, or a `ConfigError`. */
  readonly timeout?: DurationInput | undefined
  /**
   * Sent with the task as its `key`: the caller's idempotency key, the same on every delivery of one task, so that
   * an agent with side effects can tell a repeat (`ctx.key` in the adapters). None by default.
   */
  readonly idempotencyKey?: string | undefined
}

/**
 * Options of one streaming request (`requestStream`, protocol 1.1 `stream`).
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamOptions extends RequestOptions {
  /**
   * Fails the stream with `AgentTimeoutError` (`idle: true`) and cancels it when the agent sends nothing (no chunk,
   * no response) for this long. None by default: `timeout` bounds the whole stream, and a model may think for
   * minutes before its first token.
   */
  readonly idleTimeout?: DurationInput | undefined
  /**
   * How many chunks may wait for a consumer slower than the agent; one more fails the stream with
   * `AgentStreamError` (`overflow`) and cancels it. 1,024 by default.
   */
  readonly maxBufferedChunks?: number | undefined
}

/**
 * A running agent process.
 *
 * @since 0.1.0
 * @category models
 */
export interface AgentProcess {
  readonly name: string
  readonly pid: number
  /** When the process was spawned (epoch milliseconds). */
  readonly startedAt: number
  readonly config: Config.AgentConfig
  /** How its limits and containment are enforced. */
  readonly limits: LimitsInForce
  /** Sends a task and waits for its response; never waits longer than its timeout. */
  readonly request: (payload: unknown, options?: RequestOptions) => Effect.Effect<unknown, RequestError>
  /**
   * Sends a task as a stream (protocol 1.1): a `Chunk` for each chunk the agent sends, in order, then one `Done`
   * with its result, and the stream ends (see `StreamEvent`). A failure ends it after the chunks delivered.
   * `timeout` bounds the whole stream (`requestTimeout` by default); a consumer that stops early (`Stream.take`)
   * or is interrupted cancels the task. To an agent that did not announce `stream`, a plain task: the stream is
   * its one `Done` (`idleTimeout` and `maxBufferedChunks` do not apply).
   */
  readonly requestStream: (
    payload: unknown,
    options?: StreamOptions
  ) => Stream.Stream<StreamEvent, StreamRequestError>
  /** Sends a ping (not limited by `maxInFlight`) and waits up to `pingTimeout` (or the given timeout). */
  readonly ping: (options?: RequestOptions) => Effect.Effect<PingResult, RequestError>
  /** Waits until the process has exited (or was left behind: see `ExitInfo.leftBehind`). */
  readonly awaitExit: Effect.Effect<ExitInfo>
  /** How the process ended, if it has. */
  readonly exitInfo: Effect.Effect<Option.Option<ExitInfo>>
  readonly stats: Effect.Effect<Stats>
  /** The most recent stderr lines (at most `stderrLines` of them). */
  readonly recentStderr: Effect.Effect<ReadonlyArray<string>>
  /**
   * Sends a signal to the whole process group (a no-op once it is gone). A SIGKILL the process outlives by 5 s gives
   * it up as the stop does (`ExitInfo.leftBehind`).
   */
  readonly signalGroup: (signal: NodeJS.Signals) => Effect.Effect<void>
  /** The protocol 1.1 features the agent announced in its `ready` (`stream`, `checkpoint`); none for a v1 agent. */
  readonly features: ReadonlyArray<string>
  /** The latest checkpoint the agent sent (without an id) in this incarnation, if any. */
  readonly checkpoint: Effect.Effect<Option.Option<unknown>>
}

/**
 * True when a request failed without being written to the process (it had exited, or was being stopped): the
 * agent never saw it, so sending it again (to the next incarnation) cannot do the work twice.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isRefusal: (error: RequestError) => boolean = Requests.isRefusal

/**
 * Spawns the agent and waits for its `ready`. The process lives until the scope closes, which runs the 3-phase
 * shutdown: `cancel` for every request in flight, `shutdown` on stdin and stdin closed, wait `gracefulTimeout`;
 * SIGTERM to the group, wait `sigtermTimeout`; SIGKILL to the group; and returns once the process is reaped, or
 * after 5 s more, when the kernel has not reaped it by then (uninterruptible sleep: a hung filesystem or device):
 * it is left behind with a warning and reported as exited by SIGKILL with `leftBehind` (see `ExitInfo`). If
 * start-up fails, whatever was started is stopped before the error is returned. The phases are bounded in real time
 * and hold even when the fiber closing the scope is being interrupted (Ctrl-C).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: Config.AgentConfig | Config.AgentConfigInput
): Effect.Effect<AgentProcess, AgentStartupError | ConfigError, Scope.Scope> =>
  Effect.flatMap(Config.make(config), (decoded) => internal.start(decoded))

/**
 * Cuts short every agent's stop in this process, those under way and those begun after: each sends SIGKILL to its
 * agent's process group at once, skipping what is left of its phases (each agent ends as by OTP's `brutal_kill`;
 * docker compose forces its containers' stop so on a second Ctrl-C). The CLI's `up` does it on a second SIGINT or
 * SIGTERM. For a host that is ending: nothing undoes it, and every agent stopped from then on is killed (a
 * restart's, a reload's or a scale-down's stop of a process too), in every tree of the process. Succeeds
 * with how many stops were under way. A stop cut short logs no failure of the agent's (its SIGKILL was the stop's).
 *
 * @since 0.1.0
 * @category stopping
 */
export const forceStops: Effect.Effect<number> = Effect.sync(Shutdown.forceStops)

/**
 * SIGKILL at once to the process group of every agent process this host runs (every tree's), stopping or not, for a
 * host that must end now: the CLI's `up` does it on a third SIGINT or SIGTERM, then exits. The supervisors see the
 * exits as crashes, and may restart them: use it on the way out, after {@link forceStops}. Succeeds with how many
 * processes were signalled.
 *
 * @since 0.1.0
 * @category stopping
 */
export const killAll: Effect.Effect<number> = Effect.sync(() => Child.killAll("SIGKILL"))

/**
 * One incarnation of an agent: a child process in its own process group, its NDJSON channel, request
 * correlation, and the 3-phase shutdown run as finalizers when its scope closes.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { identity } from "effect/Function"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import {
  AgentCrashError,
  AgentStartupError,
  AgentStoppedError,
  AgentTaskError,
  AgentTimeoutError,
  ConfigError,
  ProtocolError,
  type RequestError
} from "../Errors.js"
import { forkIn } from "../internal/fork.js"
import * as Message from "../Protocol/Message.js"
import { decodeUtf8Lenient, decodeUtf8Strict, type Line, LineSplitter } from "../Protocol/Ndjson.js"
import * as Config from "./Config.js"
import * as Child from "./internal/child.js"
import * as Deadlines from "./internal/deadlines.js"
import * as Outbox from "./internal/outbox.js"
import * as Output from "./internal/output.js"
import * as Spawn from "./internal/spawn.js"

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
  /** Overrides the agent's `requestTimeout` for this call. */
  readonly timeout?: Duration.DurationInput | undefined
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
  /** Sends a task and waits for its response; never waits longer than its timeout. */
  readonly request: (payload: unknown, options?: RequestOptions) => Effect.Effect<unknown, RequestError>
  /** Sends a ping (not limited by `maxInFlight`) and waits up to `pingTimeout` (or the given timeout). */
  readonly ping: (options?: RequestOptions) => Effect.Effect<PingResult, RequestError>
  /** Waits until the process has exited. */
  readonly awaitExit: Effect.Effect<ExitInfo>
  /** How the process ended, if it has. */
  readonly exitInfo: Effect.Effect<Option.Option<ExitInfo>>
  readonly stats: Effect.Effect<Stats>
  /** The most recent stderr lines (at most `stderrLines` of them). */
  readonly recentStderr: Effect.Effect<ReadonlyArray<string>>
  /** Sends a signal to the whole process group (a no-op once it is gone). */
  readonly signalGroup: (signal: NodeJS.Signals) => Effect.Effect<void>
}

/**
 * Hooks into one incarnation's life, for its owner.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hooks {
  /**
   * Run once the process is spawned, before it is ready (a failed start still had a pid), with a reader of the
   * incarnation's counters that holds after a failed start or an exit (its pipes may still deliver lines).
   */
  readonly onSpawned?: ((pid: number, stats: Effect.Effect<Stats>) => Effect.Effect<void>) | undefined
}

/** Where a log line longer than this is cut: logs need the start of a line, not 16 MiB of it. */
const STDERR_LINE_BYTES = 16 * 1024

/**
 * After the exit, how long the pipes may stay open before the exit is reported anyway: data the process wrote
 * before dying is still in them, but a descendant that escaped the group may hold them open for ever. Data that
 * comes later is still logged.
 */
const PIPES_AFTER_EXIT_MILLIS = 20

/** Cancels are best effort: when this many lines already wait for a stuck stdin, drop further cancels. */
const MAX_QUEUED_CANCELS = 1024

/** Protocol errors logged per incarnation; the rest are counted (`stats.protocolErrors`), not logged. */
const LOGGED_PROTOCOL_ERRORS = 10

/** The start of an over-long response line, where both adapters write the request's `id` first. */
const LEADING_ID = /^\s*\{\s*"id"\s*:\s*"([^"\\]{1,200})"/

type Resume = (effect: Effect.Effect<unknown, RequestError>) => void

/** A request from call to answer. Tasks count toward `maxInFlight` once sent; pings never wait for a slot. */
interface Pending {
  readonly resume: Resume
  /** The caller's fiber, observed so that a caller that is interrupted (and so ends) cancels its request. */
  readonly id: string
  readonly caller: Fiber.RuntimeFiber<unknown, unknown>
  readonly onCallerExit: () => void
  readonly limited: boolean
  readonly operation: "task" | "ping"
  readonly timeoutMillis: number
  sent: boolean
  bucket: number
}

/** Errors of requests refused before they were written, because the process had exited or was stopping. */
const refusals = new WeakSet<object>()

/**
 * True when a request failed without being written to the process (it had exited, or was being stopped): its
 * owner may route it to the next incarnation, since the agent never saw it.
 *
 * @since 0.1.0
 * @category refinements
 */
export const isRefusal = (error: RequestError): boolean => refusals.has(error)

/**
 * Spawns the agent and waits for its `ready`. The process lives until the scope closes, which runs the 3-phase
 * shutdown: `cancel` for every request in flight, `shutdown` on stdin and stdin closed, wait `gracefulTimeout`;
 * SIGTERM to the group, wait `sigtermTimeout`; SIGKILL to the group; and returns once the process is reaped. If
 * start-up fails, whatever was started is stopped before the error is returned. The phases are bounded in real
 * time and hold even when the fiber closing the scope is being interrupted (Ctrl-C).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: Config.AgentConfig | Config.AgentConfigInput,
  hooks?: Hooks
): Effect.Effect<AgentProcess, AgentStartupError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const decoded = yield* Config.make(config)
    const outer = yield* Effect.scope
    const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    return yield* start(decoded, hooks).pipe(
      Scope.extend(scope),
      Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void)
    )
  })

/** Waits until the event loop has polled the pipes again: data already written by the agent is then read. */
const pollPipes = Effect.async<void>((resume) => {
  setImmediate(() => setImmediate(() => resume(Effect.void)))
})

const start = Effect.fnUntraced(function*(config: Config.AgentConfig, hooks: Hooks | undefined) {
  const name = config.name

  // Mutable state owned by this incarnation. Node's event handlers and the callers run on one JS thread and each
  // access is a synchronous step, so plain structures are safe here, and they keep the per-message path light.
  const pending = new Map<string, Pending>()
  const waiting: Array<readonly [id: string, line: string]> = []
  let inFlight = 0
  let nextId = 0
  let exited: ExitInfo | undefined
  let stopping = false
  const counters = {
    requests: 0,
    responses: 0,
    lateResponses: 0,
    protocolErrors: 0,
    outputLines: 0,
    stderrLines: 0
  }
  const stderrRing: Array<string> = []
  const exitWaiters: Array<(info: ExitInfo) => void> = []

  const ready = yield* Deferred.make<Message.Ready>()
  const exitDeferred = yield* Deferred.make<ExitInfo>()
  const clock = yield* Effect.clock
  const scope = yield* Effect.scope
  // Logs come from Node's event handlers, outside any fiber: one fiber of the scope runs them in order.
  const logs = yield* Mailbox.make<Effect.Effect<void>>()
  // Once the scope has closed, what the pipes still hand over (lines written just before an exit that was reported
  // first, or by a descendant that holds the pipes) is logged by a fiber of its own, in this incarnation's context.
  const runtime = yield* Effect.runtime<never>()
  let logsEnded = false
  const log = (effect: Effect.Effect<void>): void => {
    if (logsEnded) Runtime.runFork(runtime)(annotate(effect))
    else logs.unsafeOffer(effect)
  }
  /** A protocol error: counted always, logged for the first few only (an agent may break the protocol per byte). */
  const protocolError = (message: string) => {
    counters.protocolErrors++
    if (counters.protocolErrors <= LOGGED_PROTOCOL_ERRORS) log(Effect.logWarning(message))
    if (counters.protocolErrors === LOGGED_PROTOCOL_ERRORS) {
      log(Effect.logWarning(`${LOGGED_PROTOCOL_ERRORS} protocol errors: further ones are counted, not logged`))
    }
  }

  // ---- the child: every pipe has an error path for its whole life ----
  const child = yield* Child.spawn({
    command: config.command,
    args: config.args,
    env: Spawn.childEnv(config),
    cwd: config.cwd
  }).pipe(Effect.mapError((failure) => Spawn.classify(config, failure.error)))
  const pid = child.pid
  const startedAt = yield* Clock.currentTimeMillis
  const stats: Effect.Effect<Stats> = Effect.sync(() => {
    let unsent = 0
    for (const entry of pending.values()) if (!entry.sent) unsent++
    return { ...counters, inFlight, waiting: unsent }
  })
  if (hooks?.onSpawned !== undefined) yield* hooks.onSpawned(pid, stats)
  const annotate = Effect.annotateLogs({ agent: name, pid })
  const runLogs: Effect.Effect<void> = Effect.flatMap(logs.takeAll, ([batch, done]) =>
    Effect.zipRight(
      Effect.forEach(batch, identity, { discard: true }),
      done ? Effect.void : Effect.suspend(() => runLogs)
    ))
  yield* runLogs.pipe(annotate, forkIn(scope))
  // Agent output (stderr, stray stdout) goes through one bounded log: its level, a rate limit, the host's backlog.
  const output = Output.fromConfig(config, { clock, annotations: { agent: name, pid }, schedule: log })
  yield* forkIn(scope)(output.run)

  const outbox = Outbox.make(child)
  const deadlines = Deadlines.make(clock, (id) => expire(id))
  yield* forkIn(scope)(deadlines.run)

  const stoppedError = () => new AgentStoppedError({ agent: name, pid })
  const exitError = (info: ExitInfo): RequestError =>
    info.requested
      ? stoppedError()
      : new AgentCrashError({ agent: name, pid, exitCode: info.exitCode, signal: info.signal, stderr: [...stderrRing] })
  const timeoutError = (operation: "task" | "ping", requestId: string, timeoutMillis: number) =>
    new AgentTimeoutError({ agent: name, requestId, operation, timeoutMillis, pid })
  /** Why a new request is refused at once (the process exited, or is being stopped), if it is. */
  const refusal = (): RequestError | undefined => {
    const childExit = exited === undefined ? child.exited() : undefined
    const error = exited !== undefined
      ? exitError(exited)
      : childExit !== undefined
      ? new AgentCrashError({ agent: name, pid, exitCode: childExit.exitCode, signal: childExit.signal })
      : stopping
      ? stoppedError()
      : undefined
    if (error !== undefined) refusals.add(error)
    return error
  }

  const send = outbox.send
  const sendCancel = (id: string) => {
    if (exited === undefined && outbox.size() < MAX_QUEUED_CANCELS) send(Message.encodeCancel(id))
  }

  // ---- reader: stdout lines -> responses ----
  const onStdoutLine = (line: Line): void => {
    if (line.droppedBytes > 0) {
      const size = line.bytes.length + line.droppedBytes
      const error = new ProtocolError({
        agent: name,
        reason: "too_long",
        detail: `a stdout line of ${size} bytes exceeds maxMessageBytes (${config.maxMessageBytes}); discarded`
      })
      // Both adapters write `id` first: the request it answers fails now rather than at its timeout.
      const id = LEADING_ID.exec(decodeUtf8Lenient(line.bytes.subarray(0, 512)))?.[1]
      // The ids this supervisor makes need no escapes: an id with one is no id of ours.
      const entry = id === undefined ? undefined : pending.get(id)
      if (entry !== undefined && entry.sent) {
        settle(entry)
        entry.resume(Effect.fail(
          new ProtocolError({
            agent: name,
            reason: "too_long",
            detail: `the response to request ${entry.id} is ${size} bytes, over maxMessageBytes ` +
              `(${config.maxMessageBytes}); discarded`
          })
        ))
      }
      protocolError(error.message)
      return
    }
    const text = decodeUtf8Strict(line.bytes)
    if (text === undefined) {
      protocolError(`agent stdout: a line of ${line.bytes.length} bytes is not valid UTF-8; discarded`)
      return
    }
    onStdoutText(text)
  }
  const onStdoutText = (text: string): void => {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    const response = Message.decodeResponse(json)
    if (response !== undefined) return onResponse(response)
    const hello = Message.decodeReady(json)
    if (hello === undefined) {
      if (text.length === 0) return
      counters.outputLines++
      output.push(text, "stdout")
      return
    }
    if (hello.protocol !== Message.PROTOCOL_VERSION) {
      log(Effect.logWarning(`agent speaks protocol ${hello.protocol}, this supervisor ${Message.PROTOCOL_VERSION}`))
    }
    Deferred.unsafeDone(ready, Exit.succeed(hello))
  }
  const onResponse = (response: Message.ResponseOk | Message.ResponseError): void => {
    const entry = pending.get(response.id)
    if (entry === undefined || !entry.sent) {
      counters.lateResponses++
      return
    }
    settle(entry)
    counters.responses++
    if (response.status === "ok") {
      entry.resume(Effect.succeed(response.result))
    } else {
      entry.resume(Effect.fail(
        new AgentTaskError({
          agent: name,
          requestId: response.id,
          errorType: response.error.type,
          errorMessage: response.error.message,
          ...(response.error.stack !== undefined ? { stack: response.error.stack } : {})
        })
      ))
    }
  }

  // ---- stderr: drained always (a full pipe blocks the child), logged, last lines kept ----
  const onStderrLine = (line: Line): void => {
    let text = decodeUtf8Lenient(line.bytes)
    if (line.droppedBytes > 0) text += ` [... ${line.droppedBytes} more bytes]`
    counters.stderrLines++
    stderrRing.push(text)
    if (stderrRing.length > config.stderrLines) stderrRing.shift()
    output.push(text, "stderr")
  }

  // ---- exit: reported on the `exit` event, not on the pipes closing (a descendant may hold them open) ----
  const onChildExit = (exit: Child.ChildExit): void => {
    // Descendants outlive a leader that exits 0 or by a signal: sweep the group now.
    Child.killGroup(pid, "SIGKILL")
    if (pipesClosed) return reportExit(exit)
    // What the process wrote before dying is still in the pipes: let them hand it over, briefly.
    // On a busy loop the timer can fire before the pipes were polled: one more turn lets them be read first.
    const timer = setTimeout(() =>
      setImmediate(() => {
        if (onPipesClosed === undefined) return
        onPipesClosed = undefined
        reportExit(exit)
      }), PIPES_AFTER_EXIT_MILLIS)
    onPipesClosed = () => {
      onPipesClosed = undefined
      clearTimeout(timer)
      reportExit(exit)
    }
  }
  const reportExit = (exit: Child.ChildExit): void => {
    const info: ExitInfo = {
      pid,
      exitCode: exit.exitCode,
      signal: exit.signal,
      requested: stopping,
      at: clock.unsafeCurrentTimeMillis()
    }
    exited = info
    const error = exitError(info)
    failAll(error)
    Deferred.unsafeDone(exitDeferred, Exit.succeed(info))
    for (const waiter of exitWaiters.splice(0)) waiter(info)
    if (!info.requested) log(Effect.logWarning(`agent exited unexpectedly: ${error.message}`))
  }
  /** Waits for the exit at most `millis` (real time), also in a finalizer of a fiber being interrupted. */
  const exitWithin = (millis: number) =>
    Effect.async<boolean>((resume) => {
      if (exited !== undefined) return resume(Effect.succeed(true))
      const waiter = () => {
        clearTimeout(timer)
        resume(Effect.succeed(true))
      }
      const timer = Number.isFinite(millis)
        ? setTimeout(() => {
          const index = exitWaiters.indexOf(waiter)
          if (index >= 0) exitWaiters.splice(index, 1)
          resume(Effect.succeed(false))
        }, millis)
        : undefined
      exitWaiters.push(waiter)
    })

  // ---- requests: correlation, the maxInFlight window and timeouts, all without a fiber per request ----
  /** Fails every request in flight or waiting for a slot (the process exited, or is being stopped). */
  const failAll = (error: RequestError) => {
    // Emptied first, so that settling one frees no slot for the next.
    waiting.length = 0
    for (const entry of [...pending.values()]) {
      settle(entry)
      if (entry.sent) {
        entry.resume(Effect.fail(error))
      } else {
        // Never written (it waited for a slot): a refusal, which its owner may route to the next incarnation.
        const refused = error._tag === "AgentCrashError"
          ? new AgentCrashError({
            agent: name,
            pid,
            exitCode: error.exitCode ?? null,
            signal: error.signal ?? null,
            stderr: error.stderr
          })
          : stoppedError()
        refusals.add(refused)
        entry.resume(Effect.fail(refused))
      }
    }
  }
  /** Forgets a request: its deadline, its caller's observer, and its slot in the window (the next may go). */
  const settle = (entry: Pending) => {
    pending.delete(entry.id)
    deadlines.remove(entry.id, entry.bucket)
    entry.caller.removeObserver(entry.onCallerExit)
    if (entry.sent && entry.limited) {
      inFlight--
      while (inFlight < config.maxInFlight && waiting.length > 0) {
        const [nextId, line] = waiting.shift()!
        const next = pending.get(nextId)
        if (next !== undefined) dispatch(next, line)
      }
    }
  }
  const dispatch = (entry: Pending, line: string) => {
    entry.sent = true
    if (entry.limited) inFlight++
    send(line)
  }
  const expire = (id: string) => {
    const entry = pending.get(id)
    if (entry === undefined) return
    settle(entry)
    if (entry.sent) sendCancel(id)
    entry.resume(Effect.fail(timeoutError(entry.operation, id, entry.timeoutMillis)))
  }

  /**
   * Registers a request and sends it (or queues it for a slot).
   *
   * An interrupted caller is seen through an observer on its fiber rather than a canceler returned to
   * `Effect.async`: a canceler makes Effect wrap every request in an uninterruptible region with an exit handler,
   * which costs about 3 µs per request, as much as the rest of the round trip. A fiber waiting here can only
   * leave by our answer or by interruption, and interruption ends the fiber, so its exit is the signal: the
   * request is forgotten and the agent told to stop working on it. (The one difference: a fiber that catches
   * its interruption in an uninterruptible region and goes on keeps the request until its timeout.)
   */
  const register = (
    caller: Fiber.RuntimeFiber<unknown, unknown>,
    id: string,
    line: string,
    operation: "task" | "ping",
    timeoutMillis: number,
    resume: Resume
  ): void => {
    const limited = operation === "task"
    const onCallerExit = () => {
      if (pending.get(id) !== entry) return
      settle(entry)
      if (entry.sent) sendCancel(id)
    }
    const entry: Pending = {
      id,
      resume,
      caller,
      onCallerExit,
      limited,
      operation,
      timeoutMillis,
      sent: false,
      bucket: 0
    }
    pending.set(id, entry)
    entry.bucket = deadlines.add(id, clock.unsafeCurrentTimeMillis() + timeoutMillis)
    caller.addObserver(onCallerExit)
    if (!limited || inFlight < config.maxInFlight) dispatch(entry, line)
    else waiting.push([id, line])
  }

  const requestTimeoutMillis = Duration.toMillis(config.requestTimeout)
  const pingTimeoutMillis = Duration.toMillis(config.pingTimeout)
  const timeoutOf = (options: RequestOptions | undefined, fallback: number): number | ConfigError =>
    options?.timeout === undefined ? fallback : timeoutMillisOf(options.timeout)

  // One `Effect.async` per request, no wrapper: this is the hot path.
  const request = (payload: unknown, options?: RequestOptions): Effect.Effect<unknown, RequestError> => {
    const timeoutMillis = timeoutOf(options, requestTimeoutMillis)
    if (typeof timeoutMillis !== "number") return Effect.fail(timeoutMillis)
    return Effect.withFiberRuntime<unknown, RequestError>((caller) =>
      Effect.async<unknown, RequestError>((resume) => {
        const refused = refusal()
        if (refused !== undefined) return resume(Effect.fail(refused))
        if (timeoutMillis <= 0) return resume(Effect.fail(timeoutError("task", "(not sent)", timeoutMillis)))
        const id = String(++nextId)
        let line: string
        try {
          line = Message.encodeTask(id, payload)
        } catch (error) {
          return resume(Effect.fail(
            new ProtocolError({
              agent: name,
              reason: "unencodable",
              detail: `payload cannot be sent as JSON: ${error}`
            })
          ))
        }
        // A UTF-16 unit is at most 3 UTF-8 bytes: count the bytes only when the length alone cannot tell.
        if (line.length * 3 > config.maxMessageBytes && Buffer.byteLength(line) > config.maxMessageBytes) {
          return resume(Effect.fail(
            new ProtocolError({
              agent: name,
              reason: "too_long",
              detail: `the encoded task is ${
                Buffer.byteLength(line)
              } bytes, over maxMessageBytes (${config.maxMessageBytes})`
            })
          ))
        }
        counters.requests++
        register(caller, id, line, "task", timeoutMillis, resume)
      })
    )
  }

  const ping = (options?: RequestOptions): Effect.Effect<PingResult, RequestError> =>
    Effect.suspend(() => {
      const timeoutMillis = timeoutOf(options, pingTimeoutMillis)
      if (typeof timeoutMillis !== "number") return Effect.fail(timeoutMillis)
      const sentAt = performance.now()
      return Effect.withFiberRuntime<unknown, RequestError>((caller) =>
        Effect.async<unknown, RequestError>((resume) => {
          const refused = refusal()
          if (refused !== undefined) return resume(Effect.fail(refused))
          const id = `ping-${++nextId}`
          register(caller, id, Message.encodePing(id), "ping", timeoutMillis, resume)
        })
      ).pipe(
        Effect.map((result): PingResult => {
          const report = (result as Partial<Message.HealthReport> | null)?.health
          const wellFormed = typeof report === "object" && report !== null &&
            typeof report.uptime_seconds === "number" && typeof report.memory_mb === "number"
          return {
            latencyMillis: performance.now() - sentAt,
            report: wellFormed ? Option.some(report) : Option.none()
          }
        })
      )
    })

  const stdoutSplitter = new LineSplitter(config.maxMessageBytes)
  const stderrSplitter = new LineSplitter(STDERR_LINE_BYTES)
  let pipesClosed = false
  let onPipesClosed: (() => void) | undefined
  // Output and the exit are delivered from here on: every handler above is defined.
  child.attach({
    onStdout: (chunk) => stdoutSplitter.pushText(chunk, onStdoutText, onStdoutLine),
    onStderr: (chunk) => stderrSplitter.push(chunk, onStderrLine),
    onPipesClosed: () => {
      pipesClosed = true
      stdoutSplitter.end(onStdoutLine)
      stderrSplitter.end(onStderrLine)
      onPipesClosed?.()
    },
    onExit: onChildExit,
    onStdinError: (error) => log(Effect.logDebug(`agent stdin closed with an error: ${error.message}`))
  })

  // ---- 3-phase shutdown; added last so it runs first, before the child's own release (SIGKILL and wait) ----
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      if (stopping) return
      stopping = true
      // The agent is told to drop the work whose results nobody will read, before it is asked to stop.
      if (exited === undefined) {
        for (const entry of pending.values()) if (entry.sent) sendCancel(entry.id)
      }
      // Nobody waits through the shutdown phases: what is pending fails now (late answers are dropped).
      failAll(stoppedError())
      if (exited !== undefined) return
      send(Message.shutdownLine)
      outbox.end()
      if (yield* exitWithin(Duration.toMillis(config.gracefulTimeout))) return
      yield* Effect.logWarning(`agent ignored shutdown for ${Duration.format(config.gracefulTimeout)}: SIGTERM`)
      Child.killGroup(pid, "SIGTERM")
      if (yield* exitWithin(Duration.toMillis(config.sigtermTimeout))) return
      yield* Effect.logWarning(`agent ignored SIGTERM for ${Duration.format(config.sigtermTimeout)}: SIGKILL`)
      Child.killGroup(pid, "SIGKILL")
      yield* exitWithin(Infinity)
      // No SIGKILL after the exit: the exit handler swept the group when the leader exited, and by now its id may
      // belong to an unrelated process group.
    }).pipe(
      Effect.ensuring(Effect.suspend(() => {
        logsEnded = true
        return logs.end
      })),
      annotate
    )
  )

  // ---- start-up: ready, or the process exits, or the timeout passes ----
  const startupFailure = (reason: "exited_before_ready" | "no_ready_in_time", info?: ExitInfo) =>
    pollPipes.pipe(Effect.map(() =>
      new AgentStartupError({
        agent: name,
        reason,
        command: Spawn.commandLine(config),
        pid,
        // Read after the pipes were polled once more: what the agent wrote just before is in the report.
        stderr: [...stderrRing],
        timeoutMillis: Duration.toMillis(config.startupTimeout),
        ...(info !== undefined ? { exitCode: info.exitCode, signal: info.signal } : {})
      })
    ))
  yield* Deferred.await(ready).pipe(
    Effect.asVoid,
    Effect.raceFirst(
      Deferred.await(exitDeferred).pipe(
        Effect.flatMap((info) => Effect.flip(startupFailure("exited_before_ready", info)))
      )
    ),
    Effect.timeout(config.startupTimeout),
    Effect.catchTag("TimeoutException", () => Effect.flip(startupFailure("no_ready_in_time"))),
    // A race's loser is interrupted; in a caller's uninterruptible region (a Layer being built) it could not be,
    // and the race would wait for it forever. The wait is bounded by startupTimeout, so it may always be cut.
    Effect.interruptible
  )

  const agent: AgentProcess = {
    name,
    pid,
    startedAt,
    config,
    request,
    ping,
    awaitExit: Deferred.await(exitDeferred),
    exitInfo: Effect.sync(() => Option.fromNullable(exited)),
    stats,
    recentStderr: Effect.sync(() => [...stderrRing]),
    signalGroup: (signal) => Effect.sync(() => exited === undefined ? Child.killGroup(pid, signal) : undefined)
  }
  return agent
})

/**
 * A per-call `timeout` in milliseconds, or the `ConfigError` of a bad one (a call never throws).
 *
 * @internal
 */
export const timeoutMillisOf = (timeout: Duration.DurationInput): number | ConfigError =>
  Either.match(Config.decodeDuration("timeout", timeout), { onLeft: (error) => error, onRight: Duration.toMillis })

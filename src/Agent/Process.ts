/**
 * One incarnation of an agent: a child process in its own process group, its NDJSON channel, request
 * correlation, and the 3-phase shutdown run as finalizers when its scope closes.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  AgentCrashError,
  AgentStartupError,
  AgentStoppedError,
  AgentTaskError,
  AgentTimeoutError,
  type ConfigError,
  ProtocolError,
  type RequestError
} from "../Errors.js"
import { forkIn } from "../internal/fork.js"
import * as Message from "../Protocol/Message.js"
import { decodeUtf8Lenient, decodeUtf8Strict, type Line, LineSplitter } from "../Protocol/Ndjson.js"
import * as Config from "./Config.js"
import * as Deadlines from "./internal/deadlines.js"
import * as Outbox from "./internal/outbox.js"

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

/** Where a log line longer than this is cut: logs need the start of a line, not 16 MiB of it. */
const STDERR_LINE_BYTES = 16 * 1024

/** How long to let stdout/stderr drain after the exit: data the process wrote before dying is still in the pipe. */
const DRAIN_AFTER_EXIT_MILLIS = 50

/** Cancels are best effort: when this many lines already wait for a stuck stdin, drop further cancels. */
const MAX_QUEUED_CANCELS = 1024

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

const SIGNAL_IN_MESSAGE = /signal: (SIG[A-Z0-9]+)/

/** A live clock for bounded internal waits that must not stall under a `TestClock`. */
const liveClock = Clock.make()
const sleepLive = (millis: number) => Effect.withClock(Effect.sleep(millis), liveClock)

const killGroup = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: the group is already gone; EPERM cannot happen for our own children.
  }
}

const commandLine = (config: Config.AgentConfig) => [config.command, ...config.args].join(" ")

const toCommand = (config: Config.AgentConfig): Command.Command => {
  let command = Command.make(config.command, ...config.args).pipe(
    // Unbuffered Python by default: an agent that prints without flushing would otherwise look hung.
    Command.env({ PYTHONUNBUFFERED: "1", ...config.env }),
    Command.stdin("pipe")
  )
  if (config.cwd !== undefined) command = Command.workingDirectory(command, config.cwd)
  return command
}

/**
 * Spawns the agent and waits for its `ready`. The process lives until the scope closes, which runs the 3-phase
 * shutdown: `shutdown` on stdin and stdin closed, wait `gracefulTimeout`; SIGTERM to the group, wait
 * `sigtermTimeout`; SIGKILL to the group; and returns once the process is reaped. If start-up fails, whatever
 * was started is stopped before the error is returned.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: Config.AgentConfig | Config.AgentConfigInput
): Effect.Effect<AgentProcess, AgentStartupError | ConfigError, CommandExecutor.CommandExecutor | Scope.Scope> =>
  Effect.gen(function*() {
    const decoded = yield* Config.make(config)
    const outer = yield* Effect.scope
    const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    return yield* start(decoded).pipe(
      Scope.extend(scope),
      Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void)
    )
  })

const start = Effect.fnUntraced(function*(config: Config.AgentConfig) {
  const name = config.name
  const proc = yield* Command.start(toCommand(config)).pipe(
    Effect.mapError((error) =>
      new AgentStartupError({
        agent: name,
        reason: "spawn_failed",
        command: commandLine(config),
        detail: error.message
      })
    )
  )
  const pid = proc.pid as number
  const startedAt = yield* Clock.currentTimeMillis
  const scope = yield* Effect.scope

  // Mutable state owned by this incarnation. The reader and the callers run on one JS thread and each access is
  // a synchronous step, so plain structures are safe here, and they keep the per-message path allocation-light.
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

  const ready = yield* Deferred.make<Message.Ready>()
  const exitDeferred = yield* Deferred.make<ExitInfo>()
  const stdoutDone = yield* Deferred.make<void>()
  const stderrDone = yield* Deferred.make<void>()
  const outbox = Outbox.make()
  const clock = yield* Effect.clock
  const deadlines = Deadlines.make(clock, (id) => expire(id))
  yield* forkIn(scope)(deadlines.run)

  const annotate = Effect.annotateLogs({ agent: name, pid })

  const stoppedError = () => new AgentStoppedError({ agent: name, pid })
  const exitError = (info: ExitInfo): RequestError =>
    info.requested
      ? stoppedError()
      : new AgentCrashError({ agent: name, pid, exitCode: info.exitCode, signal: info.signal, stderr: [...stderrRing] })
  /** Why a new request is refused at once (the process exited, or is being stopped), if it is. */
  const refusal = (): RequestError | undefined =>
    exited !== undefined ? exitError(exited) : stopping ? stoppedError() : undefined

  // ---- writer: one long-lived fiber owns stdin; lines sent while it writes go out in one write ----
  const send = outbox.send
  const sendCancel = (id: string) => {
    if (exited === undefined && outbox.size() < MAX_QUEUED_CANCELS) send(Message.encodeCancel(id))
  }
  yield* outbox.stream.pipe(
    Stream.run(proc.stdin),
    // EPIPE when the agent died mid-write: the exit watcher reports the crash, nothing to do here.
    Effect.catchAllCause((cause) => Effect.logDebug("agent stdin closed with an error", cause)),
    annotate,
    forkIn(scope)
  )

  // ---- reader: stdout lines -> responses ----
  const logs: Array<Effect.Effect<void>> = []
  const onStdoutLine = (line: Line): void => {
    if (line.droppedBytes > 0) {
      counters.protocolErrors++
      logs.push(Effect.logWarning(
        new ProtocolError({
          agent: name,
          reason: "too_long",
          detail: `a stdout line of ${line.bytes.length + line.droppedBytes} bytes exceeds maxMessageBytes ` +
            `(${config.maxMessageBytes}); discarded`
        }).message
      ))
      return
    }
    const text = decodeUtf8Strict(line.bytes)
    if (text === undefined) {
      counters.protocolErrors++
      logs.push(Effect.logWarning(`agent stdout: a line of ${line.bytes.length} bytes is not valid UTF-8; discarded`))
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
      logs.push(Effect.logInfo(`agent stdout (not a protocol message): ${text.slice(0, 500)}`))
      return
    }
    if (hello.protocol !== Message.PROTOCOL_VERSION) {
      logs.push(
        Effect.logWarning(`agent speaks protocol ${hello.protocol}, this supervisor ${Message.PROTOCOL_VERSION}`)
      )
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
  const flushLogs = Effect.suspend(() => {
    if (logs.length === 0) return Effect.void
    const batch = logs.splice(0, logs.length)
    return Effect.forEach(batch, (log) => log, { discard: true })
  })
  const stdoutSplitter = new LineSplitter(config.maxMessageBytes)
  yield* proc.stdout.pipe(
    Stream.runForEachChunk((chunk) =>
      Effect.suspend(() => {
        for (const bytes of chunk) stdoutSplitter.pushText(bytes, onStdoutText, onStdoutLine)
        return flushLogs
      })
    ),
    Effect.catchAllCause((cause) => Effect.logDebug("agent stdout closed with an error", cause)),
    Effect.ensuring(Deferred.done(stdoutDone, Exit.void)),
    annotate,
    forkIn(scope)
  )

  // ---- stderr: drained always (a full pipe blocks the child), logged, last lines kept ----
  const stderrSplitter = new LineSplitter(STDERR_LINE_BYTES)
  const stderrBatch: Array<string> = []
  const onStderrLine = (line: Line): void => {
    let text = decodeUtf8Lenient(line.bytes)
    if (line.droppedBytes > 0) text += ` [... ${line.droppedBytes} more bytes]`
    counters.stderrLines++
    stderrRing.push(text)
    if (stderrRing.length > config.stderrLines) stderrRing.shift()
    stderrBatch.push(text)
  }
  const logStderr = Effect.suspend(() => {
    if (stderrBatch.length === 0) return Effect.void
    const batch = stderrBatch.splice(0, stderrBatch.length)
    return Effect.forEach(batch, (text) => Effect.logInfo(text), { discard: true })
  })
  yield* proc.stderr.pipe(
    Stream.runForEachChunk((chunk) =>
      Effect.suspend(() => {
        for (const bytes of chunk) stderrSplitter.push(bytes, onStderrLine)
        return logStderr
      })
    ),
    Effect.zipRight(Effect.suspend(() => {
      stderrSplitter.end(onStderrLine)
      return logStderr
    })),
    Effect.catchAllCause((cause) => Effect.logDebug("agent stderr closed with an error", cause)),
    Effect.ensuring(Deferred.done(stderrDone, Exit.void)),
    Effect.annotateLogs({ agent: name, pid, stream: "stderr" }),
    forkIn(scope)
  )

  // ---- exit watcher: the 'exit' event, not the pipes closing (a grandchild may hold them open) ----
  yield* proc.exitCode.pipe(
    Effect.map((code): [number | null, string | null] => [code, null]),
    Effect.catchAll((error) => {
      const signal = SIGNAL_IN_MESSAGE.exec(error.message)?.[1] ?? "SIGKILL"
      return Effect.succeed<[number | null, string | null]>([null, signal])
    }),
    Effect.flatMap(([exitCode, signal]) =>
      Effect.gen(function*() {
        // Descendants outlive a leader that exits 0 or by a signal: sweep the group now.
        killGroup(pid, "SIGKILL")
        // Let the pipes hand over what the process wrote before it died (bounded: they may never close).
        yield* Deferred.await(stdoutDone).pipe(
          Effect.zipRight(Deferred.await(stderrDone)),
          Effect.raceFirst(sleepLive(DRAIN_AFTER_EXIT_MILLIS))
        )
        const info: ExitInfo = { pid, exitCode, signal, requested: stopping, at: yield* Clock.currentTimeMillis }
        exited = info
        const error = exitError(info)
        failAll(error)
        yield* Deferred.succeed(exitDeferred, info)
        if (!info.requested) {
          yield* Effect.logWarning(`agent exited unexpectedly: ${error.message}`)
        }
      })
    ),
    annotate,
    forkIn(scope)
  )

  // ---- requests: correlation, the maxInFlight window and timeouts, all without a fiber per request ----
  /** Fails every request in flight or waiting for a slot (the process exited, or is being stopped). */
  const failAll = (error: RequestError) => {
    // Emptied first, so that settling one frees no slot for the next.
    waiting.length = 0
    for (const entry of [...pending.values()]) {
      settle(entry)
      entry.resume(Effect.fail(error))
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
    entry.resume(Effect.fail(
      new AgentTimeoutError({
        agent: name,
        requestId: id,
        operation: entry.operation,
        timeoutMillis: entry.timeoutMillis,
        pid
      })
    ))
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

  const timeoutMillisOf = (options: RequestOptions | undefined, fallback: number) =>
    options?.timeout !== undefined ? Duration.toMillis(Duration.decode(options.timeout)) : fallback
  const requestTimeoutMillis = Duration.toMillis(config.requestTimeout)
  const pingTimeoutMillis = Duration.toMillis(config.pingTimeout)

  // One `Effect.async` per request, no wrapper: this is the hot path.
  const request = (payload: unknown, options?: RequestOptions): Effect.Effect<unknown, RequestError> => {
    const timeoutMillis = timeoutMillisOf(options, requestTimeoutMillis)
    return Effect.withFiberRuntime<unknown, RequestError>((caller) =>
      Effect.async<unknown, RequestError>((resume) => {
        const refused = refusal()
        if (refused !== undefined) return resume(Effect.fail(refused))
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
      const timeoutMillis = timeoutMillisOf(options, pingTimeoutMillis)
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

  // ---- 3-phase shutdown; added last so it runs first, before the platform's own release (which waits for the
  // exit with no timeout and would hang on a child that ignores SIGTERM) ----
  const waitExit = (millis: number) =>
    Deferred.await(exitDeferred).pipe(Effect.timeoutOption(millis), Effect.map(Option.isSome), Effect.interruptible)
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      stopping = true
      // Nobody waits through the shutdown phases: what is pending fails now (late answers are dropped).
      failAll(stoppedError())
      if (!(yield* Deferred.isDone(exitDeferred))) {
        yield* Effect.sync(() => {
          send(Message.shutdownLine)
          outbox.end()
        })
        if (!(yield* waitExit(Duration.toMillis(config.gracefulTimeout)))) {
          yield* Effect.logWarning(`agent ignored shutdown for ${Duration.format(config.gracefulTimeout)}: SIGTERM`)
          killGroup(pid, "SIGTERM")
          if (!(yield* waitExit(Duration.toMillis(config.sigtermTimeout)))) {
            yield* Effect.logWarning(`agent ignored SIGTERM for ${Duration.format(config.sigtermTimeout)}: SIGKILL`)
            killGroup(pid, "SIGKILL")
            yield* Deferred.await(exitDeferred)
          }
        }
      }
      // No SIGKILL here: the exit watcher swept the group when the leader exited, and by now its id may belong
      // to an unrelated process group.
    }).pipe(annotate)
  )

  // ---- start-up: ready, or the process exits, or the timeout passes ----
  const startupFailure = (reason: "exited_before_ready" | "no_ready_in_time", info?: ExitInfo) =>
    new AgentStartupError({
      agent: name,
      reason,
      command: commandLine(config),
      pid,
      stderr: [...stderrRing],
      timeoutMillis: Duration.toMillis(config.startupTimeout),
      ...(info !== undefined ? { exitCode: info.exitCode, signal: info.signal } : {})
    })
  yield* Deferred.await(ready).pipe(
    Effect.asVoid,
    Effect.raceFirst(
      Deferred.await(exitDeferred).pipe(
        Effect.flatMap((info) => Effect.fail(startupFailure("exited_before_ready", info)))
      )
    ),
    Effect.timeoutFail({ duration: config.startupTimeout, onTimeout: () => startupFailure("no_ready_in_time") }),
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
    stats: Effect.sync(() => {
      let unsent = 0
      for (const entry of pending.values()) if (!entry.sent) unsent++
      return { ...counters, inFlight, waiting: unsent }
    }),
    recentStderr: Effect.sync(() => [...stderrRing]),
    signalGroup: (signal) => Effect.sync(() => exited === undefined ? killGroup(pid, signal) : undefined)
  }
  return agent
})

/**
 * The requests of one incarnation: correlation by id, the `maxInFlight` window, timeouts and refusals, all
 * without a fiber per request.
 *
 * Node's event handlers and the callers run on one JS thread and each access is a synchronous step, so plain
 * structures are safe here, and they keep the per-message path light: a request costs one entry in a map, one
 * observer on its caller's fiber and one key in the deadline buckets.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import {
  AgentCrashError,
  AgentStoppedError,
  AgentTimeoutError,
  type ConfigError,
  ProtocolError,
  type RequestError
} from "../../Errors.js"
import * as AgentMetrics from "../../internal/metrics/instruments.js"
import * as Spans from "../../internal/metrics/spans.js"
import * as Message from "../../Protocol/Message.js"
import * as Config from "../Config.js"
import type * as AgentProcess from "../Process.js"
import * as Deadlines from "./deadlines.js"
import type * as Outbox from "./outbox.js"

/** Cancels are best effort: when this many lines already wait for a stuck stdin, drop further cancels. */
const MAX_QUEUED_CANCELS = 1024

/**
 * How a waiting caller is answered, once: `Effect.async`'s callback (an `Exit` is an `Effect`), or a plain
 * callback (a heartbeat's ping, see `pingWith`). @internal
 */
export type Resume = (exit: Exit.Exit<unknown, RequestError>) => void

/** @internal */
export type Operation = "task" | "ping"

/** A request from call to answer. Tasks count toward `maxInFlight` once sent; pings never wait for a slot. @internal */
export interface Pending {
  readonly resume: Resume
  readonly id: string
  /**
   * The caller's fiber, observed so that a caller that is interrupted (and so ends) cancels its request; none for
   * a callback's request (it is settled by its answer, its timeout or the end of the process).
   */
  readonly caller: Fiber.RuntimeFiber<unknown, unknown> | undefined
  readonly onCallerExit: () => void
  readonly limited: boolean
  readonly operation: Operation
  readonly timeoutMillis: number
  sent: boolean
  bucket: number
}

// ---- refusals ----

/** Errors of requests refused before they were written, because the process had exited or was stopping. */
const refusals = new WeakSet<object>()

/** Marks `error` as a refusal (see {@link isRefusal}) and returns it. @internal */
export const refuse = <E extends RequestError>(error: E): E => {
  refusals.add(error)
  return error
}

/**
 * True when a request failed without being written to the process (it had exited, or was being stopped): its
 * owner may route it to the next incarnation, since the agent never saw it.
 *
 * @internal
 */
export const isRefusal = (error: RequestError): boolean => refusals.has(error)

/** The error that fails every request at an exit or a stop: the process crashed, or was stopped. @internal */
export type EndError = AgentCrashError | AgentStoppedError

/** The refusal of a request that waited for a slot and was never written, with the facts of `error`. */
const refusalOf = (error: EndError): EndError =>
  refuse(
    error._tag === "AgentCrashError"
      ? new AgentCrashError({
        agent: error.agent,
        pid: error.pid,
        exitCode: error.exitCode ?? null,
        signal: error.signal ?? null,
        stderr: error.stderr
      })
      : new AgentStoppedError({ agent: error.agent, pid: error.pid })
  )

// ---- the table ----

/** The requests in flight or waiting for a slot. @internal */
export interface Table {
  /**
   * Registers a request and sends its `line` (or queues it for a slot in the window); `resume` is called exactly
   * once, by an answer, a timeout, a failure of all, or never if the caller ends first (its request is then
   * forgotten and cancelled).
   */
  readonly register: (
    caller: Fiber.RuntimeFiber<unknown, unknown> | undefined,
    id: string,
    line: string,
    operation: Operation,
    timeoutMillis: number,
    resume: Resume
  ) => void
  /**
   * Takes the request that a line of the agent answers out of the table, freeing its slot; `undefined` when no
   * sent request has this id (it timed out, its caller left, or it was never sent). The caller resumes it.
   */
  readonly answer: (id: string) => Pending | undefined
  /** Fails every request in flight or waiting for a slot; those never written get a refusal. */
  readonly failAll: (error: EndError) => void
  /** Tells the agent to drop every request it was sent (best effort, see `MAX_QUEUED_CANCELS`). */
  readonly cancelSent: () => void
  /** A fresh number for a request id (tasks and pings share the sequence). */
  readonly nextId: () => number
  /** Tasks sent and not answered yet. */
  readonly inFlight: () => number
  /** Requests registered and not sent yet (waiting for a slot). */
  readonly unsent: () => number
  /** Requests registered and not settled: tasks and pings, sent or not. */
  readonly size: () => number
  readonly timeoutError: (operation: Operation, requestId: string, timeoutMillis: number) => AgentTimeoutError
  /** Forgets the timeouts (their waiter on the ticker); call it when the owner's scope closes. */
  readonly close: () => void
}

/** What a table needs: the process it writes to, and the clock its timeouts run on. @internal */
export interface TableOptions {
  readonly agent: string
  readonly pid: number
  readonly maxInFlight: number
  readonly clock: Clock.Clock
  readonly outbox: Outbox.Outbox
  /** True once the process has exited: cancels are then not sent. */
  readonly exited: () => boolean
  /** The deadline buckets' width in milliseconds (see `deadlines.ts`). */
  readonly resolution?: number | undefined
  /** Told of each task's slot taken and freed, and of callers gone before their answer (the agent's metrics). */
  readonly meter?: AgentMetrics.Meter | undefined
}

/** An empty table; `close` it with the owner's scope. @internal */
export const makeTable = (options: TableOptions): Table => {
  const { agent, clock, maxInFlight, outbox, pid } = options
  const meter = options.meter ?? AgentMetrics.noMeter
  const pending = new Map<string, Pending>()
  const waiting: Array<readonly [id: string, line: string]> = []
  let inFlight = 0
  let lastId = 0

  const timeoutError = (operation: Operation, requestId: string, timeoutMillis: number) =>
    new AgentTimeoutError({ agent, requestId, operation, timeoutMillis, pid })
  const cancel = (id: string) => {
    if (!options.exited() && outbox.size() < MAX_QUEUED_CANCELS) outbox.send(Message.encodeCancel(id))
  }
  const dispatch = (entry: Pending, line: string) => {
    entry.sent = true
    if (entry.limited) {
      inFlight++
      meter.inFlight(1)
    }
    outbox.send(line)
  }
  /** Forgets a request: its deadline, its caller's observer, and its slot in the window (the next may go). */
  const settle = (entry: Pending) => {
    pending.delete(entry.id)
    deadlines.remove(entry.id, entry.bucket)
    entry.caller?.removeObserver(entry.onCallerExit)
    if (entry.sent && entry.limited) {
      inFlight--
      meter.inFlight(-1)
      while (inFlight < maxInFlight && waiting.length > 0) {
        const [nextId, line] = waiting.shift()!
        const next = pending.get(nextId)
        if (next !== undefined) dispatch(next, line)
      }
    }
  }
  const expire = (id: string) => {
    const entry = pending.get(id)
    if (entry === undefined) return
    settle(entry)
    if (entry.sent) cancel(id)
    entry.resume(Exit.fail(timeoutError(entry.operation, id, entry.timeoutMillis)))
  }
  // One expiry function for all requests: no closure per request for its deadline.
  const deadlines = Deadlines.make(clock, expire, options.resolution)

  /**
   * An interrupted caller is seen through an observer on its fiber rather than a canceler returned to
   * `Effect.async`: a canceler makes Effect wrap every request in an uninterruptible region with an exit handler,
   * which costs about 3 µs per request, as much as the rest of the round trip. A fiber waiting here can only
   * leave by our answer or by interruption, and interruption ends the fiber, so its exit is the signal: the
   * request is forgotten and the agent told to stop working on it. (The one difference: a fiber that catches
   * its interruption in an uninterruptible region and goes on keeps the request until its timeout.)
   */
  const register: Table["register"] = (caller, id, line, operation, timeoutMillis, resume) => {
    const limited = operation === "task"
    const onCallerExit = () => {
      if (pending.get(id) !== entry) return
      settle(entry)
      if (limited) meter.interrupted()
      if (entry.sent) cancel(id)
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
    caller?.addObserver(onCallerExit)
    if (!limited || inFlight < maxInFlight) dispatch(entry, line)
    else waiting.push([id, line])
  }

  const answer = (id: string): Pending | undefined => {
    const entry = pending.get(id)
    if (entry === undefined || !entry.sent) return undefined
    settle(entry)
    return entry
  }

  const failAll = (error: EndError) => {
    // Emptied first, so that settling one frees no slot for the next.
    waiting.length = 0
    for (const entry of [...pending.values()]) {
      settle(entry)
      // Never written (it waited for a slot): a refusal, which its owner may route to the next incarnation.
      entry.resume(Exit.fail(entry.sent ? error : refusalOf(error)))
    }
  }

  const cancelSent = () => {
    for (const entry of pending.values()) if (entry.sent) cancel(entry.id)
  }

  const unsent = () => {
    let count = 0
    for (const entry of pending.values()) if (!entry.sent) count++
    return count
  }

  return {
    register,
    answer,
    failAll,
    cancelSent,
    nextId: () => ++lastId,
    inFlight: () => inFlight,
    unsent,
    size: () => pending.size,
    timeoutError,
    close: deadlines.close
  }
}

// ---- the calls: request and ping ----

/**
 * A per-call `timeout` in milliseconds, or the `ConfigError` of a bad one (a call never throws).
 *
 * @internal
 */
export const timeoutMillisOf = (timeout: Duration.DurationInput): number | ConfigError =>
  Either.match(Config.decodeDuration("timeout", timeout), { onLeft: (error) => error, onRight: Duration.toMillis })

/** What the calls need: the settings, the table, and whether the process takes requests at all. @internal */
export interface CallsOptions {
  readonly config: Config.AgentConfig
  readonly table: Table
  /** Why a new request is refused at once (the process exited, or is being stopped), if it is. */
  readonly refusal: () => RequestError | undefined
  /** Counts the tasks sent. */
  readonly counters: { requests: number }
}

/** The two ways to ask an agent: a task, and a ping (as an `Effect`, or with a callback). @internal */
export interface Calls {
  readonly request: AgentProcess.AgentProcess["request"]
  readonly ping: AgentProcess.AgentProcess["ping"]
  /**
   * A ping with the configuration's `pingTimeout`, answered to `done` exactly once (in Node's handler of the
   * answer, of the timeout, or of the exit; at once when refused), with no fiber: a heartbeat's beat. It never
   * throws.
   */
  readonly pingWith: (done: (exit: Exit.Exit<AgentProcess.PingResult, RequestError>) => void) => void
}

/** A ping's answer: its round trip since `sentAt` (`performance.now()`), and the agent's report when well formed. */
const pongOf = (result: unknown, sentAt: number): AgentProcess.PingResult => {
  const report = (result as Partial<Message.HealthReport> | null)?.health
  const wellFormed = typeof report === "object" && report !== null &&
    typeof report.uptime_seconds === "number" && typeof report.memory_mb === "number"
  return {
    latencyMillis: performance.now() - sentAt,
    report: wellFormed ? Option.some(report) : Option.none()
  }
}

/** The requests callers make: `request` is the hot path, one `Effect.async` per call and no wrapper. @internal */
export const makeCalls = ({ config, counters, refusal, table }: CallsOptions): Calls => {
  const name = config.name
  const requestTimeoutMillis = Duration.toMillis(config.requestTimeout)
  const pingTimeoutMillis = Duration.toMillis(config.pingTimeout)
  const timeoutOf = (options: AgentProcess.RequestOptions | undefined, fallback: number): number | ConfigError =>
    options?.timeout === undefined ? fallback : timeoutMillisOf(options.timeout)

  const request: Calls["request"] = (payload, options) => {
    const timeoutMillis = timeoutOf(options, requestTimeoutMillis)
    if (typeof timeoutMillis !== "number") return Effect.fail(timeoutMillis)
    return Effect.withFiberRuntime<unknown, RequestError>((caller) =>
      Effect.async<unknown, RequestError>((resume) => {
        const refused = refusal()
        if (refused !== undefined) return resume(Exit.fail(refused))
        if (timeoutMillis <= 0) return resume(Exit.fail(table.timeoutError("task", "(not sent)", timeoutMillis)))
        const id = String(table.nextId())
        let line: string
        try {
          line = Message.encodeTask(id, payload)
        } catch (error) {
          return resume(Exit.fail(
            new ProtocolError({
              agent: name,
              reason: "unencodable",
              detail: `payload cannot be sent as JSON: ${error}`
            })
          ))
        }
        // A UTF-16 unit is at most 3 UTF-8 bytes: count the bytes only when the length alone cannot tell.
        if (line.length * 3 > config.maxMessageBytes && Buffer.byteLength(line) > config.maxMessageBytes) {
          return resume(Exit.fail(
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
        Spans.requestNumbered(caller, id)
        table.register(caller, id, line, "task", timeoutMillis, resume)
      })
    )
  }

  // Sends a ping with its timeout, or answers its refusal at once (the process exited, or is stopping).
  const sendPing = (
    caller: Fiber.RuntimeFiber<unknown, unknown> | undefined,
    timeoutMillis: number,
    resume: Resume
  ) => {
    const refused = refusal()
    if (refused !== undefined) return resume(Exit.fail(refused))
    const id = `ping-${table.nextId()}`
    table.register(caller, id, Message.encodePing(id), "ping", timeoutMillis, resume)
  }

  const ping: Calls["ping"] = (options) =>
    Effect.suspend(() => {
      const timeoutMillis = timeoutOf(options, pingTimeoutMillis)
      if (typeof timeoutMillis !== "number") return Effect.fail(timeoutMillis)
      const sentAt = performance.now()
      return Effect.withFiberRuntime<unknown, RequestError>((caller) =>
        Effect.async<unknown, RequestError>((resume) => sendPing(caller, timeoutMillis, resume))
      ).pipe(Effect.map((result) => pongOf(result, sentAt)))
    })

  const pingWith: Calls["pingWith"] = (done) => {
    const sentAt = performance.now()
    sendPing(undefined, pingTimeoutMillis, (exit) => done(Exit.map(exit, (result) => pongOf(result, sentAt))))
  }

  return { request, ping, pingWith }
}

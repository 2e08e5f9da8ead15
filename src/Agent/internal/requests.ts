/**
 * The requests of one incarnation: correlation by id, the `maxInFlight` window, timeouts and refusals, all
 * without a fiber per request.
 *
 * Node's event handlers and the callers run on one JS thread and each access is a synchronous step, so plain
 * structures are safe here, and they keep the per-message path light: a request costs one entry in a map, its
 * caller's record (`callers.ts`) and one key in the deadline buckets.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import {
  AgentCrashError,
  AgentStoppedError,
  AgentStreamError,
  AgentTimeoutError,
  type ProtocolError,
  type RequestError
} from "../../Errors.js"
import * as AgentMetrics from "../../internal/metrics/instruments.js"
import * as Message from "../../Protocol/Message.js"
import * as Callers from "./callers.js"
import * as Deadlines from "./deadlines.js"
import type * as Outbox from "./outbox.js"
import * as Streams from "./streams.js"

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
export interface Pending extends Callers.Waiting {
  readonly resume: Resume
  readonly id: string
  /**
   * The caller's fiber (`callers.ts`), so that a caller that is interrupted (and so ends, or asks
   * again) cancels its request; none for a callback's request (it is settled by its answer, its timeout or the end
   * of the process) or a stream's (its consumer leaves through the function `registerStream` returns).
   *
   * Told through the fiber rather than by a canceler returned to `Effect.async`: a canceler makes Effect wrap
   * every request in an uninterruptible region with an exit handler, which costs about 3 µs per request, as much
   * as the rest of the round trip. A fiber waiting here can only leave by our answer or by interruption, so its end
   * (or its next request) is the signal: the request is forgotten and the agent told to stop working on it.
   */
  caller: Callers.Caller | undefined
  /** Forgets and cancels this request: its caller left (one function per table, not a closure per request). */
  readonly onCallerLeft: (waiting: Callers.Waiting) => void
  readonly limited: boolean
  readonly operation: Operation
  readonly timeoutMillis: number
  /** A streaming task's chunks and idle timeout; `undefined` for every other request, which pays nothing for it. */
  readonly stream: Streams.Sink | undefined
  sent: boolean
  bucket: number
  /** The request's latest checkpoint (protocol 1.1, `checkpoint` with its id); `undefined` while it sent none. */
  checkpoint: unknown
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
   * once, by an answer, a timeout, a failure of all, or never if the caller ends (or asks again) first (its request is then
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
   * Registers a streaming task (see `register`): its answer, and its failures, go to `sink.finish`; its chunks to
   * `sink.push` (see {@link Table.chunk}). Returns the function that forgets it and cancels it when its consumer
   * leaves first.
   */
  readonly registerStream: (id: string, line: string, timeoutMillis: number, sink: Streams.Sink) => () => void
  /**
   * Registers a ping answered to `resume` (see `register`) whose timeout its caller keeps: it gets no deadline
   * here. Returns the function that times it out as its deadline would (the agent is told to drop it, `resume`
   * gets `AgentTimeoutError` for `timeoutMillis`); it does nothing once the ping was settled. A heartbeat keeps its
   * pings' timeouts on the ticker it beats on: a deadline here cost a bucket per beat that lived as long as the
   * timeout, then a sweep.
   */
  readonly registerPing: (id: string, line: string, timeoutMillis: number, resume: Resume) => () => void
  /**
   * Takes the request that a line of the agent answers out of the table, freeing its slot; `undefined` when no
   * sent request has this id (it timed out, its caller left, or it was never sent). The caller resumes it.
   */
  readonly answer: (id: string) => Pending | undefined
  /**
   * Hands a chunk to its streaming request: `"late"` when no sent request has this id (it ended, or was cancelled),
   * `"unasked"` when the request was not sent as a stream. Past the sink's bound, the request fails with
   * `AgentStreamError` and is cancelled.
   */
  readonly chunk: (id: string, data: unknown) => "ok" | "late" | "unasked"
  /**
   * Fails the streaming request `id` with `error` and cancels it (a chunk of it could not be read); false when no
   * sent request has this id, or it was not sent as a stream.
   */
  readonly failStream: (id: string, error: ProtocolError) => boolean
  /** Keeps a request's checkpoint while it is in flight; false when no sent request has this id. */
  readonly checkpoint: (id: string, data: unknown) => boolean
  /** The checkpoints of the requests in flight, by id; `undefined` when none has one. */
  readonly checkpoints: () => Record<string, unknown> | undefined
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

/** The checkpoints of the sent requests among `entries` that have one, by id; `undefined` when none has. */
const checkpointsOf = (entries: Iterable<Pending>): Record<string, unknown> | undefined => {
  let saved: Record<string, unknown> | undefined
  for (const entry of entries) {
    if (entry.sent && entry.checkpoint !== undefined) (saved ??= {})[entry.id] = entry.checkpoint
  }
  return saved
}

/** `Pending.bucket` of a request with no deadline in the table (a heartbeat's ping: see `registerPing`). */
const NO_DEADLINE = -1

/**
 * The last request id this process made. One sequence for every agent and incarnation (not one per table): the ids
 * of the requests a crashed incarnation had in flight, handed to the next in `restore.requests`, are never those
 * of the next one's own requests (protocol 1.1 checkpoints).
 */
let lastId = 0

/**
 * The requests of a table by id. A heartbeat's ping (a callback's: no caller, no slot) is kept out of the Map: a
 * set and a delete a beat made the long-lived Map reallocate its table, which then lived as long as the Map
 * (old-generation garbage every beat).
 */
const makeEntries = () => {
  const pending = new Map<string, Pending>()
  let ping: Pending | undefined
  return {
    get: (id: string): Pending | undefined => ping !== undefined && ping.id === id ? ping : pending.get(id),
    /** `callback`: a request with no caller's fiber, nor a stream's consumer (a heartbeat's ping is one). */
    put: (entry: Pending, callback: boolean) => {
      if (ping === undefined && entry.operation === "ping" && callback) ping = entry
      else pending.set(entry.id, entry)
    },
    remove: (entry: Pending) => {
      if (ping === entry) ping = undefined
      else pending.delete(entry.id)
    },
    /** A copy of them all (the heartbeat's ping first). */
    entries: (): Array<Pending> => ping === undefined ? [...pending.values()] : [ping, ...pending.values()],
    size: () => pending.size + (ping === undefined ? 0 : 1)
  }
}

/** An empty table; `close` it with the owner's scope. @internal */
export const makeTable = (options: TableOptions): Table => {
  const { agent, clock, maxInFlight, outbox, pid } = options
  const meter = options.meter ?? AgentMetrics.noMeter
  const { entries, get, put, remove, size } = makeEntries()
  const waiting: Array<readonly [id: string, line: string]> = []
  let inFlight = 0

  const timeoutError = (operation: Operation, requestId: string, timeoutMillis: number) =>
    new AgentTimeoutError({ agent, requestId, operation, timeoutMillis, pid })
  const cancel = (id: string) => {
    if (!options.exited() && outbox.size() < MAX_QUEUED_CANCELS) outbox.send(Message.encodeCancel(id))
  }
  const dispatch = (entry: Pending, line: string) => {
    entry.sent = true
    // A stream's idle time counts from its writing, not from a wait for a slot.
    if (entry.stream !== undefined) entry.stream.lastActivity = clock.unsafeCurrentTimeMillis()
    if (entry.limited) {
      inFlight++
      meter.inFlight(1)
    }
    outbox.send(line)
  }
  /** Forgets a request: its deadline, its caller's wait, and its slot in the window (the next may go). */
  const settle = (entry: Pending) => {
    remove(entry)
    if (entry.bucket !== NO_DEADLINE) deadlines.remove(entry.id, entry.bucket)
    if (entry.caller !== undefined) Callers.settled(entry.caller, entry)
    if (entry.sent && entry.limited) {
      inFlight--
      meter.inFlight(-1)
      while (inFlight < maxInFlight && waiting.length > 0) {
        const [nextId, line] = waiting.shift()!
        const next = get(nextId)
        if (next !== undefined) dispatch(next, line)
      }
    }
  }
  const expire = (id: string) => {
    const entry = get(id)
    if (entry === undefined) return
    const error = entry.stream !== undefined && entry.stream.idleMillis > 0
      ? streamExpiry(entry, entry.stream)
      : timeoutError(entry.operation, id, entry.timeoutMillis)
    if (error === undefined) return
    settle(entry)
    if (entry.sent) cancel(id)
    entry.resume(Exit.fail(error))
  }
  /** A stream with an idle timeout at its deadline: its error, or `undefined` when it goes on (`Streams.expiry`). */
  const streamExpiry = (entry: Pending, sink: Streams.Sink): AgentTimeoutError | undefined => {
    const next = Streams.expiry(sink, entry.sent, clock.unsafeCurrentTimeMillis())
    if (typeof next === "number") {
      entry.bucket = deadlines.add(entry.id, next)
      return undefined
    }
    const idle = next !== "total"
    const timeoutMillis = idle ? sink.idleMillis : entry.timeoutMillis
    const facts = { agent, requestId: entry.id, operation: "task" as const, timeoutMillis, pid }
    return new AgentTimeoutError(idle ? { ...facts, idle } : facts)
  }
  // One expiry function for all requests: no closure per request for its deadline.
  const deadlines = Deadlines.make(clock, expire, options.resolution)

  const register: Table["register"] = (caller, id, line, operation, timeoutMillis, resume) =>
    void create(caller, id, line, operation, timeoutMillis, resume, undefined, true)
  const registerPing: Table["registerPing"] = (id, line, timeoutMillis, resume) => {
    create(undefined, id, line, "ping", timeoutMillis, resume, undefined, false)
    return () => expire(id)
  }
  const registerStream: Table["registerStream"] = (id, line, timeoutMillis, sink) => {
    const now = clock.unsafeCurrentTimeMillis()
    sink.deadline = now + timeoutMillis
    sink.lastActivity = now
    const entry = create(undefined, id, line, "task", timeoutMillis, sink.finish, sink, true)
    return () => callerLeft(entry)
  }
  /** The caller of `waiting` (a request of this table) left before its answer: it is forgotten and cancelled. */
  const callerLeft = (waiting: Callers.Waiting) => {
    const entry = waiting as Pending
    if (get(entry.id) !== entry) return
    settle(entry)
    if (entry.limited) meter.interrupted()
    if (entry.sent) cancel(entry.id)
  }
  const create = (
    caller: Fiber.RuntimeFiber<unknown, unknown> | undefined,
    id: string,
    line: string,
    operation: Operation,
    timeoutMillis: number,
    resume: Resume,
    stream: Streams.Sink | undefined,
    timed: boolean
  ): Pending => {
    const limited = operation === "task"
    const entry: Pending = {
      id,
      resume,
      caller: undefined,
      onCallerLeft: callerLeft,
      limited,
      operation,
      timeoutMillis,
      stream,
      sent: false,
      bucket: NO_DEADLINE,
      checkpoint: undefined
    }
    put(entry, caller === undefined && stream === undefined)
    if (timed) {
      const deadline = clock.unsafeCurrentTimeMillis() + timeoutMillis
      entry.bucket = deadlines.add(
        id,
        stream !== undefined && stream.idleMillis > 0
          ? Math.min(deadline, stream.lastActivity + stream.idleMillis)
          : deadline
      )
    }
    if (caller !== undefined) {
      entry.caller = Callers.wait(caller, entry)
      // The caller had ended: the request is forgotten already, and must not be sent.
      if (get(id) !== entry) return entry
    }
    if (!limited || inFlight < maxInFlight) dispatch(entry, line)
    else waiting.push([id, line])
    return entry
  }

  const answer = (id: string): Pending | undefined => {
    const entry = get(id)
    if (entry === undefined || !entry.sent) return undefined
    settle(entry)
    return entry
  }

  const chunk: Table["chunk"] = (id, data) => {
    const entry = get(id)
    if (entry === undefined || !entry.sent) return "late"
    const sink = entry.stream
    if (sink === undefined) return "unasked"
    if (sink.idleMillis > 0) sink.lastActivity = clock.unsafeCurrentTimeMillis()
    if (!sink.push(data)) {
      failStream(
        id,
        new AgentStreamError({ agent, requestId: id, reason: "overflow", maxBufferedChunks: sink.maxBuffered, pid })
      )
    }
    return "ok"
  }

  const failStream = (id: string, error: ProtocolError | AgentStreamError): boolean => {
    const entry = get(id)
    if (entry?.stream === undefined || !entry.sent) return false
    settle(entry)
    cancel(id)
    entry.stream.finish(Exit.fail(error))
    return true
  }

  const checkpoint: Table["checkpoint"] = (id, data) => {
    const entry = get(id)
    if (entry === undefined || !entry.sent) return false
    entry.checkpoint = data
    return true
  }

  const failAll = (error: EndError) => {
    // Emptied first, so that settling one frees no slot for the next.
    waiting.length = 0
    for (const entry of entries()) {
      settle(entry)
      // Never written (it waited for a slot): a refusal, which its owner may route to the next incarnation.
      entry.resume(Exit.fail(entry.sent ? error : refusalOf(error)))
    }
  }

  const cancelSent = () => {
    for (const entry of entries()) if (entry.sent) cancel(entry.id)
  }
  const unsent = () => entries().filter((entry) => !entry.sent).length

  return {
    register,
    registerStream,
    registerPing,
    answer,
    chunk,
    failStream,
    checkpoint,
    checkpoints: () => checkpointsOf(entries()),
    failAll,
    cancelSent,
    nextId: () => ++lastId,
    inFlight: () => inFlight,
    unsent,
    size,
    timeoutError,
    close: deadlines.close
  }
}

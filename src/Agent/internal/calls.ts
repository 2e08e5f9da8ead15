/**
 * The calls of one incarnation: a task (`request`, the hot path), a streaming task (`requestStream`, protocol 1.1),
 * and a ping (as an `Effect`, or with a callback for the heartbeat). Each is registered in the request table
 * (`requests.ts`), which answers it.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { ConfigError, ProtocolError, type RequestError } from "../../Errors.js"
import { unsafeCurrentFiber } from "../../internal/currentFiber.js"
import type { DurationInput } from "../../internal/durationText.js"
import * as Spans from "../../internal/metrics/spans.js"
import * as Edge from "../../internal/schema.js"
import { messageOf } from "../../internal/standalone/messageOf.js"
import * as Message from "../../Protocol/Message.js"
import type * as AgentSupervisor from "../AgentSupervisor.js"
import * as Config from "../Config.js"
import type * as AgentProcess from "../Process.js"
import * as StreamEvent from "../StreamEvent.js"
import type * as Requests from "./requests.js"
import * as Streams from "./streams.js"

/**
 * How many chunks of one streaming request may wait for a slow consumer by default.
 *
 * @internal
 */
export const DEFAULT_MAX_BUFFERED_CHUNKS = 1024

/**
 * A per-call `timeout` (or `idleTimeout`) in milliseconds, or the `ConfigError` of a bad one (a call never throws):
 * it must be longer than 0. The one decoder of per-call timeouts: `handleEvent`, `handleEventStream`, a pool's
 * and `Supervisor.call`'s, `request` and `ping` on one incarnation.
 *
 * @internal
 */
export const timeoutMillisOf = (timeout: DurationInput, field = "timeout"): number | ConfigError =>
  Either.match(Config.decodeTimeout(field, timeout), { onLeft: (error) => error, onRight: Duration.toMillis })

/**
 * A per-call `maxBufferedChunks`, or the `ConfigError` of a bad one.
 *
 * @internal
 */
export const maxBufferedOf = (value: number | undefined): number | ConfigError =>
  value === undefined
    ? DEFAULT_MAX_BUFFERED_CHUNKS
    : Number.isSafeInteger(value) && value >= 1
    ? value
    : new ConfigError({ field: "maxBufferedChunks", rule: "must be a whole number of 1 or more", value: String(value) })

/** What the calls need: the settings, the table, and whether the process takes requests at all. @internal */
export interface CallsOptions {
  readonly config: Config.AgentConfig
  readonly table: Requests.Table
  /** Why a new request is refused at once (the process exited, or is being stopped), if it is. */
  readonly refusal: () => RequestError | undefined
  /** Counts the tasks sent. */
  readonly counters: { requests: number }
  /** Whether the agent announced `stream` in its `ready` (known once it is ready). */
  readonly streams: () => boolean
}

/** The ways to ask an agent: a task, a streaming task, and a ping (as an `Effect`, or with a callback). @internal */
export interface Calls {
  readonly request: AgentProcess.AgentProcess["request"]
  readonly requestStream: AgentProcess.AgentProcess["requestStream"]
  readonly ping: AgentProcess.AgentProcess["ping"]
  /**
   * A ping answered to `done` exactly once (in Node's handler of the answer or of the exit, in the caller's call
   * of the function returned, at once when refused), with no fiber: a heartbeat's beat. Its timeout is the
   * caller's to keep: the function returned times it out (`AgentTimeoutError` for the configuration's
   * `pingTimeout`); `undefined` when it was refused. It never throws.
   */
  readonly pingWith: (
    done: (exit: Exit.Exit<AgentProcess.PingResult, RequestError>) => void
  ) => (() => void) | undefined
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

/**
 * The `ConfigError` of the keys of a call's `options` that are not `known` (a misspelt `timout` would otherwise be
 * dropped without a word), or `undefined`. A loop over the keys, nothing made, when all are known (every call).
 *
 * @internal
 */
export const unknownOptions = (
  options: unknown,
  known: ReadonlyArray<string>,
  elsewhere?: Readonly<Record<string, string>>
): ConfigError | undefined => {
  if (options === undefined) return undefined
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    return new ConfigError({
      field: "(options)",
      rule: `must be an object of options (${known.join(", ")})`,
      value: Edge.show(options) ?? String(options)
    })
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key) && (options as Record<string, unknown>)[key] !== undefined) {
      return Edge.unknownKeysError(options, known, undefined, elsewhere)
    }
  }
  return undefined
}

/**
 * A call's timeout in milliseconds (`fallback` when `options` gives none); or the `ConfigError` of a bad one, or of
 * a key of `options` that is not `known` (see {@link unknownOptions}). For every kind of call: a process's, a
 * supervised agent's, a pool's.
 *
 * @internal
 */
export const callTimeoutMillis = (
  options: { readonly timeout?: DurationInput | undefined } | undefined,
  fallback: number,
  known: ReadonlyArray<string>,
  elsewhere?: Readonly<Record<string, string>>
): number | ConfigError =>
  unknownOptions(options, known, elsewhere) ??
    (options?.timeout === undefined ? fallback : timeoutMillisOf(options.timeout))

/** The keys of `handleEvent`'s options (a supervised agent's, a tree's `call`, a pool's). @internal */
export const HANDLE_OPTIONS = Edge.allKeysOf<AgentSupervisor.HandleOptions>()([
  "timeout",
  "replayOnCrash",
  "idempotencyKey"
])

/** The keys of `handleEventStream`'s options, and what the others of `handleEvent` are not. @internal */
export const HANDLE_STREAM_OPTIONS = Edge.allKeysOf<AgentSupervisor.HandleStreamOptions>()([
  "timeout",
  "idleTimeout",
  "maxBufferedChunks",
  "idempotencyKey"
])
/** @internal */
export const NOT_FOR_STREAMS: Readonly<Record<string, string>> = {
  replayOnCrash: "is handleEvent's, not a streaming call's: a stream is not replayed after a crash (its chunks " +
    "may have been delivered already)"
}

/** The keys of a call's options (`request`, `ping`), and of a streaming one's. */
const REQUEST_OPTIONS = Edge.allKeysOf<AgentProcess.RequestOptions>()(["timeout", "idempotencyKey"])
const STREAM_OPTIONS = Edge.allKeysOf<AgentProcess.StreamOptions>()([
  "timeout",
  "idempotencyKey",
  "idleTimeout",
  "maxBufferedChunks"
])

/** The requests callers make: `request` is the hot path, one `Effect.async` per call and no wrapper. @internal */
export const makeCalls = ({ config, counters, refusal, streams, table }: CallsOptions): Calls => {
  const name = config.name
  const requestTimeoutMillis = Duration.toMillis(config.requestTimeout)
  const pingTimeoutMillis = Duration.toMillis(config.pingTimeout)
  const timeoutOf = (
    options: AgentProcess.RequestOptions | undefined,
    fallback: number,
    known: ReadonlyArray<string> = REQUEST_OPTIONS
  ): number | ConfigError => callTimeoutMillis(options, fallback, known)

  /** The task's line, or why it cannot be sent: its payload is not JSON, or the line is too long. */
  const lineOf = (
    id: string,
    payload: unknown,
    encode: typeof Message.encodeTask,
    key: string | undefined
  ): string | ProtocolError => {
    let line: string
    try {
      line = encode(id, payload, key)
    } catch (error) {
      return new ProtocolError({
        agent: name,
        reason: "unencodable",
        detail: `payload cannot be sent as JSON: ${messageOf(error)}`
      })
    }
    // A UTF-16 unit is at most 3 UTF-8 bytes: count the bytes only when the length alone cannot tell.
    if (line.length * 3 > config.maxMessageBytes && Buffer.byteLength(line) > config.maxMessageBytes) {
      return new ProtocolError({
        agent: name,
        reason: "too_long",
        detail: `the encoded task is ${Buffer.byteLength(line)} bytes, over maxMessageBytes (${config.maxMessageBytes})`
      })
    }
    return line
  }

  const request: Calls["request"] = (payload, options) => {
    const timeoutMillis = timeoutOf(options, requestTimeoutMillis)
    if (typeof timeoutMillis !== "number") return Effect.fail(timeoutMillis)
    return Effect.async<unknown, RequestError>((resume) => {
      const refused = refusal()
      if (refused !== undefined) return resume(Exit.fail(refused))
      if (timeoutMillis <= 0) return resume(Exit.fail(table.timeoutError("task", "(not sent)", timeoutMillis)))
      const id = String(table.nextId())
      const line = lineOf(id, payload, Message.encodeTask, options?.idempotencyKey)
      if (typeof line !== "string") return resume(Exit.fail(line))
      counters.requests++
      // The register runs in the caller's fiber: its observer cancels the request if the caller is interrupted.
      const caller = unsafeCurrentFiber()
      if (caller !== undefined) Spans.requestNumbered(caller, id)
      table.register(caller, id, line, "task", timeoutMillis, resume)
    })
  }

  /**
   * Registers a streaming task when its stream starts, and forgets (and cancels) it when the stream's scope closes
   * before its end: its consumer stopped early, or was interrupted.
   */
  const openStream = (payload: unknown, timeoutMillis: number, idleMillis: number, maxBuffered: number) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const sink = Streams.make(maxBuffered, idleMillis)
        const refused = refusal()
        if (refused !== undefined) return failed(sink, refused)
        if (timeoutMillis <= 0) return failed(sink, table.timeoutError("task", "(not sent)", timeoutMillis))
        const id = String(table.nextId())
        const line = lineOf(id, payload, Message.encodeStreamTask, undefined)
        if (typeof line !== "string") return failed(sink, line)
        counters.requests++
        sink.abandon = table.registerStream(id, line, timeoutMillis, sink)
        return sink
      }),
      (sink) => Effect.sync(sink.close)
    )

  const requestStream: Calls["requestStream"] = (payload, options) => {
    const timeoutMillis = timeoutOf(options, requestTimeoutMillis, STREAM_OPTIONS)
    if (typeof timeoutMillis !== "number") return Stream.fail(timeoutMillis)
    // Checked for every agent, so that a bad option is an error whatever the agent speaks.
    const idleMillis = options?.idleTimeout === undefined ? 0 : timeoutMillisOf(options.idleTimeout, "idleTimeout")
    if (typeof idleMillis !== "number") return Stream.fail(idleMillis)
    const maxBuffered = maxBufferedOf(options?.maxBufferedChunks)
    if (typeof maxBuffered !== "number") return Stream.fail(maxBuffered)
    // An agent without `stream` gets a plain task: its stream is the one result (no idle timeout, no chunks).
    if (!streams()) return Stream.map(Stream.fromEffect(request(payload, { timeout: timeoutMillis })), StreamEvent.done)
    return Stream.fromPull(
      Effect.map(openStream(payload, timeoutMillis, Math.max(0, idleMillis), maxBuffered), (sink) => sink.pull)
    )
  }

  // Sends a ping by `register` (its id and line), or answers its refusal at once (the process exited, or is stopping).
  const sendPing = <A>(resume: Requests.Resume, register: (id: string, line: string) => A): A | undefined => {
    const refused = refusal()
    if (refused !== undefined) {
      resume(Exit.fail(refused))
      return undefined
    }
    const id = `ping-${table.nextId()}`
    return register(id, Message.encodePing(id))
  }

  const ping: Calls["ping"] = (options) =>
    Effect.suspend(() => {
      const timeoutMillis = timeoutOf(options, pingTimeoutMillis)
      if (typeof timeoutMillis !== "number") return Effect.fail(timeoutMillis)
      const sentAt = performance.now()
      return Effect.async<unknown, RequestError>((resume) =>
        void sendPing(
          resume,
          (id, line) => table.register(unsafeCurrentFiber(), id, line, "ping", timeoutMillis, resume)
        )
      ).pipe(Effect.map((result) => pongOf(result, sentAt)))
    })

  const pingWith: Calls["pingWith"] = (done) => {
    const sentAt = performance.now()
    // A failure carries no value: the same `Exit` serves.
    const resume: Requests.Resume = (exit) =>
      done(Exit.isSuccess(exit) ? Exit.succeed(pongOf(exit.value, sentAt)) : exit as Exit.Exit<never, RequestError>)
    return sendPing(resume, (id, line) => table.registerPing(id, line, pingTimeoutMillis, resume))
  }

  return { request, requestStream, ping, pingWith }
}

/** A sink that ends at once with `error`: the stream fails before anything was sent. */
const failed = (sink: Streams.Sink, error: RequestError): Streams.Sink => {
  sink.finish(Exit.fail(error))
  return sink
}

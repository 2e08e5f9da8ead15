/**
 * The consumer's side of one streaming request (protocol 1.1 `stream`): the chunks that wait for it, bounded, and
 * the end (the final result, or the failure that ends the stream after the chunks already buffered).
 *
 * Fed synchronously from the stdout reader through the request table (`requests.ts`); read by the stream's pull, one
 * `Effect.async` per wait that hands over every chunk waiting at once. A non-streaming request has no sink: the
 * table's entry holds `undefined`, and nothing here runs for it.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { StreamRequestError } from "../../Errors.js"
import * as StreamEvent from "../StreamEvent.js"

/** The next events for the consumer, the end of the stream (`None`), or its failure. @internal */
export type Pull = Effect.Effect<Chunk.Chunk<StreamEvent.StreamEvent>, Option.Option<StreamRequestError>>

const END: Pull = Effect.fail(Option.none())

/** One streaming request's buffer and end. @internal */
export interface Sink {
  /** At most this many chunks wait for the consumer; one more fails the stream (`AgentStreamError`). */
  readonly maxBuffered: number
  /** The longest quiet spell (no chunk, no response) in milliseconds; 0 for none. */
  readonly idleMillis: number
  /** The total deadline, in the table's `Clock` milliseconds (set when the request is registered). */
  deadline: number
  /** When the request was written or its last chunk came, in `Clock` milliseconds (kept with an idle timeout). */
  lastActivity: number
  /** Adds a chunk; false when `maxBuffered` chunks already wait (the table then fails the stream). */
  readonly push: (data: unknown) => boolean
  /** Ends the stream, once: the final result, or the error (after the chunks buffered). Later calls are ignored. */
  readonly finish: (exit: Exit.Exit<unknown, StreamRequestError>) => void
  /** The consumer's pull (see {@link Pull}). */
  readonly pull: Pull
  /** The consumer is gone (its stream's scope closed): forget the buffer, and the request if it is still on. */
  readonly close: () => void
  /** Forgets the request in its table and cancels it if still in flight; set once it is registered. */
  abandon: () => void
}

/**
 * A streaming request with an idle timeout has one deadline in its table, the earlier of its total and its idle
 * one, moved lazily: a chunk only notes its time (`lastActivity`), and when the deadline comes, a stream that was
 * not quiet for its whole idle timeout gets a later one (no deadline churn per chunk). This says which: `"total"`,
 * `"idle"`, or the later deadline. A request waiting for a slot is not idle (its time counts from its writing).
 *
 * @internal
 */
export const expiry = (sink: Sink, sent: boolean, now: number): "total" | "idle" | number => {
  if (now >= sink.deadline) return "total"
  const quietUntil = (sent ? sink.lastActivity : now) + sink.idleMillis
  return quietUntil > now ? Math.min(sink.deadline, quietUntil) : "idle"
}

/** An empty sink. @internal */
export const make = (maxBuffered: number, idleMillis: number): Sink => {
  let buffer: Array<StreamEvent.StreamEvent> = []
  let end: Exit.Exit<unknown, StreamRequestError> | undefined
  // The end has been handed to the consumer: every later pull ends the stream.
  let delivered = false
  let waiter: ((pull: Pull) => void) | undefined

  const next = (): Pull | undefined => {
    if (buffer.length > 0) {
      const events = buffer
      buffer = []
      if (end !== undefined && Exit.isSuccess(end)) {
        events.push(StreamEvent.done(end.value))
        delivered = true
      }
      return Effect.succeed(Chunk.unsafeFromArray(events))
    }
    if (end === undefined) return undefined
    if (delivered) return END
    delivered = true
    return Exit.isSuccess(end)
      ? Effect.succeed(Chunk.of(StreamEvent.done(end.value)))
      : Effect.failCause(Cause.map(end.cause, Option.some))
  }

  const wake = () => {
    if (waiter === undefined) return
    const pull = next()
    if (pull === undefined) return
    const resume = waiter
    waiter = undefined
    resume(pull)
  }

  const sink: Sink = {
    maxBuffered,
    idleMillis,
    deadline: Infinity,
    lastActivity: 0,
    push: (data) => {
      if (end !== undefined) return true
      if (buffer.length >= maxBuffered) return false
      buffer.push(StreamEvent.chunk(data))
      wake()
      return true
    },
    finish: (exit) => {
      if (end !== undefined) return
      end = exit
      wake()
    },
    pull: Effect.async<Chunk.Chunk<StreamEvent.StreamEvent>, Option.Option<StreamRequestError>>((resume) => {
      const pull = next()
      if (pull !== undefined) resume(pull)
      else waiter = resume
    }),
    close: () => {
      waiter = undefined
      buffer = []
      if (end === undefined) {
        end = Exit.void
        delivered = true
      }
      sink.abandon()
    },
    abandon: () => {}
  }
  return sink
}

/**
 * What a streaming request yields (protocol 1.1 `stream`: `AgentProcess.requestStream`,
 * `AgentSupervisor.handleEventStream`, `Supervisor.callStream`): a `Stream` of events, each chunk the agent sent in
 * order, then one `Done` with the final result; the stream ends after it. A failure (the agent's error response,
 * a crash, a timeout, an overflow) ends the stream after the chunks already delivered.
 *
 * An agent that did not announce `stream` (a v1 agent) is sent a plain task: its stream is the one `Done`.
 *
 * @since 0.1.0
 * @example
 * ```ts
 * // Print tokens as they come, then use the result.
 * const result = yield* agent.handleEventStream({ prompt: "Hello" }).pipe(
 *   StreamEvent.runForEach((token) => Console.log(token))
 * )
 * ```
 */
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/**
 * One chunk the agent sent (its `data`, any JSON value).
 *
 * @since 0.1.0
 * @category models
 */
export interface Chunk {
  readonly _tag: "Chunk"
  readonly data: unknown
}

/**
 * The final response's result: the last event of a stream that succeeded.
 *
 * @since 0.1.0
 * @category models
 */
export interface Done {
  readonly _tag: "Done"
  readonly result: unknown
}

/**
 * A chunk, or the final result.
 *
 * @since 0.1.0
 * @category models
 */
export type StreamEvent = Chunk | Done

/**
 * @since 0.1.0
 * @category constructors
 */
export const chunk = (data: unknown): Chunk => ({ _tag: "Chunk", data })

/**
 * @since 0.1.0
 * @category constructors
 */
export const done = (result: unknown): Done => ({ _tag: "Done", result })

/**
 * @since 0.1.0
 * @category refinements
 */
export const isChunk = (event: StreamEvent): event is Chunk => event._tag === "Chunk"

/**
 * @since 0.1.0
 * @category refinements
 */
export const isDone = (event: StreamEvent): event is Done => event._tag === "Done"

/**
 * Runs a stream of events: `f` for each chunk's data as it arrives (the next waits for it), and the final result.
 * A stream that ended without its `Done` (cut short by the caller, with `Stream.take` say) gives `undefined`.
 *
 * @since 0.1.0
 * @category running
 */
export const runForEach: {
  <E2, R2>(
    f: (data: unknown) => Effect.Effect<unknown, E2, R2>
  ): <E, R>(self: Stream.Stream<StreamEvent, E, R>) => Effect.Effect<unknown, E | E2, R | R2>
  <E, R, E2, R2>(
    self: Stream.Stream<StreamEvent, E, R>,
    f: (data: unknown) => Effect.Effect<unknown, E2, R2>
  ): Effect.Effect<unknown, E | E2, R | R2>
} = dual(
  2,
  <E, R, E2, R2>(
    self: Stream.Stream<StreamEvent, E, R>,
    f: (data: unknown) => Effect.Effect<unknown, E2, R2>
  ): Effect.Effect<unknown, E | E2, R | R2> =>
    Stream.runFoldEffect(
      self,
      undefined as unknown,
      (result, event) => event._tag === "Chunk" ? Effect.as(f(event.data), result) : Effect.succeed(event.result)
    )
)

/**
 * The chunks' data alone, the result left out.
 *
 * @since 0.1.0
 * @category combinators
 */
export const chunks = <E, R>(self: Stream.Stream<StreamEvent, E, R>): Stream.Stream<unknown, E, R> =>
  Stream.filterMap(self, (event) => event._tag === "Chunk" ? Option.some(event.data) : Option.none())

/**
 * Every chunk's data, in order, and the result: for a caller that wants the whole answer at once.
 *
 * @since 0.1.0
 * @category running
 */
export const collect = <E, R>(
  self: Stream.Stream<StreamEvent, E, R>
): Effect.Effect<{ readonly chunks: ReadonlyArray<unknown>; readonly result: unknown }, E, R> =>
  Effect.suspend(() => {
    const data: Array<unknown> = []
    return Effect.map(runForEach(self, (d) => Effect.sync(() => data.push(d))), (result) => ({ chunks: data, result }))
  })

/**
 * Protocol 1.1 `stream` on one incarnation (`AgentProcess.requestStream`), against a raw 1.1 agent written by hand
 * (`fixtures/agents/streaming.mjs`), and the v1 fallback against the raw v1 agent (`agent.mjs`).
 *
 * Synchronisation: what the agent was told (a cancel) is read back from its next answer, which it writes after
 * handling every line before it (stdin is one ordered pipe); chunks the test waits for come through Deferreds.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import * as StreamEvent from "../../src/Agent/StreamEvent.js"
import * as Metrics from "../../src/Metrics.js"
import * as Supervisor from "../../src/Supervisor.js"
import { agentConfig, failureOf, fixture, takeUntil, TestLive } from "../support.js"

/** The raw 1.1 agent announcing `features` ("none": a v1 `ready`). */
export const streamingConfig = (
  features = "stream,checkpoint",
  overrides: Partial<Parameters<typeof agentConfig>[1]> = {}
) => ({
  ...agentConfig("streaming"),
  name: "streaming",
  args: [fixture("agents", "streaming.mjs"), features],
  ...overrides
})

/** What the agent has been told to cancel so far: read from its next answer (it handles its stdin in order). */
const cancelledSoFar = (agent: AgentProcess.AgentProcess) =>
  Effect.map(agent.request({}), (result) => (result as { cancelled: Array<string> }).cancelled)

/**
 * Asks the agent until it has been told to cancel `count` requests: for a cancel the supervisor sends on something
 * it reads (an overflow), which a first question may overtake. Each round is a round trip, no sleep.
 */
const cancelsReach = (agent: AgentProcess.AgentProcess, count: number) =>
  Effect.gen(function*() {
    while (true) {
      const cancelled = yield* cancelledSoFar(agent)
      if (cancelled.length >= count) return cancelled
    }
  })

const dataOf = (events: Chunk.Chunk<StreamEvent.StreamEvent>) =>
  Chunk.toArray(events).map((event) => event._tag === "Chunk" ? event.data : { done: event.result })

describe.sequential("AgentProcess.requestStream", () => {
  it.scopedLive("chunks in order, then the result; the task is sent with stream: true", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      assert.deepStrictEqual(agent.features, ["stream", "checkpoint"])
      const events = yield* Stream.runCollect(agent.requestStream({ chunks: ["Hel", "lo", { n: 3 }], result: "end" }))
      const all = Chunk.toArray(events)
      assert.deepStrictEqual(all.slice(0, 3), [
        StreamEvent.chunk("Hel"),
        StreamEvent.chunk("lo"),
        StreamEvent.chunk({ n: 3 })
      ])
      assert.strictEqual(all.length, 4)
      const done = all[3]
      assert.isTrue(StreamEvent.isDone(done))
      if (done._tag === "Done") assert.deepInclude(done.result, { result: "end", streamed: true })
      // runForEach: each chunk, then the result.
      const seen: Array<unknown> = []
      const result = yield* agent.requestStream({ chunks: 50 }).pipe(
        StreamEvent.runForEach((data) => Effect.sync(() => seen.push(data)))
      )
      assert.deepStrictEqual(seen, Array.from({ length: 50 }, (_, i) => i))
      assert.strictEqual((result as { result: number }).result, 50)
      const collected = yield* StreamEvent.collect(agent.requestStream({ chunks: ["a"], result: 1 }))
      assert.deepStrictEqual(collected.chunks, ["a"])
      const onlyChunks = yield* Stream.runCollect(StreamEvent.chunks(agent.requestStream({ chunks: 2 })))
      assert.deepStrictEqual(Chunk.toArray(onlyChunks), [0, 1])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("an error response after chunks fails the stream after the chunks delivered", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      const seen: Array<unknown> = []
      const exit = yield* agent.requestStream({ chunks: ["a", "b"], then: "error" }).pipe(
        StreamEvent.runForEach((data) => Effect.sync(() => seen.push(data))),
        Effect.exit
      )
      assert.deepStrictEqual(seen, ["a", "b"])
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "AgentTaskError")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a v1 agent: a plain task, and the stream is its one result, never an error", () =>
    Effect.gen(function*() {
      const v1 = yield* AgentProcess.make(agentConfig("echo"))
      assert.deepStrictEqual(v1.features, [])
      const events = yield* Stream.runCollect(v1.requestStream({ echo: { hello: "world" } }, { idleTimeout: 1 }))
      assert.deepStrictEqual(Chunk.toArray(events), [StreamEvent.done({ hello: "world" })])
      // The same raw agent announcing nothing: the task goes without stream: true, and its chunks never come.
      const plain = yield* AgentProcess.make(streamingConfig("none"))
      const result = yield* plain.requestStream({ chunks: ["x"], result: 7 }).pipe(
        StreamEvent.runForEach(() => Effect.dieMessage("a v1 agent is never asked for chunks"))
      )
      assert.deepInclude(result, { result: 7, streamed: false })
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a slow consumer: past maxBufferedChunks, AgentStreamError after the chunks buffered, and a cancel", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      const gate = yield* Deferred.make<void>()
      const seen: Array<unknown> = []
      // The consumer takes the first chunk, then waits: the agent's 200 chunks pile up behind it.
      const consumer = yield* agent.requestStream({ chunks: 200 }, { maxBufferedChunks: 10 }).pipe(
        StreamEvent.runForEach((data) => Effect.zipRight(Effect.sync(() => seen.push(data)), Deferred.await(gate))),
        Effect.exit,
        Effect.fork
      )
      // The agent hears of the overflow (its cancel), while the consumer still waits.
      const streamId = (yield* cancelsReach(agent, 1))[0]
      assert.isString(streamId, "the agent was sent a cancel")
      yield* Deferred.succeed(gate, undefined)
      const error = failureOf(yield* Fiber.join(consumer))
      assert.strictEqual(error._tag, "AgentStreamError")
      if (error._tag === "AgentStreamError") {
        assert.deepInclude(error, { reason: "overflow", maxBufferedChunks: 10, requestId: streamId })
        assert.include(error.message, "10 chunks")
      }
      // The chunks buffered before the overflow are delivered, in order: 10, or 11 with the one taken first.
      assert.include([10, 11], seen.length)
      assert.deepStrictEqual(seen, Array.from({ length: seen.length }, (_, i) => i))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a bad maxBufferedChunks or idleTimeout fails the stream with a ConfigError, nothing sent", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      const bad = failureOf(yield* Effect.exit(Stream.runDrain(agent.requestStream({}, { maxBufferedChunks: 0 }))))
      assert.strictEqual(bad._tag, "ConfigError")
      if (bad._tag === "ConfigError") assert.strictEqual(bad.field, "maxBufferedChunks")
      const idle = failureOf(
        yield* Effect.exit(Stream.runDrain(agent.requestStream({}, { idleTimeout: "soon" as never })))
      )
      if (idle._tag === "ConfigError") assert.strictEqual(idle.field, "idleTimeout")
      else assert.fail(`expected a ConfigError, got ${idle._tag}`)
      assert.strictEqual((yield* agent.stats).requests, 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a bad stream option is a ConfigError for a v1 agent too", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig("none"))
      const bad = failureOf(yield* Effect.exit(Stream.runDrain(agent.requestStream({}, { maxBufferedChunks: 0 }))))
      assert.strictEqual(bad._tag, "ConfigError")
      assert.strictEqual((yield* agent.stats).requests, 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a chunk over maxMessageBytes fails its stream and cancels it; one for a plain task is dropped", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig("stream,checkpoint", { maxMessageBytes: 2048 }))
      const error = failureOf(yield* Effect.exit(Stream.runDrain(agent.requestStream({ hugeChunk: 4096, after: 50 }))))
      assert.strictEqual(error._tag, "ProtocolError")
      assert.match(error.message, /a chunk of request \S+ is \d+ bytes, over maxMessageBytes \(2048\)/)
      assert.lengthOf(yield* cancelsReach(agent, 1), 1, "the agent was told to stop")
      // An unasked chunk for a plain task is only dropped: the task is answered.
      const answered = yield* agent.request({ hugeChunk: 4096 })
      assert.isObject(answered)
      assert.isAtLeast((yield* agent.stats).protocolErrors, 2)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a checkpoint nested past the stack's depth is dropped; the supervisor and the agent go on", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      assert.isObject(yield* agent.request({ deepCheckpoint: 200_000 }))
      assert.isAtLeast((yield* agent.stats).protocolErrors, 1)
      assert.isObject(yield* agent.request({}))
    }).pipe(Effect.provide(TestLive)))

  it.scoped("idle timeout (TestClock): AgentTimeoutError with idle, after the chunks delivered, and a cancel", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      const two = yield* Deferred.make<void>()
      const seen: Array<unknown> = []
      const consumer = yield* agent.requestStream({ chunks: ["a", "b"], then: "hang" }, { idleTimeout: "5 seconds" })
        .pipe(
          StreamEvent.runForEach((data) =>
            Effect.suspend(() => seen.push(data) === 2 ? Deferred.succeed(two, undefined) : Effect.void)
          ),
          Effect.exit,
          Effect.fork
        )
      yield* Deferred.await(two)
      yield* TestClock.adjust("4999 millis")
      assert.isTrue((yield* Fiber.poll(consumer))._tag === "None", "not before its idle timeout")
      yield* TestClock.adjust("1 millis")
      const error = failureOf(yield* Fiber.join(consumer))
      assert.strictEqual(error._tag, "AgentTimeoutError")
      if (error._tag === "AgentTimeoutError") {
        assert.deepInclude(error, { idle: true, timeoutMillis: 5000, operation: "task" })
        assert.include(error.message, "idle timeout")
      }
      assert.deepStrictEqual(seen, ["a", "b"])
      assert.strictEqual((yield* cancelledSoFar(agent)).length, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scoped("total timeout (TestClock): AgentTimeoutError of the whole stream, and a cancel", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      const one = yield* Deferred.make<void>()
      const consumer = yield* agent.requestStream({ chunks: ["a"], then: "hang" }, { timeout: "10 seconds" }).pipe(
        StreamEvent.runForEach(() => Deferred.succeed(one, undefined)),
        Effect.exit,
        Effect.fork
      )
      yield* Deferred.await(one)
      yield* TestClock.adjust("10 seconds")
      const error = failureOf(yield* Fiber.join(consumer))
      assert.strictEqual(error._tag, "AgentTimeoutError")
      if (error._tag === "AgentTimeoutError") {
        assert.deepInclude(error, { timeoutMillis: 10_000, operation: "task" })
        assert.isUndefined(error.idle)
      }
      assert.strictEqual((yield* cancelledSoFar(agent)).length, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a consumer that stops early (Stream.take) cancels the task; chunks after it are late", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      const first = yield* Stream.runCollect(
        Stream.take(agent.requestStream({ chunks: 1000, every: 5, afterCancel: 3 }), 2)
      )
      assert.deepStrictEqual(dataOf(first), [0, 1])
      // The agent answers this after the cancel, and after the 3 chunks it sends for it (stdout keeps its order).
      assert.strictEqual((yield* cancelledSoFar(agent)).length, 1)
      const stats = yield* agent.stats
      assert.isAtLeast(stats.lateChunks, 3)
      assert.strictEqual(stats.inFlight, 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("an interrupted consumer cancels the task", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      const started = yield* Deferred.make<void>()
      const consumer = yield* agent.requestStream({ chunks: 1000, every: 5 }).pipe(
        StreamEvent.runForEach(() => Deferred.succeed(started, undefined)),
        Effect.fork
      )
      yield* Deferred.await(started)
      yield* Fiber.interrupt(consumer)
      assert.strictEqual((yield* cancelledSoFar(agent)).length, 1)
      assert.strictEqual((yield* agent.stats).inFlight, 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the agent crashes mid-stream: AgentCrashError after the chunks delivered", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      const seen: Array<unknown> = []
      const exit = yield* agent.requestStream({ chunks: ["a", "b"], then: "crash" }).pipe(
        StreamEvent.runForEach((data) => Effect.sync(() => seen.push(data))),
        Effect.exit
      )
      assert.deepStrictEqual(seen, ["a", "b"])
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "AgentCrashError")
      if (error._tag === "AgentCrashError") assert.strictEqual(error.signal, "SIGKILL")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a chunk for a task not sent as a stream is a protocol error, counted; the task is answered", () =>
    Effect.gen(function*() {
      const agent = yield* AgentProcess.make(streamingConfig())
      const result = yield* agent.request({ chunks: ["x", "y"], result: 2 })
      assert.strictEqual((result as { result: number }).result, 2)
      assert.strictEqual((yield* agent.stats).protocolErrors, 2)
    }).pipe(Effect.provide(TestLive)))
})

/** How many requests of `agent` ended with `outcome`. */
const outcomes = (agent: string, outcome: string) =>
  Effect.map(
    Metric.value(Metric.tagged(Metrics.forAgent(Metrics.requests, agent), "outcome", outcome)),
    (state) => state.count
  )

describe.sequential("AgentSupervisor.handleEventStream, Supervisor.callStream", () => {
  it.scopedLive("routed to the live incarnation: chunks then the result, counted once as ok", () =>
    Effect.gen(function*() {
      const name = `stream-ok-${process.pid}`
      const agent = yield* AgentSupervisor.make(streamingConfig("stream,checkpoint", { name }))
      const seen: Array<unknown> = []
      const result = yield* agent.handleEventStream({ chunks: ["a", "b"], result: 9 }).pipe(
        StreamEvent.runForEach((data) => Effect.sync(() => seen.push(data)))
      )
      assert.deepStrictEqual(seen, ["a", "b"])
      assert.deepInclude(result, { result: 9, streamed: true })
      assert.strictEqual(yield* outcomes(name, "ok"), 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a v1 agent under supervision: the stream is its one result", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo"))
      const events = yield* Stream.runCollect(agent.handleEventStream({ echo: 42 }))
      assert.deepStrictEqual(Chunk.toArray(events), [StreamEvent.done(42)])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a crash mid-stream: AgentCrashError after the chunks, not replayed; the next stream goes to the new incarnation", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(streamingConfig("stream,checkpoint", { restartBackoff: 0 }))
      const seen: Array<unknown> = []
      const exit = yield* agent.handleEventStream({ chunks: ["a", "b"], then: "crash" }).pipe(
        StreamEvent.runForEach((data) => Effect.sync(() => seen.push(data))),
        Effect.exit
      )
      assert.deepStrictEqual(seen, ["a", "b"])
      assert.strictEqual(failureOf(exit)._tag, "AgentCrashError")
      // Right after the crash: the route may still name the dead incarnation (a refusal, retried) or wait.
      const result = yield* agent.handleEventStream({ chunks: ["c"] }).pipe(StreamEvent.runForEach(() => Effect.void))
      assert.deepInclude(result, { result: 1 })
      assert.strictEqual((yield* agent.metadata).incarnations, 2)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("overflow through the supervisor: AgentStreamError, counted as stream_overflow", () =>
    Effect.gen(function*() {
      const name = `stream-overflow-${process.pid}`
      const agent = yield* AgentSupervisor.make(streamingConfig("stream,checkpoint", { name }))
      const gate = yield* Deferred.make<void>()
      const consumer = yield* agent.handleEventStream({ chunks: 100 }, { maxBufferedChunks: 5 }).pipe(
        StreamEvent.runForEach(() => Deferred.await(gate)),
        Effect.exit,
        Effect.fork
      )
      // Until the agent has been told to cancel it (the overflow), each question a round trip.
      while (((yield* agent.handleEvent({})) as { cancelled: Array<string> }).cancelled.length === 0) {
        yield* Effect.yieldNow()
      }
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(failureOf(yield* Fiber.join(consumer))._tag, "AgentStreamError")
      assert.strictEqual(yield* outcomes(name, "stream_overflow"), 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a consumer that stops early cancels the task through the supervisor too", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(streamingConfig())
      const first = yield* Stream.runCollect(Stream.take(agent.handleEventStream({ chunks: 1000, every: 5 }), 1))
      assert.deepStrictEqual(dataOf(first), [0])
      const answer = (yield* agent.handleEvent({})) as { cancelled: Array<string> }
      assert.strictEqual(answer.cancelled.length, 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("Supervisor.callStream: routed to the child; a missing child fails before anything is sent", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        children: [Supervisor.agent({ id: "llm", config: streamingConfig("stream,checkpoint", { name: "llm" }) })]
      })
      const events = yield* sup.subscribe
      const collected = yield* StreamEvent.collect(sup.callStream("llm", { chunks: ["x", "y"] }))
      assert.deepStrictEqual(collected.chunks, ["x", "y"])
      const missing = failureOf(yield* Effect.exit(Stream.runDrain(sup.callStream("nobody", {}))))
      assert.deepInclude(missing, { _tag: "SupervisorChildError", reason: "not_found" })
      // The early stop of a tree's stream cancels it as well.
      yield* Stream.runDrain(Stream.take(sup.callStream("llm", { chunks: 1000, every: 5 }), 1))
      const answer = (yield* sup.call("llm", {})) as { cancelled: Array<string> }
      assert.strictEqual(answer.cancelled.length, 1)
      yield* sup.terminateChild("llm")
      yield* takeUntil(events, (event) => event._tag === "ChildStopped")
      // A child the tree has stopped is refused by the tree, as a stopped pool is
      const stopped = failureOf(yield* Effect.exit(Stream.runDrain(sup.callStream("llm", {}))))
      assert.deepInclude(stopped, { _tag: "SupervisorChildError", reason: "stopped" })
    }).pipe(Effect.provide(TestLive)))
})

import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as Callers from "../../../src/Agent/internal/callers.js"
import * as Requests from "../../../src/Agent/internal/requests.js"
import * as Streams from "../../../src/Agent/internal/streams.js"
import { AgentCrashError, AgentStoppedError, type RequestError } from "../../../src/Errors.js"
import * as Message from "../../../src/Protocol/Message.js"

type Outcome = Exit.Exit<unknown, RequestError>

/**
 * A request table over an outbox that records the lines it is given, with its timeout sweeper running on the
 * test clock. Every answer a request gets is recorded, and announced on `settled`.
 */
const setup = (maxInFlight: number) =>
  Effect.gen(function*() {
    const clock = yield* Effect.clock
    const lines: Array<string> = []
    const state = { exited: false }
    const table = Requests.makeTable({
      agent: "test",
      pid: 1234,
      maxInFlight,
      clock,
      outbox: { send: (line) => lines.push(line), end: () => {}, size: () => 0 },
      exited: () => state.exited
    })
    const outcomes = new Map<string, Array<Outcome>>()
    const settled = yield* Queue.unbounded<string>()
    const callers = new Map<string, Fiber.RuntimeFiber<never>>()
    const register = (id: string, timeoutMillis = 10_000, operation: Requests.Operation = "task") =>
      Effect.gen(function*() {
        // A caller of its own, so that it can leave (be interrupted) apart from the others.
        const caller = yield* Effect.fork(Effect.never)
        callers.set(id, caller)
        outcomes.set(id, [])
        table.register(caller, id, `${operation} ${id}`, operation, timeoutMillis, (exit) => {
          outcomes.get(id)!.push(exit)
          settled.unsafeOffer(id)
        })
      })
    /** Answers `id` as the agent would; false when the table has no sent request of that id. */
    const answer = (id: string, result: unknown = id) => {
      const entry = table.answer(id)
      if (entry === undefined) return false
      entry.resume(Exit.succeed(result))
      return true
    }
    const leave = (id: string) => Fiber.interrupt(callers.get(id)!)
    const failure = (id: string) => {
      const [outcome] = outcomes.get(id)!
      assert.isTrue(outcome !== undefined && Exit.isFailure(outcome), `${id} failed`)
      return Exit.isFailure(outcome) && outcome.cause._tag === "Fail" ? outcome.cause.error : undefined
    }
    /** A streaming request with its sink, whose end is recorded in `outcomes` and announced on `settled`. */
    const registerStream = (id: string, timeoutMillis: number, idleMillis: number, maxBuffered = 1024) => {
      const sink = Streams.make(maxBuffered, idleMillis)
      outcomes.set(id, [])
      const finish = sink.finish
      const recording: Streams.Sink = {
        ...sink,
        finish: (exit) => {
          outcomes.get(id)!.push(exit as Outcome)
          settled.unsafeOffer(id)
          finish(exit)
        }
      }
      sink.abandon = recording.abandon = t.registerStream(id, `stream ${id}`, timeoutMillis, recording)
      // The sink the table updates is `recording` (its deadline, its last activity): read them there.
      return { sink: recording, pull: sink.pull }
    }
    const t = table
    return { table, lines, state, outcomes, settled, register, registerStream, answer, leave, failure }
  })

const cancelOf = (id: string) => Message.encodeCancel(id)

describe("request table", () => {
  it.effect("at most maxInFlight tasks are sent; each answer sends the next waiting one, in order; pings never wait", () =>
    Effect.gen(function*() {
      const t = yield* setup(2)
      for (const id of ["t1", "t2", "t3", "t4", "t5"]) yield* t.register(id)
      assert.deepStrictEqual(t.lines, ["task t1", "task t2"])
      assert.strictEqual(t.table.inFlight(), 2)
      assert.strictEqual(t.table.unsent(), 3)
      yield* t.register("p1", 10_000, "ping")
      assert.deepStrictEqual(t.lines, ["task t1", "task t2", "ping p1"])
      assert.strictEqual(t.table.inFlight(), 2)

      assert.isFalse(t.answer("t3"), "a request not sent yet cannot be answered")
      assert.isTrue(t.answer("t2"))
      assert.deepStrictEqual(t.lines.slice(3), ["task t3"])
      assert.isFalse(t.answer("t2"), "a second answer is late")
      assert.isTrue(t.answer("t1"))
      assert.isTrue(t.answer("t3"))
      assert.deepStrictEqual(t.lines.slice(3), ["task t3", "task t4", "task t5"])
      assert.strictEqual(t.table.unsent(), 0)
      assert.isTrue(t.answer("p1"))
      assert.strictEqual(t.table.inFlight(), 2)
      assert.isTrue(t.answer("t4"))
      assert.isTrue(t.answer("t5"))
      assert.strictEqual(t.table.inFlight(), 0)
      for (const [id, outcomes] of t.outcomes) assert.deepStrictEqual(outcomes, [Exit.succeed(id)])
    }))

  it.effect("timeouts expire in deadline order, free their slot, and cancel only what was sent", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      yield* t.register("a", 30)
      yield* t.register("b", 10)
      yield* t.register("c", 50)
      assert.deepStrictEqual(t.lines, ["task a"])

      yield* TestClock.adjust(10)
      assert.strictEqual(yield* Queue.take(t.settled), "b")
      const b = t.failure("b")
      assert.strictEqual(b?._tag, "AgentTimeoutError")
      assert.deepInclude(b, { agent: "test", pid: 1234, requestId: "b", operation: "task", timeoutMillis: 10 })
      assert.deepStrictEqual(t.lines, ["task a"], "b was never sent: no cancel")

      yield* TestClock.adjust(19)
      assert.strictEqual(yield* Queue.size(t.settled), 0)
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* Queue.take(t.settled), "a")
      assert.strictEqual(t.failure("a")?._tag, "AgentTimeoutError")
      // a's slot goes to c, and the agent is told to drop a.
      assert.deepStrictEqual(t.lines, ["task a", "task c", cancelOf("a")])
      assert.isFalse(t.answer("a"), "an answer after the timeout is late")
      assert.isTrue(t.answer("c"))
      assert.deepStrictEqual(t.outcomes.get("c"), [Exit.succeed("c")])

      yield* TestClock.adjust(1000)
      assert.strictEqual(yield* Queue.size(t.settled), 1, "only c's answer: nothing else settled")
      for (const id of ["a", "b", "c"]) assert.strictEqual(t.outcomes.get(id)!.length, 1)
    }))

  it.effect("a ping whose timeout its caller keeps: no deadline in the table; timed out by the caller, once", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      const outcomes: Array<Outcome> = []
      const expire = t.table.registerPing("p1", "ping p1", 250, (exit) => outcomes.push(exit))
      assert.deepStrictEqual(t.lines, ["ping p1"])
      // Far past its timeout: the table keeps no deadline for it.
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(outcomes, [])
      assert.strictEqual(t.table.size(), 1)
      expire()
      expire() // settled: nothing more
      assert.strictEqual(outcomes.length, 1)
      const [outcome] = outcomes
      assert.isTrue(Exit.isFailure(outcome) && outcome.cause._tag === "Fail")
      const error = Exit.isFailure(outcome) && outcome.cause._tag === "Fail" ? outcome.cause.error : undefined
      assert.strictEqual(error?._tag, "AgentTimeoutError")
      assert.strictEqual((error as { timeoutMillis?: number }).timeoutMillis, 250)
      assert.strictEqual((error as { operation?: string }).operation, "ping")
      // The agent is told to drop it, as a deadline would; its late answer is no answer.
      assert.deepStrictEqual(t.lines, ["ping p1", Message.encodeCancel("p1")])
      assert.strictEqual(t.table.size(), 0)
      assert.isUndefined(t.table.answer("p1"))
      // Answered before its caller times it out: the timeout does nothing.
      const answered = t.table.registerPing("p2", "ping p2", 250, (exit) => outcomes.push(exit))
      assert.isTrue(t.answer("p2"))
      answered()
      assert.strictEqual(outcomes.length, 2)
      assert.isTrue(Exit.isSuccess(outcomes[1]))
      assert.strictEqual(t.lines.length, 3)
    }))

  it.effect("a caller that leaves is forgotten: its request is cancelled and never answered", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      yield* t.register("a")
      yield* t.register("b")
      yield* t.leave("a")
      assert.deepStrictEqual(t.lines, ["task a", "task b", cancelOf("a")])
      yield* t.leave("b")
      assert.deepStrictEqual(t.lines.slice(3), [cancelOf("b")])
      assert.isFalse(t.answer("a"))
      assert.strictEqual(t.table.inFlight(), 0)
      // Once the process has exited, no cancel is written.
      yield* t.register("c")
      t.state.exited = true
      yield* t.leave("c")
      assert.deepStrictEqual(t.lines.slice(4), ["task c"])
      yield* TestClock.adjust(20_000)
      for (const id of ["a", "b", "c"]) assert.deepStrictEqual(t.outcomes.get(id), [])
    }))

  it.effect("a caller that asks again has left its previous request: that one is cancelled then, not at its timeout", () =>
    Effect.gen(function*() {
      const t = yield* setup(4)
      const outcomes: Array<[string, Outcome]> = []
      const record = (id: string) => (exit: Outcome) => outcomes.push([id, exit])
      // One fiber asks twice without an answer in between: only an interruption it caught and went on from can
      // take a fiber out of its first wait.
      const caller = yield* Effect.fork(Effect.never)
      t.table.register(caller, "first", "task first", "task", 10_000, record("first"))
      assert.isDefined(Callers.waitingOf(caller))
      t.table.register(caller, "second", "task second", "task", 10_000, record("second"))
      // The agent is told to drop the first before it gets the second.
      assert.deepStrictEqual(t.lines, ["task first", cancelOf("first"), "task second"])
      assert.strictEqual(t.table.inFlight(), 1)
      assert.isFalse(t.answer("first"))
      // Settled requests leave the caller waiting on nothing; its end then cancels nothing.
      assert.isTrue(t.answer("second"))
      assert.isUndefined(Callers.waitingOf(caller))
      t.table.register(caller, "third", "task third", "task", 10_000, record("third"))
      yield* Fiber.interrupt(caller)
      assert.deepStrictEqual(t.lines.slice(3), ["task third", cancelOf("third")])
      yield* TestClock.adjust(20_000)
      // The two it left are never answered, nor timed out.
      assert.deepStrictEqual(outcomes.map(([id]) => id), ["second"])
      assert.strictEqual(t.table.size(), 0)
    }))

  it.effect("a caller that asks another agent has left its request to the first: cancelled there", () =>
    Effect.gen(function*() {
      const first = yield* setup(4)
      const second = yield* setup(4)
      const caller = yield* Effect.fork(Effect.never)
      first.table.register(caller, "a", "task a", "task", 10_000, () => assert.fail("a answered"))
      second.table.register(caller, "b", "task b", "task", 10_000, () => {})
      assert.deepStrictEqual(first.lines, ["task a", cancelOf("a")])
      assert.strictEqual(first.table.size(), 0)
      assert.deepStrictEqual(second.lines, ["task b"])
      assert.isTrue(second.answer("b"))
      yield* Fiber.interrupt(caller)
      assert.deepStrictEqual(second.lines, ["task b"])
    }))

  it.effect("a caller's fiber gets one observer, however many requests it makes, and it holds none of them", () =>
    Effect.gen(function*() {
      const t = yield* setup(4)
      const caller = yield* Effect.fork(Effect.never)
      const observers = () => (caller as unknown as { readonly _observers: ReadonlyArray<unknown> })._observers.length
      const before = observers()
      for (let i = 0; i < 50; i++) {
        t.table.register(caller, `r${i}`, `task r${i}`, "task", 10_000, () => {})
        assert.isTrue(t.answer(`r${i}`))
        assert.isUndefined(Callers.waitingOf(caller))
      }
      t.table.register(caller, "timed", "task timed", "task", 100, () => {})
      yield* TestClock.adjust(200)
      assert.isUndefined(Callers.waitingOf(caller))
      t.table.register(caller, "failed", "task failed", "task", 10_000, () => {})
      t.table.failAll(new AgentStoppedError({ agent: "test", pid: 1234 }))
      assert.isUndefined(Callers.waitingOf(caller))
      assert.strictEqual(observers(), before + 1)
      yield* Fiber.interrupt(caller)
    }))

  it.effect("heartbeat pings live beside every other request: found, counted, failed and cancelled with them", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      const pings: Array<Outcome> = []
      // Two callback pings out at once (the second is kept as every other request is), a caller's ping, a task.
      const expireFirst = t.table.registerPing("hb1", "ping hb1", 250, (exit) => pings.push(exit))
      t.table.registerPing("hb2", "ping hb2", 250, (exit) => pings.push(exit))
      yield* t.register("p", 10_000, "ping")
      yield* t.register("task")
      assert.strictEqual(t.table.size(), 4)
      assert.strictEqual(t.table.inFlight(), 1, "pings take no slot")
      assert.strictEqual(t.table.chunk("hb1", "x"), "unasked")
      assert.isTrue(t.table.checkpoint("hb1", { at: 1 }))
      assert.deepStrictEqual(t.table.checkpoints(), { hb1: { at: 1 } })
      // The first one answered; a ping registered after it takes its place, and is found by its own id only.
      assert.isTrue(t.answer("hb1"))
      expireFirst()
      assert.strictEqual(pings.length, 1)
      t.table.registerPing("hb3", "ping hb3", 250, (exit) => pings.push(exit))
      assert.strictEqual(t.table.size(), 4)
      assert.isUndefined(t.table.answer("hb1"))
      t.table.cancelSent()
      assert.includeMembers(t.lines, ["hb2", "p", "task", "hb3"].map(cancelOf))
      t.table.failAll(new AgentStoppedError({ agent: "test", pid: 1234 }))
      assert.strictEqual(t.table.size(), 0)
      assert.strictEqual(pings.length, 3)
      assert.isTrue(Exit.isSuccess(pings[0]))
      for (const outcome of pings.slice(1)) assert.isTrue(Exit.isFailure(outcome))
      assert.strictEqual(t.failure("p")?._tag, "AgentStoppedError")
      assert.strictEqual(t.failure("task")?._tag, "AgentStoppedError")
    }))

  it.effect("a caller's ping is kept as any request; the heartbeat's callback ping takes the table's own place", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      // The caller's ping first, while the place is free: it must not take it (the heartbeat's ping, every beat of
      // every agent, would then churn the map).
      yield* t.register("p", 10_000, "ping")
      t.table.registerPing("hb", "ping hb", 250, () => {})
      // The table lists the place's ping first.
      t.table.cancelSent()
      assert.deepStrictEqual(t.lines.slice(2), [cancelOf("hb"), cancelOf("p")])
    }))

  it.effect("a caller that has already ended: its request is forgotten at once, never sent, holds no slot", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      const ended = yield* Effect.fork(Effect.void)
      yield* Fiber.await(ended)
      // Unknown to the table's callers, then known (its record made by the first).
      for (const id of ["first", "second"]) {
        t.table.register(ended, id, `task ${id}`, "task", 10_000, () => assert.fail(`${id} answered`))
        assert.strictEqual(t.table.size(), 0)
        assert.strictEqual(t.table.inFlight(), 0)
        assert.isUndefined(Callers.waitingOf(ended))
      }
      assert.deepStrictEqual(t.lines, [])
      // The slot is free for the next caller.
      yield* t.register("next")
      assert.deepStrictEqual(t.lines, ["task next"])
    }))

  it.effect("failAll fails what is left once: sent requests with the error, unsent ones with a refusal", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      yield* t.register("answered")
      assert.isTrue(t.answer("answered"))
      yield* t.register("sent")
      yield* t.register("waiting")
      const crash = new AgentCrashError({ agent: "test", pid: 1234, exitCode: 3, signal: null, stderr: ["boom"] })
      t.table.failAll(crash)
      assert.deepStrictEqual(t.outcomes.get("answered"), [Exit.succeed("answered")])
      assert.strictEqual(t.failure("sent"), crash)
      assert.isFalse(Requests.isRefusal(crash), "the agent saw it: not a refusal")
      const refused = t.failure("waiting")!
      assert.notStrictEqual(refused, crash)
      assert.isTrue(Requests.isRefusal(refused), "never written: a refusal")
      assert.deepInclude(refused, { _tag: "AgentCrashError", agent: "test", pid: 1234, exitCode: 3, signal: null })
      assert.deepStrictEqual((refused as AgentCrashError).stderr, ["boom"])
      assert.strictEqual(t.table.inFlight(), 0)
      assert.strictEqual(t.table.unsent(), 0)
      assert.deepStrictEqual(t.lines, ["task answered", "task sent"], "the next in line was not sent")

      // Stopped: the refusal is a stop too.
      yield* t.register("x")
      yield* t.register("y")
      t.table.failAll(new AgentStoppedError({ agent: "test", pid: 1234 }))
      assert.isFalse(Requests.isRefusal(t.failure("x")!))
      assert.isTrue(Requests.isRefusal(t.failure("y")!))
      assert.deepInclude(t.failure("y"), { _tag: "AgentStoppedError", agent: "test", pid: 1234 })
      yield* TestClock.adjust(20_000)
      for (const outcomes of t.outcomes.values()) assert.strictEqual(outcomes.length, 1)
    }))

  it.effect("a stream: its chunks wait in order for the consumer, then its result; nothing after is delivered", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      const { pull } = t.registerStream("s", 10_000, 0)
      assert.deepStrictEqual(t.lines, ["stream s"])
      assert.strictEqual(t.table.chunk("s", "a"), "ok")
      assert.strictEqual(t.table.chunk("s", "b"), "ok")
      assert.deepStrictEqual(Chunk.toArray(yield* pull), [{ _tag: "Chunk", data: "a" }, { _tag: "Chunk", data: "b" }])
      assert.strictEqual(t.table.chunk("s", "c"), "ok")
      assert.isTrue(t.answer("s"))
      assert.deepStrictEqual(Chunk.toArray(yield* pull), [{ _tag: "Chunk", data: "c" }, { _tag: "Done", result: "s" }])
      assert.strictEqual(t.table.chunk("s", "late"), "late")
      assert.deepStrictEqual(yield* Effect.flip(pull), Option.none(), "then the stream ends")
      yield* t.register("plain")
      assert.strictEqual(t.table.chunk("plain", "x"), "unasked")
      assert.strictEqual(t.table.chunk("nobody", "x"), "late")
    }))

  it.effect("a stream past its bound fails with AgentStreamError after the chunks buffered, and is cancelled", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      const { pull } = t.registerStream("s", 10_000, 0, 2)
      for (const data of [1, 2]) assert.strictEqual(t.table.chunk("s", data), "ok")
      assert.strictEqual(t.table.chunk("s", 3), "ok")
      assert.deepStrictEqual(t.lines, ["stream s", cancelOf("s")])
      assert.strictEqual(t.table.inFlight(), 0, "its slot is free")
      assert.deepStrictEqual(Chunk.toArray(yield* pull).map((e) => e._tag === "Chunk" ? e.data : e), [1, 2])
      const error = Option.getOrThrow(yield* Effect.flip(pull))
      assert.deepInclude(error, { _tag: "AgentStreamError", reason: "overflow", maxBufferedChunks: 2, requestId: "s" })
      assert.strictEqual(t.table.chunk("s", 4), "late")
    }))

  it.effect("idle timeout (TestClock): each chunk moves it on, without a new deadline per chunk; the total bounds all", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      t.registerStream("s", 1000, 100)
      yield* TestClock.adjust(60)
      t.table.chunk("s", 1)
      yield* TestClock.adjust(60)
      assert.strictEqual(t.outcomes.get("s")!.length, 0, "quiet for 60 ms only")
      t.table.chunk("s", 2)
      yield* TestClock.adjust(99)
      assert.strictEqual(t.outcomes.get("s")!.length, 0)
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* Queue.take(t.settled), "s")
      assert.deepInclude(t.failure("s"), { _tag: "AgentTimeoutError", idle: true, timeoutMillis: 100 })
      assert.deepStrictEqual(t.lines, ["stream s", cancelOf("s")])

      // Chunks every 50 ms never let it idle out: its total timeout ends it.
      t.registerStream("long", 300, 100)
      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust(50)
        t.table.chunk("long", i)
      }
      assert.strictEqual(t.outcomes.get("long")!.length, 0)
      yield* TestClock.adjust(50)
      assert.strictEqual(yield* Queue.take(t.settled), "long")
      const total = t.failure("long")
      assert.deepInclude(total, { _tag: "AgentTimeoutError", timeoutMillis: 300 })
      assert.isUndefined((total as { idle?: boolean }).idle)
    }))

  it.effect("a stream waiting for a slot does not idle out; its idle time starts when it is written", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      yield* t.register("busy")
      t.registerStream("s", 10_000, 100)
      yield* TestClock.adjust(250)
      assert.strictEqual(t.outcomes.get("s")!.length, 0)
      assert.isTrue(t.answer("busy"))
      assert.strictEqual(yield* Queue.take(t.settled), "busy")
      assert.deepStrictEqual(t.lines, ["task busy", "stream s"])
      yield* TestClock.adjust(99)
      assert.strictEqual(t.outcomes.get("s")!.length, 0)
      yield* TestClock.adjust(6)
      assert.strictEqual(yield* Queue.take(t.settled), "s")
      assert.deepInclude(t.failure("s"), { idle: true })
    }))

  it.effect("a consumer that leaves: the stream is forgotten and cancelled; its later chunks are late", () =>
    Effect.gen(function*() {
      const t = yield* setup(1)
      const { sink } = t.registerStream("s", 10_000, 0)
      t.table.chunk("s", 1)
      sink.close()
      assert.deepStrictEqual(t.lines, ["stream s", cancelOf("s")])
      assert.strictEqual(t.table.chunk("s", 2), "late")
      assert.strictEqual(t.table.inFlight(), 0)
      assert.deepStrictEqual(t.outcomes.get("s"), [])
    }))

  it.effect("request checkpoints: kept while in flight, the latest of each, handed over, forgotten with the answer", () =>
    Effect.gen(function*() {
      const t = yield* setup(2)
      yield* t.register("a")
      yield* t.register("b")
      yield* t.register("waiting")
      assert.isUndefined(t.table.checkpoints())
      assert.isTrue(t.table.checkpoint("a", { page: 1 }))
      assert.isTrue(t.table.checkpoint("a", { page: 2 }))
      assert.isTrue(t.table.checkpoint("b", null))
      assert.isFalse(t.table.checkpoint("waiting", 1), "not sent: the agent cannot know its id")
      assert.isFalse(t.table.checkpoint("nobody", 1))
      assert.deepStrictEqual(t.table.checkpoints(), { a: { page: 2 }, b: null })
      assert.isTrue(t.answer("b"))
      assert.deepStrictEqual(t.table.checkpoints(), { a: { page: 2 } })
    }))

  const op = FastCheck.oneof(
    FastCheck.record({
      _tag: FastCheck.constant("register" as const),
      kind: FastCheck.constantFrom("task" as const, "ping" as const, "stream" as const),
      timeout: FastCheck.integer({ min: 1, max: 40 }),
      idle: FastCheck.integer({ min: 0, max: 15 })
    }),
    FastCheck.record({ _tag: FastCheck.constant("chunk" as const), index: FastCheck.nat() }),
    FastCheck.record({ _tag: FastCheck.constant("answer" as const), index: FastCheck.nat() }),
    FastCheck.record({ _tag: FastCheck.constant("leave" as const), index: FastCheck.nat() }),
    FastCheck.record({ _tag: FastCheck.constant("advance" as const), millis: FastCheck.integer({ min: 0, max: 15 }) })
  )

  it.effect.prop(
    "through any calls, streams, chunks, answers, timeouts and departures: the window holds, each settles at most once",
    [FastCheck.array(op, { maxLength: 50 }), FastCheck.integer({ min: 1, max: 4 })],
    ([ops, maxInFlight]) =>
      Effect.gen(function*() {
        const t = yield* setup(maxInFlight)
        const ids: Array<string> = []
        const left = new Set<string>()
        const sinks = new Map<string, Streams.Sink>()
        const check = () => {
          const sentTasks = t.lines.filter((line) => line.startsWith("task ") || line.startsWith("stream "))
            .map((line) => line.slice(line.indexOf(" ") + 1))
          const open = sentTasks.filter((id) => t.outcomes.get(id)!.length === 0 && !left.has(id))
          assert.strictEqual(t.table.inFlight(), open.length, "inFlight counts the sent tasks not settled")
          assert.isAtMost(t.table.inFlight(), maxInFlight)
          for (const [id, outcomes] of t.outcomes) assert.isAtMost(outcomes.length, 1, `${id} settled twice`)
        }
        for (const step of ops) {
          if (step._tag === "register") {
            const id = `${step.kind[0]}${ids.length}`
            ids.push(id)
            if (step.kind === "stream") sinks.set(id, t.registerStream(id, step.timeout, step.idle, 2).sink)
            else yield* t.register(id, step.timeout, step.kind)
          } else if (step._tag === "answer" && ids.length > 0) {
            t.answer(ids[step.index % ids.length])
          } else if (step._tag === "chunk" && ids.length > 0) {
            t.table.chunk(ids[step.index % ids.length], step.index)
          } else if (step._tag === "leave" && ids.length > 0) {
            const id = ids[step.index % ids.length]
            if (t.outcomes.get(id)!.length === 0) left.add(id)
            const sink = sinks.get(id)
            if (sink !== undefined) sink.close()
            else yield* t.leave(id)
          } else if (step._tag === "advance") {
            yield* TestClock.adjust(step.millis)
            // The sweeper may run what became due now or later: the checks hold at any moment.
            yield* Effect.yieldNow()
          }
          check()
        }
        t.table.failAll(new AgentStoppedError({ agent: "test", pid: 1234 }))
        check()
        for (const id of ids) {
          assert.strictEqual(t.outcomes.get(id)!.length, left.has(id) ? 0 : 1, `${id}: settled exactly once`)
        }
        assert.strictEqual(t.table.unsent(), 0)
        assert.strictEqual(t.table.inFlight(), 0)
      })
  )
})

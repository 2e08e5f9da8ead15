/**
 * Typed agents through real ones: a Python agent behind the adapter (`echo_agent.py`, which answers its payload)
 * and the raw Node test agent (`agents/agent.mjs`, which answers its payload and counts the tasks it read).
 */
import { assert, describe, it, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { python } from "../src/Adapters.js"
import * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import type * as Config from "../src/Agent/Config.js"
import { AgentSchemaError, isSupervisorError } from "../src/Errors.js"
import * as Supervisor from "../src/Supervisor.js"
import * as Typed from "../src/Typed.js"
import { agentConfig, failureOf, fixture, TestLive } from "./support.js"

/** The Python echo agent: `handle_request(payload)` returns its payload, through JSON both ways. */
const pythonEcho = (name: string): Config.AgentConfigInput => ({
  name,
  command: "python3",
  args: [python, `${fixture("python", "echo_agent.py")}:handle_request`],
  gracefulTimeout: "2 seconds",
  sigtermTimeout: "2 seconds",
  startupTimeout: "20 seconds",
  requestTimeout: "20 seconds"
})

/** A `Schema.Class` with a transformation whose encoded side is not what `JSON.stringify` makes of a `Date`. */
class Ask extends Schema.Class<Ask>("Ask")({
  text: Schema.String,
  at: Schema.DateFromNumber,
  tags: Schema.Array(Schema.String)
}) {}

/** The `AgentSchemaError` a call failed with (any other outcome fails the test). */
const schemaErrorOf = <A, E>(exit: Exit.Exit<A, E>): AgentSchemaError => {
  const error = failureOf(exit)
  if (error instanceof AgentSchemaError) return error
  throw new Error(`expected an AgentSchemaError, got ${String(error)}`)
}

/** Tasks the raw agent has read from its stdin, from its own report. */
const tasksRead = (agent: AgentSupervisor.AgentSupervisor) =>
  Effect.map(agent.health, (sample) => Option.getOrThrow(sample.report).total_requests)

describe("AgentSchemaError", () => {
  const error = (issues: AgentSchemaError["issues"], issueCount = issues.length) =>
    new AgentSchemaError({ agent: "summarizer", direction: "response", issues, issueCount })

  it("one problem: one line with its path; the value itself has no path", () => {
    assert.strictEqual(
      error([{ path: ["words"], message: `Expected number, actual "two"` }]).message,
      `Agent "summarizer": response does not match: ["words"]: Expected number, actual "two"`
    )
    assert.strictEqual(
      error([{ path: [], message: "Expected number, actual null" }]).message,
      `Agent "summarizer": response does not match: Expected number, actual null`
    )
  })

  it("several problems: a line each, and how many were left out", () => {
    const several = error([
      { path: ["items", 0, "n"], message: "is missing" },
      { path: ["items", 1, "n"], message: `Expected number, actual "y"` }
    ], 12)
    assert.strictEqual(
      several.message,
      `Agent "summarizer": response does not match (12 problems):\n` +
        `  ["items"][0]["n"]: is missing\n  ["items"][1]["n"]: Expected number, actual "y"\n  and 10 more`
    )
    assert.include(several.remediation, "Schema.DateFromSelf")
    assert.isTrue(isSupervisorError(several))
  })

  it("a request: says it was not sent; a tree's child: names its supervisor", () => {
    const request = new AgentSchemaError({
      agent: "echo",
      supervisor: "root/workers",
      direction: "request",
      issues: [{ path: ["words"], message: "Expected int, actual 1.5" }],
      issueCount: 1
    })
    assert.strictEqual(
      request.message,
      `Agent "echo" (child of "root/workers"): request does not match its schema, so it was not sent: ` +
        `["words"]: Expected int, actual 1.5`
    )
    assert.include(request.remediation, "fix the value")
    // a value cast past its type (not only one its type allows) is named as a cause
    assert.include(request.remediation, "cast past its type")
  })
})

describe.sequential("Typed", () => {
  it.scopedLive("a Schema.Class round trip: the request encoded before the write, the reply decoded after", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(pythonEcho("typed-echo"))
      const ask = new Ask({ text: "héllo, wörld 👋", at: new Date(1_700_000_000_123), tags: ["a", "ß"] })

      const reply = yield* Typed.agent(agent, { request: Ask, response: Ask }).handleEvent(ask)
      assert.instanceOf(reply, Ask)
      assert.instanceOf(reply.at, Date)
      assert.deepStrictEqual(reply, ask)

      // What crossed the wire is the encoded side: the date as a number, not the ISO string JSON makes of a Date
      // (which is what the untyped handle sends).
      const wire = Typed.agent(agent, { request: Ask, response: Schema.Struct({ at: Schema.Number }) })
      assert.strictEqual((yield* wire.handleEvent(ask)).at, 1_700_000_000_123)
      assert.deepStrictEqual(yield* agent.handleEvent(ask), { ...ask, at: "2023-11-14T22:13:20.123Z" })
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a reply that does not match: every problem with its path and value, long values cut", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(pythonEcho("summarizer"))
      const counted = Typed.agent(agent, {
        request: Schema.Struct({ words: Schema.String }),
        response: Schema.Struct({ words: Schema.Number })
      })
      const one = schemaErrorOf(yield* Effect.exit(counted.handleEvent({ words: "two" })))
      assert.strictEqual(
        one.message,
        `Agent "summarizer": response does not match: ["words"]: Expected number, actual "two"`
      )
      assert.deepStrictEqual([one.direction, one.issueCount, one.issues[0].path], ["response", 1, ["words"]])

      const Items = Schema.Struct({ items: Schema.Array(Schema.Struct({ n: Schema.optional(Schema.Unknown) })) })
      const several = Typed.agent(agent, {
        request: Items,
        response: Schema.Struct({ items: Schema.Array(Schema.Struct({ n: Schema.Number })) })
      })
      const two = schemaErrorOf(yield* Effect.exit(several.handleEvent({ items: [{ n: 1 }, { n: "x" }, { n: null }] })))
      assert.strictEqual(
        two.message,
        `Agent "summarizer": response does not match (2 problems):\n` +
          `  ["items"][1]["n"]: Expected number, actual "x"\n  ["items"][2]["n"]: Expected number, actual null`
      )

      // A 100,000-character value is shown cut, and only 10 of 50 problems are kept.
      const long = Typed.agent(agent, { request: Schema.Unknown, response: Schema.Number })
      const cut = schemaErrorOf(yield* Effect.exit(long.handleEvent("x".repeat(100_000))))
      assert.isBelow(cut.message.length, 400)
      assert.match(cut.message, /actual "xxx+\.\.\. \(\d+ more characters\)$/)
      const many = schemaErrorOf(
        yield* Effect.exit(several.handleEvent({ items: Array.from({ length: 50 }, () => ({})) }))
      )
      assert.deepStrictEqual([many.issueCount, many.issues.length], [50, 10])
      assert.match(many.message, /\n {2}and 40 more$/)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a request that cannot be encoded fails before anything is written", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo"))
      const typed = Typed.agent(agent, {
        request: Schema.Struct({ words: Schema.Int, at: Schema.Date }),
        response: Schema.Struct({ words: Schema.Int, at: Schema.Date })
      })
      const error = schemaErrorOf(yield* Effect.exit(typed.handleEvent({ words: 1.5, at: new Date("not a date") })))
      assert.strictEqual(error.direction, "request")
      assert.strictEqual(
        error.message,
        `Agent "test-echo": request does not match its schema, so it was not sent (2 problems):\n` +
          `  ["words"]: Expected an integer, actual 1.5\n  ["at"]: Expected a valid Date, actual Invalid Date`
      )
      // The agent read no task; a request that encodes is the first it reads.
      assert.strictEqual(yield* tasksRead(agent), 0)
      const at = new Date(1_700_000_000_000)
      assert.deepStrictEqual(yield* typed.handleEvent({ words: 2, at }), { words: 2, at })
      assert.strictEqual(yield* tasksRead(agent), 1)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a tree's child: typed calls through the tree, its errors naming the child and the tree", () =>
    Effect.gen(function*() {
      const tree = yield* Supervisor.make({
        children: [Supervisor.agent({ id: "echo", config: agentConfig("echo", { name: "echo-agent" }) })]
      })
      const echo = Typed.child(tree, "echo", { request: Ask, response: Ask })
      const ask = new Ask({ text: "routed", at: new Date(0), tags: [] })
      assert.deepStrictEqual(yield* echo.call(ask), ask)

      const wrong = Typed.child(tree, "echo", { request: Ask, response: Schema.Struct({ text: Schema.Number }) })
      const error = schemaErrorOf(yield* Effect.exit(wrong.call(ask)))
      assert.strictEqual(
        error.message,
        `Agent "echo" (child of "root"): response does not match: ["text"]: Expected number, actual "routed"`
      )
      const missing = failureOf(
        yield* Effect.exit(Typed.child(tree, "nobody", { request: Ask, response: Ask }).call(ask))
      )
      assert.strictEqual(missing._tag, "SupervisorChildError")
    }).pipe(Effect.provide(TestLive)))
})

/** Strings of any code points, lone surrogates included, as JSON must carry them both ways. */
const AnyText = Schema.String.annotations({ arbitrary: () => (fc) => fc.string({ unit: "binary", maxLength: 24 }) })

const Note = Schema.Struct({
  title: AnyText,
  score: Schema.Finite,
  done: Schema.Boolean,
  due: Schema.optionalWith(Schema.DateFromNumber.pipe(Schema.validDate()), { exact: true }),
  comment: Schema.optionalWith(AnyText, { exact: true }),
  tags: Schema.Array(AnyText),
  parts: Schema.Array(Schema.Struct({ n: Schema.Int, on: Schema.Boolean }))
})

class Echo extends Context.Tag("test/TypedEcho")<Echo, Typed.TypedAgent<typeof Note.Type, typeof Note.Type>>() {}

const EchoLive = Layer.scoped(
  Echo,
  Effect.map(
    AgentSupervisor.make(pythonEcho("typed-property")),
    (agent) => Typed.agent(agent, { request: Note, response: Note })
  )
).pipe(Layer.provide(TestLive))

layer(EchoLive, { excludeTestServices: true, timeout: "60 seconds" })("Typed, one Python agent for every run", (it) => {
  it.effect.prop(
    "encode, the agent's echo, decode: an equal value",
    [Note],
    ([note]) =>
      Effect.gen(function*() {
        const echo = yield* Echo
        const back = yield* echo.handleEvent(note)
        // -0 becomes 0 through JSON: equal as numbers (the schema's equivalence), not as Object.is
        assert.isTrue(Schema.equivalence(Note)(back, note), `${JSON.stringify(back)} != ${JSON.stringify(note)}`)
      }),
    { timeout: 120_000, fastCheck: { numRuns: 25 } }
  )
})

describe("typed streams", () => {
  /** The raw protocol 1.1 agent of the streaming tests: `{ chunks, result }` streams the chunks, then answers. */
  const streamingAgent = (name: string): Config.AgentConfigInput => ({
    ...agentConfig("streaming"),
    name,
    args: [fixture("agents", "streaming.mjs"), "stream,checkpoint"]
  })
  const schemas = {
    request: Schema.Struct({ chunks: Schema.Array(Schema.String), result: Schema.String }),
    response: Schema.Struct({ result: Schema.String }),
    chunk: Schema.NumberFromString
  }

  it.scopedLive("each chunk and the result decoded; a chunk that does not match ends the stream after those before", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(streamingAgent("typed-stream"))
      const typed = Typed.streaming(agent, schemas)
      const events = yield* Stream.runCollect(typed.handleEventStream({ chunks: ["1", "2.5"], result: "end" }))
      assert.deepStrictEqual(Chunk.toArray(events), [
        { _tag: "Chunk", data: 1 },
        { _tag: "Chunk", data: 2.5 },
        { _tag: "Done", result: { result: "end" } }
      ])
      const seen: Array<number> = []
      const exit = yield* Effect.exit(Stream.runForEach(
        typed.handleEventStream({ chunks: ["3", "three", "4"], result: "end" }),
        (event) => Effect.sync(() => event._tag === "Chunk" && seen.push(event.data))
      ))
      const error = schemaErrorOf(exit)
      assert.strictEqual(error.direction, "chunk")
      assert.match(error.message, /^Agent "typed-stream": a chunk of its stream does not match: /)
      assert.deepStrictEqual(seen, [3])
      // The typed handle's plain call is still there.
      assert.deepStrictEqual(yield* typed.handleEvent({ chunks: [], result: "plain" }), { result: "plain" })
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a tree's child: callStream typed the same way", () =>
    Effect.gen(function*() {
      const tree = yield* Supervisor.make({
        name: "typed-tree",
        children: [Supervisor.agent({ id: "writer", config: streamingAgent("typed-tree-writer") })]
      })
      const writer = Typed.streamingChild(tree, "writer", schemas)
      const events = yield* Stream.runCollect(writer.callStream({ chunks: ["7"], result: "done" }))
      assert.deepStrictEqual(Chunk.toArray(events), [
        { _tag: "Chunk", data: 7 },
        { _tag: "Done", result: { result: "done" } }
      ])
    }).pipe(Effect.provide(TestLive)))
})

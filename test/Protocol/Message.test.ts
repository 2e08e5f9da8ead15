import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as StrictJson from "../../src/internal/standalone/strictJson.js"
import * as Message from "../../src/Protocol/Message.js"

const isIncoming = Schema.is(Message.Incoming)

describe("Message", () => {
  it.prop(
    "the hot-path decoder accepts exactly what the Incoming schema accepts (valid messages)",
    [Arbitrary.make(Message.Incoming)],
    ([message]) => {
      const wire = JSON.parse(JSON.stringify(message))
      assert.strictEqual(Message.decodeIncoming(wire) !== undefined, isIncoming(wire))
    }
  )

  it.prop(
    "the hot-path decoder accepts exactly what the Incoming schema accepts (arbitrary JSON)",
    [FastCheck.oneof(
      FastCheck.jsonValue(),
      FastCheck.record({
        id: FastCheck.oneof(FastCheck.string(), FastCheck.integer()),
        type: FastCheck.constantFrom("ready", "task", "chunk", "checkpoint", "restore", 1),
        status: FastCheck.constantFrom("ok", "error", "other"),
        protocol: FastCheck.oneof(FastCheck.integer(), FastCheck.string()),
        result: FastCheck.jsonValue(),
        data: FastCheck.jsonValue(),
        features: FastCheck.oneof(
          FastCheck.array(FastCheck.string()),
          FastCheck.array(FastCheck.oneof(FastCheck.string(), FastCheck.integer())),
          FastCheck.string(),
          FastCheck.constant(null)
        ),
        error: FastCheck.oneof(
          FastCheck.record({ message: FastCheck.string(), type: FastCheck.string() }),
          FastCheck.record({ message: FastCheck.string(), type: FastCheck.string(), stack: FastCheck.integer() }),
          FastCheck.string()
        )
      }, { requiredKeys: [] })
    )],
    ([value]) => {
      assert.strictEqual(Message.decodeIncoming(value) !== undefined, isIncoming(value), JSON.stringify(value))
    }
  )

  it.prop("encoded outgoing lines decode with the Outgoing schema", [FastCheck.string(), FastCheck.jsonValue()], (
    [id, payload]
  ) => {
    const lines = [
      Message.encodeTask(id, payload),
      Message.encodeStreamTask(id, payload),
      Message.encodePing(id),
      Message.encodeCancel(id),
      Message.encodeRestore({ type: "restore", data: payload, requests: { [id]: payload } }),
      Message.encodeRestore({ type: "restore" })
    ]
    for (const line of lines) {
      assert.isTrue(line.endsWith("\n") && line.indexOf("\n") === line.length - 1)
      assert.isTrue(Schema.is(Message.Outgoing)(JSON.parse(line)))
    }
  })

  it("a stream task is a task with stream: true; a restore carries what it is given", () => {
    assert.deepStrictEqual(JSON.parse(Message.encodeStreamTask("7", { prompt: "hi" })), {
      id: "7",
      type: "task",
      payload: { prompt: "hi" },
      stream: true
    })
    assert.deepStrictEqual(JSON.parse(Message.encodeStreamTask("7", undefined)).payload, null)
    assert.deepStrictEqual(JSON.parse(Message.encodeRestore({ type: "restore", data: { n: 3 } })), {
      type: "restore",
      data: { n: 3 }
    })
  })

  it("1.1 messages decode on the hot path: chunks, checkpoints with and without id, ready with features", () => {
    assert.deepStrictEqual(Message.decodeIncoming({ id: "1", type: "chunk", data: "tok" }), {
      id: "1",
      type: "chunk",
      data: "tok"
    })
    assert.isDefined(Message.decodeNotice({ type: "checkpoint", data: null }))
    assert.isDefined(Message.decodeNotice({ type: "checkpoint", id: "4", data: { page: 3 } }))
    assert.isUndefined(Message.decodeNotice({ type: "checkpoint", id: 4, data: 1 }))
    assert.isUndefined(Message.decodeNotice({ type: "chunk", data: 1 }), "a chunk names its request")
    assert.isUndefined(Message.decodeNotice({ type: "checkpoint" }), "a checkpoint has data")
    assert.deepStrictEqual(Message.decodeReady({ type: "ready", protocol: 1, features: ["stream"] })?.features, [
      "stream"
    ])
    // A malformed features field never stops a ready: the agent speaks what its string items name, or v1.
    const malformed = Message.decodeReady({ type: "ready", protocol: 1, features: "stream" })
    assert.deepStrictEqual(malformed === undefined ? undefined : Message.featuresOf(malformed), [])
    const mixed = Message.decodeReady({ type: "ready", protocol: 1, features: ["stream", 2, { later: true }] })
    assert.deepStrictEqual(mixed === undefined ? undefined : Message.featuresOf(mixed), ["stream"])
  })

  it("a payload JSON cannot encode throws (the caller turns it into a ProtocolError)", () => {
    assert.throws(() => Message.encodeTask("1", () => 1), "payload is a function, which JSON leaves out")
    assert.throws(() => Message.encodeTask("1", 1n))
    assert.deepStrictEqual(JSON.parse(Message.encodeTask("1", undefined)), { id: "1", type: "task", payload: null })
  })

  it.prop("a JSON value is sent as it is", [FastCheck.jsonValue()], ([payload]) => {
    assert.deepStrictEqual(JSON.parse(Message.encodeTask("1", payload)).payload, JSON.parse(JSON.stringify(payload)))
  })

  // Before, JSON.stringify's own changes went out without a word: the agent got {} for a Map, null for NaN
  const lossy: ReadonlyArray<readonly [string, unknown, string]> = [
    ["a Map", new Map([["a", 1]]), "is a Map, which JSON sends as {} (convert it: Object.fromEntries(map))"],
    ["a Set", new Set([1]), "is a Set, which JSON sends as {} (convert it: [...set])"],
    ["NaN", NaN, "is NaN, which JSON sends as null"],
    ["Infinity", -Infinity, "is -Infinity, which JSON sends as null"],
    ["a function", () => 1, "is a function, which JSON leaves out"],
    ["a symbol", Symbol("s"), "is a symbol, which JSON leaves out"],
    ["a typed array", new Float32Array([1, 2]), "is a Float32Array, which JSON sends as an object of its indices"],
    ["a boxed NaN", new Number(NaN), "is a Number object holding NaN, which JSON sends as null"],
    ["an invalid Date", new Date("soon"), "is an invalid Date, which JSON sends as null"]
  ]
  it.prop(
    "a value JSON would change is refused, named by its path, wherever it is",
    [
      FastCheck.constantFrom(...lossy),
      FastCheck.array(FastCheck.oneof(FastCheck.nat(3), FastCheck.constantFrom("a", "b-c", "items")), {
        maxLength: 4
      }),
      FastCheck.jsonValue()
    ],
    ([[, value, said], steps, sibling]) => {
      // `value` under `steps` (an index into an array, a key of an object), beside an ordinary JSON value
      let payload: unknown = value
      let path = ""
      for (let i = steps.length - 1; i >= 0; i--) {
        const step = steps[i]
        payload = typeof step === "number"
          ? [...Array.from({ length: step }, () => sibling), payload]
          : { sibling, [step]: payload }
        path = (typeof step === "number" ? `[${step}]` : step === "b-c" ? `["b-c"]` : `.${step}`) + path
      }
      assert.throws(() => Message.encodeTask("1", payload), TypeError, `payload${path} ${said}`)
      assert.throws(() => Message.encodeStreamTask("1", payload), TypeError, `payload${path} ${said}`)
    }
  )

  it("beyond the fast walk's reach (deep nesting, class instances, cycles) the same rules hold", () => {
    // 40 levels: past the fast walk's 32, so JSON.stringify's own walk decides
    let deep: unknown = { leaf: 1 }
    for (let i = 0; i < 40; i++) deep = { next: deep }
    assert.deepStrictEqual(JSON.parse(Message.encodeTask("1", deep)).payload, deep)
    let lossyDeep: unknown = { leaf: NaN }
    for (let i = 0; i < 40; i++) lossyDeep = { next: lossyDeep }
    assert.throws(() => Message.encodeTask("1", lossyDeep), TypeError, `payload${".next".repeat(40)}.leaf is NaN`)
    class Point {
      constructor(readonly x: number, readonly y: number) {}
    }
    assert.deepStrictEqual(JSON.parse(Message.encodeTask("1", new Point(1, 2))).payload, { x: 1, y: 2 })
    assert.throws(() => Message.encodeTask("1", [new Point(1, Infinity)]), TypeError, "payload[0].y is Infinity")
    const cyclic: Record<string, unknown> = { list: [] }
    ;(cyclic.list as Array<unknown>).push(cyclic)
    assert.throws(() => Message.encodeTask("1", cyclic), TypeError, "circular")
  })

  it("undefined and what has a toJSON are sent as JSON has them", () => {
    const date = new Date(0)
    // undefined, a hole, 1, -0
    const list: Array<unknown> = [undefined]
    list[2] = 1
    list[3] = -0
    const payload = {
      a: undefined,
      list,
      date,
      buffer: Buffer.from("hi"),
      bytes: [Buffer.from("")]
    }
    assert.deepStrictEqual(JSON.parse(Message.encodeTask("1", payload)).payload, {
      list: [null, null, 1, 0],
      date: "1970-01-01T00:00:00.000Z",
      buffer: { type: "Buffer", data: [104, 105] },
      bytes: [{ type: "Buffer", data: [] }]
    })
    // A Date or a Buffer whose toJSON is not its own: that toJSON stands for it
    class Day extends Date {
      override toJSON() {
        return this.toISOString().slice(0, 10)
      }
    }
    const stamped = Object.assign(new Date(0), { toJSON: () => "stamped" })
    const tagged = Object.assign(Buffer.from("x"), { toJSON: () => "tagged" })
    assert.deepStrictEqual(JSON.parse(Message.encodeTask("1", [new Day(0), stamped, tagged])).payload, [
      "1970-01-01",
      "stamped",
      "tagged"
    ])
    assert.throws(
      () => Message.encodeTask("1", { at: Object.assign(new Date(0), { toJSON: () => NaN }) }),
      TypeError,
      "payload.at is NaN"
    )
    // An array's toJSON stands for it, as JSON has it (before, the fast walk read the array's items and sent them)
    const listed = Object.assign([1, 2], { toJSON: () => "two items" })
    assert.deepStrictEqual(JSON.parse(Message.encodeTask("1", { listed })).payload, { listed: "two items" })
    class Pair extends Array<number> {
      toJSON() {
        return { first: this[0], second: NaN }
      }
    }
    assert.throws(() => Message.encodeTask("1", [Pair.from([1, 2])]), TypeError, "payload[0].second is NaN")
    // An invalid Date with a toJSON of its own: that toJSON stands for it, and the refusal names what is refused
    const ownDate = Object.assign(new Date(NaN), { toJSON: () => "unknown" })
    assert.deepStrictEqual(JSON.parse(Message.encodeTask("1", { ownDate })).payload, { ownDate: "unknown" })
    assert.throws(() => Message.encodeTask("1", { ownDate, b: NaN }), TypeError, "payload.b is NaN")
    // Date's own toJSON replaced by the program: the replacement stands for every Date, and is held to the rules
    const toJSON = Date.prototype.toJSON
    try {
      Date.prototype.toJSON = () => NaN as unknown as string
      assert.throws(() => Message.encodeTask("1", { at: new Date(0) }), TypeError, "payload.at is NaN")
    } finally {
      Date.prototype.toJSON = toJSON
    }
    // What is no Date though made from its prototype: JSON.stringify's own TypeError, never a defect of ours
    assert.throws(() => Message.encodeTask("1", { at: Object.create(Date.prototype) }), TypeError, "not a Date")
    // problemOf answers what is wrong, never throws it (a topic's publish turns it into a typed error)
    assert.match(StrictJson.problemOf({ at: new Proxy(new Date(0), {}) }, "payload") ?? "", /not a Date/)
    assert.match(StrictJson.problemOf({ at: new Date(NaN) }, "payload") ?? "", /payload\.at is an invalid Date/)
    // A toJSON that answers a value JSON would change is refused too
    assert.throws(
      () => Message.encodeTask("1", { at: { toJSON: () => NaN } }),
      TypeError,
      "payload.at is NaN, which JSON sends as null"
    )
  })
})

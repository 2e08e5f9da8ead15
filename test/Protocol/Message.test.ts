import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
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
        type: FastCheck.constantFrom("ready", "task", 1),
        status: FastCheck.constantFrom("ok", "error", "other"),
        protocol: FastCheck.oneof(FastCheck.integer(), FastCheck.string()),
        result: FastCheck.jsonValue(),
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
    for (const line of [Message.encodeTask(id, payload), Message.encodePing(id), Message.encodeCancel(id)]) {
      assert.isTrue(line.endsWith("\n") && line.indexOf("\n") === line.length - 1)
      assert.isTrue(Schema.is(Message.Outgoing)(JSON.parse(line)))
    }
  })

  it("a payload JSON cannot encode throws (the caller turns it into a ProtocolError)", () => {
    assert.throws(() => Message.encodeTask("1", () => 1))
    assert.throws(() => Message.encodeTask("1", 1n))
    assert.deepStrictEqual(JSON.parse(Message.encodeTask("1", undefined)), { id: "1", type: "task", payload: null })
  })
})

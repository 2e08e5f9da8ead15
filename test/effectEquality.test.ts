/**
 * The test setup's deep equality (`test/effectEquality.ts`): an `Option` is equal to an `Option` of the same kind
 * with a deeply equal value, at any depth; everything else as chai compares it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Option from "effect/Option"

const differ = (left: unknown, right: unknown) => assert.throws(() => assert.deepStrictEqual(left, right))

describe("assert.deepStrictEqual on Options", () => {
  it("tells some from none, either way round and nested", () => {
    differ(Option.some(1), Option.none())
    differ(Option.none(), Option.some(1))
    differ(Option.some(undefined), Option.none())
    differ([Option.some({ a: 1 })], [Option.none()])
    differ({ state: Option.none() }, { state: Option.some("RUNNING") })
    differ(Option.some(Option.some(1)), Option.some(Option.none()))
    differ(Option.some(1), 1)
  })

  it("compares the values deeply", () => {
    differ(Option.some({ a: 1 }), Option.some({ a: 2 }))
    assert.deepStrictEqual(Option.some({ a: [1, { b: 2 }] }), Option.some({ a: [1, { b: 2 }] }))
    assert.deepStrictEqual([Option.none(), { x: Option.some(new Map([["k", 1]])) }], [Option.none(), {
      x: Option.some(new Map([["k", 1]]))
    }])
  })

  it("leaves the rest as it was", () => {
    differ({ a: 1 }, { a: 2 })
    differ(new Map([["k", 1]]), new Map([["k", 2]]))
    assert.deepStrictEqual({ a: [1, 2], b: new Set([3]) }, { a: [1, 2], b: new Set([3]) })
  })
})

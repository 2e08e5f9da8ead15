/**
 * `firstDifference`, the evidence line of the conformance checks that compare structured values (the `publish`
 * check's payload, an echoed object): the path from the root to the first place where the two values part, and
 * what each holds there.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import { deepEqual, firstDifference } from "../src/internal/conformance/check.js"

describe("firstDifference", () => {
  it("names the path to the first differing member or item, and what each side holds there", () => {
    const expected = { invoice: 42, note: null, pages: [1, "two", [3], { four: 4 }], "odd key": { deep: [] } }
    assert.isUndefined(firstDifference(expected, structuredClone(expected), "payload"))
    assert.strictEqual(
      firstDifference(expected, { ...expected, pages: [1, "two", [3], { four: "4" }] }, "payload"),
      `payload.pages[3].four: expected 4, got "4"`
    )
    const { note: _, ...withoutNote } = expected
    assert.strictEqual(
      firstDifference(expected, withoutNote, "payload"),
      "payload.note: expected null, got no such member"
    )
    assert.strictEqual(
      firstDifference(expected, { ...expected, extra: true }, "payload"),
      "payload.extra: expected no such member, got true"
    )
    assert.strictEqual(
      firstDifference(expected, { ...expected, pages: [1, "two", [3]] }, "payload"),
      "payload.pages: expected 4 items, got 3"
    )
    assert.strictEqual(
      firstDifference(expected, { ...expected, "odd key": { deep: {} } }, "payload"),
      `payload["odd key"].deep: expected [], got {}`
    )
    assert.strictEqual(firstDifference([1], { 0: 1 }, "result"), `result: expected [1], got {"0":1}`)
    assert.strictEqual(firstDifference("é", "Ã©", "result"), `result: expected "é", got "Ã©"`)
  })

  it.prop(
    "undefined exactly when the values are deeply equal; else a path from the root",
    [FastCheck.jsonValue(), FastCheck.jsonValue()],
    ([a, b]) => {
      const found = firstDifference(a, b, "root")
      assert.strictEqual(found === undefined, deepEqual(a, b))
      if (found !== undefined) assert.match(found, /^root[.[:]/)
      assert.isUndefined(firstDifference(a, structuredClone(a), "root"))
    }
  )
})

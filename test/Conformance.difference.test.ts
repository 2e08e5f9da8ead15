/**
 * `firstDifference`, the evidence line of the conformance checks that compare structured values (the `publish`
 * check's payload, an echoed object): the path from the root to the first place where the two values part, and
 * what each holds there.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import { deepEqual, differenceLines, firstDifference } from "../src/internal/conformance/check.js"

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
    assert.strictEqual(firstDifference({ n: [3] }, { n: [] }, "data"), "data.n: expected 1 item, got 0")
  })

  it("as evidence: a line only where both values are structured and differ (else the summary says it all)", () => {
    assert.deepStrictEqual(differenceLines({ n: 7 }, { n: 8 }, "result"), [
      "first difference at result.n: expected 7, got 8"
    ])
    assert.deepStrictEqual(differenceLines({ n: 7 }, null, "result"), [])
    assert.deepStrictEqual(differenceLines("a", "b", "result"), [])
    assert.deepStrictEqual(differenceLines({ n: 7 }, { n: 7 }, "result"), [])
  })

  it.prop(
    "a value changed at one place: the path of that place, and what each side holds there",
    [FastCheck.jsonValue(), FastCheck.nat()],
    ([value, pick]) => {
      assert.isUndefined(firstDifference(value, structuredClone(value), "root"))
      // every place in the value, as the path firstDifference writes and the steps to it
      const places: Array<{ readonly path: string; readonly steps: Array<string | number> }> = []
      const walk = (v: unknown, path: string, steps: Array<string | number>) => {
        places.push({ path, steps })
        if (Array.isArray(v)) v.forEach((item, i) => walk(item, `${path}[${i}]`, [...steps, i]))
        else if (typeof v === "object" && v !== null) {
          for (const [key, item] of Object.entries(v)) {
            const step = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
            walk(item, `${path}${step}`, [...steps, key])
          }
        }
      }
      walk(value, "root", [])
      const { path, steps } = places[pick % places.length]
      let original: unknown = value
      for (const step of steps) original = (original as Record<string | number, unknown>)[step]
      // a short string that is not what the place held
      const marker = original === "\u0000changed" ? "\u0000changed!" : "\u0000changed"
      let changed: unknown = marker
      if (steps.length > 0) {
        changed = structuredClone(value)
        let parent = changed as Record<string | number, unknown>
        for (const step of steps.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>
        Object.defineProperty(parent, steps[steps.length - 1], { value: marker, enumerable: true, writable: true })
      }
      const found = firstDifference(value, changed, "root")
      assert.isDefined(found)
      assert.isTrue(found!.startsWith(`${path}: expected `), `${found} at ${path}`)
      assert.isTrue(found!.endsWith(`, got ${JSON.stringify(marker)}`), found)
      assert.isFalse(deepEqual(value, changed))
    }
  )
})

/**
 * The FIFO the store writer and the log files share, against an array as its model: any sequence of operations,
 * long enough to cross its compaction (1,024 shifts), gives what the array gives.
 */
import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import { Fifo } from "../src/internal/fifo.js"

type Op = { readonly op: "push"; readonly n: number } | { readonly op: "shift" } | {
  readonly op: "unshift"
  readonly n: number
} | { readonly op: "clear" }

const op: FastCheck.Arbitrary<Op> = FastCheck.oneof(
  { weight: 6, arbitrary: FastCheck.nat().map((n) => ({ op: "push" as const, n })) },
  { weight: 5, arbitrary: FastCheck.constant({ op: "shift" as const }) },
  { weight: 1, arbitrary: FastCheck.nat().map((n) => ({ op: "unshift" as const, n })) },
  { weight: 1, arbitrary: FastCheck.constant({ op: "clear" as const }) }
)

describe("Fifo", () => {
  it.prop(
    "behaves as an array: push, shift, unshift, peek, size, clear",
    [FastCheck.array(op, { maxLength: 5000 })],
    ([ops]) => {
      const fifo = new Fifo<number>()
      let model: Array<number> = []
      for (const o of ops) {
        switch (o.op) {
          case "push":
            fifo.push(o.n)
            model.push(o.n)
            break
          case "shift":
            assert.strictEqual(fifo.shift(), model.shift())
            break
          case "unshift":
            fifo.unshift(o.n)
            model.unshift(o.n)
            break
          case "clear":
            assert.deepStrictEqual(fifo.clear(), model)
            model = []
        }
        assert.strictEqual(fifo.size, model.length)
        assert.strictEqual(fifo.peek(), model[0])
      }
    },
    { fastCheck: { numRuns: 50 } }
  )

  it("crosses its compaction in order", () => {
    const fifo = new Fifo<number>()
    for (let i = 0; i < 5000; i++) fifo.push(i)
    for (let i = 0; i < 3000; i++) assert.strictEqual(fifo.shift(), i)
    fifo.unshift(-1)
    assert.strictEqual(fifo.size, 2001)
    assert.deepStrictEqual(fifo.clear().slice(0, 3), [-1, 3000, 3001])
  })
})

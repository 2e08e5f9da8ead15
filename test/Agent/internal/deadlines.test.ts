import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as Deadlines from "../../../src/Agent/internal/deadlines.js"
import * as Heap from "../../../src/internal/heap.js"
import * as Ticker from "../../../src/internal/ticker.js"

/** One step of a heap's life: a value pushed, or the least value popped. */
const heapOp = FastCheck.oneof(
  FastCheck.record({ _tag: FastCheck.constant("push" as const), value: FastCheck.integer({ min: -50, max: 50 }) }),
  FastCheck.record({ _tag: FastCheck.constant("pop" as const) })
)

/** One step of the timeouts' life: a deadline added, one removed, the clock moved on. */
const deadlineOp = FastCheck.oneof(
  FastCheck.record({ _tag: FastCheck.constant("add" as const), delay: FastCheck.integer({ min: 0, max: 60 }) }),
  FastCheck.record({ _tag: FastCheck.constant("remove" as const), index: FastCheck.nat() }),
  FastCheck.record({ _tag: FastCheck.constant("advance" as const), millis: FastCheck.integer({ min: 0, max: 25 }) })
)

interface Model {
  readonly key: string
  readonly bucket: number
  readonly order: number
}

describe("deadlines", () => {
  it.prop("the heap's least item is a sorted array's first, its key beside it, through any pushes and pops", [
    FastCheck.array(heapOp, { maxLength: 200 })
  ], ([ops]) => {
    const heap = Heap.make<{ readonly key: number; readonly n: number }>()
    const model: Array<{ readonly key: number; readonly n: number }> = []
    const byKey = (a: { readonly key: number }, b: { readonly key: number }) => a.key - b.key
    ops.forEach((op, n) => {
      if (op._tag === "push") {
        Heap.push(heap, { key: op.value, n }, op.value)
        model.push({ key: op.value, n })
        model.sort(byKey)
      } else if (model.length > 0) {
        assert.strictEqual(heap.keys[0], model[0].key)
        Heap.pop(heap)
        model.splice(model.findIndex((item) => item.key === model[0].key), 1)
      }
      assert.strictEqual(heap.items.length, model.length)
      assert.strictEqual(heap.keys.length, model.length)
      if (model.length > 0) {
        assert.strictEqual(heap.keys[0], model[0].key)
        assert.strictEqual(heap.items[0].key, heap.keys[0])
      }
    })
    // Draining the heap yields every item once, in key order, each beside its key.
    const drained: Array<number> = []
    const seen = new Set<number>()
    while (heap.items.length > 0) {
      assert.strictEqual(heap.items[0].key, heap.keys[0])
      drained.push(heap.keys[0])
      seen.add(heap.items[0].n)
      Heap.pop(heap)
    }
    assert.deepStrictEqual(drained, model.map((item) => item.key))
    assert.strictEqual(seen.size, model.length)
  })

  it.effect.prop(
    "keys expire once their bucket has passed, in deadline order, never early, never when removed",
    [FastCheck.array(deadlineOp, { maxLength: 60 }), FastCheck.constantFrom(1, 5, 7)],
    ([ops, resolution]) =>
      Effect.gen(function*() {
        const clock = yield* Effect.clock
        const expired = yield* Queue.unbounded<readonly [key: string, step: number]>()
        let step = 0
        const deadlines = Deadlines.make(clock, (key) => expired.unsafeOffer([key, step]), resolution)

        const keys: Array<readonly [key: string, bucket: number]> = []
        let live: Array<Model> = []
        const seen: Array<readonly [string, number]> = []
        const expected: Array<readonly [string, number]> = []
        /** Moves what the model says is due at `now` to `expected`, and waits until as many keys have expired. */
        const sweep = (now: number) =>
          Effect.gen(function*() {
            const due = live.filter((entry) => entry.bucket <= now)
              .sort((a, b) => a.bucket - b.bucket || a.order - b.order)
            live = live.filter((entry) => entry.bucket > now)
            for (const entry of due) expected.push([entry.key, step])
            // The sweeper expires everything due in one synchronous pass: once one key of it has arrived, all have.
            if (due.length > 0) seen.push(...(yield* Queue.takeBetween(expired, due.length, due.length)))
            assert.strictEqual(yield* Queue.size(expired), 0, "nothing expires beyond what is due")
            assert.deepStrictEqual(seen, expected)
          })

        for (const op of ops) {
          step++
          const now = clock.unsafeCurrentTimeMillis()
          if (op._tag === "add") {
            const key = `k${keys.length}`
            const bucket = deadlines.add(key, now + op.delay)
            assert.isAtLeast(bucket, now + op.delay, "a deadline never fires early")
            assert.isBelow(bucket, now + op.delay + resolution)
            keys.push([key, bucket])
            live.push({ key, bucket, order: keys.length })
          } else if (op._tag === "remove") {
            if (keys.length === 0) continue
            // Any key ever added: removing one that expired or was removed already does nothing.
            const [key, bucket] = keys[op.index % keys.length]
            deadlines.remove(key, bucket)
            live = live.filter((entry) => entry.key !== key)
          } else {
            yield* TestClock.adjust(op.millis)
          }
          yield* sweep(clock.unsafeCurrentTimeMillis())
        }
        step++
        yield* TestClock.adjust(1000)
        yield* sweep(clock.unsafeCurrentTimeMillis())
        assert.strictEqual(live.length, 0)
      })
  )
  it.effect("one request at a time, answered before its timeout (a heartbeat's pings): one waiter, no fiber", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const ticker = Ticker.forClock(clock)
      const expired: Array<string> = []
      const deadlines = Deadlines.make(clock, (key) => expired.push(key))
      let mostWaiting = 0
      for (let n = 0; n < 100; n++) {
        const key = `ping-${n}`
        const bucket = deadlines.add(key, clock.unsafeCurrentTimeMillis() + 5000)
        yield* TestClock.adjust(1)
        deadlines.remove(key, bucket)
        yield* TestClock.adjust(999)
        mostWaiting = Math.max(mostWaiting, ticker.pending())
      }
      // the last one times out
      deadlines.add("late", clock.unsafeCurrentTimeMillis() + 5000)
      yield* TestClock.adjust(5000)
      assert.deepStrictEqual(expired, ["late"])
      // a sweeper and an alarm fiber per process, and a sleep per ping, before: now one waiter on the shared ticker
      assert.isAtMost(mostWaiting, 1)
      deadlines.close()
      assert.strictEqual(ticker.pending(), 0)
    }))

  it.effect("a bucket dropped (swept, or emptied at the top) and used again: its new deadline still expires", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const expired: Array<string> = []
      const deadlines = Deadlines.make(clock, (key) => expired.push(key), 5)
      // Swept: "a" expires at 10 and its bucket goes; "b", due at that same moment, lands in a bucket of 10 again.
      deadlines.add("a", 10)
      yield* TestClock.adjust(10)
      assert.deepStrictEqual(expired, ["a"])
      deadlines.add("b", 10)
      yield* TestClock.adjust(5)
      assert.deepStrictEqual(expired, ["a", "b"])
      // Emptied at the top: "c" is removed, its bucket dropped when the sweep finds it empty; "d" reuses it.
      const bucket = deadlines.add("c", 20)
      deadlines.remove("c", bucket)
      yield* TestClock.adjust(5)
      deadlines.add("d", 20)
      yield* TestClock.adjust(5)
      assert.deepStrictEqual(expired, ["a", "b", "d"])
    }))

  it.effect("close forgets every deadline: none expires after it", () =>
    Effect.gen(function*() {
      const clock = yield* Effect.clock
      const expired: Array<string> = []
      const deadlines = Deadlines.make(clock, (key) => expired.push(key))
      deadlines.add("a", 100)
      deadlines.add("b", 200)
      deadlines.close()
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(expired, [])
    }))
})

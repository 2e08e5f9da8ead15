import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import { Writable } from "node:stream"
import * as Outbox from "../../../src/Agent/internal/outbox.js"

/**
 * A real `Writable` standing for an agent's stdin: it records every write it is handed, and while `holding` it
 * keeps the write's callback, as a pipe whose reader is behind does (its buffer fills and `write` returns false).
 */
const makeSink = (highWaterMark = 16 * 1024) => {
  const writes: Array<string> = []
  const held: Array<() => void> = []
  const waiters: Array<readonly [count: number, resume: () => void]> = []
  let holding = false
  const stream = new Writable({
    highWaterMark,
    decodeStrings: false,
    write(chunk: string, _encoding, callback) {
      writes.push(chunk)
      for (const [count, resume] of waiters.splice(0)) {
        if (writes.length >= count) resume()
        else waiters.push([count, resume])
      }
      if (holding) held.push(() => callback())
      else callback()
    }
  })
  // The same adapter as `child.ts` gives the outbox for a child's stdin.
  const target: Outbox.Target = {
    write: (data) => stream.write(data),
    onDrain: (callback) => {
      if (!stream.writable || !stream.writableNeedDrain) return callback()
      const done = () => {
        stream.off("drain", done)
        stream.off("close", done)
        callback()
      }
      stream.on("drain", done)
      stream.on("close", done)
    },
    end: () => stream.end(),
    stdinClosed: () => !stream.writable
  }
  return {
    stream,
    target,
    writes,
    hold: () => {
      holding = true
    },
    release: () => {
      holding = false
      for (const callback of held.splice(0)) callback()
    },
    /** Waits until the stream has been handed `count` writes. */
    writesReach: (count: number) =>
      Effect.async<void>((resume) => {
        if (writes.length >= count) return resume(Effect.void)
        waiters.push([count, () => resume(Effect.void)])
      }),
    finished: Effect.async<void>((resume) => {
      if (stream.writableFinished) return resume(Effect.void)
      stream.once("finish", () => resume(Effect.void))
    })
  }
}

/** Waits for the microtasks queued so far (the outbox's flush is one). */
const nextMicrotask = Effect.promise(() => new Promise<void>((resolve) => queueMicrotask(resolve)))

const line = (n: number, size = 10) => `${String(n).padStart(size - 1, "0")}\n`

describe("outbox", () => {
  it.effect("the first line of a turn is written at once; the rest of the turn is joined into one write", () =>
    Effect.gen(function*() {
      const sink = makeSink()
      const outbox = Outbox.make(sink.target)
      outbox.send(line(1))
      outbox.send(line(2))
      outbox.send(line(3))
      // Synchronously: only the first line, before any microtask.
      assert.deepStrictEqual(sink.writes, [line(1)])
      assert.strictEqual(outbox.size(), 2)
      yield* sink.writesReach(2)
      assert.deepStrictEqual(sink.writes, [line(1), line(2) + line(3)])
      assert.strictEqual(outbox.size(), 0)
      // A new turn: its first line goes out at once again.
      yield* nextMicrotask
      outbox.send(line(4))
      assert.deepStrictEqual(sink.writes, [line(1), line(2) + line(3), line(4)])
    }))

  it.effect("many outboxes in one turn: each batches its own lines, one flush a turn for all; a throw stops no other", () =>
    Effect.gen(function*() {
      const sinks = Array.from({ length: 20 }, () => makeSink())
      const outboxes = sinks.map((sink) => Outbox.make(sink.target))
      // Two targets whose write throws on its second call (a bug in a target: the outboxes' flush runs it).
      const failingOutbox = (message: string) => {
        let calls = 0
        return Outbox.make({
          ...sinks[0].target,
          write: () => {
            if (++calls === 2) throw new Error(message)
            return true
          }
        })
      }
      const failing = failingOutbox("boom")
      const failingToo = failingOutbox("boom too")
      // Counted while the lines are sent: the microtasks the outboxes queue (a `then` on a settled promise each;
      // nothing else runs in this block).
      const queue = globalThis.queueMicrotask
      const then = Promise.prototype.then
      let queued = 0
      globalThis.queueMicrotask = (callback) => {
        queued++
        queue(callback)
      }
      Promise.prototype.then = function(this: Promise<unknown>, ...args: Parameters<typeof then>) {
        queued++
        return then.apply(this, args)
      } as typeof then
      try {
        failing.send(line(0))
        failing.send(line(0))
        failingToo.send(line(0))
        failingToo.send(line(0))
        outboxes.forEach((outbox, i) => outbox.send(line(i)))
        outboxes.forEach((outbox, i) => outbox.send(line(100 + i)))
        outboxes.forEach((outbox, i) => outbox.send(line(200 + i)))
      } finally {
        globalThis.queueMicrotask = queue
        Promise.prototype.then = then
      }
      assert.strictEqual(queued, 1, "one microtask for the turn, not one per outbox")
      // Synchronously: each outbox's first line only.
      sinks.forEach((sink, i) => assert.deepStrictEqual(sink.writes, [line(i)]))
      // The flushes of the failing outboxes throw at the end of the turn: the process sees each, as it saw a throw
      // in a microtask of its own before; every other outbox's lines are still written.
      const thrown: Array<unknown> = []
      const onUncaught = (error: unknown) => thrown.push(error)
      const listeners = process.listeners("uncaughtException")
      process.removeAllListeners("uncaughtException")
      process.on("uncaughtException", onUncaught)
      yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      process.off("uncaughtException", onUncaught)
      for (const listener of listeners) process.on("uncaughtException", listener)
      sinks.forEach((sink, i) => assert.deepStrictEqual(sink.writes, [line(i), line(100 + i) + line(200 + i)]))
      assert.deepStrictEqual(thrown.map(String), ["Error: boom", "Error: boom too"])
      // The next turn starts afresh: the first line goes out at once.
      outboxes[3].send(line(300))
      assert.deepStrictEqual(sinks[3].writes.at(-1), line(300))
    }))

  it.effect("batches hold about 4 KiB and never split a line", () =>
    Effect.gen(function*() {
      const sink = makeSink(1024 * 1024)
      const outbox = Outbox.make(sink.target)
      const lines = Array.from({ length: 40 }, (_, i) => line(i, 1000))
      for (const l of lines) outbox.send(l)
      // 1 line at once, then 39 of 1000 chars in writes of 5 lines (5000 chars, the first to reach 4096), the last 4.
      yield* sink.writesReach(9)
      yield* nextMicrotask
      assert.deepStrictEqual(sink.writes.map((w) => w.length), [1000, 5000, 5000, 5000, 5000, 5000, 5000, 5000, 4000])
      assert.strictEqual(sink.writes.join(""), lines.join(""))
    }))

  it.effect("a full pipe stops the writes until it drains, then the lines go on in order", () =>
    Effect.gen(function*() {
      // A buffer smaller than a line: the first write fills it.
      const sink = makeSink(8)
      const outbox = Outbox.make(sink.target)
      sink.hold()
      outbox.send(line(1))
      assert.deepStrictEqual(sink.writes, [line(1)])
      assert.isTrue(sink.stream.writableNeedDrain)
      for (let n = 2; n <= 5; n++) outbox.send(line(n))
      yield* nextMicrotask
      yield* nextMicrotask
      // Blocked: nothing more was handed to the stream, the lines wait in the outbox.
      assert.deepStrictEqual(sink.writes, [line(1)])
      assert.strictEqual(outbox.size(), 4)
      sink.release()
      yield* sink.writesReach(2)
      assert.deepStrictEqual(sink.writes, [line(1), line(2) + line(3) + line(4) + line(5)])
      assert.strictEqual(outbox.size(), 0)
    }))

  it.effect("end closes stdin after the lines already queued, also behind a full pipe; later lines are dropped", () =>
    Effect.gen(function*() {
      const sink = makeSink(8)
      const outbox = Outbox.make(sink.target)
      sink.hold()
      outbox.send(line(1))
      outbox.send(line(2))
      outbox.end()
      outbox.send(line(3))
      yield* nextMicrotask
      assert.isFalse(sink.stream.writableEnded, "not ended while lines wait for the drain")
      sink.release()
      yield* sink.finished
      assert.deepStrictEqual(sink.writes, [line(1), line(2)])
      outbox.send(line(4))
      assert.strictEqual(outbox.size(), 0)
    }))

  it.effect("lines for a closed pipe are dropped, not thrown", () =>
    Effect.gen(function*() {
      const sink = makeSink()
      const outbox = Outbox.make(sink.target)
      sink.stream.destroy()
      outbox.send(line(1))
      outbox.send(line(2))
      yield* nextMicrotask
      assert.deepStrictEqual(sink.writes, [])
      assert.strictEqual(outbox.size(), 0)
    }))

  it.effect.prop(
    "whatever the turns and the pipe's pace, the stream gets every line once, in order, in whole lines",
    [
      FastCheck.array(
        FastCheck.record({
          sizes: FastCheck.array(FastCheck.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 12 }),
          hold: FastCheck.boolean()
        }),
        { minLength: 1, maxLength: 12 }
      )
    ],
    ([turns]) =>
      Effect.gen(function*() {
        const sink = makeSink(4096)
        const outbox = Outbox.make(sink.target)
        const lines: Array<string> = []
        for (const turn of turns) {
          if (turn.hold) sink.hold()
          else sink.release()
          for (const size of turn.sizes) {
            const l = line(lines.length, size + 1)
            lines.push(l)
            outbox.send(l)
          }
          yield* nextMicrotask
        }
        sink.release()
        outbox.end()
        yield* sink.finished
        assert.strictEqual(sink.writes.join(""), lines.join(""))
        // Every write is whole lines: it ends a line, and the next write starts one.
        let offset = 0
        const starts = new Set(lines.map((l) => (offset += l.length) - l.length))
        offset = 0
        for (const write of sink.writes) {
          assert.isTrue(starts.has(offset), `a write starts inside a line at ${offset}`)
          assert.isTrue(write.endsWith("\n"))
          offset += write.length
        }
      })
  )
})

import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Writer from "../../src/Store/internal/writer.js"
import * as Memory from "../../src/Store/Memory.js"
import * as Store from "../../src/Store/Store.js"
import { forkCounter } from "../support.js"

const state = (n: number): Store.StateRecord => ({
  agent_name: "w",
  state: `S${n}`,
  restart_count: n,
  updated_at: n
})
const metric = (n: number): Store.MetricEvent => ({ event: "tick", agent_name: "w", timestamp: n })
const restart = (n: number): Store.RestartRecord => ({
  agent_name: "w",
  timestamp: n,
  reason: "crash",
  attempt: n,
  delay_ms: 0
})

/**
 * A resilient store that records what reaches it, in order, after `gate` (run before every write) lets it through.
 */
const recording = (gate: (label: string) => Effect.Effect<void> = () => Effect.void) => {
  const received: Array<string> = []
  const store = Effect.flatMap(Memory.make(), (memory) =>
    Store.resilient({
      ...memory,
      saveState: (r) => Effect.zipRight(gate(r.state), Effect.sync(() => received.push(r.state))),
      saveMetric: (e) => Effect.zipRight(gate(`M${e.timestamp}`), Effect.sync(() => received.push(`M${e.timestamp}`))),
      saveMetrics: (events) => {
        const label = events.map((e) => `M${e.timestamp}`).join("+")
        return Effect.zipRight(gate(label), Effect.sync(() => received.push(label)))
      },
      recordRestart: (r) => Effect.zipRight(gate(`R${r.attempt}`), Effect.sync(() => received.push(`R${r.attempt}`))),
      saveCheckpoint: (r) =>
        Effect.zipRight(
          gate(`C${r.agent_name}=${JSON.stringify(r.data)}`),
          Effect.zipRight(
            Effect.sync(() => received.push(`C${r.agent_name}=${JSON.stringify(r.data)}`)),
            memory.saveCheckpoint!(r)
          )
        ),
      deleteAgent: (agent) =>
        Effect.zipRight(
          gate(`F${agent}`),
          Effect.zipRight(Effect.sync(() => received.push(`F${agent}`)), memory.deleteAgent!(agent))
        )
    }, { timeout: "1 hour" }))
  return { received, store }
}

/** A store that hangs on `first` until `release` completes, and records every write. */
const blocked = Effect.gen(function*() {
  const started = yield* Deferred.make<string>()
  const release = yield* Deferred.make<void>()
  const { received, store } = recording((label) =>
    Effect.zipRight(Deferred.succeed(started, label), Deferred.await(release))
  )
  return { started, release, received, store: yield* store }
})

const checkpoint = (agent: string, n: number): Store.CheckpointRecord => ({
  agent_name: agent,
  data: { n },
  updated_at: n
})

describe("Store.Writer", () => {
  it.effect("checkpoints: one waiting per agent, the latest; read back before the store has it; never dropped", () =>
    Effect.gen(function*() {
      const { received, release, started, store } = yield* blocked
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(store, { capacity: 2 }).pipe(Scope.extend(scope))
      yield* writer.saveState(state(0))
      assert.strictEqual(yield* Deferred.await(started), "S0")
      // While the store is stuck: 100 checkpoints of one agent, one of another, and metrics past the capacity.
      for (let n = 1; n <= 100; n++) writer.offerCheckpoint(checkpoint("a", n))
      yield* writer.saveCheckpoint(checkpoint("b", 1))
      for (let n = 1; n <= 5; n++) yield* writer.saveMetric(metric(n))
      assert.deepStrictEqual(
        Option.map(yield* writer.loadCheckpoint("a"), (r) => r.data),
        Option.some({ n: 100 }),
        "read your writes"
      )
      yield* Deferred.succeed(release, undefined)
      yield* writer.flush
      assert.deepStrictEqual(received.filter((label) => label.startsWith("C")), ["Ca={\"n\":100}", "Cb={\"n\":1}"])
      // Once written, read from the store.
      assert.deepStrictEqual(Option.map(yield* writer.loadCheckpoint("b"), (r) => r.data), Option.some({ n: 1 }))
      assert.isTrue(Option.isNone(yield* writer.loadCheckpoint("c")))
      // Metrics gave way to the capacity; the checkpoints did not.
      assert.strictEqual(yield* writer.dropped, 5)
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("forgetAgent: after the agent's writes before it, before those after it; nothing of it read back", () =>
    Effect.gen(function*() {
      // The store takes checkpoints and forgettings at once, and holds states until `release`
      const started = yield* Deferred.make<string>()
      const release = yield* Deferred.make<void>()
      const { received, store: made } = recording((label) =>
        label.startsWith("S") ? Effect.zipRight(Deferred.succeed(started, label), Deferred.await(release)) : Effect.void
      )
      const store = yield* made
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(store).pipe(Scope.extend(scope))
      yield* writer.saveCheckpoint(checkpoint("a", 0))
      yield* writer.flush
      yield* writer.saveState(state(0))
      assert.strictEqual(yield* Deferred.await(started), "S0")
      // While the store is stuck, and holds a's checkpoint 0: a newer one, a forgetting, then one under the same name
      yield* writer.saveCheckpoint(checkpoint("a", 1))
      yield* writer.saveCheckpoint(checkpoint("b", 1))
      yield* writer.forgetAgent("a")
      assert.isTrue(Option.isNone(yield* writer.loadCheckpoint("a")), "forgotten at once, not the store's old one")
      yield* writer.saveCheckpoint(checkpoint("a", 2))
      assert.deepStrictEqual(Option.map(yield* writer.loadCheckpoint("a"), (r) => r.data), Option.some({ n: 2 }))
      yield* Deferred.succeed(release, undefined)
      yield* writer.flush
      assert.deepStrictEqual(received, ["Ca={\"n\":0}", "S0", "Ca={\"n\":1}", "Cb={\"n\":1}", "Fa", "Ca={\"n\":2}"])
      assert.deepStrictEqual(Option.map(yield* store.loadCheckpoint("a"), (r) => r.data), Option.some({ n: 2 }))
      assert.deepStrictEqual(Option.map(yield* store.loadCheckpoint("b"), (r) => r.data), Option.some({ n: 1 }))
      // Forgotten with nothing after it: read from the store once it has been handed the forgetting
      yield* writer.forgetAgent("b")
      yield* writer.flush
      assert.isTrue(Option.isNone(yield* writer.loadCheckpoint("b")))
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("a checkpoint waits as a metric does, at most the metric delay", () =>
    Effect.gen(function*() {
      const written = yield* Deferred.make<string>()
      const { store } = recording((label) =>
        label.startsWith("C") ? Effect.asVoid(Deferred.succeed(written, label)) : Effect.void
      )
      const writer = yield* Writer.make(yield* store)
      // the draining fiber has started, written this, and waits
      yield* writer.saveState(state(0))
      yield* writer.flush
      yield* writer.saveCheckpoint(checkpoint("a", 1))
      yield* writer.saveCheckpoint(checkpoint("a", 2))
      yield* TestClock.adjust(Writer.METRIC_DELAY_MILLIS / 2)
      yield* Effect.yieldNow()
      assert.isFalse(yield* Deferred.isDone(written))
      // the delay is on the Clock's grid (20 ms), so its end is within one step of METRIC_DELAY_MILLIS
      yield* TestClock.adjust(Writer.METRIC_DELAY_MILLIS)
      assert.strictEqual(yield* Deferred.await(written), "Ca={\"n\":2}")
    }))

  it.effect("writes return at once while the store hangs", () =>
    Effect.gen(function*() {
      const { received, release, started, store } = yield* blocked
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(store).pipe(Scope.extend(scope))
      yield* writer.saveState(state(0))
      // The store took the first write and is stuck on it...
      assert.strictEqual(yield* Deferred.await(started), "S0")
      // ...yet every further write returns, without the clock moving or the store answering.
      for (let n = 1; n <= 100; n++) yield* writer.saveMetric(metric(n))
      yield* writer.saveState(state(1))
      yield* writer.recordRestart(restart(1))
      assert.deepStrictEqual(received, [])
      yield* Deferred.succeed(release, undefined)
      yield* writer.flush
      const metrics = Array.from({ length: 100 }, (_, i) => `M${i + 1}`).join("+")
      assert.deepStrictEqual(received, ["S0", metrics, "S1", "R1"])
      assert.strictEqual(yield* writer.dropped, 0)
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("writes return at once while a store hangs for ever, and the timeouts are counted", () =>
    Effect.gen(function*() {
      const store = yield* Store.resilient(
        yield* Memory.make().pipe(Effect.map((m) => ({
          ...m,
          saveState: (r: Store.StateRecord) => r.updated_at <= 2 ? Effect.never : m.saveState(r)
        })))
      )
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(store).pipe(Scope.extend(scope))
      yield* writer.saveState(state(1))
      yield* writer.saveState(state(2))
      yield* writer.saveState(state(3))
      const flushed = yield* Effect.fork(writer.flush)
      yield* TestClock.adjust("5 seconds")
      assert.isTrue(Option.isNone(yield* Fiber.poll(flushed)))
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(flushed)
      assert.strictEqual(yield* store.failures, 2)
      assert.isTrue(Option.isSome(yield* store.getState("w")))
      yield* Scope.close(scope, Exit.void)
    }))

  it.scoped("hands writes to the store in order", () =>
    Effect.gen(function*() {
      const { received, store } = recording()
      const writer = yield* Writer.make(yield* store)
      yield* writer.saveState(state(1))
      yield* writer.saveMetric(metric(1))
      yield* writer.recordRestart(restart(1))
      yield* writer.saveMetric(metric(2))
      yield* writer.saveState(state(2))
      yield* writer.saveMetric(metric(3))
      yield* writer.recordRestart(restart(2))
      yield* writer.flush
      assert.deepStrictEqual(received, ["S1", "M1", "R1", "M2", "S2", "M3", "R2"])
    }))

  it.scoped("consecutive metrics reach the store in one write (saveMetrics), never across a state or a restart", () =>
    Effect.gen(function*() {
      const { received, store } = recording()
      const writer = yield* Writer.make(yield* store)
      yield* writer.saveState(state(1))
      yield* writer.flush
      for (let n = 1; n <= 3; n++) yield* writer.saveMetric(metric(n))
      yield* writer.recordRestart(restart(1))
      yield* writer.saveMetric(metric(4))
      yield* writer.saveMetric(metric(5))
      yield* writer.saveState(state(2))
      yield* writer.saveMetric(metric(6))
      yield* writer.flush
      assert.deepStrictEqual(received, ["S1", "M1+M2+M3", "R1", "M4+M5", "S2", "M6"])
      // at most METRIC_BATCH in one write
      received.length = 0
      for (let n = 0; n < Writer.METRIC_BATCH + 5; n++) yield* writer.saveMetric(metric(n))
      yield* writer.flush
      assert.deepStrictEqual(received.map((label) => label.split("+").length), [Writer.METRIC_BATCH, 5])
    }))

  it.effect("metrics wake the store's writer at most every METRIC_DELAY_MILLIS; a state, at once", () =>
    Effect.gen(function*() {
      const { received, store } = recording()
      const writer = yield* Writer.make(yield* store)
      // the draining fiber has started, written this, and waits
      yield* writer.saveState(state(0))
      yield* writer.flush
      received.length = 0
      yield* writer.saveMetric(metric(1))
      yield* writer.saveMetric(metric(2))
      yield* TestClock.adjust(Writer.METRIC_DELAY_MILLIS - Writer.METRIC_DELAY_MILLIS / 2)
      yield* Effect.yieldNow()
      assert.deepStrictEqual(received, [])
      // the delay is on the Clock's grid (20 ms), so its end is within one step of METRIC_DELAY_MILLIS
      yield* TestClock.adjust(Writer.METRIC_DELAY_MILLIS)
      yield* Effect.yieldNow()
      assert.deepStrictEqual(received, ["M1+M2"])
      yield* writer.saveMetric(metric(3))
      yield* writer.saveState(state(1))
      yield* Effect.yieldNow()
      assert.deepStrictEqual(received, ["M1+M2", "M3", "S1"])
    }).pipe(Effect.scoped))

  it.effect("a full buffer drops the oldest metric and counts it, never a state or a restart", () =>
    Effect.gen(function*() {
      const { received, release, started, store } = yield* blocked
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(store, { capacity: 3 }).pipe(Scope.extend(scope))
      yield* writer.saveMetric(metric(1))
      yield* Deferred.await(started) // M1 is with the store: the buffer is empty
      yield* writer.saveState(state(1))
      yield* writer.saveMetric(metric(2))
      yield* writer.saveMetric(metric(3)) // full: [S1, M2, M3]
      yield* writer.saveMetric(metric(4)) // drops M2
      yield* writer.saveState(state(2)) // drops M3
      yield* writer.recordRestart(restart(1)) // drops M4: [S1, S2, R1]
      assert.strictEqual(yield* writer.dropped, 3)
      yield* writer.saveMetric(metric(5)) // no metric to drop but itself
      yield* writer.saveState(state(3)) // kept, past capacity
      yield* writer.recordRestart(restart(2)) // kept, past capacity
      assert.strictEqual(yield* writer.dropped, 4)
      yield* Deferred.succeed(release, undefined)
      yield* writer.flush
      assert.deepStrictEqual(received, ["M1", "S1", "S2", "R1", "S3", "R2"])
      yield* writer.saveMetric(metric(6))
      yield* writer.flush
      assert.deepStrictEqual(received, ["M1", "S1", "S2", "R1", "S3", "R2", "M6"])
      assert.strictEqual(yield* writer.dropped, 4)
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("flush waits until what was written before it has been stored", () =>
    Effect.gen(function*() {
      const { received, store } = recording(() => Effect.sleep("100 millis"))
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(yield* store).pipe(Scope.extend(scope))
      yield* writer.flush // nothing written: returns at once
      yield* writer.saveMetric(metric(1))
      yield* writer.saveState(state(1))
      yield* writer.recordRestart(restart(1))
      const flushed = yield* Effect.fork(writer.flush)
      yield* TestClock.adjust("250 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(flushed)))
      assert.deepStrictEqual(received, ["M1", "S1"])
      yield* TestClock.adjust("50 millis")
      yield* Fiber.join(flushed)
      assert.deepStrictEqual(received, ["M1", "S1", "R1"])
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("closing the scope stores what is still buffered", () =>
    Effect.gen(function*() {
      const { received, store } = recording()
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(yield* store).pipe(Scope.extend(scope))
      yield* writer.saveState(state(1))
      yield* writer.saveMetric(metric(1))
      yield* writer.recordRestart(restart(1))
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(received, ["S1", "M1", "R1"])
      // Once closed, writes are ignored (and counted) and flush returns at once.
      yield* writer.saveMetric(metric(2))
      yield* writer.flush
      assert.deepStrictEqual(received, ["S1", "M1", "R1"])
      assert.strictEqual(yield* writer.dropped, 1)
    }))

  it.effect("closing the scope waits for a slow store", () =>
    Effect.gen(function*() {
      const { received, store } = recording(() => Effect.sleep("1 second"))
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(yield* store, { flushTimeout: "5 seconds" }).pipe(Scope.extend(scope))
      yield* writer.saveState(state(1))
      yield* writer.saveState(state(2))
      const closed = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("1 second")
      assert.isTrue(Option.isNone(yield* Fiber.poll(closed)))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closed)
      assert.deepStrictEqual(received, ["S1", "S2"])
      assert.strictEqual(yield* writer.dropped, 0)
    }))

  it.effect("closing the scope gives up after flushTimeout when the store hangs", () =>
    Effect.gen(function*() {
      const { received, started, store } = yield* blocked
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(store, { flushTimeout: "2 seconds" }).pipe(Scope.extend(scope))
      yield* writer.saveMetric(metric(1))
      yield* writer.saveState(state(1))
      yield* writer.recordRestart(restart(1))
      yield* Deferred.await(started)
      const closed = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("1999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(closed)))
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(closed)
      assert.deepStrictEqual(received, [])
      // S1 and R1 were still buffered; M1 was with the store.
      assert.strictEqual(yield* writer.dropped, 2)
    }))

  it.effect("a flush waiting when the scope closes is released", () =>
    Effect.gen(function*() {
      const { started, store } = yield* blocked
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(store, { flushTimeout: "1 second" }).pipe(Scope.extend(scope))
      yield* writer.saveMetric(metric(1))
      yield* Deferred.await(started)
      const flushed = yield* Effect.fork(writer.flush)
      const closed = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closed)
      yield* Fiber.join(flushed)
    }))
  it.effect("a write that ignores interruption: the writes after it go on at its timeout, and closing does not wait", () =>
    Effect.gen(function*() {
      const received: Array<string> = []
      const store = yield* Store.resilient(
        yield* Memory.make().pipe(Effect.map((m) => ({
          ...m,
          saveState: (r: Store.StateRecord) =>
            r.updated_at === 1
              ? Effect.uninterruptible(Effect.never)
              : Effect.sync(() => received.push(r.state)),
          recordRestart: (r: Store.RestartRecord) => Effect.sync(() => received.push(`R${r.attempt}`)),
          saveMetrics: (events: ReadonlyArray<Store.MetricEvent>) =>
            Effect.sync(() => received.push(events.map((e) => `M${e.timestamp}`).join("+")))
        })))
      )
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(store).pipe(Scope.extend(scope))
      yield* writer.saveState(state(1))
      yield* writer.saveState(state(2))
      yield* writer.recordRestart(restart(1))
      const flushed = yield* Effect.fork(writer.flush)
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(flushed)))
      assert.deepStrictEqual(received, [])
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(flushed)
      assert.deepStrictEqual(received, ["S2", "R1"])
      assert.strictEqual(yield* store.failures, 1)
      // Later writes go through the draining fiber that took over; closing waits for none stuck in the store.
      yield* writer.saveMetric(metric(3))
      yield* writer.saveMetric(metric(4))
      yield* writer.flush
      assert.deepStrictEqual(received, ["S2", "R1", "M3+M4"])
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* writer.dropped, 0)
    }))

  it.effect("a write that times out is counted once, whatever it does after; the writes after it keep their order", () =>
    Effect.gen(function*() {
      const received: Array<string> = []
      const push = (label: string) => Effect.sync(() => received.push(label))
      const store = yield* Store.resilient(
        yield* Memory.make().pipe(Effect.map((m) => ({
          ...m,
          // S2 finishes its sleep after the 5 s timeout even when interrupted, then is interrupted before it writes
          saveState: (r: Store.StateRecord) =>
            Effect.zipRight(
              r.updated_at === 2 ? Effect.uninterruptible(Effect.sleep("6 seconds")) : Effect.void,
              push(r.state)
            ),
          saveMetrics: (events: ReadonlyArray<Store.MetricEvent>) =>
            push(events.map((e) => `M${e.timestamp}`).join("+")),
          recordRestart: (r: Store.RestartRecord) => push(`R${r.attempt}`)
        })))
      )
      const scope = yield* Scope.make()
      const writer = yield* Writer.make(store).pipe(Scope.extend(scope))
      for (let n = 1; n <= 4; n++) yield* writer.saveState(state(n))
      yield* writer.recordRestart(restart(1))
      yield* writer.saveMetric(metric(1))
      yield* writer.saveMetric(metric(2))
      const flushed = yield* Effect.fork(writer.flush)
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(flushed)
      assert.deepStrictEqual(received, ["S1", "S3", "S4", "R1", "M1+M2"])
      assert.strictEqual(yield* store.failures, 1)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(received, ["S1", "S3", "S4", "R1", "M1+M2"])
      assert.strictEqual(yield* store.failures, 1)
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("writes run in the draining fiber: a few fibers for a thousand writes, not several per write", () =>
    Effect.gen(function*() {
      const counter = forkCounter()
      const { received, store } = recording()
      yield* Effect.gen(function*() {
        const scope = yield* Scope.make()
        const writer = yield* Writer.make(yield* store).pipe(Scope.extend(scope))
        for (let n = 1; n <= 1000; n++) {
          yield* writer.saveMetric(metric(n))
          // one at a time, as a heartbeat writes them: the drain wakes for each
          if (n % 10 === 0) yield* writer.flush
        }
        yield* writer.flush
        yield* Scope.close(scope, Exit.void)
      }).pipe(Effect.supervised(counter.supervisor))
      assert.strictEqual(received.flatMap((label) => label.split("+")).length, 1000)
      // the draining fiber, the watchdog and its sleeps (a race of two fibers per timeout period, none here)
      assert.isAtMost(counter.started(), 10)
    }))
})

/**
 * Protocol 1.1 `checkpoint` under supervision: the agent's checkpoint kept (in memory and in the store), its size
 * bound, `restore` right after the next incarnation's `ready` and before any task, with the checkpoints of the
 * requests in flight at a crash; and the test, a counting agent SIGKILLed that goes on from its last
 * checkpoint, through `AgentSupervisor` and through `Supervisor.callStream`, over the memory store and SQLite.
 *
 * Synchronisation: on the agent's events (`Restored`, `Exited`) and on what the agent answers; never on a sleep.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as path from "node:path"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as StreamEvent from "../../src/Agent/StreamEvent.js"
import * as Store from "../../src/Store/Store.js"
import * as Supervisor from "../../src/Supervisor.js"
import type * as SupervisorEvent from "../../src/SupervisorEvent.js"
import { agentConfig, failureOf, fixture, takeUntil, tempDir, TestLive } from "../support.js"

const config = (overrides: Partial<Parameters<typeof agentConfig>[1]> = {}) => ({
  ...agentConfig("streaming", { restartBackoff: 0 }),
  name: "counter",
  args: [fixture("agents", "streaming.mjs"), "stream,checkpoint"],
  ...overrides
})

/** What the raw 1.1 agent puts in every answer. */
interface Answer {
  readonly first: string | null
  readonly restored: { readonly data?: { readonly count?: number }; readonly requests?: Record<string, unknown> } | null
  readonly from?: number
  readonly count?: number
}

const restoredOf = (events: Queue.Dequeue<AgentSupervisor.AgentEvent>) =>
  Effect.map(
    takeUntil(events, (event) => event._tag === "Restored"),
    (seen) => seen[seen.length - 1] as Extract<AgentSupervisor.AgentEvent, { _tag: "Restored" }>
  )

const killGroup = (pid: number) => Effect.sync(() => process.kill(-pid, "SIGKILL"))

const pidOf = (agent: AgentSupervisor.AgentSupervisor) =>
  Effect.map(agent.metadata, (metadata) => Option.getOrThrow(metadata.pid))

/**
 * Counts as a stream until `at`, then SIGKILLs the agent's process group: the chunks seen, in order, and the
 * stream's failure.
 */
const countUntilKilled = <E, R>(stream: Stream.Stream<StreamEvent.StreamEvent, E, R>, at: number, pid: number) =>
  Effect.gen(function*() {
    const seen: Array<number> = []
    const exit = yield* stream.pipe(
      StreamEvent.runForEach((n) =>
        Effect.suspend(() => {
          seen.push(n as number)
          return n === at ? killGroup(pid) : Effect.void
        })
      ),
      Effect.exit
    )
    return { seen, error: failureOf(exit) }
  })

const checkpointOf = (agent: AgentSupervisor.AgentSupervisor) =>
  Effect.map(agent.metadata, (metadata) => Option.getOrUndefined(metadata.checkpoint) as { count: number } | undefined)

const dataOf = (agent: AgentSupervisor.AgentSupervisor) =>
  Effect.map(agent.metadata, (metadata) => Option.getOrUndefined(metadata.checkpoint))

const stores: ReadonlyArray<readonly [string, (dir: string) => Layer.Layer<Store.Store, unknown>]> = [
  ["memory", () => Store.layerMemory],
  ["SQLite", (dir) => Store.layerSqlite({ filename: path.join(dir, "agents.sqlite") })]
]

describe.sequential("checkpoints", () => {
  it.scopedLive("none to restore: no restore is sent, the first message is the task", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(config())
      const answer = (yield* agent.handleEvent({})) as Answer
      assert.deepInclude(answer, { first: "task", restored: null })
      assert.isTrue(Option.isNone((yield* agent.metadata).checkpoint))
      assert.deepStrictEqual((yield* agent.metadata).features, ["stream", "checkpoint"])
    }).pipe(Effect.provide(TestLive)))

  for (const [name, layerOf] of stores) {
    it.scopedLive(`${name}: the agent's checkpoint is kept in the store, the latest wins`, () =>
      Effect.gen(function*() {
        const layer = layerOf(yield* tempDir("checkpoint-store"))
        yield* Effect.gen(function*() {
          yield* Effect.scoped(Effect.gen(function*() {
            const agent = yield* AgentSupervisor.make(config())
            yield* agent.handleEvent({ checkpoints: [{ step: 1 }, { step: 2 }] })
            yield* agent.handleEvent({ checkpoint: { step: 3, text: "é\n\"q\"" } })
            assert.deepStrictEqual(yield* dataOf(agent), { step: 3, text: "é\n\"q\"" })
          }))
          // The scope closed: the writer flushed what it had.
          const stored = yield* Effect.flatMap(Store.Store, (store) => store.loadCheckpoint!("counter"))
          assert.deepStrictEqual(
            Option.map(stored, (record) => record.data),
            Option.some({ step: 3, text: "é\n\"q\"" })
          )
        }).pipe(Effect.provide(layer))
      }).pipe(Effect.provide(TestLive)))
  }

  it.scopedLive("a checkpoint over maxCheckpointBytes is dropped and counted; the one before stays", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(config({ maxCheckpointBytes: 64 }))
      yield* agent.handleEvent({ checkpoints: [{ n: 1 }, { big: "x".repeat(100) }] })
      let metadata = yield* agent.metadata
      assert.deepStrictEqual(Option.getOrUndefined(metadata.checkpoint), { n: 1 })
      assert.strictEqual(metadata.droppedCheckpoints, 1)
      yield* agent.handleEvent({ checkpoints: [{ big: "y".repeat(100) }, { n: 2 }] })
      metadata = yield* agent.metadata
      assert.deepStrictEqual(Option.getOrUndefined(metadata.checkpoint), { n: 2 })
      assert.strictEqual(metadata.droppedCheckpoints, 2)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a checkpoint no store could keep as it came (1e400: Infinity once read) is dropped; the one before stays", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(config())
      yield* agent.handleEvent({ checkpoints: [{ n: 1 }] })
      // JSON.parse reads 1e400 as Infinity, which JSON would write again as null: before, kept as { big: Infinity }
      // in memory, refused by a SQL store, and restored as { big: null }
      yield* agent.handleEvent({ rawCheckpoint: `{"big":1e400}` })
      yield* agent.handleEvent({ rawCheckpoint: `[1, -1e999]` })
      const metadata = yield* agent.metadata
      assert.deepStrictEqual(Option.getOrUndefined(metadata.checkpoint), { n: 1 })
      yield* agent.handleEvent({ checkpoints: [{ n: 2, small: 1e-400 }] })
      assert.deepStrictEqual(Option.getOrUndefined((yield* agent.metadata).checkpoint), { n: 2, small: 0 })
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("restore right after ready, before the first task; with the checkpoints of requests in flight", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(config())
      const events = yield* agent.subscribe
      yield* agent.handleEvent({ checkpoint: { count: 41 } })
      // A request that sends its own checkpoint, and whose agent dies with it in flight.
      const crash = failureOf(yield* Effect.exit(agent.handleEvent({ requestCheckpoint: { page: 3 }, then: "crash" })))
      assert.strictEqual(crash._tag, "AgentCrashError")
      // Sent while the agent restarts: it waits for the new incarnation, and reaches it after its restore.
      const waiting = yield* Effect.fork(agent.handleEvent({}))
      const restored = yield* restoredOf(events)
      assert.isTrue(restored.checkpoint)
      assert.strictEqual(restored.requests.length, 1)
      const [oldId] = restored.requests
      const answer = (yield* Fiber.join(waiting)) as Answer
      assert.strictEqual(answer.first, "restore")
      assert.deepStrictEqual(answer.restored, {
        type: "restore",
        data: { count: 41 },
        requests: { [oldId]: { page: 3 } }
      } as never)
      // The request checkpoints go with that one restore only; the agent's own is sent at every start.
      yield* agent.restart
      const again = yield* restoredOf(events)
      assert.deepStrictEqual([again.checkpoint, again.requests], [true, []])
      const after = (yield* agent.handleEvent({})) as Answer
      assert.deepStrictEqual(after.restored, { type: "restore", data: { count: 41 } } as never)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a v1 agent is never sent a restore", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(config({ args: [fixture("agents", "streaming.mjs"), "none"] }))
      yield* agent.handleEvent({ checkpoint: { count: 1 } })
      yield* agent.restart
      const answer = (yield* agent.handleEvent({})) as Answer
      assert.deepInclude(answer, { first: "task", restored: null })
      assert.deepStrictEqual((yield* agent.metadata).features, [])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the issue's test: a counting agent SIGKILLed goes on from its last checkpoint (AgentSupervisor)", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(config())
      const events = yield* agent.subscribe
      const pid = yield* pidOf(agent)
      const { error, seen } = yield* countUntilKilled(agent.handleEventStream({ count: 1_000_000, every: 2 }), 20, pid)
      assert.strictEqual(error._tag, "AgentCrashError")
      assert.deepStrictEqual(seen, Array.from({ length: seen.length }, (_, i) => i + 1), "chunks in order")
      // Its checkpoint comes before its chunk at each step: the last saved count is the last chunk, or one more.
      const saved = (yield* checkpointOf(agent))!.count
      assert.include([seen[seen.length - 1], seen[seen.length - 1] + 1], saved)
      const restored = yield* restoredOf(events)
      assert.isTrue(restored.checkpoint)
      assert.notStrictEqual(restored.pid, pid)
      const answer = (yield* agent.handleEvent({ count: 5 })) as Answer
      assert.deepInclude(answer, { first: "restore", from: saved, count: saved + 5 })
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the issue's test through Supervisor.callStream, over SQLite; and a new run starts from it", () =>
    Effect.gen(function*() {
      const layer = Store.layerSqlite({ filename: path.join(yield* tempDir("checkpoint-tree"), "agents.sqlite") })
      const children = [Supervisor.agent({ id: "counter", config: config() })]
      const saved = yield* Effect.scoped(Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children })
        const events = yield* sup.subscribe
        const agent = yield* sup.child("counter")
        const pid = yield* pidOf(agent)
        const { error, seen } = yield* countUntilKilled(
          sup.callStream("counter", { count: 1_000_000, every: 2 }),
          15,
          pid
        )
        assert.strictEqual(error._tag, "AgentCrashError")
        const saved = (yield* checkpointOf(agent))!.count
        assert.include([seen[seen.length - 1], seen[seen.length - 1] + 1], saved)
        yield* takeUntil(
          events,
          (event: SupervisorEvent.SupervisorEvent) => event._tag === "Agent" && event.event._tag === "Restored"
        )
        const events2 = yield* Stream.runCollect(sup.callStream("counter", { count: 3 }))
        const last = Array.from(events2).pop()
        assert.deepInclude(last?._tag === "Done" ? last.result : {}, {
          first: "restore",
          from: saved,
          count: saved + 3
        })
        return saved + 3
      })).pipe(Effect.provide(layer))
      // The next run of the application: its first incarnation is restored from the store.
      yield* Effect.scoped(Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children })
        const answer = (yield* sup.call("counter", { count: 1 })) as Answer
        assert.deepInclude(answer, { first: "restore", from: saved, count: saved + 1 })
        const agent = yield* sup.child("counter")
        assert.deepStrictEqual(yield* checkpointOf(agent), { count: saved + 1 })
      })).pipe(Effect.provide(layer))
    }).pipe(Effect.provide(TestLive)))
})

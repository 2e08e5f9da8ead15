/**
 * Delivery through the cluster, one runner in memory: a keyed task outlives a caller that gives up (a short timeout,
 * a short `awaitResult`) and still answers once for its key; a restart under a keyed task does not store an
 * interruption as its answer; a key picks one member of a pool, so it runs once; a topic's subscribers take their
 * turns whether agents or pools. Real agent processes (test/fixtures/cluster/agent.mjs, which journals each task).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cluster from "../src/Cluster.js"
import { clusterAgent, eventually, tempDir, TestLive } from "./support.js"

const agent = clusterAgent

const cluster = (topology: Cluster.TopologyInput) =>
  Cluster.layerAgents(topology).pipe(Layer.provideMerge(Cluster.layerMemory()), Layer.provide(TestLive))

interface Reply {
  readonly agent: string
  readonly pid: number
}

/** The journal's lines for `key` (`start <key> <pid>`, `end <key> <pid>`). */
const entries = (journal: string, key: string): Array<string> =>
  fs.existsSync(journal)
    ? fs.readFileSync(journal, "utf8").trim().split("\n").filter((line) => line.split(" ")[1] === key)
    : []

describe("Cluster delivery", () => {
  it.scopedLive(
    "a keyed call or awaitResult that times out leaves the task running; it answers once later",
    () =>
      Effect.gen(function*() {
        const journal = path.join(yield* tempDir("cluster-delivery-"), "journal")
        yield* Effect.gen(function*() {
          const client = yield* Cluster.AgentClient
          const input = { journal, key: "k1", sleep: 1500 }
          const early = yield* Effect.exit(client.call("alpha", input, { timeout: "300 millis", idempotencyKey: "k1" }))
          assert.strictEqual(
            Exit.isFailure(early) && early.cause._tag === "Fail" && early.cause.error._tag,
            "AgentUnavailableError"
          )
          const late = (yield* client.call("alpha", input, { timeout: "20 seconds", idempotencyKey: "k1" })) as Reply
          assert.strictEqual(late.agent, "alpha")
          assert.deepStrictEqual(entries(journal, "k1").map((l) => l.split(" ")[0]), ["start", "end"])
          const task = yield* client.publish("jobs", { journal, key: "p1", sleep: 1500 })
          const short = yield* Effect.exit(client.awaitResult(task, { timeout: "300 millis" }))
          assert.isTrue(Exit.isFailure(short))
          const result = (yield* client.awaitResult(task, { timeout: "20 seconds" })) as Reply
          assert.strictEqual(result.agent, "alpha")
          assert.deepStrictEqual(entries(journal, "p1").map((l) => l.split(" ")[0]), ["start", "end"])
        }).pipe(Effect.provide(cluster({ agents: [{ config: agent("alpha"), topics: ["jobs"] }] })))
      }),
    60_000
  )

  it.scopedLive(
    "a restart under a keyed task: the task answers (run again), and its key answers the same",
    () =>
      Effect.gen(function*() {
        const journal = path.join(yield* tempDir("cluster-delivery-"), "journal")
        yield* Effect.gen(function*() {
          const client = yield* Cluster.AgentClient
          yield* client.call("alpha", {}, { timeout: "20 seconds" })
          const input = { journal, key: "r1", sleep: 1500 }
          const keyed = yield* Effect.fork(client.call("alpha", input, { timeout: "30 seconds", idempotencyKey: "r1" }))
          yield* eventually("the task started", () => entries(journal, "r1").length > 0, "10 seconds")
          yield* client.restart("alpha")
          const first = yield* Fiber.await(keyed)
          assert.isTrue(Exit.isSuccess(first), JSON.stringify(first))
          const again = yield* Effect.exit(client.call("alpha", input, { timeout: "20 seconds", idempotencyKey: "r1" }))
          assert.deepStrictEqual(again, first)
          assert.strictEqual(entries(journal, "r1").filter((l) => l.startsWith("end")).length, 1)
        }).pipe(Effect.provide(cluster({ agents: [agent("alpha")] })))
      }),
    60_000
  )

  it.scopedLive(
    "a key picks one member of a pool: a keyed task runs once whatever the pool's routing",
    () =>
      Effect.gen(function*() {
        const journal = path.join(yield* tempDir("cluster-delivery-"), "journal")
        yield* Effect.gen(function*() {
          const client = yield* Cluster.AgentClient
          const input = { journal, key: "K" }
          const replies = yield* Effect.forEach(
            [1, 2, 3],
            () => client.call("pool", input, { timeout: "20 seconds", idempotencyKey: "K" })
          )
          assert.strictEqual(new Set(replies.map((r) => (r as Reply).pid)).size, 1)
          yield* client.send("pool", { journal, key: "S" }, { idempotencyKey: "S" })
          yield* client.call("pool", { journal, key: "S" }, { timeout: "20 seconds", idempotencyKey: "S" })
          assert.strictEqual(entries(journal, "K").filter((l) => l.startsWith("end")).length, 1)
          assert.strictEqual(entries(journal, "S").filter((l) => l.startsWith("end")).length, 1)
        }).pipe(Effect.provide(cluster({ pools: [{ id: "pool", size: 2, config: agent("member") }] })))
      }),
    60_000
  )

  it.live("a topic's subscribers take turns, an agent and a pool alike", () =>
    Effect.gen(function*() {
      const client = yield* Cluster.AgentClient
      const tasks = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (n) => client.publish("jobs", { n }))
      const agents = yield* Effect.forEach(tasks, (task) =>
        Effect.map(client.awaitResult(task, { timeout: "20 seconds" }), (r) => (r as Reply).agent))
      const count = (name: string) =>
        agents.filter((a) => a === name).length
      assert.strictEqual(count("solo"), 3, agents.join(","))
      assert.strictEqual(count("member"), 3, agents.join(","))
      const pids = yield* Effect.forEach(tasks, (task) =>
        Effect.map(client.awaitResult(task, { timeout: "20 seconds" }), (r) =>
          (r as Reply).pid))
      assert.strictEqual(new Set(pids).size, 3, "solo and both members")
    }).pipe(Effect.provide(cluster({
      agents: [{ config: agent("solo"), topics: ["jobs"] }],
      pools: [{ id: "workers", size: 2, config: agent("member"), topics: ["jobs"] }]
    }))), 60_000)

  it.live(
    "an agent stopped for good (exit 0, transient) starts again at the next call; a task's key reaches it",
    () =>
      Effect.gen(function*() {
        const client = yield* Cluster.AgentClient
        const first = (yield* client.call("once", {}, { timeout: "20 seconds" })) as Reply & { key: unknown }
        assert.strictEqual(first.key, null)
        // exits 0: a transient agent is not restarted; the call in flight fails with the crash
        const exited = yield* Effect.exit(client.call("once", { crash: 0 }, { timeout: "20 seconds" }))
        assert.isTrue(Exit.isFailure(exited))
        const again = (yield* client.call("once", {}, { timeout: "20 seconds" })) as Reply
        assert.notStrictEqual(again.pid, first.pid)
        const keyed = (yield* client.call("once", {}, { timeout: "20 seconds", idempotencyKey: "order-7" })) as {
          key: unknown
        }
        assert.strictEqual(keyed.key, "order-7")
        const task = yield* client.publish("jobs", {})
        const published = (yield* client.awaitResult(task, { timeout: "20 seconds" })) as { key: string }
        assert.match(published.key, /#once$/)
      }).pipe(Effect.provide(cluster({
        agents: [{ config: { ...agent("once"), restart: "transient" }, topics: ["jobs"] }]
      }))),
    60_000
  )
})

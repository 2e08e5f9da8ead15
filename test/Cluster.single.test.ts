/**
 * Agents as cluster entities on one runner (`Cluster.layerMemory`, and `layerLocal` on a SQLite file): a call
 * answers, a crash fails the call in flight with our typed error and the agent answers again from a new process,
 * passivation stops the process, a keyed task runs once per key, an unknown id spawns nothing, and no process is
 * left when the layer closes. Real agent processes (test/fixtures/cluster/agent.mjs).
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as path from "node:path"
import type { AgentConfigInput } from "../src/Agent/Config.js"
import * as Cluster from "../src/Cluster.js"
import type { ConfigError } from "../src/Errors.js"
import {
  clusterAgent,
  eventually,
  eventuallyEffect,
  failureOf,
  fixture,
  isAlive,
  tempDir,
  TestLive
} from "./support.js"

const agent = clusterAgent

const streamer: AgentConfigInput = {
  name: "streamer",
  command: process.execPath,
  args: [fixture("agents", "streaming.mjs")],
  startupTimeout: "10 seconds"
}

const agents = [agent("alpha"), agent("beta"), streamer]

const memory = (options?: Cluster.ClusterOptions) =>
  Cluster.layerAgents(agents).pipe(Layer.provideMerge(Cluster.layerMemory(options)), Layer.provide(TestLive))

interface Reply {
  readonly agent: string
  readonly pid: number
  readonly echo: unknown
}

const call = (id: string, input: unknown, timeout: Duration.DurationInput = "20 seconds") =>
  Effect.flatMap(Cluster.AgentClient, (client) => client.call(id, input, { timeout })) as Effect.Effect<
    Reply,
    Cluster.CallError,
    Cluster.AgentClient
  >

describe("Cluster, one runner", () => {
  it.live(
    "a call answers; status names the runner; an unknown id fails with ConfigError and spawns nothing",
    () =>
      Effect.gen(function*() {
        const client = yield* Cluster.AgentClient
        const reply = yield* call("alpha", { hello: "world" })
        assert.strictEqual(reply.agent, "alpha")
        assert.deepStrictEqual(reply.echo, { hello: "world" })
        const status = yield* client.status("alpha")
        assert.strictEqual(status.state, "RUNNING")
        assert.deepStrictEqual(status.pid, Option.some(reply.pid))
        assert.match(status.runner, /:\d+$/)
        const placement = yield* Effect.flatMap(Cluster.Placement, (p) => p.list)
        assert.deepStrictEqual(placement.map((row) => row.agent), ["alpha"])
        const unknown = failureOf(yield* Effect.exit(client.call("gamma", {}, { timeout: "5 seconds" })))
        assert.strictEqual(unknown._tag, "ConfigError")
        const blank = failureOf(yield* Effect.exit(client.call(" x", {}, { timeout: "5 seconds" })))
        assert.strictEqual(blank._tag, "ConfigError")
        const badTimeout = failureOf(
          yield* Effect.exit(client.call("alpha", {}, { timeout: "soon" as Duration.DurationInput }))
        )
        assert.strictEqual(badTimeout._tag, "ConfigError")
        // A payload JSON would change (msgpack on the way, JSON in the message storage): refused before it goes
        const lossy = failureOf(
          yield* Effect.exit(client.call("alpha", { tags: new Set([1]) }, { timeout: "5 seconds" }))
        )
        assert.deepInclude(lossy, { _tag: "ConfigError", field: "payload" })
        assert.include(lossy.message, "cannot be sent as JSON as it is: payload.tags is a Set, which JSON sends as {}")
        const stored = failureOf(yield* Effect.exit(client.send("alpha", { score: NaN }, { idempotencyKey: "nan" })))
        assert.include(stored.message, "payload.score is NaN, which JSON sends as null")
      }).pipe(Effect.provide(memory())),
    30_000
  )

  it.live(
    "a crash fails the call in flight with AgentCrashError; the agent is restarted by its own policy",
    () =>
      Effect.gen(function*() {
        const client = yield* Cluster.AgentClient
        const first = yield* call("beta", {})
        const crashed = failureOf(yield* Effect.exit(call("beta", { crash: 3 })))
        assert.strictEqual(crashed._tag, "AgentCrashError")
        const again = yield* call("beta", {})
        assert.notStrictEqual(again.pid, first.pid)
        assert.isFalse(isAlive(first.pid))
        const status = yield* client.status("beta")
        assert.strictEqual(status.restartCount, 1)
      }).pipe(Effect.provide(memory())),
    30_000
  )

  it.live(
    "an idle agent is passivated: its process stops, and the next call starts a new one",
    () =>
      Effect.gen(function*() {
        const first = yield* call("alpha", {})
        yield* eventually("the idle agent's process stopped", () => !isAlive(first.pid), "15 seconds")
        const placement = yield* Cluster.Placement
        yield* eventuallyEffect(
          "its placement row is gone",
          Effect.map(placement.list, (rows) => rows.length === 0)
        )
        const next = yield* call("alpha", {})
        assert.notStrictEqual(next.pid, first.pid)
      }).pipe(Effect.provide(memory({ maxIdleTime: "1 second" }))),
    30_000
  )

  it.scopedLive("a keyed task runs once per key; send stores it and returns", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cluster-task-")
      const journal = path.join(dir, "journal")
      const client = yield* Cluster.AgentClient
      const input = { journal, key: "k1", sleep: 200 }
      const [a, b] = yield* Effect.all([
        client.call("alpha", input, { timeout: "20 seconds", idempotencyKey: "k1" }),
        client.call("alpha", { other: true }, { timeout: "20 seconds", idempotencyKey: "k1" })
      ], { concurrency: 2 })
      assert.deepStrictEqual(a, b)
      const again = yield* client.call("alpha", input, { timeout: "20 seconds", idempotencyKey: "k1" })
      assert.deepStrictEqual(again, a)
      assert.deepStrictEqual(fs.readFileSync(journal, "utf8").trim().split("\n").map((l) => l.split(" ")[0]), [
        "start",
        "end"
      ])
      yield* client.send("alpha", { journal, key: "k2" }, { idempotencyKey: "k2" })
      yield* eventually("the sent task ran", () => fs.readFileSync(journal, "utf8").includes("end k2"), "10 seconds")
      const empty = failureOf(yield* Effect.exit(client.send("alpha", {}, { idempotencyKey: "" })))
      assert.strictEqual(empty._tag, "ConfigError")
    }).pipe(Effect.provide(memory())), 30_000)

  it.live("a streaming call gives the chunks, then the result", () =>
    Effect.gen(function*() {
      const client = yield* Cluster.AgentClient
      const events = yield* Stream.runCollect(client.stream("streamer", { chunks: ["a", "b", "c"] }, {
        timeout: "20 seconds"
      }))
      const list = Chunk.toArray(events)
      assert.deepStrictEqual(list.slice(0, 3), [
        { _tag: "Chunk", data: "a" },
        { _tag: "Chunk", data: "b" },
        { _tag: "Chunk", data: "c" }
      ])
      assert.strictEqual(list[3]._tag, "Done")
      assert.strictEqual(list.length, 4)
    }).pipe(Effect.provide(memory())), 30_000)

  it.live("closing the layer stops every agent's process", () =>
    Effect.gen(function*() {
      const pids = yield* Effect.scoped(
        Effect.gen(function*() {
          const a = yield* call("alpha", {})
          const b = yield* call("beta", {})
          return [a.pid, b.pid]
        }).pipe(Effect.provide(memory()))
      )
      for (const pid of pids) assert.isFalse(isAlive(pid), `pid ${pid} left running`)
    }), 30_000)

  it.scopedLive(
    "pools route in turn or by key; topics deliver as stored tasks; awaitResult finds them anywhere",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cluster-topics-")
        const journal = path.join(dir, "journal")
        const topology: Cluster.TopologyInput = {
          agents: [{ config: agent("alpha"), topics: ["reports", "all"] }],
          pools: [
            { id: "workers", size: 2, config: agent("worker"), topics: ["all"] },
            { id: "shards", size: 3, config: agent("shard"), routing: "sticky" }
          ]
        }
        const layer = Cluster.layerAgents(topology).pipe(
          Layer.provideMerge(Cluster.layerMemory()),
          Layer.provide(TestLive)
        )
        yield* Effect.gen(function*() {
          const client = yield* Cluster.AgentClient
          // the fixture answers with its pid: members in turn
          const pids = yield* Effect.forEach(
            [1, 2, 3, 4],
            () => Effect.map(client.call("workers", {}, { timeout: "20 seconds" }), (r) => (r as Reply).pid)
          )
          assert.strictEqual(new Set(pids).size, 2)
          assert.deepStrictEqual([pids[2], pids[3]], [pids[0], pids[1]])
          const sticky = yield* Effect.forEach(
            [1, 2, 3],
            () =>
              Effect.map(client.call("shards", {}, { timeout: "20 seconds", routingKey: "user-42" }), (r) =>
                (r as Reply).pid)
          )
          assert.strictEqual(new Set(sticky).size, 1)
          const members = yield* Effect.forEach(["shard-0", "shard-1", "shard-2"], (id) =>
            Effect.map(client.status(id), (st) =>
              Option.getOrUndefined(st.pid)))
          assert.include(members, sticky[0])
          // one subscriber: a stored task, then its result
          const id = yield* client.publish("reports", { journal, key: "r1" })
          const result = (yield* client.awaitResult(id, { timeout: "20 seconds" })) as Reply
          assert.strictEqual(result.agent, "alpha")
          assert.deepStrictEqual(yield* client.awaitResult(id, { timeout: "20 seconds" }), result)
          assert.strictEqual(fs.readFileSync(journal, "utf8").match(/end r1/g)?.length, 1)
          // fanout: the agent and one member of the pool, each result by its name
          const all = yield* client.publish("all", { hello: 1 }, { fanout: true })
          const results = (yield* client.awaitResult(all, { timeout: "20 seconds" })) as Record<string, Reply>
          assert.deepStrictEqual(
            Object.keys(results).map((k) =>
              k.replace(/-\d$/, "")
            ).sort(),
            ["alpha", "worker"]
          )
          // bad input: typed, nothing sent
          const none = failureOf(yield* Effect.exit(client.publish("nobody", {})))
          assert.strictEqual(none._tag, "ConfigError")
          const bogus = failureOf(yield* Effect.exit(client.awaitResult("not-an-id", { timeout: "5 seconds" })))
          assert.strictEqual(bogus._tag, "ConfigError")
          const forged = Buffer.from(JSON.stringify({ task: "x", targets: ["alpha"], fanout: false })).toString(
            "base64url"
          )
          const unknown = failureOf(yield* Effect.exit(client.awaitResult(forged, { timeout: "5 seconds" })))
          assert.strictEqual(unknown._tag, "ConfigError")
          assert.strictEqual(fs.readFileSync(journal, "utf8").match(/start/g)?.length, 1)
        }).pipe(Effect.provide(layer))
        const bad = failureOf(
          yield* Effect.exit(Effect.scoped(Layer.build(
            Cluster.layerAgents({
              pools: [{ id: "p", size: 0, config: agent("p") }, { id: "alpha", size: 1, config: agent("q") }],
              agents: [{ config: agent("alpha"), topics: [""] }]
            }).pipe(Layer.provide(Cluster.layerMemory()), Layer.provide(TestLive))
          )))
        ) as ConfigError
        assert.deepStrictEqual(bad.problems.map((p) => p.field), [
          "agents[0].topics[0]",
          "pools[0].size",
          "pools[1].id"
        ])
      }),
    60_000
  )

  it.live("bad options fail the layer with ConfigError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(memory({ timing: "slow" as any }))))
      assert.isTrue(Exit.isFailure(exit))
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual((error as any).field, "cluster.timing")
      const timings = failureOf(
        yield* Effect.exit(Effect.scoped(Layer.build(memory({
          timing: { shardLockExpiration: "1 second", refreshAssignmentsInterval: 0 },
          listen: { host: "127.0.0.1", port: 0 }
        }))))
      ) as ConfigError
      assert.deepStrictEqual(timings.problems.map((p) => p.field), [
        "cluster.timing.refreshAssignmentsInterval",
        "cluster.timing.shardLockRefreshInterval",
        "cluster.listen.port"
      ])
      const runner = failureOf(
        yield* Effect.exit(
          Effect.scoped(Layer.build(Cluster.layerRunner({}))).pipe(
            Effect.provide(SqliteClient.layer({ filename: ":memory:" }))
          )
        )
      )
      assert.strictEqual(runner._tag, "ConfigError")
      const dup = failureOf(
        yield* Effect.exit(Effect.scoped(Layer.build(
          Cluster.layerAgents([agent("a"), agent("a")]).pipe(
            Layer.provide(Cluster.layerMemory()),
            Layer.provide(TestLive)
          )
        )))
      )
      assert.strictEqual((dup as any).field, "agents[1].name")
    }), 30_000)

  it.scopedLive(
    "layerLocal on SQLite: a keyed task survives in the file; its tables carry the prefix",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cluster-local-")
        const filename = path.join(dir, "cluster.db")
        const journal = path.join(dir, "journal")
        const sqlite = SqliteClient.layer({ filename })
        const local = Cluster.layerAgents(agents).pipe(
          Layer.provideMerge(Cluster.layerLocal({ prefix: "t_local" })),
          Layer.provide(TestLive),
          Layer.provide(sqlite)
        )
        const run = (input: unknown) =>
          Effect.scoped(
            Effect.flatMap(
              Cluster.AgentClient,
              (c) => c.call("alpha", input, { timeout: "20 seconds", idempotencyKey: "k" })
            ).pipe(Effect.provide(local))
          )
        const first = yield* run({ journal, key: "k" })
        const second = yield* run({ journal, key: "k" })
        assert.deepStrictEqual(second, first)
        assert.strictEqual(fs.readFileSync(journal, "utf8").trim().split("\n").length, 2)
        const tables = yield* Effect.scoped(
          Effect.flatMap(
            SqliteClient.SqliteClient,
            (sql) => sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`
          ).pipe(
            Effect.provide(sqlite)
          )
        )
        const names = tables.map((t) => t.name)
        for (const name of ["t_local_agents", "t_local_messages", "t_local_replies"]) {
          assert.include(names, name)
        }
      }),
    60_000
  )
})

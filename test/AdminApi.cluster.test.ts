/**
 * `GET /api/cluster` over real HTTP (issue 15): outside a cluster a 404 `NotClustered`; in one, the placements of
 * `Cluster.Placement` on a real SQLite database, each with its runner's state read from the cluster's runners table
 * (this runner and one with a fresh heartbeat `running`, one that is not registered `lost`); a database that does
 * not answer a 503 `ClusterUnavailable`; the route in the OpenAPI document and in the typed client.
 */
import * as Runner from "@effect/cluster/Runner"
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerStorage from "@effect/cluster/RunnerStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as path from "node:path"
import * as AdminApi from "../src/AdminApi.js"
import * as Cluster from "../src/Cluster.js"
import { StoreError } from "../src/Errors.js"
import * as ClusterPlacements from "../src/internal/admin/clusterPlacements.js"
import * as Settings from "../src/internal/cluster/config.js"
import * as Placement from "../src/internal/cluster/placement.js"
import * as Supervisor from "../src/Supervisor.js"
import { client, type Served } from "./fixtures/admin/harness.js"
import { failureOf, tempDir, TestLive } from "./support.js"

const PREFIX = "t_admin"

/** The admin API of an empty tree, with the `ClusterPlacements` of `placements` when given. */
const serve = (placements?: Layer.Layer<AdminApi.ClusterPlacements>) =>
  Effect.gen(function*() {
    const tree = yield* Supervisor.make({ children: [] })
    const make = AdminApi.make().pipe(Effect.provideService(Supervisor.RootSupervisor, tree))
    const server = yield* (placements === undefined ? make : Effect.provide(make, placements))
    const get = (route: string) =>
      Effect.promise(async () => {
        const response = await fetch(`${server.url}${route}`)
        return { status: response.status, body: await response.json() as any }
      })
    return { server, get }
  }).pipe(Effect.provide(TestLive))

describe.sequential("AdminApi: GET /api/cluster", () => {
  it.scopedLive("outside a cluster: 404 NotClustered, a JSON error that says why", () =>
    Effect.gen(function*() {
      const { get, server } = yield* serve()
      const { body, status } = yield* get("/api/cluster")
      assert.strictEqual(status, 404)
      assert.strictEqual(body._tag, "NotClustered")
      assert.match(body.message, /not in a cluster: its tree file has no cluster section/)
      // The typed client fails with the contract's error
      const api = yield* client({ url: server.url, token: Redacted.value(server.token) } as Served)
      const error = failureOf(yield* Effect.exit(api.cluster.placements()))
      assert.strictEqual((error as { _tag: string })._tag, "NotClustered")
      // And the document lists the route with its errors
      const doc = (yield* get("/api/openapi.json")).body
      const operation = doc.paths["/api/cluster"].get
      assert.deepStrictEqual(Object.keys(operation.responses).sort(), ["200", "400", "404", "503"])
      assert.property(doc.components.schemas, "PlacementView")
    }))

  it.scopedLive("in a cluster: each started agent's runner, shard, since, and whether its runner is live", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("admin-cluster")
      const sql = SqliteClient.layer({ filename: path.join(dir, "cluster.db") })
      const settings = yield* Settings.decode({ prefix: PREFIX, address: { host: "127.0.0.1", port: 34431 } })
      yield* Cluster.migrate(PREFIX).pipe(Effect.provide(sql))
      const config = Settings.layer(settings, "runner")
      const context = yield* Layer.build(
        Layer.mergeAll(
          Placement.layerSql(PREFIX),
          config,
          SqlRunnerStorage.layerWith({ prefix: PREFIX }).pipe(Layer.provide(config))
        ).pipe(Layer.provideMerge(sql))
      )
      const placement = Context.get(context, Placement.Placement)
      yield* placement.claim("alpha", "127.0.0.1:34431", "default:1")
      yield* placement.claim("beta", "10.0.0.9:1", "default:2")
      yield* placement.claim("gamma", "10.0.0.8:2", "default:3")
      // Another runner, registered with a fresh heartbeat
      yield* Effect.flatMap(
        RunnerStorage.RunnerStorage,
        (storage) =>
          storage.register(
            Runner.make({ address: RunnerAddress.make("10.0.0.8", 2), groups: ["default"], weight: 1 }),
            true
          )
      ).pipe(Effect.provide(context))
      const placements = ClusterPlacements.layer.pipe(Layer.provide(Layer.succeedContext(context)))
      const { get } = yield* serve(placements)
      const { body, status } = yield* get("/api/cluster")
      assert.strictEqual(status, 200)
      assert.deepStrictEqual(
        body.map((row: any) => [row.agent, row.runner, row.shard, row.state]),
        [
          ["alpha", "127.0.0.1:34431", "default:1", "running"],
          ["beta", "10.0.0.9:1", "default:2", "lost"],
          ["gamma", "10.0.0.8:2", "default:3", "running"]
        ]
      )
      for (const row of body) assert.isAtMost(row.since, Date.now())
    }))

  it.scopedLive("a database that does not answer: 503 ClusterUnavailable", () =>
    Effect.gen(function*() {
      const failing = Layer.succeed(AdminApi.ClusterPlacements, {
        list: Effect.fail(new StoreError({ operation: "clusterPlacement", reason: "failure", detail: "disk I/O" }))
      })
      const { get, server } = yield* serve(failing)
      const { body, status } = yield* get("/api/cluster")
      assert.strictEqual(status, 503)
      assert.strictEqual(body._tag, "ClusterUnavailable")
      assert.include(body.message, "disk I/O")
      assert.notInclude(body.message, "stopping")
      // While its host stops the tree (up stops it before its API), the database closes with it: said so
      yield* server.treeStopping
      const stopping = yield* get("/api/cluster")
      assert.strictEqual(stopping.status, 503)
      assert.match(
        stopping.body.message,
        /^The cluster's placements could not be read: this process is stopping \(its host is shutting down\).*disk I\/O/
      )
    }))
})

/**
 * A tree file's `cluster` section (issue 15): `Cluster.ClusterOptions` with `role` and `database`, checked with the
 * rest of the file (every problem with its path), the store's database by default, `${NAME}` references, paths
 * relative to the file, the URL a secret; the agents it hosts (pools as `<name>-<i>`, every depth), names unique
 * across the cluster; the warnings of what does not span machines. Nothing starts here.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import * as TreeFile from "../src/TreeFile.js"
import * as TreeFileCluster from "../src/TreeFile/Cluster.js"
import { failureOf, problemLines, tempDir } from "./support.js"

const yaml = (text: string, env: TreeFile.Env = {}) =>
  TreeFile.parse(text, { format: "yaml", env, dir: "/srv/app" }).pipe(Effect.provide(NodeContext.layer))

/** The problems of a bad YAML file, as `field: rule` lines. */
const problemsOf = (text: string, env: TreeFile.Env = {}) => problemLines(yaml(text, env))

const agent = (name: string) => `{ name: ${name}, command: node, args: [agent.mjs] }`

/** An agent `workers-1`, and a pool `workers` of 2 whose second member is named so too. */
const sameName = [
  "store: { type: sqlite, filename: tree.sqlite }",
  "cluster: {}",
  "children:",
  `  - { type: agent, id: a, config: ${agent("workers-1")} }`,
  "  - type: supervisor",
  "    id: s",
  `    children: [{ type: pool, id: workers, size: 2, config: ${agent("workers")} }]`
].join("\n")

describe("TreeFile: the cluster section", () => {
  it.effect("a runner on the store's SQLite file: its role and database by default, paths from the file", () =>
    Effect.gen(function*() {
      const file = yield* yaml([
        "store: { type: sqlite, filename: data/tree.sqlite }",
        "cluster:",
        "  address: { host: 10.0.0.5, port: 34431 }",
        "  listen: { host: 0.0.0.0, port: 34431 }",
        "  timing: standard",
        "  maxIdleTime: 10 minutes",
        "  prefix: agents",
        "children: []"
      ].join("\n"))
      assert.deepStrictEqual(file.cluster, {
        role: "runner",
        database: { type: "sqlite", filename: "/srv/app/data/tree.sqlite" },
        address: { host: "10.0.0.5", port: 34431 },
        listen: { host: "0.0.0.0", port: 34431 },
        timing: "standard",
        maxIdleTime: "10 minutes",
        prefix: "agents"
      })
      // The tree's options know nothing of it
      const options = yield* TreeFile.toOptions(file).pipe(Effect.provide(NodeContext.layer))
      assert.notProperty(options, "cluster")
    }))

  it.effect("a database of its own: SQLite relative to the file; PostgreSQL from url or urlEnv, a secret", () =>
    Effect.gen(function*() {
      const sqlite = yield* yaml("cluster: { database: { type: sqlite, filename: cluster.db } }")
      assert.deepStrictEqual(sqlite.cluster?.database, { type: "sqlite", filename: "/srv/app/cluster.db" })
      const url = "postgres://runner:secret@db:5432/agents"
      const fromEnv = yield* yaml(
        "cluster: { role: client, database: { type: postgres, urlEnv: CLUSTER_DB, maxConnections: 4 } }",
        { CLUSTER_DB: url }
      )
      const database = fromEnv.cluster?.database
      assert.strictEqual(database?.type, "postgres")
      if (database?.type === "postgres") {
        assert.strictEqual(Redacted.value(database.url), url)
        assert.strictEqual(database.maxConnections, 4)
      }
      assert.strictEqual(fromEnv.cluster?.role, "client")
      const fromReference = yield* yaml("cluster: { database: { type: postgres, url: \"${DB}\" } }", { DB: url })
      assert.strictEqual(
        fromReference.cluster?.database.type === "postgres" && Redacted.value(fromReference.cluster.database.url),
        url
      )
      // The store's PostgreSQL server by default
      const shared = yield* yaml("store: { type: postgres, url: \"${DB}\", maxConnections: 3 }\ncluster: {}", {
        DB: url
      })
      assert.deepStrictEqual(
        shared.cluster?.database.type === "postgres"
          ? [Redacted.value(shared.cluster.database.url), shared.cluster.database.maxConnections]
          : [],
        [url, 3]
      )
      // A local runner alone may keep its messages in memory, as its store
      const local = yield* yaml("cluster: { role: local }")
      assert.deepStrictEqual(local.cluster?.database, { type: "sqlite", filename: ":memory:" })
    }))

  it.effect("bad values: every problem with its path, unknown keys with the one meant, no secret shown", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf([
        "store: { type: sqlite, filename: tree.sqlite }",
        "cluster:",
        "  role: runners",
        "  address: { host: \"\", port: 70000, hots: x }",
        "  timing: slow",
        "  maxIdleTime: 5 secs",
        "  prefx: agents",
        "  mailboxCapacity: 0",
        "  database: { type: postgres, url: \"mysql://u:hunter2@db/x\" }"
      ].join("\n"))
      assert.deepStrictEqual(problems, [
        `cluster.role: must be "runner", "client" or "local": did you mean "runner"?`,
        "cluster.address.host: must be a non-empty host name or address",
        "cluster.address.port: must be a port number (0 to 65535)",
        `cluster.address.hots: is not a known setting: did you mean "host"?`,
        `cluster.timing: must be "fast", "standard" or "test", or a mapping of durations ("3 seconds"): ` +
        "shardLockExpiration, shardLockRefreshInterval, refreshAssignmentsInterval, entityTerminationTimeout",
        `cluster.maxIdleTime: must be a duration like "5 seconds", "250ms" or "1h30m"`,
        `cluster.prefx: is not a known setting: did you mean "prefix"?`,
        "cluster.mailboxCapacity: must be a whole number of at least 1",
        "cluster.database.url: must be a PostgreSQL URL such as postgres://user:password@host:5432/database"
      ])
      const exit = yield* Effect.exit(
        yaml("cluster: { database: { type: postgres, url: \"mysql://u:hunter2@db/x\" } }")
      )
      assert.notInclude(JSON.stringify(failureOf(exit)), "hunter2")
    }))

  it.effect("a runner or a client without a database on an in-memory store; an unset urlEnv", () =>
    Effect.gen(function*() {
      const missing = yield* problemsOf("cluster: { address: { host: 127.0.0.1, port: 34431 } }")
      assert.strictEqual(missing.length, 1)
      assert.match(missing[0], /^cluster\.database: is missing: .*give \{ type: sqlite, filename \}/)
      assert.deepStrictEqual(yield* problemsOf("cluster: { database: { type: postgres, urlEnv: NOPE } }"), [
        "cluster.database.urlEnv: names the environment variable NOPE, which is not set"
      ])
      assert.deepStrictEqual(yield* problemsOf("cluster: { database: { type: postgres } }"), [
        `cluster.database.url: is missing: give the server's URL as "url" (say "\${DATABASE_URL}") or the name ` +
        `of a variable as "urlEnv"`
      ])
    }))

  it.effect("an agent's name is its id in a cluster: two that would have one name are a problem", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(sameName)
      assert.deepStrictEqual(problems, [
        "children[1].children[0].config.name: must be unique in a cluster, where an agent's name (a pool " +
        `member's: <name>-<i>) is its id: children[0].config.name names "workers-1" too`
      ])
      // Without a cluster, the same tree is fine
      const local = yield* yaml(sameName.replace("cluster: {}\n", ""))
      assert.strictEqual(local.cluster, undefined)
      // A pool's id is a name that calls reach too: an agent may not have it
      const poolId = yield* problemsOf([
        "store: { type: sqlite, filename: tree.sqlite }",
        "cluster: {}",
        "children:",
        `  - { type: agent, id: a, config: ${agent("workers")} }`,
        `  - { type: pool, id: workers, size: 2, config: ${agent("member")} }`
      ].join("\n"))
      assert.deepStrictEqual(poolId, [
        "children[1].id: must be unique in a cluster, where an agent's name (a pool member's: <name>-<i>) is its id: " +
        `children[0].config.name names "workers" too`
      ])
    }))

  it.scoped("the agents it hosts: every agent at any depth, a pool as its members; what does not span machines", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile-cluster")
      const file = path.join(dir, "tree.yaml")
      fs.writeFileSync(
        file,
        [
          "strategy: one-for-all",
          "store: { type: sqlite, filename: tree.sqlite }",
          "cluster: { address: { host: 127.0.0.1, port: 34431 } }",
          "topics: { jobs: {} }",
          "children:",
          `  - { type: agent, id: a, config: ${agent("alpha")} }`,
          "  - type: supervisor",
          "    id: s",
          "    strategy: rest-for-one",
          `    children: [{ type: pool, id: p, size: 2, topics: [jobs], config: ${agent("member")} }]`
        ].join("\n")
      )
      const tree = yield* TreeFile.load(file)
      const topology = yield* TreeFileCluster.topology(tree)
      assert.deepStrictEqual(
        (topology.agents ?? []).map((a) => "config" in a ? [a.config.name, a.config.cwd, a.topics] : []),
        [["alpha", dir, undefined]]
      )
      assert.deepStrictEqual(
        (topology.pools ?? []).map((p) => [p.id, p.size, p.config.name, p.config.cwd, p.topics, p.routing]),
        [["p", 2, "member", dir, ["jobs"], "round-robin"]]
      )
      const warnings = TreeFileCluster.warnings(tree)
      assert.strictEqual(warnings.length, 3)
      assert.match(warnings[0], /"one-for-all", "rest-for-one" does not span machines/)
      assert.match(warnings[1], /a topic's settings/)
      assert.match(warnings[2], /a pool is its members/)
    }).pipe(Effect.provide(NodeContext.layer)))
})

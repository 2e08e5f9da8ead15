/**
 * `agent-supervisor up` with a `cluster` section, run as users run it (the built bin in a process of its own): it
 * hosts the file's agents as cluster entities on a runner, on the store's SQLite file; this process calls them
 * through a `Cluster.layerClient` on that file; the admin API says over real HTTP which runner holds which agent,
 * on the runner's `up` and on a client's (`role: client`); SIGTERM stops the runner and its agents, and `up` exits 0.
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cluster from "../src/Cluster.js"
import {
  BIN,
  eventually,
  fixture,
  freePort,
  isAlive,
  parentOf,
  processesWith,
  runCli,
  spawnApp,
  tempDir
} from "./support.js"

const PREFIX = "t_cli_cluster"

/** An agent of test/fixtures/cluster/agent.mjs; `marker` in its command line finds its processes in /proc. */
const agent = (name: string, marker: string) => ({
  name,
  command: process.execPath,
  args: [fixture("cluster", "agent.mjs"), name, marker],
  gracefulTimeout: "2 seconds",
  startupTimeout: "10 seconds"
})

/** Runs the command to its end. */
const cli = (args: ReadonlyArray<string>) => runCli(args, { timeout: 30_000 })

interface Reply {
  readonly pid: number
  readonly echo: { readonly hello: string }
}

interface Placement {
  readonly agent: string
  readonly runner: string
  readonly shard: string
  readonly since: number
  readonly state?: string
}

describe.sequential("agent-supervisor up with a cluster section", () => {
  it.scopedLive(
    "hosts the file's agents on a runner; /api/cluster says where each runs; SIGTERM stops them and exits 0",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-cluster")
        const marker = `marker-${path.basename(dir)}`
        const port = yield* Effect.promise(freePort)
        const file = path.join(dir, "tree.json")
        fs.writeFileSync(
          file,
          JSON.stringify({
            name: "clustered",
            store: { type: "sqlite", filename: "data/tree.sqlite" },
            // The runner's agents spawned through a fork server
            forkServer: true,
            // No database: the store's file. The address's port is the flag's (`--runner-port`).
            cluster: { address: { host: "127.0.0.1", port: 1 }, prefix: PREFIX, timing: "test" },
            children: [
              { type: "agent", id: "alpha", config: agent("alpha", marker) },
              {
                type: "supervisor",
                id: "workers",
                strategy: "one-for-all",
                children: [{ type: "pool", id: "pool", size: 2, config: agent("member", marker) }]
              }
            ]
          })
        )
        // Not the process-wide fork server (`AGENT_SUPERVISOR_FORK_SERVER=1`, if set here): the file's own
        const { AGENT_SUPERVISOR_FORK_SERVER: _, ...env } = process.env
        const app = yield* spawnApp(BIN, ["up", file, "--log-format", "json", "--runner-port", String(port)], {
          onLine: () => {},
          env
        })
        const ready = `cluster: runner at 127.0.0.1:${port} of \\"${PREFIX}\\" is up, hosting 3 agents: alpha, ` +
          "member-0, member-1"
        yield* eventually(`up's ready line (stderr: ${app.stderr()})`, () => app.stderr().includes(ready), "30 seconds")
        assert.include(app.stderr(), `the strategy \\"one-for-all\\" does not span machines`)
        const stateFile = path.join(dir, ".tree.json.admin.json")
        const { url } = JSON.parse(fs.readFileSync(stateFile, "utf8")) as { url: string }

        // A client of the same cluster, in an up of its own: it hosts nothing, and sees every runner's agents
        const clientFile = path.join(dir, "client.json")
        fs.writeFileSync(
          clientFile,
          JSON.stringify({
            store: { type: "memory" },
            cluster: { role: "client", database: { type: "sqlite", filename: "data/tree.sqlite" }, prefix: PREFIX }
          })
        )
        const watcher = yield* spawnApp(BIN, ["up", clientFile, "--log-format", "json"], { onLine: () => {} })
        yield* eventually(
          `the client's ready line (stderr: ${watcher.stderr()})`,
          () => watcher.stderr().includes(`cluster: client of \\"${PREFIX}\\" is up (hosts no agent)`),
          "30 seconds"
        )
        const watcherUrl = (JSON.parse(fs.readFileSync(path.join(dir, ".client.json.admin.json"), "utf8")) as {
          url: string
        }).url
        const seenByWatcher = Effect.promise(() =>
          fetch(`${watcherUrl}/api/cluster`).then((r) => r.json() as Promise<ReadonlyArray<Placement>>)
        )

        // Nothing has started yet: each agent starts at its first message
        const placements = Effect.promise(() =>
          fetch(`${url}/api/cluster`).then(async (r) => ({ status: r.status, body: await r.json() }))
        )
        assert.deepStrictEqual(yield* placements, { status: 200, body: [] })

        // Calls through a client of the cluster, in this process, on the same SQLite file
        const client = Cluster.layerClient({ prefix: PREFIX, timing: "test" }).pipe(
          Layer.provide(Layer.orDie(SqliteClient.layer({ filename: path.join(dir, "data", "tree.sqlite") })))
        )
        const replies = yield* Effect.scoped(
          Effect.gen(function*() {
            const agents = yield* Cluster.AgentClient
            return yield* Effect.forEach(
              ["alpha", "member-1"],
              (id) => agents.call(id, { hello: id }, { timeout: "20 seconds" }) as Effect.Effect<Reply, unknown>
            )
          }).pipe(Effect.provide(client))
        )
        assert.deepStrictEqual(replies.map((r) => r.echo.hello), ["alpha", "member-1"])
        for (const reply of replies) {
          assert.isTrue(isAlive(reply.pid))
          // forked by the fork server, not by `up`'s process
          assert.notStrictEqual(parentOf(reply.pid), app.pid)
        }
        assert.strictEqual(parentOf(replies[0].pid), parentOf(replies[1].pid), "one fork server for the runner")

        // Which runner holds which agent: read from the placements, waking no other agent
        const { body, status } = yield* placements
        assert.strictEqual(status, 200)
        const rows = body as ReadonlyArray<Placement>
        assert.deepStrictEqual(rows.map((row) => [row.agent, row.runner, row.state]), [
          ["alpha", `127.0.0.1:${port}`, "running"],
          ["member-1", `127.0.0.1:${port}`, "running"]
        ])
        for (const row of rows) {
          assert.match(row.shard, /^default:\d+$/)
          assert.isAtMost(row.since, Date.now())
        }
        assert.strictEqual(processesWith(marker).length, 2, "member-0 was never called: no process")
        assert.deepStrictEqual(yield* seenByWatcher, rows)

        // The CLI lists them too
        const listed = yield* cli(["cluster", "--file", file])
        assert.strictEqual(listed.code, 0, listed.stderr)
        assert.match(listed.stdout, /^AGENT\s+RUNNER\s+SHARD\s+SINCE\s+STATE\n/)
        assert.match(
          listed.stdout,
          new RegExp(`\\nalpha\\s+127\\.0\\.0\\.1:${port}\\s+default:\\d+\\s+\\d+s ago\\s+running`)
        )

        // SIGTERM: the runner stops with its agents, up exits 0
        app.child.kill("SIGTERM")
        const exit = yield* app.exited
        assert.deepStrictEqual(exit, { code: 0, signal: null }, app.stderr())
        for (const reply of replies) {
          assert.isFalse(isAlive(reply.pid), `${reply.echo.hello} (pid ${reply.pid}) left running`)
        }
        assert.deepStrictEqual(processesWith(marker), [])
        assert.isFalse(fs.existsSync(stateFile))
        // The stopped agents gave their placements up
        assert.deepStrictEqual(yield* seenByWatcher, [])
        watcher.child.kill("SIGTERM")
        assert.deepStrictEqual(yield* watcher.exited, { code: 0, signal: null }, watcher.stderr())
      }),
    60_000
  )

  it.scopedLive(
    "--runner-port on a file without a cluster section: a ConfigError, nothing started",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-cluster-flags")
        const file = path.join(dir, "tree.yaml")
        fs.writeFileSync(
          file,
          `children:\n  - { type: agent, id: a, config: ${JSON.stringify(agent("alpha", dir))} }\n`
        )
        const result = yield* cli(["up", file, "--runner-port", "4000"])
        assert.strictEqual(result.code, 1)
        assert.include(result.stderr, "--runner-port")
        assert.include(result.stderr, "cluster section")
        assert.deepStrictEqual(processesWith(dir), [])
      }),
    30_000
  )
})

/**
 * `up` claims its state file before it starts its tree (`{ "pid", "starting": true }`), replaced by the admin API's
 * once the tree runs: while the tree starts, a second `up` of the file refuses before it starts a second tree, and
 * `status` says the first is starting. Before, neither saw the first `up` until its admin API listened: `status`
 * said none ran ("Start the tree with up"), and a second `up` started every agent of the tree again before it
 * refused (a new user's trial). A real `up` process with a real agent (agent.mjs `ready-when FILE`).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { BIN, eventually, fixture, processesWith, runCli, spawnApp, tempDir, upListens } from "./support.js"

describe("agent-supervisor up while it starts its tree", () => {
  it.scopedLive(
    "status says it is starting; a second up refuses before it starts anything",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-starting")
        const ready = path.join(dir, "ready") // the agent's start ends once this exists
        const file = path.join(dir, "tree.json")
        fs.writeFileSync(
          file,
          JSON.stringify({
            name: "starting",
            store: { type: "memory" },
            children: [{
              type: "agent",
              id: "slow",
              config: {
                name: "slow",
                command: process.execPath,
                args: [fixture("agents", "agent.mjs"), "ready-when", ready],
                startupTimeout: "60 seconds"
              }
            }]
          })
        )
        const stateFile = path.join(dir, ".tree.json.admin.json")
        const up = yield* spawnApp(BIN, ["up", file, "--log-format", "json"], { onLine: () => {} })
        // Its agent runs, waiting for the file: the tree is starting, and the state file is up's claim
        yield* eventually(`up's agent (stderr: ${up.stderr()})`, () => processesWith(ready).length === 1, "30 seconds")
        assert.deepStrictEqual(JSON.parse(fs.readFileSync(stateFile, "utf8")), { pid: up.pid, starting: true })
        assert.strictEqual(fs.statSync(stateFile).mode & 0o777, 0o600)

        const status = yield* runCli(["status"], { cwd: dir })
        assert.strictEqual(status.code, 1, status.stderr)
        assert.include(status.stderr, `(pid ${up.pid}) is still starting its tree: try again once it has started`)

        const second = yield* runCli(["up", file, "--log-format", "json"], { cwd: dir, timeout: 30_000 })
        assert.strictEqual(second.code, 1, second.stderr)
        assert.isTrue(
          second.stderr.startsWith(
            `error: The state file ${stateFile} is another running admin API's (pid ${up.pid}, still starting its tree)`
          ),
          second.stderr
        )
        assert.deepStrictEqual(processesWith(ready).length, 1, "the second up started no agent")

        fs.writeFileSync(ready, "")
        yield* eventually(`up's admin API (stderr: ${up.stderr()})`, () => upListens(stateFile), "30 seconds")
        const running = yield* runCli(["status"], { cwd: dir })
        assert.strictEqual(running.code, 0, running.stderr)
        assert.match(running.stdout, /\nslow\s+agent\s+RUNNING\s+\d+/)
      }),
    120_000
  )
})

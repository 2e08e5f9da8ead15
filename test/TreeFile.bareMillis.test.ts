/**
 * A duration written as a bare number under a second is milliseconds, and said so (from a new user's trial:
 * `heartbeatInterval: 30` pinged every 30 ms with no word; systemd reads `TimeoutStopSec=90` as seconds). Every
 * duration of the file's JSON Schema is looked at, wherever it is: an agent's, a pool's, a nested supervisor's
 * intensity and shutdown, a topic's. Not a setting under a second by nature (the store's `busyTimeout`, a
 * topic's `retry.backoff`). Said by `TreeFile.warnings` (what `validate`
 * prints) and logged when the tree starts; a number with a unit, 0, or a second or more is not.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Edge from "../src/internal/schema.js"
import { bareMillis } from "../src/internal/treeFile/bareMillis.js"
import * as TreeFile from "../src/TreeFile.js"
import * as TreeFileCluster from "../src/TreeFile/Cluster.js"
import { BIN, fixture, tempDir } from "./support.js"

const agent = (name: string) =>
  `{ name: ${name}, command: ${JSON.stringify(process.execPath)}, args: [${
    JSON.stringify(fixture("agents", "agent.mjs"))
  }, echo] }`

const TREE = `
name: app
intensity: { maxRestarts: 1, window: 500 }
store: { type: sqlite, filename: app.db, busyTimeout: 5 }
topics:
  jobs: { timeout: 20, retry: { backoff: 250, maxAttempts: 2 } }
children:
  - type: agent
    id: a
    shutdown: 5
    config: { name: a, command: x, heartbeatInterval: 30, startupTimeout: 10ms, restartBackoff: 0, requestTimeout: 5000 }
  - type: supervisor
    id: s
    children:
      - { type: pool, id: workers, size: 1, config: { name: w, command: x, pingTimeout: 0.5 } }
`

const EXPECTED = [
  `intensity.window: 500 is 500 milliseconds (a bare number is milliseconds): write "500s" for seconds, or "500ms" ` +
  `to say milliseconds`,
  `topics.jobs.timeout: 20 is 20 milliseconds (a bare number is milliseconds): write "20s" for seconds, or "20ms" ` +
  `to say milliseconds`,
  `children[0].shutdown: 5 is 5 milliseconds (a bare number is milliseconds): write "5s" for seconds, or "5ms" to ` +
  `say milliseconds`,
  `children[0].config.heartbeatInterval: 30 is 30 milliseconds (a bare number is milliseconds): write "30s" for ` +
  `seconds, or "30ms" to say milliseconds`,
  `children[1].children[0].config.pingTimeout: 0.5 is 0.5 milliseconds (a bare number is milliseconds): write ` +
  `"0.5s" for seconds, or "0.5ms" to say milliseconds`
]

describe("tree files: durations as bare numbers", () => {
  it.effect("TreeFile.warnings names each duration under a second written without a unit, and no other", () =>
    Effect.gen(function*() {
      const file = yield* TreeFile.parse(TREE, { format: "yaml", env: {} })
      assert.deepStrictEqual(yield* TreeFile.warnings(file), EXPECTED)
      // A cluster file's warnings (what validate prints for one) say them too
      assert.deepStrictEqual(TreeFileCluster.warnings(file).slice(0, EXPECTED.length), EXPECTED)
      const clean = yield* TreeFile.parse(
        `children:\n  - { type: agent, id: a, config: { name: a, command: x, heartbeatInterval: 30s, ` +
          `gracefulTimeout: 10ms, restartBackoff: 0, requestTimeout: 5000, maxInFlight: 3 } }\n`,
        { format: "yaml", env: {} }
      )
      assert.deepStrictEqual(yield* TreeFile.warnings(clean), [])
      // A topic's name with a dot is written as a ConfigError writes it (a reviewer's finding: it read as a path of
      // three keys, `topics.doc.uploaded.timeout`)
      const dotted = yield* TreeFile.parse(`topics:\n  doc.uploaded: { timeout: 20 }\n`, { format: "yaml", env: {} })
      assert.deepStrictEqual((yield* TreeFile.warnings(dotted)).map((line) => line.split(": ")[0]), [
        `topics["doc.uploaded"].timeout`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("the tree's start logs them, once each; validate prints them", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("bare-millis")
      const file = path.join(dir, "tree.yaml")
      fs.writeFileSync(
        file,
        `store: { type: memory }\nchildren:\n  - type: agent\n    id: a\n    config: ${
          agent("a").replace("echo] }", "echo], gracefulTimeout: 100 }")
        }\n`
      )
      const warning = `children[0].config.gracefulTimeout: 100 is 100 milliseconds (a bare number is milliseconds): ` +
        `write "100s" for seconds, or "100ms" to say milliseconds`
      const logged: Array<string> = []
      const capture = Logger.make(({ logLevel, message }) => {
        const text = [message].flat().map(String).join(" ")
        // (the bare numbers' warnings: a slow stop of the agent may warn of itself too)
        if (logLevel === LogLevel.Warning && text.includes("a bare number is")) logged.push(text)
      })
      const tree = yield* TreeFile.load(file)
      yield* Effect.scoped(TreeFile.make(tree)).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
        Effect.provide(NodeContext.layer)
      )
      assert.deepStrictEqual(logged, [warning])

      const validate = childProcess.spawnSync(process.execPath, [BIN, "validate", file], { encoding: "utf8" })
      assert.strictEqual(validate.status, 0, validate.stderr)
      assert.include(validate.stdout, `warning: ${warning}\n`)
    }).pipe(Effect.provide(NodeContext.layer)))

  // A reviewer's finding: the walk read a value against every alternative of a union, so a key that is a duration
  // in one kind of child would have been warned of in a child of another kind, where it is not one.
  it("a union's alternatives of another kind (their tag says so) are not read for the value's durations", () => {
    const root = JSONSchema.make(Schema.Struct({
      children: Schema.Array(Schema.Union(
        Schema.Struct({ type: Schema.Literal("agent"), wait: Edge.DurationInput }),
        Schema.Struct({ type: Schema.Literal("pool"), wait: Schema.Number })
      ))
    }))
    const file = { children: [{ type: "pool", wait: 5 }, { type: "agent", wait: 5 }, { wait: 7 }] }
    assert.deepStrictEqual(bareMillis(file, root).map((line) => line.split(":")[0]), [
      "children[1].wait",
      // (no tag: it may be either, and is warned of as the duration it may be)
      "children[2].wait"
    ])
  })
})

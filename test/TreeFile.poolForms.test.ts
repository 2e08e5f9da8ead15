/**
 * A pool's `config` in a tree file takes what an agent child's does: an agent's command line (`type: agent`), a
 * function run through a bundled adapter (`type: callback`: `language`, `file`...), or an agent found in a
 * directory (`type: directory`: `agentName`, `agentDir`...), told apart by their keys. Before, a pool took the first
 * alone, and a user who ran a Python or JavaScript function as an agent could not pool it from a file. Checked as
 * the file is read (every problem as a child of that type gets it, none from the other forms), in the JSON Schema,
 * in a cluster's names, and run for real: a pool of Node callback agents, called.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Adapters from "../src/Adapters.js"
import * as Supervisor from "../src/Supervisor.js"
import * as TreeFile from "../src/TreeFile.js"
import { fixture, tempDir, TestLive } from "./support.js"
import { problemsOf, yaml } from "./treeFileSupport.js"

const CALLBACKS = `
children:
  - type: pool
    id: classifiers
    size: 2
    topics: [reviews]
    config: { name: classifier, language: node, file: agents/classify.mjs, function: classify, requestTimeout: 10 seconds }
  - type: pool
    id: summarizers
    size: 1
    config: { name: summarizer, language: python, file: agents/summarize.py, interpreter: .venv/bin/python, cwd: py }
`

describe("tree files: a pool of callback or directory agents", () => {
  it.effect("a pool's config takes the callback form: its cwd from the file's directory, run through the adapter", () =>
    Effect.gen(function*() {
      const file = yield* yaml(CALLBACKS, "/srv/app")
      assert.deepStrictEqual(file.children, [
        {
          type: "pool",
          id: "classifiers",
          size: 2,
          topics: ["reviews"],
          config: {
            name: "classifier",
            language: "node",
            file: "agents/classify.mjs",
            function: "classify",
            requestTimeout: "10 seconds",
            cwd: "/srv/app"
          }
        },
        {
          type: "pool",
          id: "summarizers",
          size: 1,
          config: {
            name: "summarizer",
            language: "python",
            file: "agents/summarize.py",
            interpreter: ".venv/bin/python",
            cwd: "/srv/app/py"
          }
        }
      ])
      // As `Supervisor.pool` takes a callback agent from code: `{ name, ...Adapters.nodeCallback(file, fn) }`
      const options = yield* TreeFile.toOptions(file)
      assert.deepStrictEqual(
        JSON.parse(JSON.stringify(options.children)),
        JSON.parse(JSON.stringify([
          Supervisor.pool({
            id: "classifiers",
            size: 2,
            topics: ["reviews"],
            config: {
              name: "classifier",
              requestTimeout: "10 seconds",
              cwd: "/srv/app",
              ...Adapters.nodeCallback("agents/classify.mjs", "classify")
            }
          }),
          Supervisor.pool({
            id: "summarizers",
            size: 1,
            config: {
              name: "summarizer",
              cwd: "/srv/app/py",
              ...Adapters.pythonCallback("agents/summarize.py", undefined, { python: ".venv/bin/python" })
            }
          })
        ]))
      )
      // The tree's own decoding accepts it as it is (no command of its own), with nothing to warn of
      assert.deepStrictEqual(yield* TreeFile.warnings(file), [])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a pool's config takes the directory form: its paths resolved, the directory resolved once for all", () =>
    Effect.gen(function*() {
      const file = yield* yaml(
        `
children:
  - type: pool
    id: indexers
    size: 2
    config: { agentName: indexer, agentDir: ../directories/node-index, cacheDir: cache, requestTimeout: 5 seconds }
`,
        fixture("trees")
      )
      const [pool] = file.children
      assert.deepStrictEqual(pool, {
        type: "pool",
        id: "indexers",
        size: 2,
        config: {
          agentName: "indexer",
          agentDir: fixture("directories", "node-index"),
          cacheDir: fixture("trees", "cache"),
          requestTimeout: "5 seconds"
        }
      })
      const options = yield* TreeFile.toOptions(file)
      const spec = options.children![0] as Supervisor.PoolSpec
      assert.strictEqual(spec._tag, "Pool")
      assert.strictEqual(spec.size, 2)
      assert.strictEqual(spec.config.name, "indexer")
      assert.strictEqual(spec.config.command, process.execPath)
      assert.deepStrictEqual(yield* TreeFile.warnings(file), [])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("every problem of a pool's config, as a child of that form gets it, none from the other forms", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
children:
  - type: pool
    id: a
    size: 1
    config: { name: a, language: ruby, file: "", requestTimeout: 5 secs }
  - type: pool
    id: b
    size: 1
    config: { name: b, language: node, fiel: b.mjs }
  - type: pool
    id: c
    size: 1
    config: { agentName: c, agentDir: "", installTimout: 1 minute }
  - type: pool
    id: d
    size: 1
    config: { name: d, comand: x }
  - type: pool
    id: e
    size: 2
    shutdown: brutal-kill
    config: { name: e, language: node, file: e.mjs, gracefulTimeout: 3 seconds }
`)
      assert.deepStrictEqual(problems, [
        `children[0].config.language: must be "python" or "node"`,
        "children[0].config.file: must be a file",
        `children[0].config.requestTimeout: must be a duration like "5 seconds", "250ms" or "1h30m"`,
        "children[1].config.file: is missing",
        `children[1].config.fiel: is not a known setting: did you mean "file"?`,
        "children[2].config.agentDir: must be a directory",
        `children[2].config.installTimout: is not a known setting: did you mean "installTimeout"?`,
        "children[3].config.command: is missing",
        `children[3].config.comand: is not a known setting: did you mean "command"?`,
        "children[4].shutdown: conflicts with children[4].config.gracefulTimeout (3s): give the stop timeouts in " +
        `one place ("brutal-kill" sets both to 0, a duration sets gracefulTimeout)`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it("the JSON Schema: a pool's config is an agent's, a callback agent's or a directory agent's", () => {
    const schema = TreeFile.jsonSchema() as any
    const [agent, callback, directory, pool] = schema.$defs.Child.anyOf
    assert.deepStrictEqual(pool.properties.config.anyOf.map((form: any) => form.required), [
      agent.properties.config.required,
      callback.properties.config.required,
      directory.properties.config.required
    ])
    assert.deepStrictEqual(
      pool.properties.config.anyOf.map((form: any) => Object.keys(form.properties)),
      [agent, callback, directory].map((kind) => Object.keys(kind.properties.config.properties))
    )
  })

  it.effect("in a cluster, a pool of a directory agent's members are <agentName>-<i>, unique as every name", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
cluster: { role: local }
children:
  - type: agent
    id: one
    config: { name: indexer-1, command: x }
  - type: pool
    id: indexers
    size: 2
    config: { agentName: indexer, agentDir: . }
`)
      assert.deepStrictEqual(problems, [
        `children[1].config.agentName: must be unique in a cluster, where an agent's name (a pool member's: ` +
        `<name>-<i>) is its id: children[0].config.name names "indexer-1" too`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe.sequential("tree files: a pool of callback agents, run", () => {
  it.scopedLive(
    "a pool of Node callback agents starts from a file, each member named <name>-<i>, and takes calls",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("treefile-pool-callback")
        fs.mkdirSync(path.join(dir, "agents"))
        fs.copyFileSync(fixture("node", "echo.mjs"), path.join(dir, "agents", "echo.mjs"))
        fs.writeFileSync(
          path.join(dir, "tree.yaml"),
          [
            "name: pooled",
            "children:",
            "  - type: pool",
            "    id: echoes",
            "    size: 2",
            "    routing: round-robin",
            "    config: { name: echo, language: node, file: agents/echo.mjs, startupTimeout: 20 seconds }",
            "  - type: pool",
            "    id: shouters",
            "    size: 1",
            "    config: { name: shouter, language: node, file: agents/echo.mjs, function: shout }",
            ""
          ].join("\n")
        )
        const file = yield* TreeFile.load(path.join(dir, "tree.yaml"))
        const sup = yield* TreeFile.make(file)
        const members = yield* Effect.flatMap(sup.childSupervisor("echoes"), (pool) => pool.whichChildren)
        assert.deepStrictEqual(members.map((m) => [m.id, m.name, m.state]).sort(), [
          ["0", "echo-0", "RUNNING"],
          ["1", "echo-1", "RUNNING"]
        ])
        // Each call to one member, in turn: both answer as the function does
        for (const n of [1, 2, 3]) assert.deepStrictEqual(yield* sup.call("echoes", { n }), { n })
        assert.strictEqual(yield* sup.call("shouters", "pooled"), "POOLED")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )
})

/**
 * Agents of one name in a tree share the store's last state and checkpoint, a log file and a metric series: a tree
 * warns of them as it starts (and `validate` prints it, through `TreeFile.warnings`), and a child added to a running
 * tree is warned of when its agent takes a name that an agent of the tree has (a trial's user saw a deleted
 * namesake's STOPPED overwrite a running agent's state).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Supervisor from "../src/Supervisor.js"
import * as TreeFile from "../src/TreeFile.js"
import { agentConfig, logMessages, TestLive } from "./support.js"

const HEAD = "Agents of one name share one last state and checkpoint in the store, one log file and one metric series"

const TREE = `
name: app
children:
  - { type: agent, id: a, config: { name: twin, command: x } }
  - { type: agent, id: b, config: { name: solo, command: x } }
  - type: supervisor
    id: s
    children:
      - { type: agent, id: c, config: { name: twin, command: x } }
      - { type: agent, id: d, config: { name: p-1, command: x } }
  - { type: pool, id: p, size: 2, config: { name: p, command: x } }
`

describe("agents of one name", () => {
  it.effect("a tree file: one warning naming each shared name and where its agents are", () =>
    Effect.gen(function*() {
      const file = yield* TreeFile.parse(TREE, { format: "yaml", env: {} })
      const warnings = (yield* TreeFile.warnings(file)).filter((warning) => warning.startsWith(HEAD))
      assert.deepStrictEqual(warnings, [
        [
          `${HEAD}, each overwriting the other's:`,
          `  "twin": children[0] ("a"), children[2].children[0] ("s/c")`,
          // a pool's member is named <name>-<i>
          `  "p-1": children[2].children[1] ("s/d"), children[3] ("p/1")`,
          `Give each agent a name of its own (README "Configuration").`
        ].join("\n")
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("directory agents go by their agentName: two of their own names share nothing, two of one name do", () =>
    Effect.gen(function*() {
      const tree = (a: string, b: string) =>
        TreeFile.parse(
          [
            "name: app",
            "children:",
            `  - { type: directory, id: one, config: { agentName: ${a}, agentDir: . } }`,
            `  - { type: directory, id: two, config: { agentName: ${b}, agentDir: . } }`,
            ""
          ].join("\n"),
          { format: "yaml", env: {} }
        )
      const namesakes = (file: TreeFile.TreeFile) =>
        Effect.map(TreeFile.warnings(file), (warnings) => warnings.filter((warning) => warning.startsWith(HEAD)))
      assert.deepStrictEqual(yield* namesakes(yield* tree("alpha", "beta")), [])
      const [warning] = yield* namesakes(yield* tree("same", "same"))
      assert.include(warning, `\n  "same": children[0] ("one"), children[1] ("two")\n`)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("startChild of an agent named as one in the tree: warned of, by where it goes", () => {
    const { lines, provide } = logMessages()
    return Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        name: "app",
        children: [Supervisor.agent({ id: "first", config: agentConfig("echo", { name: "shared" }) })]
      })
      yield* sup.startChild(Supervisor.agent({ id: "own", config: agentConfig("echo", { name: "own" }) }))
      assert.deepStrictEqual(lines.filter((line) => line.startsWith(HEAD)), [], "a name of its own: no warning")
      yield* sup.startChild(Supervisor.agent({ id: "second", config: agentConfig("echo", { name: "shared" }) }))
      const warned = lines.filter((line) => line.startsWith(HEAD))
      assert.strictEqual(warned.length, 1, lines.join("\n"))
      assert.include(warned[0], `\n  "shared": children[2] ("second"), "first" already in the tree\n`)
    }).pipe(provide, Effect.provide(TestLive))
  })
})

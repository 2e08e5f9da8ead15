/**
 * The paths and rules of a `ConfigError`, whatever the key (a fresh pair of eyes' findings and a new user's):
 * - a key that is no plain name is quoted in its path (`env["A.B"]`), wherever the path is put together (a
 *   cluster's topology, a topic's settings, a tree file's child), and the message puts no quotes around a path;
 * - a value outside a union of literals is one problem naming them all, not one problem per literal;
 * - options that are not an object are told so, not the schema's whole type, and a union of literals and settings
 *   names both; what is told is read from the schema, not from the text of its message.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Config from "../src/Agent/Config.js"
import * as ProcessTree from "../src/Agent/ProcessTree.js"
import * as ClusterOptions from "../src/internal/cluster/options.js"
import * as Topology from "../src/internal/cluster/topology.js"
import * as Edge from "../src/internal/schema.js"
import * as Supervisor from "../src/Supervisor.js"
import * as TreeFile from "../src/TreeFile.js"
import { configErrorOf, tempDir, TestLive } from "./support.js"

const configError = configErrorOf

describe("ConfigError paths", () => {
  it.effect("a key that is no plain name is quoted in the path, and the message leaves the path bare", () =>
    Effect.gen(function*() {
      const error = yield* configError(Config.make({ name: "x", command: "sh", env: { "A.B": 5 as any } }))
      assert.strictEqual(error.problems[0].field, `env["A.B"]`)
      assert.match(error.message, /^Invalid configuration at env\["A\.B"\]: /)
      assert.match(error.remediation, /^env\["A\.B"\] /)
    }))

  it.effect("a cluster's topology: the agent's path before the config's, a whole config that is no object its own", () =>
    Effect.gen(function*() {
      const error = yield* configError(Topology.decode({
        agents: [{ config: { name: "x", command: "sh", env: { "A.B": 5 as any } } }, null as any]
      }))
      assert.deepStrictEqual(error.problems.map((p) => p.field), [`agents[0].config.env["A.B"]`, "agents[1]"])
    }))

  it.effect("a cluster's pool: a size above its maxSize (1000 unless given) at its path, as a tree's pool", () =>
    Effect.gen(function*() {
      const config = { name: "w", command: "sh" }
      const error = yield* configError(Topology.decode({
        pools: [
          { id: "huge", size: 1_000_000, config },
          { id: "small", size: 3, maxSize: 2, config: { ...config, name: "s" } },
          { id: "bad", size: 1, maxSize: 0, config: { ...config, name: "b" } }
        ]
      }))
      assert.deepStrictEqual(error.problems.map((p) => [p.field, p.rule.split(" (")[0], p.value]), [
        ["pools[0].size", "must be at most the pool's maxSize, 1000", "1000000"],
        ["pools[1].size", "must be at most the pool's maxSize, 2", "3"],
        ["pools[2].maxSize", "must be a whole number of 1 or more", "0"]
      ])
      // Within it: decoded
      yield* Topology.decode({ pools: [{ id: "ok", size: 2, maxSize: 2, config }] })
    }))

  it.effect("a topic's unknown setting under a dotted topic name", () =>
    Effect.gen(function*() {
      const error = yield* configError(
        Supervisor.make({
          topics: { "doc.uploaded": { "max Queued": 1, maxQueued: 0 } as any },
          children: []
        }).pipe(Effect.scoped)
      )
      assert.sameMembers(error.problems.map((p) => p.field), [
        `topics["doc.uploaded"]["max Queued"]`,
        `topics["doc.uploaded"].maxQueued`
      ])
    }).pipe(Effect.provide(TestLive)))

  it("joinPaths: a path read inside another, a bracketed one included; the whole value's name is the outer path", () => {
    assert.strictEqual(Edge.joinPaths("children[0].config", `env["A.B"]`), `children[0].config.env["A.B"]`)
    assert.strictEqual(
      Edge.joinPaths(`topics["doc.uploaded"]`, `["max Queued"]`),
      `topics["doc.uploaded"]["max Queued"]`
    )
    assert.strictEqual(Edge.joinPaths("children[1]", "[0]"), "children[1][0]")
    assert.strictEqual(Edge.joinPaths("children[0].config", "(config)"), "children[0].config")
    assert.strictEqual(Edge.joinPaths("", "name"), "name")
    assert.strictEqual(Edge.joinPaths("agents[0]", ""), "agents[0]")
  })
})

describe("ConfigError rules", () => {
  it.effect("a value outside a union of literals: one problem naming them all", () =>
    Effect.gen(function*() {
      const restart = yield* configError(Config.make({ name: "x", command: "sh", restart: "sometimes" as any }))
      assert.deepStrictEqual(restart.problems, [{
        field: "restart",
        rule: `must be "permanent", "transient" or "temporary"`,
        value: `"sometimes"`
      }])
      // the same kind elsewhere: a sample's `stale`
      const stale = yield* configError(ProcessTree.sample(process.pid, { stale: "never" as any }))
      assert.deepStrictEqual(stale.problems.map((p) => p.rule), [`must be "rescan" or "serve"`])
    }))

  it.scoped("the same in a tree file: one problem, with what was meant", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("config-rules")
      const file = path.join(dir, "tree.yaml")
      fs.writeFileSync(
        file,
        "children:\n  - type: agent\n    id: b\n    config: { name: b, command: sh, restart: permanant }\n"
      )
      const error = yield* configError(TreeFile.load(file))
      assert.deepStrictEqual(error.problems.map((p) => [p.field, p.rule]), [[
        "children[0].config.restart",
        `must be "permanent", "transient" or "temporary": did you mean "permanent"?`
      ]])
    }).pipe(Effect.provide(TestLive)))

  it.effect("options that are no object are told so, not the schema's type", () =>
    Effect.gen(function*() {
      for (const options of [null, 5, "1s", []]) {
        const error = yield* configError(ProcessTree.sample(process.pid, options as any))
        assert.deepStrictEqual(
          error.problems.map((p) => [p.field, p.rule]),
          [["(sample options)", "must be an object of settings"]],
          JSON.stringify(options)
        )
      }
      // a whole configuration, and a field that takes settings, given something else
      for (const config of [5, null, [], "agent"]) {
        const error = yield* configError(Config.make(config as any))
        assert.deepStrictEqual(
          error.problems.map((p) => [p.field, p.rule]),
          [["(config)", "must be an object of settings"]],
          JSON.stringify(config)
        )
      }
      const limits = yield* configError(Config.make({ name: "x", command: "sh", limits: 5 as any }))
      assert.deepStrictEqual(limits.problems.map((p) => [p.field, p.rule]), [[
        "limits",
        "must be an object of settings"
      ]])
      // a record (any names) is not settings
      const env = yield* configError(Config.make({ name: "x", command: "sh", env: "A=1" as any }))
      assert.deepStrictEqual(env.problems.map((p) => [p.field, p.rule]), [[
        "env",
        "must be an object of names to values"
      ]])
    }).pipe(Effect.provide(TestLive)))

  it("a union of literals and settings: one problem naming both, not the optional field's undefined", () => {
    for (const timing of ["slow", 5, []]) {
      const error = Either.getLeft(ClusterOptions.decode({ timing }))
      assert.deepStrictEqual(
        Option.map(error, (e) => e.problems.map((p) => [p.field, p.rule])),
        Option.some([["cluster.timing", `must be "standard", "fast" or "test", or an object of settings`]]),
        JSON.stringify(timing)
      )
    }
  })

  it("a struct's own check (a refinement) keeps its message when it is given an object", () => {
    const Range = Schema.Struct({ min: Schema.Number, max: Schema.Number }).pipe(
      Schema.filter((range) => range.min <= range.max, { message: () => "min must not be above max" })
    )
    const problems = (input: unknown) =>
      Either.match(Edge.decodeOptions(Schema.Struct({ range: Range }), input, { whole: "(options)" }), {
        onLeft: (error) => error.problems.map((p) => [p.field, p.rule]),
        onRight: () => []
      })
    assert.deepStrictEqual(problems({ range: { min: 2, max: 1 } }), [["range", "min must not be above max"]])
    assert.deepStrictEqual(problems({ range: 5 }), [["range", "must be an object of settings"]])
  })
})

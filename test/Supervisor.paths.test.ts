/**
 * A child id may hold a "/" (`"x/y"`), and a path below the root is ids joined by "/": an id that starts with a
 * sibling supervisor's or pool's id and "/" would share its path with that sibling's child (`"x/y"` beside supervisor
 * `"x"` and its child `"y"`), and the admin API and the CLI could reach only one. Refused where the tree is decoded
 * (`Supervisor.make`, a tree file) and where children are added (`startChild`, `startChildren`), before anything
 * starts.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Supervisor from "../src/Supervisor.js"
import * as TreeFile from "../src/TreeFile.js"
import { agentConfig, problemLines, TestLive } from "./support.js"

const agent = (id: string) => Supervisor.agent({ id, config: agentConfig("echo", { name: id.replaceAll("/", "-") }) })

const problemsOf = problemLines

describe("child paths", () => {
  it.effect("Supervisor.make: an id under a sibling supervisor's or pool's path is a problem at its place", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(
        Supervisor.make({
          children: [
            Supervisor.supervisor({ id: "x", children: [agent("y")] }),
            agent("x/y"),
            Supervisor.supervisor({
              id: "group",
              children: [
                Supervisor.pool({ id: "p", size: 2, config: agentConfig("echo", { name: "p" }) }),
                // any member number: a scale may add it
                agent("p/7")
              ]
            }),
            // deeper, and a supervisor whose id is the other's path
            Supervisor.supervisor({ id: "x/y/z", children: [] })
          ]
        }).pipe(Effect.scoped)
      )
      assert.deepStrictEqual(problems, [
        `children[2].children[1].id: must not start with "p/": "p" beside it (children[2].children[0]) is a ` +
        `supervisor or pool, and the path "p/7" would name both this child and its child "7"`,
        `children[1].id: must not start with "x/": "x" beside it (children[0]) is a supervisor or pool, and the ` +
        `path "x/y" would name both this child and its child "y"`,
        `children[3].id: must not start with "x/": "x" beside it (children[0]) is a supervisor or pool, and the ` +
        `path "x/y/z" would name both this child and its child "y/z"`
      ])
    }).pipe(Effect.provide(TestLive)))

  it.effect("an id that is \".\" or \"..\", or holds one between \"/\", is a problem: a URL reads them as steps", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(
        Supervisor.make({
          children: [".", "..", "a/../b", "c/./d", "e..f", ".g"].map((id, i) =>
            Supervisor.agent({ id, config: agentConfig("echo", { name: `agent-${i}` }) })
          )
        }).pipe(Effect.scoped)
      )
      assert.deepStrictEqual(problems.map((p) => p.split(":")[0]), [
        "children[0].id",
        "children[1].id",
        "children[2].id",
        "children[3].id"
      ])
      assert.match(problems[1], /must not be "\." or "\.\.", nor hold them between "\/"/)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive(
    "an id holding \"/\" beside an agent of its first step is no clash: an agent has no children",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [agent("a"), agent("a/b")] })
        assert.deepStrictEqual((yield* sup.whichChildren).map((c) => [c.id, c.state]), [
          ["a/b", "RUNNING"],
          ["a", "RUNNING"]
        ])
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "startChild and startChildren: either side of a clash added to a running tree is refused",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          children: [Supervisor.supervisor({ id: "x", children: [] }), agent("w/1")]
        })
        assert.deepStrictEqual(yield* problemsOf(sup.startChild(agent("x/y"))), [
          `children[2].id: must not start with "x/": "x" beside it (in the tree) is a supervisor or pool, and the ` +
          `path "x/y" would name both this child and its child "y"`
        ])
        assert.deepStrictEqual(yield* problemsOf(sup.startChild(Supervisor.supervisor({ id: "w", children: [] }))), [
          `children[2].id: clashes with the child "w/1" beside it: as a supervisor or pool, its child "1" would have ` +
          `the path "w/1" too`
        ])
        assert.deepStrictEqual(
          yield* problemsOf(sup.startChildren([
            Supervisor.pool({ id: "q", size: 1, config: agentConfig("echo", { name: "q" }) }),
            agent("q/0")
          ])),
          [
            `children[3].id: must not start with "q/": "q" beside it (children[2]) is a supervisor or pool, and the ` +
            `path "q/0" would name both this child and its child "0"`
          ]
        )
        // Nothing was added
        assert.deepStrictEqual((yield* sup.whichChildren).map((c) => c.id), ["w/1", "x"])
        // The same inside a nested supervisor: its children are the siblings
        const x = yield* sup.childSupervisor("x")
        yield* x.startChild(Supervisor.supervisor({ id: "inner", children: [] }))
        assert.deepStrictEqual(yield* problemsOf(x.startChild(agent("inner/a"))), [
          `children[1].id: must not start with "inner/": "inner" beside it (in the tree) is a supervisor or pool, ` +
          `and the path "inner/a" would name both this child and its child "a"`
        ])
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.effect("a tree file: the same problem at the file's path", () =>
    Effect.gen(function*() {
      const text = `
children:
  - type: supervisor
    id: workers
    children:
      - { type: agent, id: echo, config: { name: echo, command: x } }
  - { type: agent, id: workers/echo, config: { name: echo2, command: x } }
`
      assert.deepStrictEqual(yield* problemsOf(TreeFile.parse(text, { format: "yaml", env: {} })), [
        `children[1].id: must not start with "workers/": "workers" beside it (children[0]) is a supervisor or pool, ` +
        `and the path "workers/echo" would name both this child and its child "echo"`
      ])
    }).pipe(Effect.provide(NodeContext.layer), Effect.provide(TestLive)))
})

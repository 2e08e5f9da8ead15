/**
 * Tree files run for real: a file loaded from disk starts its agents (real child processes: the raw-protocol test
 * agent, a Python directory agent, the demo's agents of `examples/tree.yaml`), answers calls through the tree, writes
 * to the SQLite store the file chose, and closing the scope stops every agent (3-phase) and leaves their last stored
 * state `STOPPED`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import * as TreeFile from "../src/TreeFile.js"
import {
  agentConfig,
  closeableScope,
  eventually,
  fixture,
  isAlive,
  parentOf,
  root,
  tempDir,
  TestLive
} from "./support.js"

/** The pids of a supervisor's running children, by id. */
const pids = (sup: Supervisor.Supervisor) =>
  Effect.map(
    sup.whichChildren,
    (children) => Object.fromEntries(children.flatMap((c) => Option.isSome(c.pid) ? [[c.id, c.pid.value]] : []))
  )

/** The last state the SQLite store at `filename` holds for each agent. */
const storedStates = (filename: string, agents: ReadonlyArray<string>) =>
  Effect.forEach(agents, (agent) => Effect.map(Store.restore(agent), (r) => Option.map(r.state, (s) => s.state))).pipe(
    Effect.provide(Store.layerSqlite({ filename }))
  )

describe.sequential("a tree file, run", () => {
  it.scoped("starts the file's agents on its store, answers calls, and stops them all when the scope closes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile-run")
      const file = yield* TreeFile.load(fixture("trees", "tree.yaml"), {
        env: { NODE: process.execPath, STORE_DIR: dir }
      })
      const scope = yield* closeableScope
      const sup = yield* TreeFile.make(file).pipe(Scope.extend(scope))
      assert.strictEqual(sup.name, "fixture")
      assert.strictEqual(yield* sup.call("echo", { echo: "from a file" }), "from a file")
      const workers = yield* sup.childSupervisor("workers")
      assert.deepStrictEqual(yield* workers.call("basic", { n: 1 }), { language: "python", echo: { n: 1 } })
      const running = [...Object.values(yield* pids(sup)), ...Object.values(yield* pids(workers))]
      assert.strictEqual(running.length, 2)
      for (const pid of running) assert.isTrue(isAlive(pid))

      yield* Scope.close(scope, Exit.void)
      // Closing returns once every agent is reaped, and after the store took the last writes.
      for (const pid of running) assert.isFalse(isAlive(pid), `pid ${pid}`)
      const filename = path.join(dir, "tree.sqlite")
      assert.isTrue(fs.existsSync(filename))
      const states = yield* storedStates(filename, ["file-echo", "file-basic"])
      assert.deepStrictEqual(states, [Option.some("STOPPED"), Option.some("STOPPED")])
    }).pipe(Effect.provide(TestLive)))

  it.scoped("examples/tree.yaml runs the demo's agents as a layer, with the store and the tree in its output", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile-example")
      const filename = path.join(dir, "demo.sqlite")
      const file = yield* TreeFile.load(path.join(root, "examples", "tree.yaml"), { env: { DEMO_STORE: filename } })
      const program = Effect.gen(function*() {
        const tree = yield* Supervisor.RootSupervisor
        const summary = yield* tree.call("summarizer", { payload: { text: "a tree from a file" } })
        assert.deepStrictEqual(summary, { words: 5, summary: "a tree from a file" })
        const workers = yield* tree.childSupervisor("workers")
        const sentiment = (yield* workers.call("classifier", { payload: { text: "fast and reliable" } })) as {
          readonly sentiment: string
        }
        assert.strictEqual(sentiment.sentiment, "positive")
        // The store is the file's, in the layer's output for whoever reads the tree's history
        const state = yield* Effect.flatMap(Store.Store, (store) => store.getState("classifier"))
        assert.deepStrictEqual(Option.map(state, (s) => s.state), Option.some("RUNNING"))
        return [...Object.values(yield* pids(tree)), ...Object.values(yield* pids(workers))]
      })
      const running = yield* Effect.scoped(
        Effect.flatMap(Layer.build(TreeFile.layer(file)), (context) => Effect.provide(program, context))
      )
      assert.strictEqual(running.length, 2)
      for (const pid of running) assert.isFalse(isAlive(pid), `pid ${pid}`)
      const states = yield* storedStates(filename, ["summarizer", "classifier"])
      assert.deepStrictEqual(states, [Option.some("STOPPED"), Option.some("STOPPED")])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("forkServer: true spawns the file's agents through a fork server (make and layer); it ends with them", () =>
    Effect.gen(function*() {
      const text = JSON.stringify({
        forkServer: true,
        children: [{ type: "agent", id: "echo", config: agentConfig("echo", { name: "forked-echo" }) }]
      })
      const file = yield* TreeFile.parse(text, { format: "json" })
      assert.isTrue(file.forkServer)
      const through = (pid: number) => {
        const server = parentOf(pid)
        assert.notStrictEqual(server, process.pid, "spawned by this process, not through a fork server")
        return server
      }
      // make: the tree's scope
      const scope = yield* closeableScope
      const sup = yield* TreeFile.make(file).pipe(Scope.extend(scope))
      assert.strictEqual(yield* sup.call("echo", { echo: 1 }), 1)
      const server = through((yield* pids(sup)).echo)
      yield* Scope.close(scope, Exit.void)
      yield* eventually("the fork server has ended with its tree's agents", () => !isAlive(server))
      // layer: the layer's scope
      const layerServer = yield* Effect.scoped(
        Effect.flatMap(
          Layer.build(TreeFile.layer(file)),
          (context) =>
            Effect.provide(Effect.map(Effect.flatMap(Supervisor.RootSupervisor, pids), (p) => through(p.echo)), context)
        )
      )
      yield* eventually("the layer's fork server has ended with its agents", () => !isAlive(layerServer))
    }).pipe(Effect.provide(TestLive)))

  it.scoped("a directory agent that cannot be resolved fails the start, naming its place in the file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile-broken")
      // There (one that is not is the file's problem, as it is read), but holding no agent: only the start can tell.
      fs.mkdirSync(path.join(dir, "empty-directory"))
      fs.writeFileSync(
        path.join(dir, "tree.json"),
        JSON.stringify({
          children: [
            {
              type: "agent",
              id: "echo",
              config: { name: "echo", command: process.execPath, args: [fixture("agents", "agent.mjs"), "echo"] }
            },
            {
              type: "directory",
              id: "missing",
              config: { agentName: "missing", agentDir: "empty-directory", cacheDir: "cache" }
            }
          ]
        })
      )
      const file = yield* TreeFile.load(path.join(dir, "tree.json"))
      // Directories are resolved before the tree starts: no agent was started.
      const error = yield* Effect.flip(Effect.scoped(TreeFile.make(file)))
      assert.strictEqual(error._tag, "ConfigError")
      if (error._tag !== "ConfigError") return
      assert.strictEqual(error.field, "children[1].config.agentDir")
      assert.strictEqual(error.value, path.join(dir, "empty-directory"))
    }).pipe(Effect.provide(TestLive)))
})

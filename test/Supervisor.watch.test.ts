/**
 * Development watch mode (`watch: { paths, debounce }` on a child spec): a change under a watched directory reloads
 * the child (a new pid, the old one stopped) and a burst of changes reloads it once. Real agent processes and real
 * files.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, closeableScope, eventuallyEffect, isAlive, tempDir, TestLive } from "./support.js"

const pidOf = (sup: Supervisor.Supervisor, id: string) =>
  Effect.map(
    sup.whichChildren,
    (children) => Option.getOrUndefined(children.find((c) => c.id === id)?.pid ?? Option.none())
  )

/**
 * Writes `file` until the child "dev" runs under a new pid, and returns it. The watcher starts in a fiber of its
 * own: a write every 400 ms (past the debounce, so that each one can end a burst) until a reload shows.
 */
const reloadedByWrites = (sup: Supervisor.Supervisor, file: string, what: string) =>
  Effect.gen(function*() {
    const first = yield* pidOf(sup, "dev")
    let lastWrite = 0
    let writes = 0
    let now: number | undefined
    yield* eventuallyEffect(
      what,
      Effect.gen(function*() {
        if (Date.now() - lastWrite > 400) {
          fs.writeFileSync(file, `// edit ${writes++}\n`)
          lastWrite = Date.now()
        }
        now = yield* pidOf(sup, "dev")
        return now !== undefined && now !== first
      }),
      "20 seconds"
    )
    return now!
  })

describe("watch mode", () => {
  it.scopedLive(
    "a change under a watched directory reloads the child; a burst reloads it once",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("watch")
        fs.mkdirSync(path.join(dir, "src"))
        const sup = yield* Supervisor.make({
          children: [
            Supervisor.agent({
              id: "dev",
              config: agentConfig("echo", { name: "dev" }),
              watch: { paths: [dir], debounce: "150 millis" }
            })
          ]
        })
        const first = (yield* pidOf(sup, "dev"))!
        const second = yield* reloadedByWrites(sup, path.join(dir, "src", "agent.mjs"), "a reload after a change")
        yield* eventuallyEffect("the old version stopped", Effect.sync(() => !isAlive(first)))

        // A burst of ten changes within the debounce: one reload.
        const events = yield* sup.subscribe
        for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(dir, "src", `burst-${i}.txt`), "x")
        yield* eventuallyEffect(
          "the burst's reload",
          Effect.map(pidOf(sup, "dev"), (now) => now !== undefined && now !== second),
          "20 seconds"
        )
        // Past another debounce and more: no second reload came from the burst.
        yield* Effect.sleep("600 millis")
        const started = Array.from(yield* events.takeAll).filter((e) => e._tag === "ChildStarted")
        assert.strictEqual(started.length, 1, JSON.stringify(started))
        assert.deepStrictEqual(yield* sup.call("dev", { echo: "still serving" }), "still serving")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive("a watched path that is not there yet is watched once it is", () =>
    Effect.gen(function*() {
      const parent = yield* tempDir("watch-later")
      const dir = path.join(parent, "later")
      const sup = yield* Supervisor.make({
        children: [
          Supervisor.agent({
            id: "dev",
            config: agentConfig("echo", { name: "dev" }),
            watch: { paths: [dir], debounce: "100 millis" }
          })
        ]
      })
      fs.mkdirSync(dir)
      yield* reloadedByWrites(sup, path.join(dir, "x.txt"), "a reload once the path exists")
    }).pipe(Effect.provide(TestLive)), 60_000)

  // Regression: the paths were watched together, so one missing path (retried every second) left the others unwatched.
  it.scopedLive("a path that is missing does not keep the others from being watched", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("watch-some")
      const missing = path.join(yield* tempDir("watch-none"), "never")
      const sup = yield* Supervisor.make({
        children: [
          Supervisor.agent({
            id: "dev",
            config: agentConfig("echo", { name: "dev" }),
            watch: { paths: [missing, dir], debounce: "100 millis" }
          })
        ]
      })
      yield* reloadedByWrites(sup, path.join(dir, "x.txt"), "a reload after a change under the path that is there")
      assert.isFalse(fs.existsSync(missing))
    }).pipe(Effect.provide(TestLive)), 60_000)

  // Regression: the tree stopping while a watched reload stops the old incarnation hung the stop for ever: the
  // watcher's fiber lost its interruption while it ran the old incarnation's finalizers (Effect 3.22, see
  // fork.test.ts) and went on watching. Only the old incarnation is slow to stop (it ignores `shutdown` and waits out
  // its graceful timeout), so the tree's stop, which stops the new one first, reaches the watcher mid-close.
  it.scopedLive("the tree stops while a watched reload is stopping the old incarnation", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("watch-stop")
      const marker = path.join(yield* tempDir("watch-stop-marker"), "first")
      const scope = yield* closeableScope
      const config = agentConfig("ignore-shutdown-first", { name: "dev", gracefulTimeout: "3 seconds" })
      const sup = yield* Supervisor.make({
        children: [
          Supervisor.agent({
            id: "dev",
            config: { ...config, args: [...config.args!, marker] },
            watch: { paths: [dir], debounce: "50 millis" }
          })
        ]
      }).pipe(Scope.extend(scope))
      const first = (yield* pidOf(sup, "dev"))!
      yield* reloadedByWrites(sup, path.join(dir, "x.txt"), "a reload after a change")
      // The new one is in place; the old one has 3 s left before its SIGTERM. Stop the tree now, in a fiber of its
      // own: were the stop to hang, the test fails here, not at its timeout.
      assert.isTrue(isAlive(first))
      const closing = yield* Effect.forkDaemon(Scope.close(scope, Exit.void))
      const stopped = yield* Fiber.join(closing).pipe(Effect.timeoutOption("20 seconds"))
      assert.isTrue(Option.isSome(stopped), "the tree's stop did not end within 20 s")
      assert.isFalse(isAlive(first))
    }).pipe(Effect.provide(TestLive)), 60_000)
})

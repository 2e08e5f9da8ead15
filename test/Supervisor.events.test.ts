/**
 * The end of a tree's events: what its stop publishes (each child's stop, in order) reaches a subscriber still
 * reading them, and the stream ends after the last (issue: they were discarded when the hub shut down with them
 * untaken). Real agent processes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, TestLive } from "./support.js"

const echo = (id: string) => Supervisor.agent({ id, config: agentConfig("echo", { name: `events-${id}` }) })

describe("Supervisor events at the tree's stop", () => {
  it.scopedLive("a slow reader of events gets every child's stop, then the stream ends", () =>
    Effect.gen(function*() {
      const treeScope = yield* Scope.make()
      const sup = yield* Supervisor.make({ children: [echo("a"), echo("b"), echo("c")] }).pipe(
        Scope.extend(treeScope)
      )
      // Subscribed now (as the `events` stream is when it starts); each event takes the reader a while: 10 ms, about
      // 100 ms for the stop's events, well inside the 1 s the hub's shutdown waits for them (30 ms each passed it on
      // a slow, busy 2-core machine in CI).
      const queue = yield* sup.subscribe
      const reader = yield* Stream.fromQueue(queue).pipe(
        Stream.tap(() => Effect.sleep("10 millis")),
        Stream.runCollect,
        Effect.fork
      )
      yield* Scope.close(treeScope, Exit.void)
      const seen = Chunk.toReadonlyArray(yield* Fiber.join(reader))
      const stopped = seen.flatMap((e) => e._tag === "ChildStopped" && e.why === "shutdown" ? [e.child] : [])
      assert.deepStrictEqual(stopped, ["c", "b", "a"], JSON.stringify(seen.map((e) => e._tag)))
    }).pipe(Effect.provide(TestLive)), 60_000)
})

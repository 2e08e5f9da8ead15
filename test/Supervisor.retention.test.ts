/**
 * What a running child keeps of the call that started it: nothing of the caller's arguments but its own spec. The
 * span of a manual operation stays reachable as long as what it started lives (Effect's finalizers keep the fiber
 * refs they were added with); a span that captured its stack trace kept, through that trace's frames, the functions
 * there and what they close over: a `startChildren`'s whole list of specs, for as long as one child of the batch
 * lived. A forced GC and a `WeakRef` tell what is still held (`gc.ts`).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Supervisor from "../src/Supervisor.js"
import { collected } from "./gc.js"
import { fixture, TestLive } from "./support.js"

const pong = (id: string) =>
  Supervisor.agent({ id, config: { name: id, command: "/bin/sh", args: [fixture("agents", "pong.sh")] } })

/** `count` specs in an array, handed to `use`; a `WeakRef` to the array, or to what `watched` picks of it. */
const heldOnlyBy = <E>(
  count: number,
  first: string,
  use: (specs: Array<Supervisor.ChildSpec>) => Effect.Effect<unknown, E>,
  watched: (specs: Array<Supervisor.ChildSpec>) => object = (specs) => specs
) =>
  Effect.suspend(() => {
    const specs = Array.from({ length: count }, (_, i) => pong(`${first}${i}`))
    const ref = new WeakRef<object>(watched(specs))
    return Effect.as(use(specs), ref)
  })

describe("what a running child keeps of the call that started it", () => {
  it.scopedLive("startChildren's list of specs and startChild's spec are not held by the children they started", () =>
    Effect.gen(function*() {
      const tree = yield* Supervisor.make({})
      // inside a span of the caller's too: a trace across the call is what makes the operation's span a child
      const batch = yield* heldOnlyBy(3, "b", (specs) => tree.startChildren(specs)).pipe(Effect.withSpan("caller"))
      const single = yield* heldOnlyBy(1, "s", (specs) => tree.startChild(specs[0]), (specs) => specs[0])
      const restarted = yield* heldOnlyBy(1, "r", (specs) => tree.startChild(specs[0]), (specs) => specs[0])
      yield* tree.terminateChild("r0")
      yield* tree.restartChild("r0")
      assert.strictEqual(yield* tree.countChildren.pipe(Effect.map((counts) => counts.active)), 5)
      assert.isTrue(yield* collected(batch), "the batch's specs are held while its children run")
      assert.isTrue(yield* collected(single), "startChild's spec, as given, is held while its child runs")
      assert.isTrue(yield* collected(restarted), "startChild's spec, as given, is held after a restart of its child")
      // the children are alive and answer all along
      for (const id of ["b0", "b1", "b2", "s0", "r0"]) {
        const child = yield* tree.child(id)
        yield* child.health
      }
    }).pipe(Effect.provide(TestLive)))
})

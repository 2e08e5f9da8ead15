/**
 * What a live child holds on to: its listeners live as long as it does, so whatever they refer to does too. A
 * forced GC and a `WeakRef` tell what is still held (`gc.ts`).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Child from "../../../src/Agent/internal/child.js"
import { collected } from "../../gc.js"

/** A child spawned in a fiber of its own that has ended since; the child lives on in `scope`. */
const spawnedInAFiber = (scope: Scope.Scope) =>
  Effect.gen(function*() {
    const spawning = yield* Effect.fork(Scope.extend(
      Child.spawn({ command: "sh", args: ["-c", "read line"], env: process.env }),
      scope
    ))
    const child = yield* Fiber.join(spawning)
    return { child, spawning: new WeakRef<object>(spawning) }
  })

describe("Child.spawn", () => {
  it.live("a live child does not hold the fiber that spawned it (its listeners held it through the spawn's resume)", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { child, spawning } = yield* spawnedInAFiber(scope)
      assert.isTrue(yield* collected(spawning), "the spawning fiber is still held")
      // The child is alive and usable all along
      assert.isUndefined(child.exited())
      assert.isTrue(child.write("line\n"))
      yield* Scope.close(scope, Exit.void)
      assert.isDefined(child.exited())
    }))
})

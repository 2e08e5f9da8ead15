/**
 * What is still held: a forced GC (V8's `gc`, made available to the tests that import this) and a `WeakRef`.
 */
import * as Effect from "effect/Effect"
import * as v8 from "node:v8"
import * as vm from "node:vm"

v8.setFlagsFromString("--expose-gc")
const gc: () => void = vm.runInNewContext("gc")

/**
 * Whether `ref`'s target is collected within a few forced GCs, each in a task of its own: a `WeakRef` read in a task
 * keeps its target until the task ends.
 */
export const collected = (ref: WeakRef<object>): Effect.Effect<boolean> =>
  Effect.promise(async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 0))
      gc()
      await new Promise((resolve) => setTimeout(resolve, 0))
      if (ref.deref() === undefined) return true
    }
    return false
  })

/**
 * `internal/cli/interrupted.ts`'s `noteSignal`, in a file of its own (the module's state is the program's): a signal
 * that ends `up` other than SIGINT and SIGTERM (SIGHUP, SIGQUIT: `up` interrupts itself on them) coming before its
 * start is said as they are. Before, `up` ended with nothing said: only SIGINT and SIGTERM were noted.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Interrupted from "../src/internal/cli/interrupted.js"

describe("interrupted: a signal up takes itself, before it began", () => {
  it.effect("SIGHUP before the start: up says it ends; the first signal is the one said; its code is 129", () =>
    Effect.gen(function*() {
      const said: Array<string> = []
      const say = (line: string) => Effect.sync(() => void said.push(line))
      Interrupted.noteSignal("SIGHUP")
      Interrupted.noteSignal("SIGQUIT")
      const up = yield* Effect.exit(Interrupted.beforeBegun({ name: "up", follower: true }, say)(Effect.interrupt))
      assert.isTrue(Exit.isInterrupted(up))
      assert.deepStrictEqual(said, ["SIGHUP before the start: up ends, nothing started"])
      assert.deepStrictEqual([Interrupted.codeOf("SIGHUP"), Interrupted.codeOf("SIGQUIT")], [129, 131])
    }))
})

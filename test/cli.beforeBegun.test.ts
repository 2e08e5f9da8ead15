/**
 * `internal/cli/interrupted.ts`'s `beforeBegun`, in a file of its own: the module's state (a signal noted, a command
 * begun) is the program's, and another test's command would have begun already.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Interrupted from "../src/internal/cli/interrupted.js"

describe("interrupted: before the command began", () => {
  // A new user's finding: a signal after the CLI's handlers were in place but before the command's handler began
  // (@effect/cli still reading the arguments) interrupted the program where no oneShot heard it: validate exited 0
  // with nothing said.
  it.effect("a signal before the command began: a one-shot says so and exits 130, up says it ends, exit 0", () =>
    Effect.gen(function*() {
      const before = process.listeners("SIGINT")
      Interrupted.watchSignals()
      const listener = process.listeners("SIGINT").find((l) => !before.includes(l))! // The signal, as Node calls the listener on one (not `process.emit`: the test runner listens too).
      ;(listener as () => void)()
      const written: Array<string> = []
      const said: Array<string> = []
      const say = (line: string) => Effect.sync(() => void said.push(line))
      const write = process.stderr.write
      process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write
      const interrupted = (invoked: Interrupted.Invoked | undefined) =>
        Effect.exit(Interrupted.beforeBegun(invoked, say)(Effect.interrupt))
      const up = yield* interrupted({ name: "up", follower: true }).pipe(
        Effect.ensuring(Effect.sync(() => (process.stderr.write = write)))
      )
      assert.isTrue(Exit.isInterrupted(up))
      assert.deepStrictEqual([said, written, Interrupted.exitCode(0)], [
        ["SIGINT before the start: up ends, nothing started"],
        [],
        0
      ])
      process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write
      yield* interrupted({ name: "events", follower: true }).pipe(
        Effect.zipRight(interrupted({ name: "validate", follower: false })),
        Effect.ensuring(Effect.sync(() => (process.stderr.write = write)))
      )
      assert.deepStrictEqual([said.length, written, Interrupted.exitCode(0)], [
        1,
        ["error: interrupted: before validate ran\n"],
        130
      ])
      // Once the command's handler began, its own oneShot speaks, not this.
      Interrupted.markBegun()
      written.length = 0
      process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write
      yield* interrupted({ name: "status", follower: false }).pipe(
        Effect.ensuring(Effect.sync(() => (process.stderr.write = write)))
      )
      assert.deepStrictEqual(written, [])
    }))
})

/**
 * `internal/cli/interrupted.ts` in process: the signal listeners it adds go with the program's end (left behind,
 * while something held the event loop, they kept the first SIGTERM from ending the process), and an interruption
 * that no signal caused changes neither the exit code nor stderr. The signals themselves: cli.interrupt.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Interrupted from "../src/internal/cli/interrupted.js"

describe("interrupted: a one-shot command's end", () => {
  it("unwatchSignals takes away every listener watchSignals added, and only those", () => {
    const before = { SIGINT: process.listenerCount("SIGINT"), SIGTERM: process.listenerCount("SIGTERM") }
    Interrupted.watchSignals()
    assert.strictEqual(process.listenerCount("SIGINT"), before.SIGINT + 1)
    assert.strictEqual(process.listenerCount("SIGTERM"), before.SIGTERM + 1)
    Interrupted.unwatchSignals()
    Interrupted.unwatchSignals()
    assert.deepStrictEqual(
      { SIGINT: process.listenerCount("SIGINT"), SIGTERM: process.listenerCount("SIGTERM") },
      before
    )
  })

  it.effect("an interruption without a signal: exit code as it would be, nothing said", () =>
    Effect.gen(function*() {
      const written: Array<string> = []
      const write = process.stderr.write
      process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write
      const exit = yield* Effect.exit(Interrupted.oneShot("the call was given up")(Effect.interrupt)).pipe(
        Effect.ensuring(Effect.sync(() => (process.stderr.write = write)))
      )
      assert.isTrue(Exit.isInterrupted(exit))
      assert.deepStrictEqual(written, [])
      assert.strictEqual(Interrupted.exitCode(0), 0)
      assert.strictEqual(Interrupted.exitCode(1), 1)
    }))
})

/**
 * The examples run as a user runs them: `examples/topics/demo.ts` (`npm run demo:topics`) chains a Python and a
 * Node agent by topics on a SQLite store, and its poisoned document lands in the dead letters.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { root, spawnApp, tempDir } from "./support.js"

describe("examples", () => {
  it.scopedLive(
    "topics/demo.ts: the parser's output reaches the summarizers; the poisoned one is dead-lettered",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("demo-topics")
        const lines: Array<string> = []
        process.env.DEMO_STORE = path.join(dir, "topics.sqlite")
        const app = yield* spawnApp(path.join(root, "node_modules", "tsx", "dist", "cli.mjs"), [
          path.join(root, "examples", "topics", "demo.ts")
        ], { onLine: (line) => lines.push(line) })
        delete process.env.DEMO_STORE
        const exit = yield* app.exited
        assert.deepStrictEqual(exit, { code: 0, signal: null }, app.stderr())
        const text = lines.join("\n")
        assert.match(text, /document\.parsed: \{"title":"weather","words":7,"top":\["sun","on","rain"\]\}/)
        assert.match(text, /document\.parsed: \{"title":"recipe","words":10,"top":\["flour","water","and"\]\}/)
        assert.match(text, /document\.parsed: dead-lettered after 3 attempts \(.*poisoned word\)/)
        assert.match(text, /dead letters: \S+ \(3 attempts\)/)
        assert.match(text, /republished as \S+: Task \S+ of topic "document\.parsed" failed 3 time\(s\)/)
      }),
    120_000
  )
})

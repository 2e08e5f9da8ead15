/**
 * A task's idempotency key (`handleEvent(payload, { idempotencyKey })`, sent as the task's `key`) reaches the
 * callback in the Node and Python adapters (`context.key`, `ctx.key`), and is absent without one. The Go adapter's
 * `Request.Key` is tested in adapters/go. Real adapters run by a real supervisor.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Adapters from "../../src/Adapters.js"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import { tempDir, TestLive } from "../support.js"

describe("the task's key in the adapters", () => {
  it.scopedLive("Node: context.key", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("adapter-key-")
      const file = path.join(dir, "agent.mjs")
      fs.writeFileSync(file, "export default (payload, context) => ({ key: context.key ?? null })\n")
      const agent = yield* AgentSupervisor.make({ name: "node-key", ...Adapters.nodeCallback(file) })
      assert.deepStrictEqual(yield* agent.handleEvent({}, { idempotencyKey: "order-1#2" }), { key: "order-1#2" })
      assert.deepStrictEqual(yield* agent.handleEvent({}), { key: null })
    }).pipe(Effect.provide(TestLive)), 30_000)

  it.scopedLive("Python: ctx.key", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("adapter-key-")
      const file = path.join(dir, "agent.py")
      fs.writeFileSync(file, "def handle(payload, ctx):\n    return {'key': ctx.key}\n")
      const agent = yield* AgentSupervisor.make({ name: "python-key", ...Adapters.pythonCallback(file, "handle") })
      assert.deepStrictEqual(yield* agent.handleEvent({}, { idempotencyKey: "order-1#2" }), { key: "order-1#2" })
      assert.deepStrictEqual(yield* agent.handleEvent({}), { key: null })
    }).pipe(Effect.provide(TestLive)), 30_000)
})

/**
 * A view's pid is that of the agent's process while it runs, from its spawn to its exit: while STARTING (spawned,
 * not yet ready) and while STOPPING (the process the stop is ending), as well as RUNNING. Both `Metadata.pid` and
 * `whichChildren`'s (the admin API's `status`) say it. Real agent processes (test/fixtures/agents/agent.mjs).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Supervisor from "../../src/Supervisor.js"
import { agentConfig, TestLive } from "../support.js"

/** The one child's state and pid as `whichChildren` and its agent's `metadata` say them. */
const views = (sup: Supervisor.Supervisor, id: string) =>
  Effect.gen(function*() {
    const info = (yield* sup.whichChildren).find((c) => c.id === id)!
    const metadata = yield* (yield* sup.child(id)).metadata
    return { which: [info.state, info.pid], metadata: [metadata.state, metadata.pid] }
  })

describe.concurrent("a view's pid while the agent's process runs", () => {
  it.scopedLive(
    "STOPPING: the pid of the process the stop is ending, until it has exited",
    () =>
      Effect.gen(function*() {
        // It ignores shutdown and SIGTERM: the stop takes its graceful phase, then its SIGTERM one, then kills it.
        const config = agentConfig("ignore-sigterm", { name: "slow-stop", gracefulTimeout: "2 seconds" })
        const sup = yield* Supervisor.make({ children: [Supervisor.agent({ id: "slow-stop", config })] })
        const agent = yield* sup.child("slow-stop")
        const pid = Option.getOrThrow((yield* agent.metadata).pid)
        const stderr = yield* agent.subscribeStderr
        const stopping = yield* Effect.fork(sup.terminateChild("slow-stop"))
        // Its shutdown line was sent (the stop has begun) and it is still running.
        yield* Queue.take(stderr).pipe(Effect.repeat({ until: (l) => l.line.includes("ignoring shutdown") }))
        assert.deepStrictEqual(yield* views(sup, "slow-stop"), {
          which: ["STOPPING", Option.some(pid)],
          metadata: ["STOPPING", Option.some(pid)]
        })
        yield* Fiber.join(stopping)
        assert.deepStrictEqual(yield* views(sup, "slow-stop"), {
          which: ["STOPPED", Option.none()],
          metadata: ["STOPPED", Option.none()]
        })
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "STARTING: the pid of the process spawned, before it is ready; none once the start is abandoned",
    () =>
      Effect.gen(function*() {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "live-pid-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
        // Ready while the file is there; a later incarnation, started without it, never is.
        const file = path.join(dir, "ready")
        fs.writeFileSync(file, "")
        const config = agentConfig("no-ready-unless", { name: "slow-start", restartBackoff: 0 })
        const sup = yield* Supervisor.make({
          children: [Supervisor.agent({ id: "slow-start", config: { ...config, args: [...config.args!, file] } })]
        })
        const agent = yield* sup.child("slow-start")
        const events = yield* agent.subscribe
        const first = Option.getOrThrow((yield* agent.metadata).pid)
        fs.rmSync(file)
        process.kill(first, "SIGKILL")
        const spawned = yield* Queue.take(events).pipe(Effect.repeat({ until: (e) => e._tag === "Spawned" }))
        const pid = spawned._tag === "Spawned" ? spawned.pid : 0
        assert.notStrictEqual(pid, first)
        assert.deepStrictEqual(yield* views(sup, "slow-start"), {
          which: ["STARTING", Option.some(pid)],
          metadata: ["STARTING", Option.some(pid)]
        })
        yield* sup.terminateChild("slow-start")
        assert.deepStrictEqual(yield* views(sup, "slow-start"), {
          which: ["STOPPED", Option.none()],
          metadata: ["STOPPED", Option.none()]
        })
      }).pipe(Effect.provide(TestLive)),
    30_000
  )
})

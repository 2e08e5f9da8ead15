/**
 * An agent whose every worker is held by a cancelled callback that never returns (a Python thread, a Go goroutine:
 * neither can be stopped) answers pings with an error, so that the heartbeat declares it hung and the supervisor
 * restarts it; it answered pings as healthy before, while every call timed out for ever. The adapters' own suites
 * test the rule at the wire (`test_supervisor_adapter.py`, `adapters/go/agent`); this is the supervisor's side.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Adapters from "../../src/Adapters.js"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import { eventually, fixture, takeUntil, tempDir, TestLive } from "../support.js"

/** The Python adapter's pool: `MAX_WORKERS` in `supervisor_adapter.py`. */
const WORKERS = 32

describe("an adapter whose workers are all held by cancelled callbacks", () => {
  it.scopedLive(
    "Python: pings fail, the heartbeat kills it, and the restarted agent serves",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("stuck-")
        const never = path.join(dir, "never") // the file the callbacks wait for: never made
        const agent = yield* AgentSupervisor.make({
          name: "stuck",
          ...Adapters.pythonCallback(fixture("python", "stuck_agent.py"), "until_file"),
          heartbeatInterval: "1 second",
          pingTimeout: "5 seconds",
          unhealthyAfter: 2,
          restartBackoff: 0
        })
        const events = yield* agent.subscribe
        const pid = Option.getOrThrow((yield* agent.metadata).pid)
        const started = path.join(dir, "started")
        fs.mkdirSync(started)
        // Every callback running before its call is cancelled (one cancelled before it starts never runs): an
        // interruption sends the same `cancel` as a timeout does.
        const calls = yield* Effect.fork(Effect.forEach(
          Array.from({ length: WORKERS }, (_, n) => n),
          (n) => agent.handleEvent({ tag: `t${n}`, file: never, started_dir: started }),
          { concurrency: "unbounded" }
        ))
        yield* eventually("every callback started", () => fs.readdirSync(started).length === WORKERS, "20 seconds")
        yield* Fiber.interrupt(calls)
        const seen = yield* takeUntil(events, (event) => event._tag === "Exited")
        const failed = seen.flatMap((event) => event._tag === "HealthCheckFailed" ? [event] : [])
        assert.deepStrictEqual(failed.map((event) => event.missed), [1, 2])
        for (const event of failed) {
          assert.include(
            event.error,
            "its ping was answered with an error: AdapterStuck: all 32 worker threads are held"
          )
        }
        const exited = seen.at(-1)!
        assert.deepStrictEqual(
          exited._tag === "Exited" ? [exited.reason, exited.signal, exited.pid] : [],
          ["heartbeat", "SIGKILL", pid]
        )
        yield* takeUntil(events, (event) => event._tag === "StateChanged" && event.to === "RUNNING")
        assert.deepStrictEqual(yield* agent.handleEvent({ hang: false, n: 1 }), { hang: false, n: 1 })
        assert.isFalse(fs.existsSync(never))
      }).pipe(Effect.provide(TestLive)),
    60_000
  )
})

/**
 * The cgroups a dead supervisor left behind (`limits/leftovers.ts`): on a fake tree, which directories go and which
 * stay; on this machine's cgroups, a real leftover removed by the first agent with limits of this process.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Adapters from "../../../src/Adapters.js"
import * as AgentSupervisor from "../../../src/Agent/AgentSupervisor.js"
import * as Cgroup from "../../../src/Agent/internal/limits/cgroup.js"
import * as Leftovers from "../../../src/Agent/internal/limits/leftovers.js"
import { fixture, tempDir, TestLive } from "../../support.js"

/** A pid that was a process a moment ago and is none now. */
const deadPid = (): number => {
  const pid = ChildProcess.spawnSync("true").pid
  assert.isNumber(pid)
  return pid!
}

const support = Cgroup.detect()
const hard = support._tag !== "none" && process.getuid?.() === 0

describe("leftovers of dead supervisors", () => {
  it.scoped("on a fake base: a dead supervisor's empty leaves and directory go; busy leaves, live or own pids stay", () =>
    Effect.gen(function*() {
      const base = yield* tempDir("leftovers")
      const dead = deadPid()
      const mk = (...parts: Array<string>) => fs.mkdirSync(path.join(base, ...parts), { recursive: true })
      mk(`effect-agent-supervisor-${dead}`, "a-1")
      mk(`effect-agent-supervisor-${dead}`, "b-2")
      // A fake leaf with processes: a plain directory holding a cgroup.procs file.
      fs.writeFileSync(path.join(base, `effect-agent-supervisor-${dead}`, "b-2", "cgroup.procs"), "4242\n")
      mk(`effect-agent-supervisor-${dead + 100000000}`, "c-3") // beyond pid_max: never alive
      mk(`effect-agent-supervisor-${process.pid}`, "mine-1")
      mk("effect-agent-supervisor-1", "init-1") // pid 1 is alive
      mk("something-else")
      const swept = Leftovers.sweep([base])
      assert.sameMembers([...swept.removed], [
        path.join(base, `effect-agent-supervisor-${dead}`, "a-1"),
        path.join(base, `effect-agent-supervisor-${dead + 100000000}`, "c-3"),
        path.join(base, `effect-agent-supervisor-${dead + 100000000}`)
      ])
      assert.deepStrictEqual(swept.busy, [
        { path: path.join(base, `effect-agent-supervisor-${dead}`, "b-2"), pids: [4242] }
      ])
      assert.deepStrictEqual(swept.failed, [])
      assert.deepStrictEqual(
        fs.readdirSync(base).sort(),
        [
          `effect-agent-supervisor-${dead}`,
          "effect-agent-supervisor-1",
          `effect-agent-supervisor-${process.pid}`,
          "something-else"
        ].sort()
      )
      assert.deepStrictEqual(Leftovers.sweep([path.join(base, "missing")]), { removed: [], busy: [], failed: [] })
    }))

  it.scopedLive.skipIf(!hard)(
    "on this machine: the first agent with limits kills what a dead supervisor's cgroups hold and removes them",
    () =>
      Effect.gen(function*() {
        const bases = Leftovers.basesOf(support)
        assert.isAbove(bases.length, 0)
        const left = path.join(bases[0], `effect-agent-supervisor-${deadPid()}`)
        const empty = path.join(left, "old-agent-1")
        const busy = path.join(left, "escaped-2")
        fs.mkdirSync(empty, { recursive: true })
        fs.mkdirSync(busy)
        // A process that outlived its supervisor (as a setsid'd descendant would), in the dead supervisor's cgroup.
        const orphan = ChildProcess.spawn("sleep", ["300"], { detached: true, stdio: "ignore" })
        orphan.unref()
        const gone = new Promise<void>((resolve) => orphan.once("exit", () => resolve()))
        fs.writeFileSync(path.join(busy, "cgroup.procs"), String(orphan.pid))
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            try {
              process.kill(orphan.pid!, "SIGKILL")
            } catch {
              // killed by the sweep, as the test expects
            }
            for (const dir of [empty, busy, left]) {
              try {
                fs.rmdirSync(dir)
              } catch {
                // removed by the sweep, as the test expects
              }
            }
          })
        )
        const agent = yield* AgentSupervisor.make({
          name: "sweeper",
          ...Adapters.pythonCallback(fixture("python", "limits_agent.py"), "handle_request"),
          limits: { pids: 64 },
          startupTimeout: "20 seconds",
          outputLogLevel: "None"
        })
        yield* Effect.promise(() => gone)
        assert.isFalse(fs.existsSync(left), `${left} removed before the agent's own cgroup was made`)
        yield* agent.stop
      }).pipe(Effect.provide(TestLive)),
    60_000
  )
})

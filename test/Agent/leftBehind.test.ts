/**
 * A process the kernel does not reap after SIGKILL (uninterruptible sleep on a hung filesystem or device) must not
 * hold a stop for ever: the stop waits a bounded time after its SIGKILL, leaves the process behind with a warning,
 * and its exit is still reported if it ever comes (systemd: "Processes still around after final SIGKILL").
 *
 * Such a process is made here by a tracer (`fixtures/ptrace/hold_exit.py`): a traced process that dies is a zombie
 * only its tracer sees, so Node's `waitpid` does not find it until the tracer ends.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as ForkServer from "../../src/Agent/ForkServer.js"
import { KILL_BOUND_MILLIS } from "../../src/Agent/internal/child.js"
import * as Cgroup from "../../src/Agent/internal/limits/cgroup.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import { ExitView, RestartView } from "../../src/internal/admin/api.js"
import { agentView, history } from "../../src/internal/admin/views.js"
import { restartRow } from "../../src/internal/cli/remote.js"
import * as Metrics from "../../src/Metrics.js"
import * as Store from "../../src/Store/Store.js"
import * as Supervisor from "../../src/Supervisor.js"
import {
  agentConfig,
  closeableScope,
  eventually,
  fixture,
  groupMembers,
  logMessages,
  takeUntil,
  TestLive
} from "../support.js"

/** The tracer lets go (its stdin closed, its exit): Node reaps the process, and its group is gone. */
interface Tracer {
  readonly letGo: Effect.Effect<void, Error>
}

/**
 * Attaches the tracer to `pid` for the life of the scope (or until `end`); `undefined`, with the reason printed,
 * where the kernel does not let it attach.
 */
const holdExit = (pid: number) =>
  Effect.acquireRelease(
    Effect.async<{ readonly child: ChildProcess.ChildProcess; readonly refused?: string }>((resume) => {
      const child = ChildProcess.spawn("python3", [fixture("ptrace", "hold_exit.py"), String(pid)], {
        stdio: ["pipe", "pipe", "inherit"]
      })
      child.on("error", (error) => resume(Effect.succeed({ child, refused: `python3: ${error.message}` })))
      readline.createInterface({ input: child.stdout! }).once("line", (line) =>
        resume(Effect.succeed(line === "seized" ? { child } : { child, refused: line })))
    }),
    ({ child }) =>
      end(child)
  ).pipe(Effect.map(({ child, refused }): Tracer | undefined => {
    if (refused === undefined) {
      return {
        letGo: Effect.zipRight(end(child), eventually(`group ${pid} is gone`, () => groupMembers(pid).length === 0))
      }
    }
    if (process.env.REQUIRE_SERVICES === "1") throw new Error(`ptrace refused: ${refused}`)
    console.log(`skipped: the tracer could not attach (${refused})`)
    return undefined
  }))

const end = (child: ChildProcess.ChildProcess): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.stdin?.end()
  })

const FREEZER = "/sys/fs/cgroup/freezer"
const cgroupSupport = Cgroup.detect()
const cgroupSkip = cgroupSupport._tag === "none"
  ? cgroupSupport.why
  : process.getuid?.() !== 0
  ? "not root"
  : !fs.existsSync(FREEZER)
  ? `no cgroup v1 freezer at ${FREEZER}`
  : undefined

/**
 * Moves `pid` into a cgroup v1 freezer cgroup of its own and freezes it, for the life of the scope (or until `thaw`):
 * a frozen process is in uninterruptible sleep (state D), alive and in its other cgroups, and a SIGKILL sent to it
 * waits until it is thawed, as for a process on a hung filesystem.
 */
const freeze = (pid: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = fs.mkdtempSync(path.join(FREEZER, "left-behind-test-"))
      fs.writeFileSync(path.join(dir, "cgroup.procs"), String(pid))
      fs.writeFileSync(path.join(dir, "freezer.state"), "FROZEN")
      return dir
    }),
    (dir) =>
      Effect.sync(() => fs.writeFileSync(path.join(dir, "freezer.state"), "THAWED")).pipe(
        Effect.zipRight(
          eventually(`${dir} is empty`, () => fs.readFileSync(path.join(dir, "cgroup.procs"), "utf8") === "")
        ),
        Effect.zipRight(Effect.sync(() => fs.rmdirSync(dir))),
        Effect.orDie
      )
  ).pipe(Effect.map((dir) => ({
    thaw: Effect.sync(() => fs.writeFileSync(path.join(dir, "freezer.state"), "THAWED"))
  })))

const timings = { gracefulTimeout: "100 millis", sigtermTimeout: "100 millis" } as const

const warningText = `agent outlived SIGKILL for ${KILL_BOUND_MILLIS / 1000}s (in uninterruptible sleep: a hung ` +
  `filesystem or device?): left behind, reported as killed`

/** How the agents of a test are spawned: from this process, or through a fork server (`Agent.ForkServer`). */
const SPAWNING: ReadonlyArray<readonly [string, Layer.Layer<never> | typeof ForkServer.layer]> = [
  ["spawned here", Layer.empty],
  ["through a fork server (its wait for the exit is the one held)", ForkServer.layer]
]

describe.concurrent("a process that outlives SIGKILL", () => {
  for (const [via, spawning] of SPAWNING) {
    it.scopedLive(
      `AgentProcess, ${via}: the stop ends after its bound, reported as killed and left behind, with a warning`,
      () => {
        const log = logMessages()
        return log.provide(Effect.gen(function*() {
          const scope = yield* closeableScope
          const agent = yield* AgentProcess.make(agentConfig("echo", timings)).pipe(
            Scope.extend(scope),
            Effect.provide(spawning)
          )
          const tracer = yield* holdExit(agent.pid)
          if (tracer === undefined) return
          assert.strictEqual(yield* agent.request({ echo: "traced" }), "traced")
          const waiting = yield* Effect.fork(agent.awaitExit)
          const started = performance.now()
          // (the old stop waited for the exit after SIGKILL without a bound: this never ended)
          yield* Scope.close(scope, Exit.void)
          const took = performance.now() - started
          assert.isAtLeast(took, KILL_BOUND_MILLIS)
          assert.isBelow(took, KILL_BOUND_MILLIS + 5_000)
          const info = yield* Fiber.join(waiting)
          assert.deepStrictEqual(
            [info.pid, info.exitCode, info.signal, info.requested, info.leftBehind],
            [agent.pid, null, "SIGKILL", true, true]
          )
          assert.deepStrictEqual(log.lines.filter((line) => line.includes("outlived SIGKILL")), [warningText])
          // The tracer lets go: Node reaps the process; what was reported stands.
          yield* tracer.letGo
          assert.deepStrictEqual(Option.getOrThrow(yield* agent.exitInfo), info)
        })).pipe(Effect.provide(TestLive))
      },
      30_000
    )
  }

  it.scopedLive(
    "with limits in a cgroup: the stop waits no longer, the cgroup is kept with a warning and removed at the real exit",
    () => {
      if (cgroupSkip !== undefined) {
        if (process.env.REQUIRE_SERVICES === "1") throw new Error(`no cgroup: ${cgroupSkip}`)
        return Effect.sync(() => console.log(`skipped: no cgroup (${cgroupSkip})`))
      }
      const log = logMessages()
      return log.provide(Effect.gen(function*() {
        const scope = yield* closeableScope
        const agent = yield* AgentProcess.make(agentConfig("echo", { ...timings, limits: { pids: 64 } })).pipe(
          Scope.extend(scope)
        )
        const leaves = agent.limits.cgroups ?? []
        assert.include(["cgroup-v1", "cgroup-v2"], agent.limits.mode)
        assert.isTrue(leaves.length > 0 && leaves.every((leaf) => fs.existsSync(leaf)))
        // Frozen by the freezer: alive, in uninterruptible sleep, and in its cgroups (a traced zombie is in none)
        const frozen = yield* freeze(agent.pid)
        const started = performance.now()
        yield* Scope.close(scope, Exit.void)
        // (before, the cgroup's removal waited 5 s more for its kill and 2 s for the leaf: 12 s and more)
        assert.isBelow(performance.now() - started, KILL_BOUND_MILLIS + 4_000)
        assert.isTrue((yield* agent.exitInfo).pipe(Option.getOrThrow).leftBehind)
        const kept = log.lines.filter((line) => line.startsWith("cgroups kept until the process left behind"))
        assert.deepStrictEqual(
          kept.map((line) => leaves.every((leaf) => line.includes(leaf))),
          [true],
          log.lines.join("\n")
        )
        assert.isTrue(leaves.every((leaf) => fs.existsSync(leaf)), "the leaf holds the process: it stays")
        // Its real exit removes the leaf (before, nothing did until another supervisor's sweep of dead ones).
        yield* frozen.thaw
        yield* eventually("the leaf is removed", () => leaves.every((leaf) => !fs.existsSync(leaf)))
      })).pipe(Effect.provide(TestLive))
    },
    30_000
  )

  it.scopedLive(
    "AgentSupervisor: stop ends STOPPED, the last exit says left behind, and a start runs a new process meanwhile",
    () =>
      Effect.gen(function*() {
        const agent = yield* AgentSupervisor.make(agentConfig("echo", { ...timings, name: "left-behind-stop" }))
        const pid = Option.getOrThrow((yield* agent.metadata).pid)
        const counted = Effect.map(
          Metric.value(Metrics.forAgent(Metrics.leftBehind, "left-behind-stop")),
          (state) => state.count
        )
        assert.strictEqual(yield* counted, 0)
        const tracer = yield* holdExit(pid)
        if (tracer === undefined) return
        const events = yield* agent.subscribe
        yield* agent.stop
        assert.strictEqual(yield* agent.state, "STOPPED")
        const [exited] = (yield* Queue.takeAll(events)).pipe(Chunk.filter((e) => e._tag === "Exited"))
        assert.deepStrictEqual(
          exited?._tag === "Exited" ? [exited.pid, exited.exitClass, exited.signal, exited.leftBehind] : [],
          [pid, "shutdown", "SIGKILL", true]
        )
        assert.strictEqual(yield* counted, 1, "agent_supervisor_left_behind_total")
        const metadata = yield* agent.metadata
        const last = Option.getOrThrow(metadata.lastExit)
        assert.deepStrictEqual([last.pid, last.signal, last.leftBehind], [pid, "SIGKILL", true])
        // ... and the admin API's view of it (what `status` and the dashboard show)
        const info = { name: agent.name, kind: "worker", state: "STOPPED", status: "stopped", parked: false }
        const view = agentView("echo", { ...info, pid: Option.none() } as unknown as Supervisor.ChildInfo, metadata)
        assert.deepStrictEqual(Schema.encodeSync(ExitView)(view.lastExit!), {
          pid,
          exitCode: null,
          signal: "SIGKILL",
          requested: true,
          at: last.at,
          limit: null,
          leftBehind: true
        })
        yield* agent.start
        assert.strictEqual(yield* agent.state, "RUNNING")
        assert.notStrictEqual(Option.getOrThrow((yield* agent.metadata).pid), pid)
        assert.strictEqual(yield* agent.handleEvent({ echo: "again" }), "again")
        // The old one's real exit, when it comes, is nobody's business any more: the new incarnation runs on.
        yield* tracer.letGo
        assert.strictEqual(yield* agent.handleEvent({ echo: "still" }), "still")
        assert.strictEqual((yield* agent.metadata).restartCount, 0)
        assert.strictEqual(yield* agent.state, "RUNNING")
      }).pipe(Effect.provide(TestLive)),
    30_000
  )

  it.scopedLive(
    "a hung agent killed for its heartbeat that outlives SIGKILL is left behind, restarted, and its restart says so",
    () => {
      const log = logMessages()
      return log.provide(Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          children: [Supervisor.agent({
            id: "hung",
            config: agentConfig("echo", {
              // (a ping missed for load before the tracer has it would kill it as an ordinary process)
              heartbeatInterval: "200 millis",
              pingTimeout: "1 second",
              unhealthyAfter: 2,
              restartBackoff: 0
            })
          })]
        })
        const events = yield* sup.subscribe
        const pid = Option.getOrThrow((yield* sup.whichChildren)[0].pid)
        const tracer = yield* holdExit(pid)
        if (tracer === undefined) return
        // Hung from now on: stopped, and nobody resumes a traced process's stop but its tracer.
        process.kill(pid, "SIGSTOP")
        // (the old kill waited for an exit that never came: the agent stayed RUNNING on the old process)
        const seen = yield* takeUntil(events, (e) => e._tag === "RestartScheduled").pipe(Effect.timeout("20 seconds"))
        const exited = seen.flatMap((e) => e._tag === "Agent" && e.event._tag === "Exited" ? [e.event] : [])
        assert.deepStrictEqual(
          exited.map((e) => [e.pid, e.reason, e.signal, e.leftBehind]),
          [[pid, "heartbeat", "SIGKILL", true]]
        )
        assert.include(log.lines, warningText)
        const scheduled = seen.at(-1)!
        if (scheduled._tag !== "RestartScheduled") return assert.fail(scheduled._tag)
        const record = scheduled.record
        assert.deepStrictEqual(
          [record.child, record.reason, record.signal, record.leftBehind],
          ["hung", "heartbeat", "SIGKILL", true]
        )
        // ... and as the admin API's history and `history` say it
        const [view] = yield* history(sup)
        assert.deepStrictEqual(Schema.encodeSync(RestartView)(view), {
          child: "hung",
          timestamp: record.timestamp,
          reason: "heartbeat",
          attempt: 1,
          delayMillis: 0,
          affected: ["hung"],
          exitCode: null,
          signal: "SIGKILL",
          leftBehind: true
        })
        assert.strictEqual(restartRow(view).at(-1), "heartbeat (SIGKILL (left behind))")
        // ... and as the store keeps it
        const stored = yield* Effect.flatMap(Store.Store, (store) => store.restartHistory()).pipe(
          Effect.filterOrFail((records) => records.length > 0, () => "not written yet"),
          Effect.retry(Schedule.spaced("20 millis")),
          Effect.timeout("10 seconds")
        )
        assert.deepStrictEqual(stored.map((r) => [r.reason, r.signal, r.left_behind]), [["heartbeat", "SIGKILL", true]])
        yield* takeUntil(
          events,
          (e) => e._tag === "Agent" && e.event._tag === "StateChanged" && e.event.to === "RUNNING"
        )
        const [now] = yield* sup.whichChildren
        assert.notStrictEqual(Option.getOrThrow(now.pid), pid)
        yield* tracer.letGo
      })).pipe(Effect.provide(TestLive))
    },
    30_000
  )

  it.scopedLive(
    "a host with nothing left to do ends, whatever became of a process it left behind",
    () =>
      Effect.gen(function*() {
        const host = ChildProcess.spawn(
          process.execPath,
          [fixture("ptrace", "host.mjs"), fixture("agents", "agent.mjs")],
          { stdio: ["pipe", "pipe", "inherit"] }
        )
        yield* Effect.addFinalizer(() => Effect.sync(() => host.kill("SIGKILL")))
        const lines: Array<string> = []
        readline.createInterface({ input: host.stdout! }).on("line", (line) => lines.push(line))
        const ended = Effect.async<number | null>((resume) => {
          if (host.exitCode !== null) return resume(Effect.succeed(host.exitCode))
          host.once("exit", (code) => resume(Effect.succeed(code)))
        })
        yield* eventually("the host says its agent's pid", () => lines.length > 0, "20 seconds")
        const pid = Number(lines[0])
        const tracer = yield* holdExit(pid)
        if (tracer === undefined) return
        host.stdin!.write("stop\n")
        // (its warning is logged to stdout before)
        yield* eventually("the stop returned", () => lines.includes("stopped"), "20 seconds")
        // (before, the child's handle kept the host's event loop alive until the process was reaped: for ever, for
        // one in uninterruptible sleep; here, until the tracer lets go)
        assert.strictEqual(
          yield* ended.pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "alive" })),
          0
        )
        yield* tracer.letGo
      }),
    30_000
  )
})

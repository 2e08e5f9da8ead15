/**
 * Heartbeat benchmark: what 500 agents beating every second cost the supervisor on a host with 1,000 more
 * processes, as CPU% of one core (`process.cpuUsage` over wall time) and event-loop delay.
 *
 * After: the library as it is, every beat reading its group from one shared scan of /proc; events are counted in
 * the tree's `onEvent`, and measured again with a subscriber that takes every event (one more fiber per event).
 * Before, measured in the same run on the same agents: the same, plus what each beat did before, a full scan of
 * /proc per agent per beat (the old `ProcessTree.sample`, kept here for the comparison only), each agent in a
 * fiber of its own as the old heartbeats were, their beats spread over the second as a sequential start spreads
 * them. The machine cannot keep up with that, so the report also gives what it asks for: agents x the time of
 * one full scan per interval, as a percentage of one core.
 *
 * The floor, measured first in the same run: the same pings (one per agent per interval, spread over it) sent by a
 * plain Node loop over bare pipes to as many `pong.sh` agents (a timer per agent, one write per ping, replies split
 * into lines, parsed and matched by id), with no supervisor. Its CPU% is mostly the kernel's: waking a process
 * through a pipe, and being woken by its reply.
 *
 * The agents are `test/fixtures/agents/pong.sh` (a shell that answers pings); the idle processes are `sleep 600`s in a
 * process group of their own, removed at the end. `BENCH_HEARTBEAT=0` skips the section. Exported for
 * `bench/index.ts`; runnable alone with `tsx bench/heartbeat.ts`.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import * as ProcessTable from "../dist/Agent/internal/processTable.js"
import * as ProcStat from "../dist/Agent/internal/procStat.js"
import * as Store from "../dist/Store/Store.js"
import * as Supervisor from "../dist/Supervisor.js"
import { median } from "./stats.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
/** The heartbeat benchmarks' agent: a shell that answers pings. */
export const pongAgent = path.join(root, "test", "fixtures", "agents", "pong.sh")
const SKIP = process.env.BENCH_HEARTBEAT === "0"
const AGENTS = Number(process.env.BENCH_HEARTBEAT_AGENTS ?? 500)
const IDLE = Number(process.env.BENCH_HEARTBEAT_IDLE ?? 1000)
const WINDOW_SECONDS = Number(process.env.BENCH_HEARTBEAT_SECONDS ?? 10)
const INTERVAL_MS = 1000

const round = (n: number, digits = 1) => Number(n.toFixed(digits))

// ---- the old sampling: a full scan of /proc per call (ProcessTree.sample before the shared table) ----

const oldReadStat = (pid: string) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return {
      state: fields[0],
      pgrp: Number(fields[2]),
      ticks: Number(fields[11]) + Number(fields[12]),
      rss: +fields[21]
    }
  } catch {
    return undefined
  }
}

const oldSample = (pgid: number) => {
  let processes = 0
  let rssPages = 0
  let ticks = 0
  for (const entry of fs.readdirSync("/proc")) {
    const first = entry.charCodeAt(0)
    if (first < 48 || first > 57) continue
    const stat = oldReadStat(entry)
    if (stat === undefined || stat.pgrp !== pgid || stat.state === "Z" || stat.state === "X") continue
    processes++
    rssPages += stat.rss
    ticks += stat.ticks
  }
  return { processes, rssPages, ticks, takenAt: performance.now() }
}

/** Median milliseconds of `f` over `n` calls. */
const timeOf = (f: () => unknown, n = 20) => {
  const times: Array<number> = []
  for (let i = 0; i < n; i++) {
    const start = performance.now()
    f()
    times.push(performance.now() - start)
  }
  return round(median(times), 2)
}

/** Median milliseconds of a scan over 20, after one (which reads every process: its memory's first). */
const timedScans = (scan: () => Promise<unknown>) =>
  Effect.promise(async () => {
    await scan()
    const times: Array<number> = []
    for (let i = 0; i < 20; i++) {
      const start = performance.now()
      await scan()
      times.push(performance.now() - start)
    }
    return round(median(times), 2)
  })

// ---- the host's idle processes ----

// Each `sleep` is a child of this shell, which reaps them: on SIGTERM to the group the sleeps die, the shell
// waits for them and exits. Killed with SIGKILL instead, they would be orphans that a container's init may
// never reap.
const idleScript = `trap 'trap "" TERM; kill -TERM 0 2>/dev/null; wait; exit 0' TERM
i=0; while [ "$i" -lt "$1" ]; do sleep 600 & i=$((i + 1)); done; echo started; wait`

const groupSize = (pgid: number) => ProcStat.readTable()?.groups.get(pgid)?.processes ?? 0

const idleProcesses = (count: number) =>
  Effect.acquireRelease(
    Effect.async<{ readonly pid: number; readonly exited: Promise<unknown> }>((resume) => {
      const child = spawn("/bin/sh", ["-c", idleScript, "idle", String(count)], {
        detached: true,
        stdio: ["ignore", "pipe", "inherit"]
      })
      const exited = new Promise((resolve) => child.once("exit", resolve))
      child.stdout.once("data", () => resume(Effect.succeed({ pid: child.pid!, exited })))
    }),
    ({ exited, pid }) =>
      Effect.promise(async () => {
        try {
          process.kill(-pid, "SIGTERM")
        } catch {
          // already gone
        }
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))])
        try {
          process.kill(-pid, "SIGKILL") // whatever the shell did not reap in time
        } catch {
          // the group is gone: the normal case
        }
      })
  )

// ---- the floor: the same pings over bare pipes, from a plain Node loop ----

interface BareAgent {
  readonly child: ChildProcessWithoutNullStreams
  readonly exited: Promise<unknown>
  timer?: ReturnType<typeof setInterval>
}

/**
 * `count` pong agents of a plain Node client, pinged once per `intervalMs`, spread; counts the answers and, when
 * given `latencies`, keeps each round trip in milliseconds.
 */
export const bareAgents = (
  count: number,
  answered: { count: number },
  intervalMs = INTERVAL_MS,
  latencies?: Array<number>
) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let lastId = 0
      const agents: Array<BareAgent> = []
      for (let i = 0; i < count; i++) {
        const child = spawn("/bin/sh", [pongAgent], { stdio: ["pipe", "pipe", "pipe"] })
        const exited = new Promise((resolve) => child.once("exit", resolve))
        const waiting = new Map<string, number>()
        let rest = ""
        child.stderr.resume()
        child.stdout.setEncoding("utf8")
        child.stdout.on("data", (chunk: string) => {
          const lines = (rest + chunk).split("\n")
          rest = lines.pop()!
          for (const line of lines) {
            const id = (JSON.parse(line) as { readonly id?: string }).id
            const sent = id === undefined ? undefined : waiting.get(id)
            if (sent === undefined) continue
            waiting.delete(id!)
            answered.count++
            latencies?.push(performance.now() - sent)
          }
        })
        const agent: BareAgent = { child, exited }
        const ping = () => {
          const id = `ping-${++lastId}`
          waiting.set(id, performance.now())
          child.stdin.write(`{"id":"${id}","type":"ping"}\n`)
        }
        setTimeout(() => {
          ping()
          agent.timer = setInterval(ping, intervalMs)
        }, (i / count) * intervalMs)
        agents.push(agent)
      }
      return agents
    }),
    (agents) =>
      Effect.promise(async () => {
        for (const agent of agents) {
          clearInterval(agent.timer)
          agent.child.stdin.end() // pong.sh exits on stdin EOF
        }
        const all = Promise.all(agents.map((agent) => agent.exited))
        await Promise.race([all, new Promise((resolve) => setTimeout(resolve, 5000))])
        for (const agent of agents) if (agent.child.exitCode === null) agent.child.kill("SIGKILL")
      })
  )

const barePipes = Effect.gen(function*() {
  const answered = { count: 0 }
  yield* bareAgents(AGENTS, answered)
  // every agent past its first ping
  yield* Effect.sleep(`${2 * INTERVAL_MS} millis`)
  const before = answered.count
  const start = performance.now()
  const measured = yield* window({ checks: 0, missed: 0, exits: 0 })
  return {
    cpu_percent_of_one_core: measured.supervisor_cpu_percent_of_one_core,
    event_loop_delay_p99_ms: measured.event_loop_delay_p99_ms,
    event_loop_delay_max_ms: measured.event_loop_delay_max_ms,
    window_overrun_ms: measured.window_overrun_ms,
    answered_per_s: round((answered.count - before) / ((performance.now() - start) / 1000))
  }
}).pipe(Effect.scoped)

// ---- one measurement window ----

/** What a window counts, from the supervisor's events. */
export interface Counters {
  checks: number
  missed: number
  exits: number
}

/** The heartbeat misses counted so far in the global metric registry (every agent's, ever). */
const registryMisses = (): number =>
  Metric.unsafeSnapshot().reduce(
    (sum, pair) =>
      pair.metricKey.name === "agent_supervisor_heartbeat_misses_total" && MetricState.isCounterState(pair.metricState)
        ? sum + Number(pair.metricState.count)
        : sum,
    0
  )

/**
 * A tree's counters and ping latencies read where the supervisor writes them anyway, so that nothing listens to
 * its events (a listener costs a `HealthChecked` event per beat, measured apart): the health checks and exits from
 * the records it hands to its store (the in-memory store, keeping no metrics, wrapped), the misses from the
 * global metric registry (`counters.missed` becomes a getter of it: read it, never write it). The records reach the
 * store through the writer's batches, within about 100 ms of their beat.
 */
export const countingStore = (counters: Counters, latencies: Array<number>) =>
  Effect.map(Store.makeMemory({ maxMetrics: 0, maxRestarts: 0 }), (store) => {
    const count = (event: Store.MetricEvent) => {
      if (event.event === "supervisor_health_check") {
        counters.checks++
        latencies.push(Number(event.latency_ms))
      } else if (event.event === "agent_state_change" && event.old_state === "RUNNING") {
        if (event.new_state !== "STOPPING") counters.exits++
      }
    }
    Object.defineProperty(counters, "missed", { get: registryMisses, enumerable: true })
    const saveMetrics = store.saveMetrics
    return Store.Store.of({
      ...store,
      saveMetric: (event) => Effect.suspend(() => (count(event), store.saveMetric(event))),
      ...(saveMetrics === undefined ? {} : {
        saveMetrics: (events: ReadonlyArray<Store.MetricEvent>) =>
          Effect.suspend(() => (events.forEach(count), saveMetrics(events)))
      })
    })
  })

/** Supervisor CPU% of one core, event-loop delay and counted events over `seconds` of wall time. */
export const window = (counters: Counters, seconds = WINDOW_SECONDS) =>
  Effect.gen(function*() {
    const delay = monitorEventLoopDelay({ resolution: 10 })
    const before = { ...counters }
    const cpu = process.cpuUsage()
    const start = performance.now()
    delay.enable()
    yield* Effect.sleep(`${seconds} seconds`)
    delay.disable()
    const used = process.cpuUsage(cpu)
    const elapsed = (performance.now() - start) / 1000
    const percent = ((used.user + used.system) / 1e6 / elapsed) * 100
    return {
      supervisor_cpu_percent_of_one_core: round(percent),
      // unrounded, for ratios
      supervisor_cpu_percent_exact: percent,
      // none recorded when the loop never came round to the monitor's timer: see the window's own overrun
      event_loop_delay_p99_ms: delay.count === 0 ? null : round(delay.percentile(99) / 1e6),
      event_loop_delay_max_ms: delay.count === 0 ? null : round(delay.max / 1e6),
      window_overrun_ms: Math.round((elapsed - seconds) * 1000),
      health_checks_per_s: round((counters.checks - before.checks) / elapsed),
      missed_heartbeats: counters.missed - before.missed,
      agents_killed_or_exited: counters.exits - before.exits
    }
  })

const measure = Effect.gen(function*() {
  if (IDLE > 0) {
    const idle = yield* idleProcesses(IDLE)
    // the shell said "started" once it had forked them all; wait until they are all in /proc
    for (let i = 0; i < 200 && groupSize(idle.pid) < IDLE + 1; i++) yield* Effect.sleep("50 millis")
  }
  const bare = yield* barePipes

  const scope = yield* Scope.make()
  const counters: Counters = { checks: 0, missed: 0, exits: 0 }
  const count = (e: Supervisor.SupervisorEvent) => {
    if (e._tag !== "Agent") return
    if (e.event._tag === "HealthChecked") counters.checks++
    else if (e.event._tag === "HealthCheckFailed") counters.missed++
    else if (e.event._tag === "Exited") counters.exits++
  }
  // Counted in `onEvent` (a call in the agent's own fiber): the supervisor alone. A subscriber is measured apart.
  const sup = yield* Supervisor.make({
    intensity: { maxRestarts: 1_000_000, window: "1 second" },
    onEvent: (e) => Effect.sync(() => count(e))
  }).pipe(Scope.extend(scope))
  const startedAt = performance.now()
  for (let i = 0; i < AGENTS; i++) {
    yield* sup.startChild(Supervisor.agent({
      id: `hb${i}`,
      config: { name: `hb${i}`, command: "/bin/sh", args: [pongAgent], heartbeatInterval: `${INTERVAL_MS} millis` }
    }))
  }
  const startMs = performance.now() - startedAt
  const hostProcesses = [...(ProcStat.readTable()?.groups.values() ?? [])].reduce((n, g) => n + g.processes, 0)
  // every agent past its first beat, and the start-up's garbage collected
  yield* Effect.sleep(`${2 * INTERVAL_MS} millis`)

  // A scan as the heartbeats make it: the agents' groups watched, by a scanner that read every process before
  const agentGroups = new Set(
    (yield* sup.whichChildren).flatMap((child) => Option.isSome(child.pid) ? [child.pid.value] : [])
  )
  const scanner = ProcStat.makeScanner({ chunk: Infinity })
  const sharedScanMs = yield* timedScans(() => scanner((pgid) => agentGroups.has(pgid)))
  // a beat reads a scan at most the sampling period old (see Health.heartbeat): one scan per period
  const scansPerSecond = 1000 / ProcessTable.HEARTBEAT_MAX_AGE_MILLIS
  const after = yield* window(counters)

  // The same with a subscriber taking every event, as the benchmark counted them before: one more fiber woken per
  // event. Its counts are not used (onEvent counts).
  const subscription = yield* Scope.make()
  const events = yield* sup.subscribe.pipe(Scope.extend(subscription))
  let taken = 0
  yield* Queue.take(events).pipe(
    Effect.map(() => taken++),
    Effect.forever,
    Effect.forkIn(subscription)
  )
  const withSubscriber = yield* window(counters)
  yield* Scope.close(subscription, Exit.void)

  const oldScanMs = timeOf(() => oldSample(process.pid))
  const pids = (yield* sup.whichChildren).flatMap((child) => Option.toArray(child.pid))
  let oldScans = 0
  const oldBeats = yield* Effect.forEach(
    pids,
    (pid, i) =>
      Effect.sleep(`${(i / pids.length) * INTERVAL_MS} millis`).pipe(
        Effect.andThen(
          Effect.sync(() => {
            oldSample(pid)
            oldScans++
          }).pipe(Effect.repeat(Schedule.spaced(`${INTERVAL_MS} millis`)))
        ),
        Effect.fork
      )
  )
  // the first beats land within the first interval: measure from there
  yield* Effect.sleep(`${INTERVAL_MS} millis`)
  const scansBefore = oldScans
  const start = performance.now()
  const before = yield* window(counters)
  const oldScansPerSecond = (oldScans - scansBefore) / ((performance.now() - start) / 1000)
  yield* Fiber.interruptAll(oldBeats)

  const stopStart = performance.now()
  yield* Scope.close(scope, Exit.void)
  const stopMs = performance.now() - stopStart
  return {
    settings: { agents: AGENTS, heartbeat_interval_ms: INTERVAL_MS, idle_processes: IDLE, window_s: WINDOW_SECONDS },
    host_processes: hostProcesses,
    start_all_ms: Math.round(startMs),
    stop_all_ms: Math.round(stopMs),
    // no supervisor: the pings alone, from a plain Node loop (see the top of this file)
    bare_pipes_baseline: bare,
    after_shared_table: {
      ...after,
      vs_bare_pipes: round(after.supervisor_cpu_percent_of_one_core / bare.cpu_percent_of_one_core, 2),
      one_scan_ms: sharedScanMs,
      scans_per_s_about: round(scansPerSecond, 2),
      // what is left is the rest of a beat: timer, ping round trip, events, store write
      of_which_proc_table_percent_about: round((sharedScanMs * scansPerSecond) / 10),
      rest_cpu_us_per_beat: Math.round(
        ((after.supervisor_cpu_percent_of_one_core - (sharedScanMs * scansPerSecond) / 10) * 1e4) /
          after.health_checks_per_s
      )
    },
    after_with_a_subscriber: {
      supervisor_cpu_percent_of_one_core: withSubscriber.supervisor_cpu_percent_of_one_core,
      event_loop_delay_p99_ms: withSubscriber.event_loop_delay_p99_ms,
      events_taken: taken
    },
    before_scan_per_agent: {
      ...before,
      one_scan_ms: oldScanMs,
      scans_due_per_s: round((AGENTS * 1000) / INTERVAL_MS),
      scans_done_per_s: round(oldScansPerSecond),
      cpu_asked_percent_of_one_core: round(((AGENTS * oldScanMs) / INTERVAL_MS) * 100)
    },
    target: "after < 5% of one core"
  }
})

/** The heartbeat section of the benchmark report. */
export const heartbeat = Effect.gen(function*() {
  if (SKIP) return "skipped (BENCH_HEARTBEAT=0)"
  return yield* Effect.scoped(measure)
})

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.runPromise(
    heartbeat.pipe(
      Effect.provide(Layer.merge(NodeContext.layer, Store.layerMemory)),
      Logger.withMinimumLogLevel(LogLevel.Error)
    )
  )
    .then(
      (report) => console.log(JSON.stringify({ heartbeat: report }, null, 2)),
      (error) => {
        console.error(error)
        process.exit(1)
      }
    )
}

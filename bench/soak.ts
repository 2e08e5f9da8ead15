/**
 * `npm run soak`: the supervisor under sustained abuse, outside CI's time budget.
 *
 * A one-for-one `Supervisor` tree of 20 Node-adapter echo agents; a driver sends 200 requests/s spread over them
 * through `sup.call` (2 s timeout each); a killer SIGKILLs a random agent every 50-100 ms. Runs `SOAK_SECONDS`
 * (default 300), then stops the load, lets every request settle, closes the tree and looks for what is left.
 *
 * Prints one JSON object: requests by outcome (a request not settled within its timeout + 5 s is "hung"),
 * open descriptors, RSS and heap (first/last/max of the 5-second samples, heap after a full GC), processes left
 * (alive or zombie), uncaught exceptions and unhandled rejections. Exits 1 if anything hung, a process was left,
 * the tree escalated, or an exception went uncaught.
 *
 * Knobs (environment): SOAK_SECONDS, SOAK_AGENTS (20), SOAK_RATE (requests/s, 200), SOAK_TIMEOUT_MS (2000),
 * SOAK_KILL_MIN_MS / SOAK_KILL_MAX_MS (50 / 100), SOAK_SAMPLE_MS (5000).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import * as Store from "../dist/Store/Store.js"
import * as Supervisor from "../dist/Supervisor.js"

// Counted from the first line: an exception anywhere in the run must be seen, not crash the run.
const uncaught = { exceptions: 0, rejections: 0, first: [] as Array<string> }
const noteUncaught = (kind: string, error: unknown) => {
  if (uncaught.first.length < 5) {
    uncaught.first.push(`${kind}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  }
}
process.on("uncaughtException", (error) => {
  uncaught.exceptions++
  noteUncaught("uncaughtException", error)
})
process.on("unhandledRejection", (reason) => {
  uncaught.rejections++
  noteUncaught("unhandledRejection", reason)
})

// A run whose event loop empties before the report (a fiber waiting on something nothing will complete) would
// otherwise end quietly with status 0.
let reported = false
process.on("exit", () => {
  if (!reported) {
    process.stderr.write("soak: the process is ending before the report: something never completed\n")
    process.exitCode = 1
  }
})

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const nodeAdapter = path.join(root, "dist", "Adapter", "node.js")
const nodeEcho = path.join(root, "bench", "agents", "echo.mjs")

const envNumber = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number of 0 or more`)
  return value
}
const SECONDS = envNumber("SOAK_SECONDS", 300)
const AGENTS = envNumber("SOAK_AGENTS", 20)
const RATE = envNumber("SOAK_RATE", 200)
const TIMEOUT_MS = envNumber("SOAK_TIMEOUT_MS", 2000)
const HANG_MS = TIMEOUT_MS + 5000
const KILL_MIN_MS = envNumber("SOAK_KILL_MIN_MS", 50)
const KILL_MAX_MS = Math.max(KILL_MIN_MS, envNumber("SOAK_KILL_MAX_MS", 100))
const SAMPLE_MS = envNumber("SOAK_SAMPLE_MS", 5000)

/** A full GC before a heap reading; `--expose-gc` is turned on here if the run did not pass it. */
const gc: () => void = (() => {
  if (typeof globalThis.gc === "function") return globalThis.gc
  v8.setFlagsFromString("--expose-gc")
  return vm.runInNewContext("gc") as () => void
})()

/** Progress on stderr, so a long run shows where it is; the report alone goes to stdout. */
const progress = (text: string) => process.stderr.write(`soak: ${text}\n`)

const round = (n: number, digits = 1) => Number(n.toFixed(digits))
const mb = (bytes: number) => round(bytes / (1024 * 1024))

// ---- /proc ----

interface ProcStat {
  readonly pid: number
  readonly state: string
  readonly ppid: number
  readonly pgrp: number
  readonly comm: string
}

const readStat = (pid: number): ProcStat | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const close = stat.lastIndexOf(")")
    const fields = stat.slice(close + 2).split(" ")
    return {
      pid,
      comm: stat.slice(stat.indexOf("(") + 1, close),
      state: fields[0],
      ppid: Number(fields[1]),
      pgrp: Number(fields[2])
    }
  } catch {
    return undefined
  }
}

const allProcesses = (): Array<ProcStat> =>
  fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).flatMap((name) => {
    const stat = readStat(Number(name))
    return stat !== undefined ? [stat] : []
  })

const openDescriptors = () => fs.readdirSync("/proc/self/fd").length

// ---- the run ----

interface Sample {
  readonly t_s: number
  readonly fds: number
  readonly rss_mb: number
  readonly heap_mb: number
  readonly pending: number
  readonly settled: number
}

const series = (samples: ReadonlyArray<Sample>, key: "fds" | "rss_mb" | "heap_mb") => {
  const values = samples.map((s) => s[key])
  return { first: values[0], last: values[values.length - 1], max: Math.max(...values) }
}

const agentSpec = (id: string) =>
  Supervisor.agent({
    id,
    config: {
      name: id,
      command: process.execPath,
      args: [nodeAdapter, nodeEcho],
      restartBackoff: "50 millis",
      backoffFactor: 1,
      maxRestartAttempts: 1_000_000_000,
      startupTimeout: "10 seconds",
      gracefulTimeout: "2 seconds",
      sigtermTimeout: "2 seconds"
    }
  })

/** Children this process had before the tree (tsx's esbuild service): not the supervisor's to clean up. */
const childrenBefore = new Set(allProcesses().filter((p) => p.ppid === process.pid).map((p) => p.pid))

const run = (scope: Scope.CloseableScope) =>
  Effect.gen(function*() {
    const ids = Array.from({ length: AGENTS }, (_, i) => `soak-${i}`)
    const startTree = performance.now()
    const sup = yield* Supervisor.make({
      name: "soak",
      strategy: "one-for-one",
      // Random kills must never add up to an escalation: that would be the soak's setup failing, not the library.
      intensity: { maxRestarts: 1_000_000_000, window: "1 second" },
      children: ids.map(agentSpec)
    }).pipe(Scope.extend(scope))
    const treeStartMs = Math.round(performance.now() - startTree)
    progress(`${AGENTS} agents started in ${treeStartMs} ms; ${SECONDS} s of load`)

    // Every pid an agent ever had, from the events and from the killer's look at the children.
    const agentPids = new Set<number>()
    const eventsByTag = new Map<string, number>()
    const countEvent = (tag: string) => eventsByTag.set(tag, (eventsByTag.get(tag) ?? 0) + 1)
    const events = yield* sup.subscribe.pipe(Scope.extend(scope))
    const watcher = yield* Effect.forkDaemon(Effect.forever(Effect.map(Queue.takeAll(events), (batch) => {
      for (const event of batch) {
        if (event._tag === "Agent") {
          countEvent(`Agent.${event.event._tag}`)
          if ("pid" in event.event && typeof event.event.pid === "number") agentPids.add(event.event.pid)
        } else {
          countEvent(event._tag)
        }
      }
    })))
    const escalation = yield* Effect.forkDaemon(sup.await)
    for (const child of yield* sup.whichChildren) Option.map(child.pid, (pid) => agentPids.add(pid))

    // ---- requests: every one is tracked from send to settle ----
    const pending = new Map<number, number>()
    const outcomes = new Map<string, number>()
    const hungIds = new Set<number>()
    let hungThenSettled = 0
    let sent = 0
    let settled = 0
    const latencies: Array<number> = []
    const countOutcome = (outcome: string) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    /** `ok`, or the error's tag with its reason or operation (`AgentTimeoutError.start`: it was never sent). */
    const outcomeOf = (
      exit: Exit.Exit<unknown, { readonly _tag: string; readonly reason?: unknown; readonly operation?: unknown }>,
      n: number
    ) => {
      if (Exit.isSuccess(exit)) {
        const reply = exit.value as { readonly n?: unknown } | null
        return reply !== null && typeof reply === "object" && reply.n === n ? "ok" : "ok_wrong_reply"
      }
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure)) {
        const error = failure.value
        const detail = typeof error.reason === "string"
          ? error.reason
          : typeof error.operation === "string"
          ? error.operation
          : undefined
        return detail !== undefined ? `${error._tag}.${detail}` : error._tag
      }
      return Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect"
    }
    const request = (n: number) => {
      const startedAt = performance.now()
      pending.set(n, startedAt)
      return sup.call(ids[n % AGENTS], { n }, { timeout: TIMEOUT_MS }).pipe(
        Effect.exit,
        Effect.map((exit) => {
          pending.delete(n)
          settled++
          if (hungIds.has(n)) hungThenSettled++
          const outcome = outcomeOf(exit, n)
          countOutcome(outcome)
          if (outcome === "ok") latencies.push(performance.now() - startedAt)
        })
      )
    }

    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    loopDelay.enable()
    const cpuBefore = process.cpuUsage()
    const runStart = performance.now()
    const elapsed = () => performance.now() - runStart
    const durationMs = SECONDS * 1000

    // 200/s in steps of a few milliseconds: the number due so far is sent at each step.
    const driver = Effect.gen(function*() {
      while (elapsed() < durationMs) {
        const due = Math.floor((elapsed() / 1000) * RATE)
        while (sent < due) yield* Effect.forkDaemon(request(sent++))
        yield* Effect.sleep("5 millis")
      }
    })

    let kills = 0
    let killsMissed = 0
    let killsSkipped = 0
    const killer = Effect.forever(Effect.gen(function*() {
      yield* Effect.sleep(KILL_MIN_MS + Math.random() * (KILL_MAX_MS - KILL_MIN_MS))
      const children = yield* sup.whichChildren
      const running = children.flatMap((child) => Option.toArray(child.pid))
      for (const pid of running) agentPids.add(pid)
      if (running.length === 0) {
        killsSkipped++
        return
      }
      const pid = running[Math.floor(Math.random() * running.length)]
      try {
        process.kill(pid, "SIGKILL")
        kills++
      } catch {
        killsMissed++ // it exited between the look and the kill
      }
    }))

    // A request still pending past its timeout + 5 s is hung, whenever (and whether) it settles later.
    const hangCheck = Effect.forever(Effect.zipRight(
      Effect.sleep("1 second"),
      Effect.sync(() => {
        const now = performance.now()
        for (const [n, at] of pending) if (now - at > HANG_MS) hungIds.add(n)
      })
    ))

    const samples: Array<Sample> = []
    const sample = () => {
      gc()
      const memory = process.memoryUsage()
      progress(
        `t=${Math.round(elapsed() / 1000)}s sent=${sent} settled=${settled} pending=${pending.size} kills=${kills}`
      )
      samples.push({
        t_s: Math.round(elapsed() / 1000),
        fds: openDescriptors(),
        rss_mb: mb(memory.rss),
        heap_mb: mb(memory.heapUsed),
        pending: pending.size,
        settled
      })
    }
    sample()
    const sampler = Effect.forever(Effect.zipRight(Effect.sleep(SAMPLE_MS), Effect.sync(sample)))

    const background = yield* Effect.all([killer, hangCheck, sampler].map((fiber) => Effect.forkDaemon(fiber)))
    yield* driver
    const killerFiber = background[0]
    yield* Fiber.interrupt(killerFiber)
    progress(`load off after ${sent} requests and ${kills} kills; waiting for ${pending.size} to settle`)

    // Load off: every request must settle within its hang deadline.
    const drainDeadline = performance.now() + HANG_MS
    while (pending.size > 0 && performance.now() < drainDeadline) yield* Effect.sleep("50 millis")
    for (const n of pending.keys()) hungIds.add(n)
    const stillPending = pending.size
    yield* Fiber.interruptAll(background)
    sample()
    loopDelay.disable()
    const cpu = process.cpuUsage(cpuBefore)
    const runSeconds = elapsed() / 1000

    const escalated = Option.flatMap(
      yield* Fiber.poll(escalation),
      (exit) => Exit.isFailure(exit) ? Option.some(Cause.pretty(exit.cause)) : Option.none()
    )
    yield* Fiber.interrupt(escalation)
    yield* Fiber.interrupt(watcher)

    progress("closing the tree")
    const stopStart = performance.now()
    yield* Scope.close(scope, Exit.void)
    const stopMs = Math.round(performance.now() - stopStart)
    progress(`tree closed in ${stopMs} ms; looking for processes left`)

    // What is left: any child of this process, or any process in an agent's group (a grandchild included).
    const leftovers = () =>
      allProcesses().filter((p) =>
        p.pid !== process.pid && !childrenBefore.has(p.pid) && (p.ppid === process.pid || agentPids.has(p.pgrp))
      )
    const leftDeadline = performance.now() + 5000
    while (leftovers().some((p) => p.state !== "Z") && performance.now() < leftDeadline) {
      yield* Effect.sleep("50 millis")
    }
    const left = leftovers()
    const alive = left.filter((p) => p.state !== "Z" && p.state !== "X")
    const zombies = left.filter((p) => p.state === "Z")

    latencies.sort((a, b) => a - b)
    const quantile = (q: number) =>
      latencies.length === 0 ? null : round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))])
    const hung = hungIds.size
    const uncaughtTotal = uncaught.exceptions + uncaught.rejections
    const report = {
      soak: {
        seconds: SECONDS,
        agents: AGENTS,
        rate_per_s: RATE,
        request_timeout_ms: TIMEOUT_MS,
        kill_every_ms: [KILL_MIN_MS, KILL_MAX_MS],
        node: process.version,
        cpus: os.cpus().length,
        load_average_at_end: os.loadavg().map((n) => round(n, 2)),
        tree_start_ms: treeStartMs,
        tree_stop_ms: stopMs
      },
      requests: {
        sent,
        settled,
        by_outcome: Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])),
        hung,
        hung_then_settled: hungThenSettled,
        still_pending_at_end: stillPending,
        ok_latency_ms: { p50: quantile(0.5), p99: quantile(0.99), max: quantile(1) }
      },
      kills: {
        sent: kills,
        per_s: round(kills / runSeconds),
        missed: killsMissed,
        skipped_none_running: killsSkipped
      },
      supervisor_process: {
        cpu_percent: round((cpu.user + cpu.system) / 1e4 / runSeconds),
        event_loop_delay_ms: {
          p50: round(loopDelay.percentile(50) / 1e6),
          p99: round(loopDelay.percentile(99) / 1e6),
          max: round(loopDelay.max / 1e6)
        }
      },
      events: Object.fromEntries([...eventsByTag].sort((a, b) => b[1] - a[1])),
      escalated: Option.getOrNull(escalated),
      descriptors: series(samples, "fds"),
      rss_mb: series(samples, "rss_mb"),
      heap_mb: series(samples, "heap_mb"),
      samples,
      processes_left: {
        alive: alive.length,
        zombies: zombies.length,
        which: left.slice(0, 20).map((p) => `${p.pid} ${p.comm} ${p.state} ppid=${p.ppid} pgrp=${p.pgrp}`),
        agent_pids_seen: agentPids.size
      },
      uncaught: { exceptions: uncaught.exceptions, unhandled_rejections: uncaught.rejections, first: uncaught.first }
    }
    const failed = hung > 0 || alive.length > 0 || zombies.length > 0 || uncaughtTotal > 0 ||
      Option.isSome(escalated)
    return { report: { ...report, passed: !failed }, failed }
  })

/** The run, with its tree closed however it ends (closing twice is a no-op). */
const soak = Effect.gen(function*() {
  const scope = yield* Scope.make()
  return yield* run(scope).pipe(Effect.ensuring(Scope.close(scope, Exit.void)))
})

/** Logs are counted by level, not printed: thousands of crashes are the point of the run. */
const logCounts = new Map<string, number>()
const countingLogger = Logger.make(({ logLevel }) => {
  logCounts.set(logLevel.label, (logCounts.get(logLevel.label) ?? 0) + 1)
})

Effect.runPromiseExit(
  soak.pipe(
    Effect.provide(Layer.merge(NodeContext.layer, Store.layerMemory)),
    Effect.provide(Logger.replace(Logger.defaultLogger, countingLogger))
  )
).then((exit) => {
  reported = true
  if (Exit.isFailure(exit)) {
    console.error(`the soak itself failed:\n${Cause.pretty(exit.cause)}`)
    return process.exit(1)
  }
  const { failed, report } = exit.value
  console.log(JSON.stringify({ ...report, log_lines: Object.fromEntries(logCounts) }, null, 2))
  process.exit(failed ? 1 : 0)
})

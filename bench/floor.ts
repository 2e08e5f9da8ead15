/**
 * The heartbeat floor measured beside the supervisor: `floorProcess.ts` runs the bare pings in a process of its
 * own, and {@link pairedWindows} measures it and this process over the same windows of wall time.
 *
 * Why not one after the other: on this shared 2-core VM the same bare loop costs 10-40% more or less from one
 * minute to the next (and 1.6x in one window of four, against an identical process beside it), so a floor measured
 * before the supervisor told more about the minute than about the supervisor. Measured together, both see the
 * same machine; the ratio is the median of several windows' ratios, so that one window's outlier in either process
 * does not decide it. Measured together, each also runs on a busier machine than alone (both sets of agents), and
 * wakes to more work at a time: the ratio is that of this machine at that load, not of an idle one.
 */
import * as Effect from "effect/Effect"
import { spawn } from "node:child_process"
import * as path from "node:path"
import * as readline from "node:readline"
import { fileURLToPath } from "node:url"
import { type Counters, window } from "./heartbeat.js"
import { median } from "./stats.js"

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "floorProcess.ts")

/** One window of the floor process, as it prints it. */
export interface FloorWindow {
  readonly cpu_percent_of_one_core: number
  readonly ping_latency_p99_ms: number | null
  readonly answered: number
}

/** The floor process: its spawn cost per agent, and its windows. */
export interface Floor {
  readonly spawnMsPerAgent: number
  /** Starts a window in the floor process. */
  readonly start: () => void
  /** Ends the window started last: what the floor process measured over it; fails if the process died. */
  readonly stop: Effect.Effect<FloorWindow, Error>
}

/**
 * `count` bare pong agents pinged every `intervalMs` by a plain Node process of their own (this process's Node and
 * tsx flags), ready once every agent is past its first ping. Closing the scope ends its stdin: it stops its agents
 * and exits (killed after 10 s if it has not).
 */
export const floorProcess = (count: number, intervalMs: number) =>
  Effect.acquireRelease(
    Effect.async<Floor & { readonly end: () => Promise<void> }, Error>((resume) => {
      const child = spawn(process.execPath, [...process.execArgv, script, String(count), String(intervalMs)], {
        stdio: ["pipe", "pipe", "inherit"]
      })
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      const replies: Array<(line: string | Error) => void> = []
      let ready = false
      let gone: Error | undefined
      child.once("error", (error) => resume(Effect.fail(error)))
      // A write to a floor process that died fails its window (below), not this process.
      child.stdin.on("error", () => {})
      child.once("exit", (code) => {
        gone = new Error(`the floor process exited with ${code}${ready ? "" : " before it was ready"}`)
        if (!ready) return resume(Effect.fail(gone))
        for (const reply of replies.splice(0)) reply(gone)
      })
      readline.createInterface({ input: child.stdout }).on("line", (line) => {
        if (ready) return replies.shift()?.(line)
        ready = true
        const spawnMsPerAgent = (JSON.parse(line) as { readonly spawn_ms_per_agent: number }).spawn_ms_per_agent
        resume(Effect.succeed({
          spawnMsPerAgent,
          start: () => child.stdin.write("start\n"),
          stop: Effect.async<FloorWindow, Error>((reply) => {
            if (gone !== undefined) return reply(Effect.fail(gone))
            replies.push((line) =>
              reply(typeof line === "string" ? Effect.succeed(JSON.parse(line) as FloorWindow) : Effect.fail(line))
            )
            child.stdin.write("stop\n")
          }),
          end: async () => {
            child.stdin.end()
            const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
            await exited
            clearTimeout(timer)
          }
        }))
      })
    }),
    (floor) => Effect.promise(floor.end)
  )

/**
 * `windows` windows of `seconds` each, measured at once in this process (`window` from `heartbeat.ts`: CPU,
 * event-loop delay, the supervisor's counted events) and in the floor process; the median of the windows' ratios.
 */
export const pairedWindows = (floor: Floor, counters: Counters, windows: number, seconds: number) =>
  Effect.gen(function*() {
    const supervisor: Array<number> = []
    const bare: Array<number> = []
    const ratios: Array<number> = []
    const bareP99: Array<number> = []
    for (let i = 0; i < windows; i++) {
      floor.start()
      const measured = yield* window(counters, seconds)
      const floorWindow = yield* floor.stop
      supervisor.push(measured.supervisor_cpu_percent_of_one_core)
      bare.push(Number(floorWindow.cpu_percent_of_one_core.toFixed(2)))
      if (floorWindow.ping_latency_p99_ms !== null) bareP99.push(floorWindow.ping_latency_p99_ms)
      // Of the figures as measured, not as rounded for the report (at 10 agents a rounding was 15% of a ratio).
      ratios.push(measured.supervisor_cpu_percent_exact / floorWindow.cpu_percent_of_one_core)
    }
    return {
      supervisor_cpu_percent_of_one_core: supervisor,
      bare_pipes_cpu_percent_of_one_core: bare,
      vs_bare_pipes_median: Number(median(ratios).toFixed(2)),
      bare_ping_latency_p99_ms: bareP99.length === 0 ? null : median(bareP99)
    }
  })

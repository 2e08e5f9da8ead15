/**
 * What limits add to a start: spawn to `ready` of the Node adapter's echo agent without limits (the baseline), with
 * a memory limit held by a cgroup (made and written before the spawn, joined through `/bin/sh`, removed after), and
 * with the same limit polled. Interleaved, one of each in turn, so that the machine's drift hits all three alike;
 * ratios against the baseline of the same run. Exported for `bench/index.ts`; runnable alone with
 * `tsx bench/limits.ts` (after `npm run build`).
 */
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as AgentProcess from "../dist/Agent/Process.js"
import { median } from "./stats.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const ROUNDS = Number(process.env.BENCH_LIMITS_ROUNDS ?? 15)
const agent = {
  command: process.execPath,
  args: [path.join(root, "dist", "Adapter", "node.js"), path.join(root, "bench", "agents", "echo.mjs")]
}

const round = (n: number, digits = 2) => Number(n.toFixed(digits))

const variants = {
  none: {},
  cgroup: { limits: { memory: "512 MiB" } },
  polling: { limits: { memory: "512 MiB", enforce: "soft" as const } }
}

/** One start to `ready`, in milliseconds, and the mode its limits were held in. */
const startOnce = (extra: object) =>
  Effect.scoped(Effect.gen(function*() {
    const start = performance.now()
    const process = yield* AgentProcess.make({ name: "bench-limits", ...agent, ...extra })
    return { millis: performance.now() - start, mode: process.limits.mode, why: process.limits.why }
  }))

export const limits = Effect.gen(function*() {
  const times: Record<keyof typeof variants, Array<number>> = { none: [], cgroup: [], polling: [] }
  const modes: Record<string, string> = {}
  // One start of each first, not counted: the first spawn of a kind pays for loading what it needs.
  for (const extra of Object.values(variants)) yield* startOnce(extra)
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, extra] of Object.entries(variants) as Array<[keyof typeof variants, object]>) {
      const once = yield* startOnce(extra)
      times[name].push(once.millis)
      modes[name] = once.mode === "polling" && name === "cgroup" ? `polling (${once.why})` : once.mode
    }
  }
  const none = median(times.none)
  return {
    rounds: ROUNDS,
    modes,
    spawn_to_ready_ms_p50: {
      none: round(none),
      cgroup: round(median(times.cgroup)),
      polling: round(median(times.polling))
    },
    ratios_vs_none: { cgroup: round(median(times.cgroup) / none), polling: round(median(times.polling) / none) }
  }
})

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  Effect.runPromise(limits.pipe(Logger.withMinimumLogLevel(LogLevel.Error))).then(
    (report) => console.log(JSON.stringify(report, null, 2)),
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}

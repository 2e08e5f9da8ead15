/**
 * Placing the client and a pair of agents on known CPUs for the sequential latencies (`bench/index.ts`,
 * `bench/python.ts`).
 *
 * Interleaved (one request to each agent in turn), the client wakes the two agents one after the other, and the
 * scheduler runs one of them on the client's core (a round trip of ~25 us on a 2-core VM) and the other on the other
 * core (~70 us), for the whole life of the pair, which one by chance: a round's ratio was then a coin toss between
 * ~0.35x and ~2.9x whatever either side did. Here both agents of a pair run on one CPU (through `taskset`, which runs
 * the agent in its own process: same pid, same process group), and the client (this process's main thread) is
 * pinned for the measurement, in turn on that CPU (`same_core`: the round trip is two context switches) and on
 * another (`other_core`: two cross-core wake-ups). The library's fixed overhead weighs more in the first, where the
 * round trip is shorter, so a target is checked against the worse of the two.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"

/** The CPUs this process may run on, from `Cpus_allowed_list` in `/proc/self/status` ("0-1", "2-3,5"); [] if unknown. */
const allowedCpus = (): Array<number> => {
  try {
    const line = fs.readFileSync("/proc/self/status", "utf8").split("\n").find((l) =>
      l.startsWith("Cpus_allowed_list:")
    )
    if (line === undefined) return []
    return line.slice(line.indexOf(":") + 1).trim().split(",").flatMap((range) => {
      const [from, to = from] = range.split("-").map(Number)
      return Array.from({ length: to - from + 1 }, (_, i) => from + i)
    })
  } catch {
    return []
  }
}

const taskset = (args: ReadonlyArray<string>): boolean => {
  try {
    execFileSync("taskset", args, { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

const allowed = allowedCpus()

/** Where the client and the agents of a latency's pair run. */
export interface Placement {
  readonly name: "same_core" | "other_core"
  /** The CPU of this process's main thread (the client, and the supervisor of the library's agent). */
  readonly client: number
  /** The CPU both agents of the pair run on alone. */
  readonly agents: number
}

/**
 * The two placements: the agents on the last CPU allowed, the client on it and then on the first. `undefined` with
 * fewer than two CPUs allowed, no `/proc`, or no `taskset` (util-linux): the pairs then run unpinned, and a line on
 * stderr says so.
 */
export const placements: ReadonlyArray<Placement> | undefined = (() => {
  const last = allowed[allowed.length - 1]
  if (allowed.length < 2 || !taskset(["-c", String(last), "true"])) {
    console.error("bench: fewer than two CPUs, or no taskset: the sequential latencies' pairs are not pinned")
    return undefined
  }
  return [{ name: "same_core", client: last, agents: last }, { name: "other_core", client: allowed[0], agents: last }]
})()

/** `command args`, run on `cpu` alone when it is given. */
export const onCpu = (
  cpu: number | undefined,
  command: string,
  args: ReadonlyArray<string>
): { readonly command: string; readonly args: Array<string> } =>
  cpu === undefined ? { command, args: [...args] } : { command: "taskset", args: ["-c", String(cpu), command, ...args] }

/** Pins this process's main thread to `cpu` (its other threads stay where they are); `undefined` frees it again. */
export const pinClient = (cpu: number | undefined): void => {
  if (allowed.length === 0) return
  taskset(["-p", "-c", cpu === undefined ? allowed.join(",") : String(cpu), String(process.pid)])
}

/** `measure` with this process's main thread on `cpu`, freed after whatever happens. */
export const withClientOn = async <A>(cpu: number, measure: () => Promise<A>): Promise<A> => {
  pinClient(cpu)
  try {
    return await measure()
  } finally {
    pinClient(undefined)
  }
}

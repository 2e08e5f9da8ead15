/**
 * Pinning a pair of agents to one CPU for the sequential latencies (`bench/index.ts`, `bench/python.ts`).
 *
 * Interleaved (one request to each agent in turn), the client wakes the two agents one after the other, and the
 * scheduler runs one of them on the client's core (a round trip of ~25 us on a 2-core VM) and the other on the other
 * core (~70 us), for the whole life of the pair, which one by chance: a round's ratio was then a coin toss between
 * ~0.35x and ~2.9x whatever either side does. Both on one CPU, each sees the client from the same place at every
 * request. The pinned CPU is the last one, through `taskset` (util-linux), which runs the agent in its own process.
 */
import { execFileSync } from "node:child_process"
import * as os from "node:os"

/** The CPU a latency's pair is pinned to; `undefined` on one CPU or without `taskset`: not pinned. */
export const pinnedCpu: number | undefined = (() => {
  const cpus = os.availableParallelism()
  if (cpus < 2) return undefined
  try {
    execFileSync("taskset", ["-c", String(cpus - 1), "true"], { stdio: "ignore" })
    return cpus - 1
  } catch {
    return undefined
  }
})()

/** `command args`, run on `cpu` alone when it is given. */
export const onCpu = (
  cpu: number | undefined,
  command: string,
  args: ReadonlyArray<string>
): { readonly command: string; readonly args: Array<string> } =>
  cpu === undefined ? { command, args: [...args] } : { command: "taskset", args: ["-c", String(cpu), command, ...args] }

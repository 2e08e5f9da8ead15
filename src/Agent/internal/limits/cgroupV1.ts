/**
 * cgroup v1: which hierarchies an agent's limits need, the files that set them, and the counters that say which
 * one the kernel enforced.
 *
 * Each v1 controller is a hierarchy of its own (or shares one with a few others: `cpu,cpuacct`), so an agent gets
 * one leaf per hierarchy it needs, all of the same name. Only the controllers a limit needs are used; an agent
 * with no limit still gets one leaf, in the pids hierarchy when there is one (it costs no accounting), else
 * memory, else cpu: the leaf is what lists and kills every process of the agent, whatever `setsid` or a double
 * fork did to its process tree.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as path from "node:path"
import type { LeafPlan, Plan, Wanted, Write } from "./cgroup.js"
import { type Controller, keyedValue, readText, type Support } from "./cgroupDetect.js"

/** The period of the CFS bandwidth controller: the quota is what a group may run in each. @internal */
export const CPU_PERIOD_MICROS = 100_000

const writesOf = (controller: Controller, wanted: Wanted): Array<Write> => {
  switch (controller) {
    case "memory": {
      const bytes = String(wanted.memoryBytes)
      // memsw counts memory + swap: set to the same value, swap cannot stretch the limit. It must be set after
      // limit_in_bytes (the kernel keeps memsw >= limit), and exists only where swap accounting is on.
      return wanted.memoryBytes === undefined ? [] : [
        { file: "memory.limit_in_bytes", value: bytes },
        { file: "memory.memsw.limit_in_bytes", value: bytes, ifPresent: true }
      ]
    }
    case "cpu":
      return wanted.cpuQuotaMicros === undefined ? [] : [
        { file: "cpu.cfs_period_us", value: String(CPU_PERIOD_MICROS) },
        { file: "cpu.cfs_quota_us", value: String(wanted.cpuQuotaMicros) }
      ]
    case "pids":
      return wanted.pids === undefined ? [] : [{ file: "pids.max", value: String(wanted.pids) }]
  }
}

/** The controllers `wanted` needs. @internal */
export const needed = (wanted: Wanted): Array<Controller> => [
  ...(wanted.memoryBytes !== undefined ? ["memory" as const] : []),
  ...(wanted.cpuQuotaMicros !== undefined ? ["cpu" as const] : []),
  ...(wanted.pids !== undefined ? ["pids" as const] : [])
]

/** The leaves of one agent, or why it cannot have them here. @internal */
export const plan = (support: Extract<Support, { _tag: "v1" }>, wanted: Wanted): Either.Either<Plan, string> => {
  const controllers = needed(wanted)
  for (const c of controllers) {
    if (support.bases[c] === undefined) {
      return Either.left(`a ${c} limit needs the cgroup v1 ${c} controller: ${support.missing[c] ?? "not available"}`)
    }
  }
  const containment = (["pids", "memory", "cpu"] as const).find((c) => support.bases[c] !== undefined)
  if (controllers.length === 0 && containment !== undefined) controllers.push(containment)
  if (controllers.length === 0) return Either.left("no cgroup v1 hierarchy to hold the agent's processes")
  // Two controllers mounted together (`cpu,memory`) share a directory, so a leaf.
  const leaves = new Map<string, { controllers: Array<Controller>; writes: Array<Write> }>()
  for (const c of controllers) {
    const base = support.bases[c]!
    const leaf = leaves.get(base) ?? { controllers: [], writes: [] }
    leaf.controllers.push(c)
    leaf.writes.push(...writesOf(c, wanted))
    leaves.set(base, leaf)
  }
  return Either.right({
    mode: "cgroup-v1",
    leaves: Array.from(leaves, ([base, leaf]): LeafPlan => ({ base, ...leaf })),
    enable: [],
    // The kernel lets a process write its own pid in `cgroup.procs` (or a thread's in `tasks`) when it may write
    // the file: v1 has no rule about the cgroup it leaves.
    ownerFiles: ["cgroup.procs", "tasks"]
  })
}

const count = (text: string | undefined): number | undefined =>
  text !== undefined && /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined

/**
 * Which limit the kernel enforced in these leaves: an OOM kill (`oom_kill` of `memory.oom_control`, kernels 4.13
 * and later; before, `memory.failcnt`, which also counts the times the limit was reached and reclaim sufficed) or
 * a fork refused at `pids.max` (`max` of `pids.events`).
 *
 * @internal
 */
export const limitHit = (
  leaves: ReadonlyArray<{ readonly path: string; readonly controllers: ReadonlyArray<Controller> }>
): "memory_limit" | "pids_limit" | undefined => {
  for (const leaf of leaves) {
    if (!leaf.controllers.includes("memory")) continue
    const oomKills = keyedValue(readText(path.join(leaf.path, "memory.oom_control")), "oom_kill") ??
      count(readText(path.join(leaf.path, "memory.failcnt")))
    if (oomKills !== undefined && oomKills > 0) return "memory_limit"
  }
  for (const leaf of leaves) {
    if (!leaf.controllers.includes("pids")) continue
    const refused = keyedValue(readText(path.join(leaf.path, "pids.events")), "max")
    if (refused !== undefined && refused > 0) return "pids_limit"
  }
  return undefined
}

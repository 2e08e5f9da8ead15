/**
 * cgroup v2: the files that set an agent's limits in its one leaf, the counters that say which limit the kernel
 * enforced, and `cgroup.kill`.
 *
 * The leaf sits in the per-supervisor directory under the delegated base (see `cgroupDetect.ts`), which enables
 * for its children only the controllers the agent's limits need. An agent with no limit gets a leaf with no
 * controller: membership alone lists and kills all its processes.
 *
 * An agent that runs as another user cannot join its leaf itself: moving a process needs write access to the
 * `cgroup.procs` of the common ancestor of the cgroup it leaves and the one it joins, here the supervisor's
 * root-owned base, and handing that file over would let the agent move any process of its user anywhere below it.
 * `plan` says so, and the caller watches that agent without a cgroup.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Plan, Wanted, Write } from "./cgroup.js"
import { type Controller, keyedValue, readText, type Support, writeText } from "./cgroupDetect.js"
import { CPU_PERIOD_MICROS, needed } from "./cgroupV1.js"

const writesOf = (wanted: Wanted): Array<Write> => [
  ...(wanted.memoryBytes === undefined ? [] : [
    { file: "memory.max", value: String(wanted.memoryBytes) },
    // Without it, pages past memory.max go to swap and the agent runs on, slowly, instead of being OOM-killed.
    { file: "memory.swap.max", value: "0", ifPresent: true }
  ]),
  ...(wanted.cpuQuotaMicros === undefined ? [] : [
    { file: "cpu.max", value: `${wanted.cpuQuotaMicros} ${CPU_PERIOD_MICROS}` }
  ]),
  ...(wanted.pids === undefined ? [] : [{ file: "pids.max", value: String(wanted.pids) }])
]

/** The leaf of one agent, or why it cannot have one here. @internal */
export const plan = (
  support: Extract<Support, { _tag: "v2" }>,
  wanted: Wanted,
  owner: { readonly uid: number } | undefined,
  euid: number = process.geteuid?.() ?? 0
): Either.Either<Plan, string> => {
  if (owner !== undefined && owner.uid !== euid) {
    return Either.left(
      `cgroup v2: an agent running as uid ${owner.uid} cannot move itself into its cgroup under ${support.base} ` +
        `(owned by uid ${euid}): moving a process needs write access to the cgroup.procs of the common ancestor ` +
        "of both cgroups"
    )
  }
  const controllers = needed(wanted)
  for (const c of controllers) {
    if (!support.controllers.includes(c)) {
      return Either.left(`a ${c} limit needs the cgroup v2 ${c} controller: ${support.missing[c] ?? "not available"}`)
    }
  }
  return Either.right({
    mode: "cgroup-v2",
    leaves: [{ base: support.base, controllers, writes: writesOf(wanted) }],
    enable: controllers,
    // Only the supervisor's own user gets here, which may write its leaves already.
    ownerFiles: []
  })
}

/** Which limit the kernel enforced: `oom_kill` of `memory.events`, `max` of `pids.events`. @internal */
export const limitHit = (
  leaves: ReadonlyArray<{ readonly path: string; readonly controllers: ReadonlyArray<Controller> }>
): "memory_limit" | "pids_limit" | undefined => {
  for (const leaf of leaves) {
    const oomKills = keyedValue(readText(path.join(leaf.path, "memory.events")), "oom_kill")
    if (oomKills !== undefined && oomKills > 0) return "memory_limit"
  }
  for (const leaf of leaves) {
    const refused = keyedValue(readText(path.join(leaf.path, "pids.events")), "max")
    if (refused !== undefined && refused > 0) return "pids_limit"
  }
  return undefined
}

/**
 * SIGKILLs every process of each leaf at once with `cgroup.kill` (Linux 5.14 and later), which also catches the
 * children forked meanwhile. Returns false where the file is missing: the caller kills pid by pid.
 *
 * @internal
 */
export const kill = (paths: ReadonlyArray<string>): boolean => {
  let all = true
  for (const dir of paths) {
    const file = path.join(dir, "cgroup.kill")
    if (!fs.existsSync(file) || writeText(file, "1") !== undefined) all = false
  }
  return all
}

/**
 * What a supervisor that died without cleaning up (SIGKILL, a crash, a power cut under a persistent cgroup tree)
 * left under a cgroup base: its `effect-agent-supervisor-<pid>` directory and the leaves in it. The first agent
 * with limits of the next supervisor clears them: the processes still in them (an agent that outlived its
 * supervisor, a descendant that escaped with `setsid`: what containment promised to end with the agent) are
 * killed, as a stop would have, and the cgroups removed.
 *
 * A directory is a leftover only when its pid is not alive: a live process of that pid may be another supervisor
 * (or the pid reused; then the directory stays until that process is gone too). Nothing here throws.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { isAlive } from "../../../internal/alive.js"
import { sleepReal } from "./cgroup.js"
import { errorCode, readPids, type Support } from "./cgroupDetect.js"

const SUPERVISOR_DIR = /^effect-agent-supervisor-(\d+)$/

/** What one sweep did: the directories removed, and the leaves left with their processes. @internal */
export interface Swept {
  readonly removed: ReadonlyArray<string>
  readonly busy: ReadonlyArray<{ readonly path: string; readonly pids: ReadonlyArray<number> }>
  /** Directories that could not be removed for another reason (`path (CODE)`). */
  readonly failed: ReadonlyArray<string>
}

const subdirectories = (dir: string): Array<string> => {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) =>
      entry.name
    )
  } catch {
    return []
  }
}

/** The bases agent cgroups go under. @internal */
export const basesOf = (support: Support): ReadonlyArray<string> =>
  support._tag === "v1"
    ? Array.from(new Set(Object.values(support.bases).filter((base): base is string => base !== undefined)))
    : support._tag === "v2"
    ? [support.base]
    : []

/**
 * Removes the leftovers of dead supervisors under `bases`: each empty leaf, then each directory left empty.
 *
 * @internal
 */
export const sweep = (bases: ReadonlyArray<string>, self: number = process.pid): Swept => {
  const removed: Array<string> = []
  const busy: Array<{ path: string; pids: ReadonlyArray<number> }> = []
  const failed: Array<string> = []
  const remove = (dir: string): boolean => {
    try {
      fs.rmdirSync(dir)
      removed.push(dir)
      return true
    } catch (error) {
      const code = errorCode(error)
      if (code !== "ENOENT") failed.push(`${dir} (${code})`)
      return false
    }
  }
  for (const base of bases) {
    for (const name of subdirectories(base)) {
      const pid = Number(SUPERVISOR_DIR.exec(name)?.[1] ?? NaN)
      if (!Number.isSafeInteger(pid) || pid === self || isAlive(pid)) continue
      const dir = path.join(base, name)
      let empty = true
      for (const leaf of subdirectories(dir)) {
        const leafDir = path.join(dir, leaf)
        const pids = readPids(path.join(leafDir, "cgroup.procs"))
        if (pids.length > 0) {
          busy.push({ path: leafDir, pids })
          empty = false
        } else if (!remove(leafDir)) empty = false
      }
      if (empty) remove(dir)
    }
  }
  return { removed, busy, failed }
}

/** What {@link clear} did: {@link Swept}'s fields, and the processes it killed. @internal */
export interface Cleared extends Swept {
  readonly killed: ReadonlyArray<number>
}

/** How long {@link clear} keeps killing and removing before it reports what is left. */
const CLEAR_BOUND_MILLIS = 2000

/**
 * Kills every process in the leftovers of dead supervisors under `bases` and removes them: rounds of SIGKILL and
 * removal until nothing is left or 2 seconds have passed (a killed process leaves its cgroup a moment after it
 * dies); `busy` is what was still left then. Waits on real timers, as `cgroup.ts` does.
 *
 * @internal
 */
export const clear = (bases: ReadonlyArray<string>, self: number = process.pid): Effect.Effect<Cleared> =>
  Effect.gen(function*() {
    const deadline = performance.now() + CLEAR_BOUND_MILLIS
    const removed: Array<string> = []
    const killed = new Set<number>()
    for (let round = 0;; round++) {
      const swept = sweep(bases, self)
      removed.push(...swept.removed)
      if (swept.busy.length === 0 || performance.now() >= deadline) {
        return { removed, busy: swept.busy, failed: swept.failed, killed: [...killed] }
      }
      for (const leaf of swept.busy) {
        for (const pid of leaf.pids) {
          if (pid === self) continue
          try {
            process.kill(pid, "SIGKILL")
            killed.add(pid)
          } catch {
            // ESRCH: gone since the read.
          }
        }
      }
      yield* sleepReal(Math.min(50, 2 ** round))
    }
  })

/**
 * Reads the resource use of an agent's whole process group from /proc: no native dependency, about 20 µs a
 * process. CPU% is computed between two samples, so the first one reports none (rather than a wrong 0).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"

/**
 * Resource use of a process group at one moment.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sample {
  /** Live (non-zombie) processes in the group. */
  readonly processes: number
  /** Resident memory of the group, in bytes. */
  readonly rssBytes: number
  /** CPU time (user + system) the live processes of the group have used, in seconds. */
  readonly cpuSeconds: number
  /** `performance.now()` when the sample was taken. */
  readonly takenAt: number
}

// Linux fixes USER_HZ at 100 for the /proc interface, whatever the kernel's internal HZ.
const CLOCK_TICKS_PER_SECOND = 100

const readStat = (pid: string) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    // The command name may hold spaces and parentheses: fields are counted from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return {
      state: fields[0],
      pgrp: Number(fields[2]),
      ticks: Number(fields[11]) + Number(fields[12]),
      rssPages: Number(fields[21])
    }
  } catch {
    return undefined // the process ended between readdir and read
  }
}

let pageSize: number | undefined
const readPageSize = (): number => {
  if (pageSize === undefined) {
    // /proc/self/smaps_rollup is not everywhere; KernelPageSize in smaps is. Fall back to the common 4 KiB.
    try {
      const match = /KernelPageSize:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/smaps", "latin1"))
      pageSize = match ? Number(match[1]) * 1024 : 4096
    } catch {
      pageSize = 4096
    }
  }
  return pageSize
}

/**
 * Samples every live process whose process group is `pgid`. Returns `undefined` where /proc is missing.
 *
 * @since 0.1.0
 * @category sampling
 */
export const sample = (pgid: number): Effect.Effect<Sample | undefined> =>
  Effect.sync(() => {
    let entries: Array<string>
    try {
      entries = fs.readdirSync("/proc")
    } catch {
      return undefined
    }
    const page = readPageSize()
    let processes = 0
    let rssBytes = 0
    let ticks = 0
    for (const entry of entries) {
      const first = entry.charCodeAt(0)
      if (first < 48 || first > 57) continue
      const stat = readStat(entry)
      if (stat === undefined || stat.pgrp !== pgid || stat.state === "Z" || stat.state === "X") continue
      processes++
      rssBytes += stat.rssPages * page
      ticks += stat.ticks
    }
    return { processes, rssBytes, cpuSeconds: ticks / CLOCK_TICKS_PER_SECOND, takenAt: performance.now() }
  })

/**
 * CPU% of the group between two samples (100 = one core busy). Processes that ended in between take their
 * ticks with them, so a drop reads as 0, never negative.
 *
 * @since 0.1.0
 * @category sampling
 */
export const cpuPercent = (previous: Sample, current: Sample): number => {
  const wallSeconds = (current.takenAt - previous.takenAt) / 1000
  if (wallSeconds <= 0) return 0
  return Math.max(0, ((current.cpuSeconds - previous.cpuSeconds) / wallSeconds) * 100)
}

/**
 * One table of every process group on the machine, read from `/proc` and shared by all the agents of the process.
 *
 * Before this module every agent's heartbeat read `/proc/*\/stat` for every process on the machine, a cost of
 * agents x processes (500 agents on a host with 1,000 processes: seconds of blocked event loop per interval).
 * Now one scan groups the live processes by process group, and every sample within `maxAge` of it reads its group
 * from that table: the cost is one scan per `maxAge`, whatever the number of agents.
 *
 * The scan is synchronous (about 13 µs a process on a 2-core VM, with one reused buffer: two thirds of what
 * `readFileSync` costs, which also stats and reads in chunks), so no caller ever sees one half done and two can
 * never run at once: callers that come while the table is fresh share it, and the first caller after it goes stale
 * makes the next one. Ages are measured in
 * real time (`performance.now()`), not on Effect's `Clock`: the kernel's counters run in real time, and the CPU%
 * of two samples divides their ticks by the real time between them.
 *
 * The parser is a pure function of the text of one stat file, and the reader takes the root of `/proc` as a
 * parameter, so both run against synthetic text and directories in tests.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"

/** The fields of one `/proc/<pid>/stat` that a group's resource use needs. @internal */
export interface StatEntry {
  readonly pid: number
  /** `R`, `S`, `D`, `Z` (zombie), `X` (dead)... */
  readonly state: string
  /** The process group. */
  readonly pgrp: number
  /** User + system CPU time, in clock ticks (`USER_HZ`). */
  readonly ticks: number
  /** Resident set size, in pages. */
  readonly rssPages: number
}

/** Resource use of the live (non-zombie) processes of one process group. @internal */
export interface GroupUsage {
  readonly processes: number
  readonly rssBytes: number
  readonly cpuTicks: number
}

/** Every process group at one moment. @internal */
export interface ProcessTable {
  readonly groups: ReadonlyMap<number, GroupUsage>
  /** `performance.now()` when the scan ended. */
  readonly takenAt: number
}

/** Linux fixes `USER_HZ` at 100 for the /proc interface, whatever the kernel's internal HZ. @internal */
export const CLOCK_TICKS_PER_SECOND = 100

/**
 * How old a table may be before a sample scans again, unless the caller says otherwise: short enough that a
 * reading on demand is about now.
 *
 * @internal
 */
export const DEFAULT_MAX_AGE_MILLIS = 500

/**
 * The most a heartbeat lets a table age: the sampling period of the memory and CPU% that heartbeats report (see
 * `Health.heartbeat`). A scan of a host with 1,600 processes takes about 20 ms of CPU and blocks the event loop as
 * long, so this bounds the table's cost at about 0.4% of a core for any number of agents (1 s cost 2%).
 *
 * @internal
 */
export const HEARTBEAT_MAX_AGE_MILLIS = 5000

/** {@link HEARTBEAT_MAX_AGE_MILLIS} as a `Duration`. @internal */
export const HEARTBEAT_MAX_AGE: Duration.Duration = Duration.millis(HEARTBEAT_MAX_AGE_MILLIS)

/**
 * Parses the text of one `/proc/<pid>/stat`; `undefined` when it is not one (empty: the process ended while it
 * was read). The command name, in parentheses, may hold spaces and parentheses of its own and is at most 15
 * bytes, but nothing else holds a ")": fields are counted from the last one.
 *
 * @internal
 */
export const parseStat = (text: string): StatEntry | undefined => {
  const close = text.lastIndexOf(")")
  const open = text.indexOf(" (")
  if (close === -1 || open === -1 || open > close) return undefined
  // after ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
  // priority nice num_threads itrealvalue starttime vsize rss
  const fields = text.slice(close + 2).split(" ", 22)
  if (fields.length < 22) return undefined
  const entry = {
    pid: Number(text.slice(0, open)),
    state: fields[0],
    pgrp: Number(fields[2]),
    ticks: Number(fields[11]) + Number(fields[12]),
    rssPages: Number(fields[21])
  }
  return Number.isInteger(entry.pid) && Number.isInteger(entry.pgrp) && Number.isFinite(entry.ticks) &&
      Number.isFinite(entry.rssPages)
    ? entry
    : undefined
}

/**
 * Groups stat entries by process group, leaving out zombies (`Z`) and dead processes (`X`): they hold no memory,
 * and a zombie's ticks are about to move to its parent's `cutime`.
 *
 * @internal
 */
export const groupTable = (entries: Iterable<StatEntry>, pageSize: number): Map<number, GroupUsage> => {
  const groups = new Map<number, { processes: number; rssBytes: number; cpuTicks: number }>()
  for (const entry of entries) {
    if (entry.state === "Z" || entry.state === "X") continue
    const group = groups.get(entry.pgrp)
    if (group === undefined) {
      groups.set(entry.pgrp, { processes: 1, rssBytes: entry.rssPages * pageSize, cpuTicks: entry.ticks })
    } else {
      group.processes++
      group.rssBytes += entry.rssPages * pageSize
      group.cpuTicks += entry.ticks
    }
  }
  return groups
}

const pageSizes = new Map<string, number>()

/** The kernel page size, read once per root from `<root>/self/smaps` (everywhere, unlike `smaps_rollup`). */
const readPageSize = (root: string): number => {
  let size = pageSizes.get(root)
  if (size === undefined) {
    try {
      const match = /KernelPageSize:\s+(\d+) kB/.exec(fs.readFileSync(`${root}/self/smaps`, "latin1"))
      size = match ? Number(match[1]) * 1024 : 4096
    } catch {
      size = 4096 // the common size, where smaps is missing
    }
    pageSizes.set(root, size)
  }
  return size
}

// A stat line is at most about 1 KiB (52 numeric fields and a 15-byte name). One buffer, reused: reads are
// synchronous, so no two use it at once.
const buffer = Buffer.allocUnsafe(4096)

const readText = (file: string): string | undefined => {
  let fd: number
  try {
    fd = fs.openSync(file, "r")
  } catch {
    return undefined // the process ended between readdir and open
  }
  try {
    return buffer.toString("latin1", 0, fs.readSync(fd, buffer, 0, buffer.length, 0))
  } catch {
    return undefined // ... or between open and read (ESRCH)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Scans `<root>/*\/stat` once. `undefined` where the root cannot be listed (no /proc: not Linux, or a sandbox).
 *
 * @internal
 */
export const readTable = (options?: { readonly root?: string | undefined }): ProcessTable | undefined => {
  const root = options?.root ?? "/proc"
  let names: Array<string>
  try {
    names = fs.readdirSync(root)
  } catch {
    return undefined
  }
  const entries: Array<StatEntry> = []
  for (const name of names) {
    const first = name.charCodeAt(0)
    if (first < 48 || first > 57) continue // not a process: self, sys, meminfo...
    const text = readText(`${root}/${name}/stat`)
    const entry = text === undefined ? undefined : parseStat(text)
    if (entry !== undefined) entries.push(entry)
  }
  return { groups: groupTable(entries, readPageSize(root)), takenAt: performance.now() }
}

/** One group's use, with the time of the table it was read from. @internal */
export interface GroupReading {
  /** None of its processes is alive (or it is younger than the scan: see {@link TableCache.group}). */
  readonly usage: GroupUsage | undefined
  readonly takenAt: number
}

/** A table shared by its callers while it is fresh. @internal */
export interface TableCache {
  /** The table, scanned again first when it is older than `maxAgeMillis`. `undefined` without /proc. */
  readonly table: (maxAgeMillis: number) => Effect.Effect<ProcessTable | undefined>
  /**
   * One group from the table. A group missing from a table that this call did not just make is looked up in a
   * new scan: the table may predate the group (an agent started a moment ago), and the caller usually knows the
   * group is alive (its leader just answered a ping). Missing from a fresh scan, it has no live process.
   */
  readonly group: (pgid: number, maxAgeMillis: number) => Effect.Effect<GroupReading | undefined>
}

/**
 * A cache over `read`. `now` is the clock that ages the table (real time by default; the tests pass their own).
 *
 * @internal
 */
export const makeCache = (
  read: () => ProcessTable | undefined,
  now: () => number = () => performance.now()
): TableCache => {
  let last: { readonly table: ProcessTable | undefined; readonly at: number } | undefined
  const scan = () => {
    last = { table: read(), at: now() }
    return last.table
  }
  const current = (maxAgeMillis: number): readonly [ProcessTable | undefined, scanned: boolean] =>
    last !== undefined && now() - last.at <= maxAgeMillis ? [last.table, false] : [scan(), true]
  return {
    table: (maxAgeMillis) => Effect.sync(() => current(maxAgeMillis)[0]),
    group: (pgid, maxAgeMillis) =>
      Effect.sync(() => {
        const [cached, scanned] = current(maxAgeMillis)
        const table = cached !== undefined && !scanned && !cached.groups.has(pgid) ? scan() : cached
        return table === undefined ? undefined : { usage: table.groups.get(pgid), takenAt: table.takenAt }
      })
  }
}

/** The table of this process's `/proc`, shared by every agent and supervisor in it. @internal */
export const shared: TableCache = makeCache(() => readTable())

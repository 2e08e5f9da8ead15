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

/** Whether `name`, an entry of the root of /proc, is a process (not self, sys, meminfo...). */
const isPid = (name: string): boolean => {
  const first = name.charCodeAt(0)
  return first >= 48 && first <= 57
}

/** Reads and parses `names[from, to)` into `entries`. */
const readEntries = (root: string, names: Array<string>, from: number, to: number, entries: Array<StatEntry>) => {
  for (let i = from; i < to; i++) {
    if (!isPid(names[i])) continue
    const text = readText(`${root}/${names[i]}/stat`)
    const entry = text === undefined ? undefined : parseStat(text)
    if (entry !== undefined) entries.push(entry)
  }
}

const listRoot = (root: string): Array<string> | undefined => {
  try {
    return fs.readdirSync(root)
  } catch {
    return undefined
  }
}

/**
 * Scans `<root>/*\/stat` once, synchronously. `undefined` where the root cannot be listed (no /proc: not Linux, or
 * a sandbox).
 *
 * @internal
 */
export const readTable = (options?: { readonly root?: string | undefined }): ProcessTable | undefined => {
  const root = options?.root ?? "/proc"
  const names = listRoot(root)
  if (names === undefined) return undefined
  const entries: Array<StatEntry> = []
  readEntries(root, names, 0, names.length, entries)
  return { groups: groupTable(entries, readPageSize(root)), takenAt: performance.now() }
}

/**
 * How many entries of /proc one turn of the event loop reads in {@link scanTable}: about 1.3 ms of a 2-core VM's
 * time, so that a scan of a host with thousands of processes never holds the loop for long.
 *
 * @internal
 */
export const SCAN_CHUNK = 100

/**
 * {@link readTable} spread over turns of the event loop, {@link SCAN_CHUNK} processes a turn (`setImmediate`
 * between them): a host with 2,000 processes took the loop for 20-40 ms in one go, the p99 of every ping latency
 * and event-loop delay at 1,000 agents. The table is as consistent as one synchronous scan's (each process is read
 * once; a process may end or start while the scan runs, as it may between two reads of one scan).
 *
 * @internal
 */
export const scanTable = (options?: { readonly root?: string | undefined }): Promise<ProcessTable | undefined> => {
  const root = options?.root ?? "/proc"
  const names = listRoot(root)
  if (names === undefined) return Promise.resolve(undefined)
  const entries: Array<StatEntry> = []
  return new Promise((resolve) => {
    let next = 0
    const step = () => {
      const to = Math.min(names.length, next + SCAN_CHUNK)
      readEntries(root, names, next, to, entries)
      next = to
      if (next < names.length) setImmediate(step)
      else resolve({ groups: groupTable(entries, readPageSize(root)), takenAt: performance.now() })
    }
    step()
  })
}

/** One group's use, with the time of the table it was read from. @internal */
export interface GroupReading {
  /** None of its processes is alive (or it is younger than the scan: see {@link TableCache.group}). */
  readonly usage: GroupUsage | undefined
  readonly takenAt: number
}

/**
 * A group's reading as `ProcessTree.Sample` has it (CPU in seconds); `undefined` without /proc.
 *
 * @internal
 */
export const sampleOf = (reading: GroupReading | undefined): {
  readonly processes: number
  readonly rssBytes: number
  readonly cpuSeconds: number
  readonly takenAt: number
} | undefined => reading === undefined ? undefined : usageSample(reading.usage, reading.takenAt)

/**
 * {@link sampleOf} of a group's use (`undefined`: no live process) in a table taken at `takenAt`.
 *
 * @internal
 */
export const usageSample = (usage: GroupUsage | undefined, takenAt: number) => ({
  processes: usage?.processes ?? 0,
  rssBytes: usage?.rssBytes ?? 0,
  cpuSeconds: (usage?.cpuTicks ?? 0) / CLOCK_TICKS_PER_SECOND,
  takenAt
})

/** A scan to wait for: begun at `notBefore` or later, `after` millis after the one before began at least. */
interface ScanWait {
  readonly after: number
  readonly notBefore: number
}

const isScanWait = (found: ProcessTable | ScanWait | undefined): found is ScanWait =>
  found !== undefined && "after" in found

/** How a reading treats a table older than its `maxAgeMillis`. @internal */
export type Staleness = "rescan" | "serve"

/** A table shared by its callers while it is fresh. @internal */
export interface TableCache {
  /** The table, scanned again first when it is older than `maxAgeMillis`. `undefined` without /proc. */
  readonly table: (maxAgeMillis: number) => Effect.Effect<ProcessTable | undefined>
  /**
   * One group from the table.
   *
   * `"rescan"` (the default, for readings on demand): a table older than `maxAgeMillis` is scanned again first,
   * and a group missing from a table that this call did not just make is looked up in a new scan (the table may
   * predate the group).
   *
   * `"serve"` (the heartbeat's): a table older than `maxAgeMillis` is read as it is while a new scan starts in the
   * background, so no beat waits for a scan (but for the very first table). A missing group is looked up in a new
   * scan only when it was born (see `born`) after that table's scan began; that scan starts at least
   * `missRescanGapMillis` after the one before, and every such miss meanwhile waits for it: a thousand agents
   * started together cost a few scans, not one each. Otherwise the group has no live process.
   */
  readonly group: (pgid: number, maxAgeMillis: number, stale?: Staleness) => Effect.Effect<GroupReading | undefined>
  /**
   * {@link group} with a callback and no fiber (a heartbeat's beat): `done` is called once with the table to read
   * the group from (its `groups.get(pgid)`: `undefined` when no process of it is alive), at once when it needs no
   * scan, else when the scan ends; `undefined` without /proc. It must not throw. The table is handed over as it is,
   * with no reading made: a beat that reads the same table as the one before can keep the sample it made of it.
   */
  readonly groupWith: (
    pgid: number,
    maxAgeMillis: number,
    stale: Staleness,
    done: (table: ProcessTable | undefined) => void
  ) => void
  /** Records that the group `pgid` was made now (an agent spawned as its leader). */
  readonly born: (pgid: number) => void
}

/** Options of {@link makeCache}. @internal */
export interface CacheOptions {
  /** The clock that ages tables, in milliseconds (real time, `performance.now()`, by default; tests pass their own). */
  readonly now?: (() => number) | undefined
  /** The least time between the start of a scan and that of one made for a missing group (default 500). */
  readonly missRescanGapMillis?: number | undefined
}

/** {@link CacheOptions.missRescanGapMillis} by default. @internal */
export const MISS_RESCAN_GAP_MILLIS = 500

/**
 * A cache over `read`, a scan that may complete later (a Promise) or at once. Callers that come while a scan
 * runs share it: at most one scan runs at a time.
 *
 * @internal
 */
export const makeCache = (
  read: () => ProcessTable | undefined | Promise<ProcessTable | undefined>,
  options?: CacheOptions
): TableCache => {
  const now = options?.now ?? (() => performance.now())
  const gap = options?.missRescanGapMillis ?? MISS_RESCAN_GAP_MILLIS
  // The last table, when its scan began and ended.
  let last: { readonly table: ProcessTable | undefined; readonly began: number; readonly at: number } | undefined
  // The callers waiting for the next table; whether its scan runs; when the last one began.
  // Who waits for the next table: the earliest moment its scan may have begun, and the least time it lets pass
  // between the start of the scan before and of its own (a gap for missing groups). Whether a scan runs; when
  // the last one began.
  interface Waiter {
    readonly notBefore: number
    readonly after: number
    readonly resume: (table: ProcessTable | undefined) => void
  }
  let waiting: Array<Waiter> = []
  let scanning = false
  let lastStart = -Infinity
  let timer: ReturnType<typeof setTimeout> | undefined
  // Groups born since the scan before the last began: missing from a table, they may be younger than it.
  const births = new Map<number, number>()

  const finish = (table: ProcessTable | undefined) => {
    last = { table, began: lastStart, at: now() }
    scanning = false
    for (const [pgid, at] of births) if (at < lastStart) births.delete(pgid)
    // A caller that came after this scan began, asking for a table from then on, waits for the next one.
    const served = waiting.filter((waiter) => waiter.notBefore <= lastStart)
    waiting = waiting.filter((waiter) => waiter.notBefore > lastStart)
    for (const waiter of served) {
      try {
        waiter.resume(table)
      } catch (error) {
        // A callback that throws (a bug) is reported; the other waiters are still served.
        Effect.runFork(Effect.logError("a process table reader threw", error))
      }
    }
    if (waiting.length > 0) schedule(Math.min(...waiting.map((waiter) => waiter.after)))
  }
  const start = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    scanning = true
    lastStart = now()
    const result = read()
    if (result instanceof Promise) result.then(finish, () => finish(undefined))
    else finish(result)
  }
  // The next scan: now, or `after` millis after the last one began (unless one runs: it is next once it ends).
  // A timer may fire up to a millisecond early by `now()` (Node counts timers in whole milliseconds of its loop's
  // clock): it checks, and waits out the rest, so the gap holds by this cache's clock.
  const schedule = (after: number) => {
    if (scanning) return
    const due = lastStart + after
    const wait = due - now()
    if (wait <= 0) start()
    else {timer ??= setTimeout(() => {
        timer = undefined
        if (now() >= due) start()
        else schedule(after)
      }, wait)}
  }
  // Waits for a table whose scan began at `notBefore` or later, `after` millis after the last one began at least.
  const awaitScan = (after: number, notBefore: number, resume: (table: ProcessTable | undefined) => void) => {
    waiting.push({ notBefore, after, resume })
    schedule(after)
  }
  const nextScan = (after: number, notBefore: number): Effect.Effect<ProcessTable | undefined> =>
    Effect.async<ProcessTable | undefined>((resume) =>
      awaitScan(after, notBefore, (table) => resume(Effect.succeed(table)))
    )
  const fresh = (maxAgeMillis: number) => last !== undefined && now() - last.at <= maxAgeMillis
  const readingOf = (pgid: number, table: ProcessTable | undefined): GroupReading | undefined =>
    table === undefined ? undefined : { usage: table.groups.get(pgid), takenAt: table.takenAt }
  // A group's table as it is (nothing made: a heartbeat's common case, every beat), or the scan to wait for (see
  // `TableCache.group`).
  const lookup = (pgid: number, maxAgeMillis: number, stale: Staleness): ProcessTable | undefined | ScanWait => {
    if (last === undefined || (stale === "rescan" && !fresh(maxAgeMillis))) {
      return { after: 0, notBefore: now() - maxAgeMillis }
    }
    const served = last
    if (!fresh(maxAgeMillis)) schedule(0)
    const cached = served.table
    if (cached === undefined || cached.groups.has(pgid)) return cached
    // Missing: the group may be younger than the table; a scan begun from now on tells.
    if (stale === "rescan") return { after: 0, notBefore: now() }
    const bornAt = births.get(pgid)
    return bornAt !== undefined && bornAt >= served.began ? { after: gap, notBefore: bornAt } : cached
  }

  return {
    table: (maxAgeMillis) =>
      Effect.suspend(() => fresh(maxAgeMillis) ? Effect.succeed(last!.table) : nextScan(0, now() - maxAgeMillis)),
    group: (pgid, maxAgeMillis, stale = "rescan") =>
      Effect.suspend(() => {
        const found = lookup(pgid, maxAgeMillis, stale)
        return isScanWait(found)
          ? Effect.map(nextScan(found.after, found.notBefore), (table) => readingOf(pgid, table))
          : Effect.succeed(readingOf(pgid, found))
      }),
    groupWith: (pgid, maxAgeMillis, stale, done) => {
      const found = lookup(pgid, maxAgeMillis, stale)
      if (isScanWait(found)) awaitScan(found.after, found.notBefore, done)
      else done(found)
    },
    born: (pgid) => {
      births.set(pgid, now())
    }
  }
}

/**
 * The table of this process's `/proc`, shared by every agent and supervisor in it, scanned over several turns of
 * the event loop (see {@link scanTable}).
 *
 * @internal
 */
export const shared: TableCache = makeCache(() => scanTable())

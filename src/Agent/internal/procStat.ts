/**
 * Reading `/proc`: the stat file of each process, parsed from its bytes, and scans that group the live processes
 * by process group (see `processTable.ts`, which shares one table among every agent of the process).
 *
 * A scan that remembers the scan before it (a {@link Scanner}) reads only what may have changed for the groups it
 * is asked to watch (the agents'): every process it has not seen yet, and every process last seen in a watched
 * group or leading one; every {@link FULL_SCAN_MILLIS} it reads every process. On a host where most processes are
 * no agent's (the bench's: a thousand more), it reads a fraction of them: the scan, at about 13 µs a process on a
 * 2-core VM (open, read and close are about 10 of them), had become a sixth of a thousand agents' heartbeat cost.
 *
 * A stat file is parsed from the bytes read, with no string made of it: making one and splitting it into fields
 * cost about a third of a process's read.
 *
 * The parser is a pure function of the bytes of one stat file, and the readers take the root of `/proc` as a
 * parameter, so both run against synthetic text and directories in tests.
 *
 * @internal
 */
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

/** Process groups at one moment: every group, or those a scan watched (see {@link Scanner}). @internal */
export interface ProcessTable {
  readonly groups: ReadonlyMap<number, GroupUsage>
  /** `performance.now()` when the scan ended. */
  readonly takenAt: number
}

/** Which process groups a scan reads and counts. @internal */
export type Watched = (pgid: number) => boolean

/** Every group: a scan of the whole table. @internal */
export const everyGroup: Watched = () => true

const SPACE = 0x20
const NEWLINE = 0x0a
const OPEN = 0x28
const CLOSE = 0x29
const MINUS = 0x2d
const ZERO = 0x30

/** The integer written in `bytes[from, to)` (digits, after an optional "-"); `NaN` when that is not one. */
const integerAt = (bytes: Uint8Array, from: number, to: number): number => {
  let i = from
  const negative = i < to && bytes[i] === MINUS
  if (negative) i++
  if (i === to) return NaN
  let value = 0
  for (; i < to; i++) {
    const digit = bytes[i] - ZERO
    if (digit < 0 || digit > 9) return NaN
    value = value * 10 + digit
  }
  return negative ? -value : value
}

/**
 * Parses the first `length` bytes of one `/proc/<pid>/stat`; `undefined` when they are not one (empty: the process
 * ended while it was read). The command name, in parentheses, may hold spaces and parentheses of its own and is at
 * most 15 bytes, but nothing else holds a ")": fields are counted from the last one.
 *
 * @internal
 */
export const parseStatBytes = (bytes: Uint8Array, length: number): StatEntry | undefined => {
  let open = 0
  while (open < length - 1 && !(bytes[open] === SPACE && bytes[open + 1] === OPEN)) open++
  let close = length - 1
  while (close >= 0 && bytes[close] !== CLOSE) close--
  if (open >= length - 1 || close < 0 || open > close) return undefined
  // after ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
  // priority nice num_threads itrealvalue starttime vsize rss; fields end at a space, the line's end or the text's
  let field = 0
  let start = close + 2
  let state = ""
  let pgrp = NaN
  let ticks = NaN
  let rssPages = NaN
  for (let i = start; i <= length && field <= 21; i++) {
    if (i < length && bytes[i] !== SPACE && bytes[i] !== NEWLINE) continue
    if (field === 0) state = i - start === 1 ? String.fromCharCode(bytes[start]) : ""
    else if (field === 2) pgrp = integerAt(bytes, start, i)
    else if (field === 11) ticks = integerAt(bytes, start, i)
    else if (field === 12) ticks += integerAt(bytes, start, i)
    else if (field === 21) rssPages = integerAt(bytes, start, i)
    field++
    start = i + 1
  }
  const pid = integerAt(bytes, 0, open)
  return field > 21 && state !== "" && Number.isInteger(pid) && Number.isInteger(pgrp) && Number.isFinite(ticks) &&
      Number.isFinite(rssPages)
    ? { pid, state, pgrp, ticks, rssPages }
    : undefined
}

/** {@link parseStatBytes} of a stat file's text (latin1, as the kernel writes it). @internal */
export const parseStat = (text: string): StatEntry | undefined => {
  const bytes = Buffer.from(text, "latin1")
  return parseStatBytes(bytes, bytes.length)
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

/** The stat of the process `<root>/<name>`; `undefined` when it ended (before the open, or the read). */
const readStat = (root: string, name: string): StatEntry | undefined => {
  let fd: number
  try {
    fd = fs.openSync(`${root}/${name}/stat`, "r")
  } catch {
    return undefined // the process ended between readdir and open
  }
  try {
    return parseStatBytes(buffer, fs.readSync(fd, buffer, 0, buffer.length, 0))
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

const listRoot = (root: string): Array<string> | undefined => {
  try {
    return fs.readdirSync(root)
  } catch {
    return undefined
  }
}

/** What a scan keeps for the next: the group of each process it saw, by its entry's name in the root. */
type Memory = Map<string, number>

/** One scan of the entries `names` of `root`, read a few at a time by `step`. */
const makeScan = (root: string, names: Array<string>, watched: Watched, previous: Memory | undefined) => {
  const entries: Array<StatEntry> = []
  const seen: Memory = new Map()
  let next = 0
  return {
    seen,
    /** Reads the stats of up to `reads` more processes; true once every entry is done. */
    step: (reads: number): boolean => {
      for (; next < names.length && reads > 0; next++) {
        const name = names[next]
        if (!isPid(name)) continue
        const known = previous?.get(name)
        // Seen before in a group nobody watches, and leading no watched group (a watched group's leader is read
        // whatever group it was last seen in: its pid may have been used again, or it moved to its own with setsid).
        if (known !== undefined && !watched(known) && !watched(Number(name))) {
          seen.set(name, known)
          continue
        }
        reads--
        const entry = readStat(root, name)
        if (entry === undefined) continue
        seen.set(name, entry.pgrp)
        if (watched(entry.pgrp)) entries.push(entry)
      }
      return next === names.length
    },
    table: (): ProcessTable => ({ groups: groupTable(entries, readPageSize(root)), takenAt: performance.now() })
  }
}

/**
 * Scans `<root>/*\/stat` once, synchronously, every process and every group. `undefined` where the root cannot be
 * listed (no /proc: not Linux, or a sandbox).
 *
 * @internal
 */
export const readTable = (options?: { readonly root?: string | undefined }): ProcessTable | undefined => {
  const root = options?.root ?? "/proc"
  const names = listRoot(root)
  if (names === undefined) return undefined
  const scan = makeScan(root, names, everyGroup, undefined)
  scan.step(Infinity)
  return scan.table()
}

/**
 * How many processes one turn of the event loop reads in a scan spread over turns: about 1.3 ms of a 2-core VM's
 * time, so that a scan of a host with thousands of processes never holds the loop for long.
 *
 * @internal
 */
export const SCAN_CHUNK = 100

/**
 * Runs `scan` `chunk` reads a turn (`setImmediate` between them); resolves when it is done, and rejects if a step
 * throws (a scan that never settled would leave every reader of the table waiting).
 */
const spread = (scan: ReturnType<typeof makeScan>, chunk = SCAN_CHUNK): Promise<ProcessTable> =>
  new Promise((resolve, reject) => {
    const step = () => {
      try {
        if (scan.step(chunk)) resolve(scan.table())
        else setImmediate(step)
      } catch (error) {
        reject(error)
      }
    }
    step()
  })

/**
 * How often a {@link Scanner} reads every process, in milliseconds: the most a process that is no longer what
 * the scanner remembers (a pid ended and used again between two scans, a process moved into a watched group by
 * `setpgid` from another group of its session) goes uncounted.
 *
 * @internal
 */
export const FULL_SCAN_MILLIS = 60_000

/**
 * A scan whose table holds the groups `watched` says, and that reads only the processes that may be in them:
 * those it has not seen before, those last seen in a watched group, and those whose pid is a watched group's (its
 * leader). Its first scan, and one every `fullScanMillis` (default {@link FULL_SCAN_MILLIS}), reads every process.
 * One scan at a time (the caller's to ensure: see `makeCache`).
 *
 * It is spread over turns of the event loop, {@link SCAN_CHUNK} reads a turn: a host with 2,000 processes took the
 * loop for 20-40 ms in one go, the p99 of every ping latency and event-loop delay at 1,000 agents. The table is as
 * consistent as one synchronous scan's (each process is read once; a process may end or start while the scan
 * runs, as it may between two reads of one scan).
 *
 * @internal
 */
export type Scanner = (watched: Watched) => Promise<ProcessTable | undefined>

/** A {@link Scanner} of `root` (default `/proc`). @internal */
export const makeScanner = (options?: {
  readonly root?: string | undefined
  readonly fullScanMillis?: number | undefined
  /** The clock of the full scans, in milliseconds (`performance.now()` by default; tests pass their own). */
  readonly now?: (() => number) | undefined
  /** Processes read per turn of the event loop (default {@link SCAN_CHUNK}; `Infinity`: all in one, to time it). */
  readonly chunk?: number | undefined
}): Scanner => {
  const root = options?.root ?? "/proc"
  const fullScanMillis = options?.fullScanMillis ?? FULL_SCAN_MILLIS
  const now = options?.now ?? (() => performance.now())
  let memory: Memory | undefined
  let lastFull = -Infinity
  return (watched) => {
    const began = now()
    const full = began - lastFull >= fullScanMillis
    const names = listRoot(root)
    if (names === undefined) return Promise.resolve(undefined)
    const scan = makeScan(root, names, watched, full ? undefined : memory)
    return spread(scan, options?.chunk).then((table) => {
      memory = scan.seen
      if (full) lastFull = began
      return table
    })
  }
}

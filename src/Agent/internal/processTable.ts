/**
 * One table of the process groups on the machine that agents care about, read from `/proc` and shared by all the
 * agents of the process.
 *
 * Before this module every agent's heartbeat read `/proc/*\/stat` for every process on the machine, a cost of
 * agents x processes (500 agents on a host with 1,000 processes: seconds of blocked event loop per interval).
 * Now one scan groups the live processes by process group, and every sample within `maxAge` of it reads its group
 * from that table: the cost is one scan per `maxAge`, whatever the number of agents.
 *
 * The table holds the watched groups: each agent's from its spawn (`born`), and any other group from the first
 * time it is asked for, until nobody made it or asked for it for {@link WATCH_MILLIS} and a scan since finds no live
 * process in it. A scan reads only the processes that may be in them (see `procStat.ts`'s `Scanner`), with the set
 * of groups watched when it began, and a group asked for before any scan watched it waits for a scan begun after
 * the ask. Callers that come while the table is fresh share it, and the first caller after it goes stale starts
 * the next scan; one runs at a time. Ages are measured in real time (`performance.now()`), not on Effect's
 * `Clock`: the kernel's counters run in real time, and the CPU% of two samples divides their ticks by the real
 * time between them.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { type GroupUsage, makeScanner, type ProcessTable, type Watched } from "./procStat.js"

export type { GroupUsage, ProcessTable } from "./procStat.js"

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

/**
 * The use of the group `pgid` at its spawn, when this process spawned it (see `TableCache.born`): no process read
 * yet and no CPU time (a new process starts with none), at the moment of the spawn. The baseline of its first CPU%,
 * which is then its average since the spawn, as `ps` reports %CPU. `undefined` for a group it did not spawn.
 *
 * @internal
 */
export const spawnSample = (pgid: number, cache: TableCache = shared) => {
  const at = cache.spawnedAt(pgid)
  return at === undefined ? undefined : usageSample(undefined, at)
}

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
  /**
   * The table (its watched groups), scanned again first when it is older than `maxAgeMillis`. `undefined` without
   * /proc.
   */
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
   *
   * Either way, a group no scan has watched yet is watched from now on and looked up in a scan begun after this
   * call. An agent's group is watched from its spawn (`born`), so its beats never wait for that.
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
  /**
   * The last table while it is at most `maxAgeMillis` old, and nothing else: no group is watched or asked for, no
   * scan starts; `undefined` when there is none or it is older. For a reader that read its group from that very
   * table before (a heartbeat's beat: with a 1 s interval, four beats in five read the table the beat before read)
   * and so knows what {@link groupWith} would hand it.
   */
  readonly current: (maxAgeMillis: number) => ProcessTable | undefined
  /**
   * The group `pgid` in the last table as it is, however old (`takenAt` says when), and nothing waited for: for
   * a view of many agents at once (the admin API's tree), where a wait per group would add up. The group is asked
   * for (watched from now on, read by the next scan, whoever starts it); `undefined` before the first table or
   * without /proc.
   */
  readonly peek: (pgid: number) => GroupReading | undefined
  /**
   * Records that the group `pgid` was made (an agent spawned as its leader) `ageMillis` ago (0 by default: now):
   * it is watched from now on, and a lookup of it missing from a table older than now waits for a scan (see
   * {@link group}: from now, not from the spawn, as a scan begun between the fork and the child's `setsid` read
   * it in its parent's group).
   */
  readonly born: (pgid: number, ageMillis?: number) => void
  /**
   * When the group `pgid` was made (`born`: the moment of the spawn, in this cache's clock) while it is watched;
   * `undefined` for a group that was only asked for.
   */
  readonly spawnedAt: (pgid: number) => number | undefined
}

/** Options of {@link makeCache}. @internal */
export interface CacheOptions {
  /** The clock that ages tables, in milliseconds (real time, `performance.now()`, by default; tests pass their own). */
  readonly now?: (() => number) | undefined
  /** The least time between the start of a scan and that of one made for a missing group (default 500). */
  readonly missRescanGapMillis?: number | undefined
  /**
   * How long after it was last made or asked for a group with no live process stops being watched, in
   * milliseconds (default 60,000).
   */
  readonly watchMillis?: number | undefined
}

/** {@link CacheOptions.missRescanGapMillis} by default. @internal */
export const MISS_RESCAN_GAP_MILLIS = 500

/** {@link CacheOptions.watchMillis} by default. @internal */
export const WATCH_MILLIS = 60_000

/**
 * A watched group: when it was made (`born`) or first asked for, when its leader was spawned if this process
 * spawned it, and when it was last made or asked for.
 */
interface Watch {
  readonly since: number
  /** When its leader was spawned, for a group made here. */
  readonly spawnedAt: number | undefined
  asked: number
}

/**
 * A cache over `read`, a scan of the groups it is told to watch that may complete later (a Promise) or at once.
 * Callers that come while a scan runs share it: at most one scan runs at a time.
 *
 * @internal
 */
export const makeCache = (
  read: (watched: Watched) => ProcessTable | undefined | Promise<ProcessTable | undefined>,
  options?: CacheOptions
): TableCache => {
  const now = options?.now ?? (() => performance.now())
  const gap = options?.missRescanGapMillis ?? MISS_RESCAN_GAP_MILLIS
  const watchMillis = options?.watchMillis ?? WATCH_MILLIS
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
  // The groups a scan reads and counts (see `TableCache.born` and `group`).
  const watches = new Map<number, Watch>()
  // A group is no longer watched once nobody made it or asked for it for `watchMillis`, and a scan begun since
  // found no live process in it (without /proc, none is found: every group).
  const unwatch = (table: ProcessTable | undefined, began: number) => {
    const at = now()
    for (const [pgid, watch] of watches) {
      if (at - watch.asked > watchMillis && watch.asked < began && table?.groups.has(pgid) !== true) {
        watches.delete(pgid)
      }
    }
  }

  const finish = (table: ProcessTable | undefined) => {
    last = { table, began: lastStart, at: now() }
    scanning = false
    unwatch(table, lastStart)
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
    // The groups watched when it begins: one watched while it runs would be counted for part of its processes.
    const snapshot = new Set(watches.keys())
    const result = read((pgid) => snapshot.has(pgid))
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
    const watch = watches.get(pgid)
    if (watch === undefined) {
      // No scan read it yet: one begun from now on does.
      const at = now()
      watches.set(pgid, { since: at, spawnedAt: undefined, asked: at })
      return { after: 0, notBefore: at }
    }
    watch.asked = now()
    if (last === undefined || (stale === "rescan" && !fresh(maxAgeMillis))) {
      return { after: 0, notBefore: now() - maxAgeMillis }
    }
    const served = last
    if (!fresh(maxAgeMillis)) schedule(0)
    const cached = served.table
    if (cached === undefined || cached.groups.has(pgid)) return cached
    // Missing: the group may be younger than the table; a scan begun from now on tells.
    if (stale === "rescan") return { after: 0, notBefore: now() }
    return watch.since >= served.began ? { after: gap, notBefore: watch.since } : cached
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
    current: (maxAgeMillis) => fresh(maxAgeMillis) ? last!.table : undefined,
    peek: (pgid) => {
      const at = now()
      const watch = watches.get(pgid)
      if (watch === undefined) watches.set(pgid, { since: at, spawnedAt: undefined, asked: at })
      else watch.asked = at
      return last === undefined ? undefined : readingOf(pgid, last.table)
    },
    born: (pgid, ageMillis = 0) => {
      const at = now()
      watches.set(pgid, { since: at, spawnedAt: at - Math.max(0, ageMillis), asked: at })
    },
    spawnedAt: (pgid) => watches.get(pgid)?.spawnedAt
  }
}

/**
 * The table of this process's `/proc`, shared by every agent and supervisor in it, scanned over several turns of
 * the event loop (see `procStat.ts`'s `makeScanner`).
 *
 * @internal
 */
export const shared: TableCache = makeCache(makeScanner())

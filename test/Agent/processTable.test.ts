import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ProcessTable from "../../src/Agent/internal/processTable.js"
import * as ProcStat from "../../src/Agent/internal/procStat.js"
import * as ProcessTree from "../../src/Agent/ProcessTree.js"
import { tempDir } from "../support.js"

/** A full /proc/<pid>/stat line (52 fields), as the kernel writes it. */
const statLine = (p: {
  readonly pid: number
  readonly comm: string
  readonly state?: string
  readonly pgrp: number
  readonly utime?: number
  readonly stime?: number
  readonly rss?: number
}) => {
  // after the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime
  // cstime priority nice num_threads itrealvalue starttime vsize rss, then 28 more
  const after = [p.state ?? "S", 1, p.pgrp, p.pgrp, 0, -1, 4194304, 120, 0, 0, 0, p.utime ?? 0, p.stime ?? 0, 7, 3]
    .concat([20, 0, 1, 0, 12345, 2_000_000, p.rss ?? 0], Array.from({ length: 28 }, (_, i) => i))
  return `${p.pid} (${p.comm}) ${after.join(" ")}\n`
}

describe("parseStat", () => {
  it("reads state, group, ticks and pages, counting fields from the last ')'", () => {
    const text = statLine({ pid: 42, comm: "a) b (c) S 9 9", state: "R", pgrp: 40, utime: 150, stime: 50, rss: 7 })
    assert.deepStrictEqual(ProcStat.parseStat(text), { pid: 42, state: "R", pgrp: 40, ticks: 200, rssPages: 7 })
  })

  it("a real line of this process", () => {
    const entry = ProcStat.parseStat(fs.readFileSync("/proc/self/stat", "latin1"))
    assert.strictEqual(entry?.pid, process.pid)
    assert.isAbove(entry?.rssPages ?? 0, 0)
  })

  it("text that is not a stat line (empty: the process ended while it was read; cut short) is undefined", () => {
    assert.isUndefined(ProcStat.parseStat(""))
    assert.isUndefined(ProcStat.parseStat("12 (sh) S 1 12"))
    assert.isUndefined(ProcStat.parseStat("no parentheses here"))
    assert.isUndefined(ProcStat.parseStat(statLine({ pid: 1, comm: "x", pgrp: 1 }).replace(" 1 1 1 ", " 1 x 1 ")))
  })

  it.prop(
    "any command name of up to 15 bytes, spaces and parentheses included, and any counts",
    [
      FastCheck.string({ unit: FastCheck.constantFrom("a", " ", "(", ")", "Z", "9", "\t"), maxLength: 15 }),
      FastCheck.array(FastCheck.nat({ max: 2 ** 40 }), { minLength: 5, maxLength: 5 })
    ],
    ([comm, [pid, pgrp, utime, stime, rss]]) => {
      const entry = ProcStat.parseStat(statLine({ pid, comm, state: "S", pgrp, utime, stime, rss }))
      assert.deepStrictEqual(entry, { pid, state: "S", pgrp, ticks: utime + stime, rssPages: rss })
    }
  )
})

describe("groupTable", () => {
  it("sums live processes by group; zombies and dead processes are left out", () => {
    const groups = ProcStat.groupTable([
      { pid: 10, state: "S", pgrp: 10, ticks: 100, rssPages: 10 },
      { pid: 11, state: "R", pgrp: 10, ticks: 50, rssPages: 5 },
      { pid: 12, state: "Z", pgrp: 10, ticks: 999, rssPages: 0 },
      { pid: 13, state: "X", pgrp: 10, ticks: 999, rssPages: 0 },
      { pid: 20, state: "D", pgrp: 20, ticks: 1, rssPages: 1 },
      { pid: 30, state: "Z", pgrp: 30, ticks: 1, rssPages: 0 }
    ], 4096)
    assert.deepStrictEqual(Object.fromEntries(groups), {
      10: { processes: 2, rssBytes: 15 * 4096, cpuTicks: 150 },
      20: { processes: 1, rssBytes: 4096, cpuTicks: 1 }
    })
  })
})

describe("readTable", () => {
  it.scoped("a synthetic /proc: odd names, zombies, processes gone between readdir and read, non-processes", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("proc")
      const write = (pid: string, text: string | undefined) => {
        fs.mkdirSync(path.join(root, pid))
        if (text !== undefined) fs.writeFileSync(path.join(root, pid, "stat"), text)
      }
      write("100", statLine({ pid: 100, comm: "node", pgrp: 100, utime: 30, stime: 10, rss: 100 }))
      write("101", statLine({ pid: 101, comm: "my agent) (x", pgrp: 100, utime: 5, rss: 20 }))
      write("102", statLine({ pid: 102, comm: "sh", state: "Z", pgrp: 100, utime: 70 }))
      write("200", statLine({ pid: 200, comm: ") ) )", pgrp: 200, rss: 1 }))
      write("300", statLine({ pid: 300, comm: "defunct", state: "Z", pgrp: 300 }))
      write("400", undefined) // listed, then gone before its stat was opened
      write("401", "") // gone while its stat was read
      fs.mkdirSync(path.join(root, "self"))
      fs.writeFileSync(path.join(root, "meminfo"), "MemTotal: 1 kB\n")
      const table = ProcStat.readTable({ root })
      assert.isDefined(table)
      // no <root>/self/smaps here: the page size falls back to 4 KiB
      assert.deepStrictEqual(Object.fromEntries(table!.groups), {
        100: { processes: 2, rssBytes: 120 * 4096, cpuTicks: 45 },
        200: { processes: 1, rssBytes: 4096, cpuTicks: 0 }
      })
    }))

  it("a root that cannot be listed (no /proc) gives undefined", () => {
    assert.isUndefined(ProcStat.readTable({ root: "/nonexistent-proc-root" }))
  })

  it("the real /proc holds this process in its group", () => {
    const self = ProcStat.parseStat(fs.readFileSync("/proc/self/stat", "latin1"))!
    const group = ProcStat.readTable()?.groups.get(self.pgrp)
    assert.isAtLeast(group?.processes ?? 0, 1)
    assert.isAbove(group?.rssBytes ?? 0, 0)
  })
})

describe("makeScanner: a first scan", () => {
  it.scoped("reads what readTable reads, a chunk of processes per turn of the event loop", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("proc")
      const count = ProcStat.SCAN_CHUNK * 2 + 50
      for (let pid = 1000; pid < 1000 + count; pid++) {
        fs.mkdirSync(path.join(root, String(pid)))
        const line = statLine({ pid, comm: "sh", pgrp: 1000 + (pid % 7), utime: pid % 5, rss: pid % 11 })
        fs.writeFileSync(path.join(root, String(pid), "stat"), line)
      }
      fs.mkdirSync(path.join(root, "self"))
      // turns of the event loop taken while the scan runs: at least one between each two chunks
      let turns = 0
      let counting = true
      const tick = () => {
        turns++
        if (counting) setImmediate(tick)
      }
      setImmediate(tick)
      const scanned = yield* Effect.promise(() => ProcStat.makeScanner({ root })(ProcStat.everyGroup))
      counting = false
      assert.deepStrictEqual(scanned?.groups, ProcStat.readTable({ root })?.groups)
      assert.isAtLeast(turns, 2)
      assert.isUndefined(
        yield* Effect.promise(() => ProcStat.makeScanner({ root: "/nonexistent-proc-root" })(ProcStat.everyGroup))
      )
    }))
})

describe("makeScanner", () => {
  it.scoped("reads new processes and those of watched groups; the others again only in a full scan", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("proc")
      const write = (pid: number, pgrp: number, utime: number) => {
        fs.mkdirSync(path.join(root, String(pid)), { recursive: true })
        fs.writeFileSync(path.join(root, String(pid), "stat"), statLine({ pid, comm: "sh", pgrp, utime, rss: 1 }))
      }
      fs.mkdirSync(path.join(root, "self"))
      write(100, 100, 1) // an agent's leader
      write(101, 100, 1) // its child
      write(200, 200, 1) // some other process
      const watched = new Set([100])
      let clock = 0
      const scan = ProcStat.makeScanner({ root, fullScanMillis: 60_000, now: () => clock })
      const groups = () => Effect.promise(() => scan((pgid) => watched.has(pgid))).pipe(Effect.map((t) => t?.groups))
      assert.deepStrictEqual(Object.fromEntries((yield* groups())!), {
        100: { processes: 2, rssBytes: 2 * 4096, cpuTicks: 2 }
      })
      // the watched group's processes are read again; 200, last seen in a group nobody watches, is not: moved into
      // group 100 (setpgid, or its pid used again), it goes uncounted until a full scan
      write(101, 100, 5)
      write(200, 100, 7)
      write(300, 100, 1) // new: read
      assert.deepStrictEqual((yield* groups())!.get(100), { processes: 3, rssBytes: 3 * 4096, cpuTicks: 7 })
      // a process gone is forgotten
      fs.rmSync(path.join(root, "300"), { recursive: true })
      assert.deepStrictEqual((yield* groups())!.get(100), { processes: 2, rssBytes: 2 * 4096, cpuTicks: 6 })
      // a group watched from now on: its leader is read although last seen in a group nobody watched
      write(400, 900, 1)
      yield* groups()
      write(400, 400, 3) // its setsid, after a scan read it
      watched.add(400)
      assert.deepStrictEqual((yield* groups())!.get(400), { processes: 1, rssBytes: 4096, cpuTicks: 3 })
      // 60 s after the first scan, one reads every process: 200 is counted in group 100 at last
      assert.deepStrictEqual((yield* groups())!.get(100), { processes: 2, rssBytes: 2 * 4096, cpuTicks: 6 })
      clock += 60_000
      const table = yield* Effect.promise(() => scan((pgid) => watched.has(pgid)))
      assert.deepStrictEqual(table!.groups.get(100), { processes: 3, rssBytes: 3 * 4096, cpuTicks: 13 })
      assert.isFalse(table!.groups.has(200))
      assert.isUndefined(
        yield* Effect.promise(() => ProcStat.makeScanner({ root: "/nonexistent-proc-root" })(() => true))
      )
    }))
})

describe("makeScanner: a step that throws", () => {
  it.scoped("rejects the scan, in a later turn too, rather than leaving it unsettled", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("proc")
      for (let pid = 1000; pid < 1000 + ProcStat.SCAN_CHUNK * 2; pid++) {
        fs.mkdirSync(path.join(root, String(pid)))
        fs.writeFileSync(path.join(root, String(pid), "stat"), statLine({ pid, comm: "sh", pgrp: pid }))
      }
      let calls = 0
      const scan = ProcStat.makeScanner({ root })
      const outcome = yield* Effect.promise(() =>
        scan(() => {
          if (++calls > ProcStat.SCAN_CHUNK * 1.5) throw new Error("boom")
          return true
        }).then(() => "resolved", (error: Error) => error.message)
      )
      assert.strictEqual(outcome, "boom")
    }))
})

describe("makeCache", () => {
  // A table of `groups`, those the cache watches: agents' groups (born when the cache is made) unless `born` is false.
  const counting = (groups: Array<number>, born = true) => {
    let clock = 0
    const state = { reads: 0, groups, watched: [] as Array<number> }
    const cache = ProcessTable.makeCache((watched) => {
      state.reads++
      state.watched = state.groups.filter(watched)
      return {
        groups: new Map(state.watched.map((g) => [g, { processes: 1, rssBytes: 4096, cpuTicks: 1 }])),
        takenAt: clock
      }
    }, { now: () => clock, missRescanGapMillis: 0, watchMillis: 60_000 })
    if (born) { for (const group of groups) cache.born(group) }
    return { cache, state, advance: (ms: number) => (clock += ms) }
  }

  it.effect("callers within maxAge share one scan, concurrent ones included; a stale table is scanned again", () =>
    Effect.gen(function*() {
      const { advance, cache, state } = counting([1, 2])
      const readings = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => cache.group(1 + (i % 2), 500)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(state.reads, 1)
      assert.isTrue(readings.every((r) => r?.usage?.processes === 1 && r.takenAt === 0))
      advance(500)
      yield* cache.table(500)
      assert.strictEqual(state.reads, 1)
      advance(1)
      assert.strictEqual((yield* cache.group(1, 500))?.takenAt, 501)
      assert.strictEqual(state.reads, 2)
      // a caller that wants fresher than the table scans again
      advance(100)
      yield* cache.table(50)
      assert.strictEqual(state.reads, 3)
    }))

  it.effect("spawnSample: a group made here is at its spawn with no CPU time; one only asked for has none", () =>
    Effect.gen(function*() {
      const { advance, cache } = counting([1], false)
      advance(100)
      cache.born(7)
      advance(250)
      yield* cache.group(1, 500)
      assert.deepStrictEqual(ProcessTable.spawnSample(7, cache), {
        processes: 0,
        rssBytes: 0,
        cpuSeconds: 0,
        takenAt: 100
      })
      assert.isUndefined(ProcessTable.spawnSample(1, cache))
      assert.isUndefined(ProcessTable.spawnSample(8, cache))
      // its first CPU%: the ticks since the spawn over the time since (1 tick of 10 ms in 250 ms: 4%)
      const first = ProcessTable.usageSample({ processes: 1, rssBytes: 4096, cpuTicks: 1 }, 350)
      assert.strictEqual(ProcessTree.cpuPercent(ProcessTable.spawnSample(7, cache)!, first), 4)
      // made again (a pid used again by a new agent): the new spawn
      advance(50)
      cache.born(7)
      assert.strictEqual(ProcessTable.spawnSample(7, cache)?.takenAt, 400)
    }))

  // A bulk start: the spawn returned long before the agent's start went on to record it (a busy event loop). Its
  // first CPU% was over the time since the record, a shorter divisor: the first reading read high.
  it.effect("born with an age: the baseline is the spawn's own time; a scan still counts from the record", () =>
    Effect.gen(function*() {
      const { advance, cache, state } = counting([1])
      advance(100)
      yield* cache.table(500) // a scan begun at 100
      advance(60)
      state.groups = [1, 7]
      cache.born(7, 80) // spawned at 80, recorded at 160
      assert.strictEqual(ProcessTable.spawnSample(7, cache)?.takenAt, 80)
      // missing from the table begun at 100 (before the record): a new scan is waited for, as for a group born now
      const reading = yield* cache.group(7, 500)
      assert.strictEqual(state.reads, 2)
      assert.isDefined(reading?.usage)
      // an age below 0 is none
      cache.born(8, -5)
      assert.strictEqual(ProcessTable.spawnSample(8, cache)?.takenAt, 160)
    }))

  it.effect("a group missing from a cached table is looked up in a new scan; missing from a fresh one, it is gone", () =>
    Effect.gen(function*() {
      const { advance, cache, state } = counting([1])
      yield* cache.table(500)
      advance(10)
      state.groups = [1, 2] // an agent started after the scan
      cache.born(2)
      const reading = yield* cache.group(2, 500)
      assert.strictEqual(state.reads, 2)
      assert.strictEqual(reading?.usage?.processes, 1)
      assert.strictEqual(reading?.takenAt, 10)
      // a group with no live process: one scan, not one per caller
      advance(10)
      const gone = yield* cache.group(3, 0)
      assert.strictEqual(state.reads, 3)
      assert.isUndefined(gone?.usage)
    }))

  it.live("serve: groups born after the table wait for one scan a gap after the last; a mass start costs few scans", () =>
    Effect.gen(function*() {
      // When each scan began by the cache's own clock: the last reading of it before the scan's read. A reading
      // of the clock inside the read would count the time the process was not running between the two (a busy
      // machine's preemption: 7 ms once in CI), which the gap does not promise.
      const starts: Array<number> = []
      let lastNow = 0
      const now = () => (lastNow = performance.now())
      const cache = ProcessTable.makeCache(() => {
        starts.push(lastNow)
        return Promise.resolve({ groups: new Map([[1, { processes: 1, rssBytes: 4096, cpuTicks: 1 }]]), takenAt: 0 })
      }, { missRescanGapMillis: 50, now })
      yield* cache.table(1000)
      // a hundred agents started after that scan, each missing from it
      for (let i = 0; i < 100; i++) cache.born(100 + i)
      const readings = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => cache.group(100 + i, 1000, "serve")),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(starts.length, 2)
      // the gap holds by the cache's clock, although Node's timers may fire a little early by it
      assert.isAtLeast(starts[1] - starts[0], 50)
      assert.isTrue(readings.every((r) => r !== undefined && r.usage === undefined))
      // missing from a table scanned after its birth: gone, no scan
      assert.isUndefined((yield* cache.group(100, 1000, "serve"))?.usage)
      assert.strictEqual(starts.length, 2)
      // a caller that wants a fresh table does not wait for the gap
      const before = starts.length
      yield* cache.table(0)
      assert.strictEqual(starts.length, before + 1)
    }))

  it.effect("serve: a stale table is read at once while a new scan runs; the next reading has it", () =>
    Effect.gen(function*() {
      const { advance, cache, state } = counting([1])
      yield* cache.table(500)
      advance(1000)
      assert.strictEqual((yield* cache.group(1, 500, "serve"))?.takenAt, 0)
      assert.strictEqual(state.reads, 2) // started in the background (at once here: this reader is synchronous)
      assert.strictEqual((yield* cache.group(1, 500, "serve"))?.takenAt, 1000)
      assert.strictEqual(state.reads, 2)
    }))

  it.effect("a caller wanting a table from now on does not take one whose scan began before it asked", () =>
    Effect.gen(function*() {
      let clock = 0
      const scans: Array<{ readonly began: number; readonly done: (table: ProcessTable.ProcessTable) => void }> = []
      const cache = ProcessTable.makeCache(() =>
        new Promise<ProcessTable.ProcessTable>((resolve) => {
          const began = clock
          scans.push({ began, done: resolve })
        }), { now: () => clock })
      const table = (began: number): ProcessTable.ProcessTable => ({ groups: new Map(), takenAt: began })
      // a scan begins (a heartbeat's background refresh, say), and takes a while
      const first = yield* Effect.fork(cache.table(0))
      yield* Effect.yieldNow()
      assert.strictEqual(scans.length, 1)
      clock = 10
      // asked for now, while that one runs: it waits for the next
      const second = yield* Effect.fork(cache.table(0))
      yield* Effect.yieldNow()
      scans[0].done(table(0))
      assert.strictEqual((yield* Effect.fromFiber(first))?.takenAt, 0)
      yield* Effect.yieldNow()
      assert.strictEqual(scans.length, 2)
      assert.strictEqual(scans[1].began, 10)
      scans[1].done(table(10))
      assert.strictEqual((yield* Effect.fromFiber(second))?.takenAt, 10)
    }))

  it.effect("a group asked for that no scan watched waits for a scan begun after the ask, on demand or served", () =>
    Effect.gen(function*() {
      const { advance, cache, state } = counting([1, 2], false)
      yield* cache.table(500)
      assert.deepStrictEqual(state.watched, [])
      advance(10)
      assert.strictEqual((yield* cache.group(1, 500))?.usage?.processes, 1)
      assert.strictEqual(state.reads, 2)
      assert.deepStrictEqual(state.watched, [1])
      // a heartbeat's ("serve") too, once: then it is served from the table like any other
      assert.strictEqual((yield* cache.group(2, 500, "serve"))?.usage?.processes, 1)
      assert.strictEqual(state.reads, 3)
      assert.strictEqual((yield* cache.group(2, 500, "serve"))?.usage?.processes, 1)
      assert.strictEqual(state.reads, 3)
    }))

  it.effect("a scan reads the groups watched when it began: one asked for meanwhile waits for the next", () =>
    Effect.gen(function*() {
      let clock = 0
      const scans: Array<{ readonly watched: Array<number>; readonly done: () => void }> = []
      const cache = ProcessTable.makeCache((watched) =>
        new Promise<ProcessTable.ProcessTable>((resolve) => {
          const began = clock
          scans.push({
            watched: [1, 2].filter(watched),
            done: () => resolve({ groups: new Map(), takenAt: began })
          })
        }), { now: () => clock })
      cache.born(1)
      const first = yield* Effect.fork(cache.table(0))
      yield* Effect.yieldNow()
      clock = 10
      // group 2, asked for while that scan runs: the scan goes on reading group 1 alone, and 2 waits for the next
      const second = yield* Effect.fork(cache.group(2, 0))
      yield* Effect.yieldNow()
      assert.deepStrictEqual(scans[0].watched, [1])
      scans[0].done()
      yield* Effect.fromFiber(first)
      yield* Effect.yieldNow()
      assert.strictEqual(scans.length, 2)
      assert.deepStrictEqual(scans[1].watched, [1, 2])
      scans[1].done()
      assert.strictEqual((yield* Effect.fromFiber(second))?.takenAt, 10)
    }))

  it.effect("a group stops being watched once nobody made or asked for it for a while and it has no process", () =>
    Effect.gen(function*() {
      const { advance, cache, state } = counting([1, 2, 3], false)
      cache.born(1)
      yield* cache.group(2, 0)
      yield* cache.group(3, 0)
      assert.deepStrictEqual(state.watched, [1, 2, 3])
      // `ms` on, a scan finds 3 with no process; then a new group 3 (a pid used again) is there for the next scan
      const threeEmptyAfter = (ms: number) =>
        Effect.gen(function*() {
          state.groups = [1, 2]
          advance(ms)
          yield* cache.table(0)
          state.groups = [1, 2, 3]
          advance(1)
          yield* cache.table(0)
        })
      // still watched for the minute after the last ask (a slow caller keeps its group)
      yield* threeEmptyAfter(30_000)
      assert.deepStrictEqual(state.watched, [1, 2, 3])
      // a minute on, the live ones stay (1, an agent's, and 2, asked for once); 3, empty then, goes
      yield* threeEmptyAfter(30_000)
      assert.deepStrictEqual(state.watched, [1, 2])
    }))

  it.effect("current: the last table while fresh, with no scan started and no group watched or asked for", () =>
    Effect.gen(function*() {
      const { advance, cache, state } = counting([1, 2], false)
      assert.isUndefined(cache.current(500))
      assert.strictEqual(state.reads, 0)
      cache.born(1)
      const table = yield* cache.table(500)
      assert.strictEqual(cache.current(500), table)
      advance(500)
      assert.strictEqual(cache.current(500), table)
      // stale: none, and no scan starts for it (a reader looks its group up then, as before)
      advance(1)
      assert.isUndefined(cache.current(500))
      assert.strictEqual(state.reads, 1)
      assert.strictEqual((yield* cache.table(0))?.takenAt, 501)
      // it asks for no group: group 2, asked for once and then only read through `current` (every second for more
      // than a minute), has no process left and stops being watched as if nobody read it
      assert.strictEqual((yield* cache.group(2, 0))?.usage?.processes, 1)
      assert.deepStrictEqual(state.watched, [1, 2])
      state.groups = [1]
      for (let second = 0; second < 61; second++) {
        advance(1000)
        cache.current(Infinity)
      }
      yield* cache.table(0)
      // a process in group 2 again (its pid used again): a scan reads it only if the group is still watched
      state.groups = [1, 2]
      advance(1)
      yield* cache.table(0)
      assert.strictEqual(state.reads, 5)
      assert.deepStrictEqual(state.watched, [1])
    }))

  // A fresh pair of eyes' finding: the admin API's view waited for a scan per agent younger than the table.
  it.effect("peek: the group in the last table however old, never a scan; the group is watched from then on", () =>
    Effect.gen(function*() {
      const { advance, cache, state } = counting([1, 2], false)
      assert.isUndefined(cache.peek(1))
      assert.strictEqual(state.reads, 0)
      yield* cache.table(0)
      // group 1 was asked for by the peek: the scan read it; group 2 nobody asked for
      assert.deepStrictEqual(state.watched, [1])
      advance(3_600_000)
      assert.deepStrictEqual(cache.peek(1), { usage: { processes: 1, rssBytes: 4096, cpuTicks: 1 }, takenAt: 0 })
      // not in the table: no usage, and no scan started for it (nor for the stale table)
      assert.deepStrictEqual(cache.peek(2), { usage: undefined, takenAt: 0 })
      assert.strictEqual(state.reads, 1)
      // the next scan, whoever makes it, reads the group peeked at
      yield* cache.table(0)
      assert.deepStrictEqual(state.watched, [1, 2])
      assert.strictEqual(cache.peek(2)?.usage?.processes, 1)
      // without /proc: nothing
      assert.isUndefined(ProcessTable.makeCache(() => undefined).peek(1))
    }))

  it.effect("no /proc: every reading is undefined", () =>
    Effect.gen(function*() {
      const cache = ProcessTable.makeCache(() => undefined)
      assert.isUndefined(yield* cache.group(1, 500))
      assert.isUndefined(yield* cache.table(500))
      assert.isUndefined(cache.current(500))
    }))
})

describe("ProcessTree.sample", () => {
  it.effect("reads this process's group from the shared table; an unknown group has no process", () =>
    Effect.gen(function*() {
      const self = ProcStat.parseStat(fs.readFileSync("/proc/self/stat", "latin1"))!
      const sample = yield* ProcessTree.sample(self.pgrp)
      assert.isAtLeast(sample?.processes ?? 0, 1)
      assert.isAbove(sample?.rssBytes ?? 0, 0)
      assert.isAbove(sample?.cpuSeconds ?? 0, 0)
      // within the default age the same scan is shared
      const again = yield* ProcessTree.sample(self.pgrp)
      assert.strictEqual(again?.takenAt, sample?.takenAt)
      const none = yield* ProcessTree.sample(2 ** 30)
      assert.strictEqual(none?.processes, 0)
      assert.strictEqual(none?.rssBytes, 0)
    }))

  it("cpuPercent: ticks over real time between two scans; the same scan, or fewer ticks, reads 0", () => {
    const a = { processes: 1, rssBytes: 1, cpuSeconds: 1, takenAt: 1000 }
    assert.strictEqual(ProcessTree.cpuPercent(a, { ...a, cpuSeconds: 1.5, takenAt: 2000 }), 50)
    assert.strictEqual(ProcessTree.cpuPercent(a, { ...a, cpuSeconds: 2 }), 0)
    assert.strictEqual(ProcessTree.cpuPercent(a, { ...a, cpuSeconds: 0.5, takenAt: 2000 }), 0)
  })
})

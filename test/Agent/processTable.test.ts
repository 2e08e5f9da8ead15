import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ProcessTable from "../../src/Agent/internal/processTable.js"
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
    assert.deepStrictEqual(ProcessTable.parseStat(text), { pid: 42, state: "R", pgrp: 40, ticks: 200, rssPages: 7 })
  })

  it("a real line of this process", () => {
    const entry = ProcessTable.parseStat(fs.readFileSync("/proc/self/stat", "latin1"))
    assert.strictEqual(entry?.pid, process.pid)
    assert.isAbove(entry?.rssPages ?? 0, 0)
  })

  it("text that is not a stat line (empty: the process ended while it was read; cut short) is undefined", () => {
    assert.isUndefined(ProcessTable.parseStat(""))
    assert.isUndefined(ProcessTable.parseStat("12 (sh) S 1 12"))
    assert.isUndefined(ProcessTable.parseStat("no parentheses here"))
    assert.isUndefined(ProcessTable.parseStat(statLine({ pid: 1, comm: "x", pgrp: 1 }).replace(" 1 1 1 ", " 1 x 1 ")))
  })

  it.prop(
    "any command name of up to 15 bytes, spaces and parentheses included",
    [FastCheck.string({ unit: FastCheck.constantFrom("a", " ", "(", ")", "Z", "9", "\t"), maxLength: 15 })],
    ([comm]) => {
      const entry = ProcessTable.parseStat(statLine({ pid: 7, comm, state: "S", pgrp: 3, utime: 1, stime: 2, rss: 5 }))
      assert.deepStrictEqual(entry, { pid: 7, state: "S", pgrp: 3, ticks: 3, rssPages: 5 })
    }
  )
})

describe("groupTable", () => {
  it("sums live processes by group; zombies and dead processes are left out", () => {
    const groups = ProcessTable.groupTable([
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
      const table = ProcessTable.readTable({ root })
      assert.isDefined(table)
      // no <root>/self/smaps here: the page size falls back to 4 KiB
      assert.deepStrictEqual(Object.fromEntries(table!.groups), {
        100: { processes: 2, rssBytes: 120 * 4096, cpuTicks: 45 },
        200: { processes: 1, rssBytes: 4096, cpuTicks: 0 }
      })
    }))

  it("a root that cannot be listed (no /proc) gives undefined", () => {
    assert.isUndefined(ProcessTable.readTable({ root: "/nonexistent-proc-root" }))
  })

  it("the real /proc holds this process in its group", () => {
    const self = ProcessTable.parseStat(fs.readFileSync("/proc/self/stat", "latin1"))!
    const group = ProcessTable.readTable()?.groups.get(self.pgrp)
    assert.isAtLeast(group?.processes ?? 0, 1)
    assert.isAbove(group?.rssBytes ?? 0, 0)
  })
})

describe("scanTable", () => {
  it.scoped("reads what readTable reads, a chunk of processes per turn of the event loop", () =>
    Effect.gen(function*() {
      const root = yield* tempDir("proc")
      const count = ProcessTable.SCAN_CHUNK * 2 + 50
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
      const scanned = yield* Effect.promise(() => ProcessTable.scanTable({ root }))
      counting = false
      assert.deepStrictEqual(scanned?.groups, ProcessTable.readTable({ root })?.groups)
      assert.isAtLeast(turns, 2)
      assert.isUndefined(yield* Effect.promise(() => ProcessTable.scanTable({ root: "/nonexistent-proc-root" })))
    }))
})

describe("makeCache", () => {
  const counting = (groups: Array<number>) => {
    let clock = 0
    const state = { reads: 0, groups }
    const cache = ProcessTable.makeCache(() => {
      state.reads++
      return {
        groups: new Map(state.groups.map((g) => [g, { processes: 1, rssBytes: 4096, cpuTicks: 1 }])),
        takenAt: clock
      }
    }, { now: () => clock, missRescanGapMillis: 0 })
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

  it.effect("a group missing from a cached table is looked up in a new scan; missing from a fresh one, it is gone", () =>
    Effect.gen(function*() {
      const { advance, cache, state } = counting([1])
      yield* cache.table(500)
      advance(10)
      state.groups = [1, 2] // an agent started after the scan
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
      const starts: Array<number> = []
      const cache = ProcessTable.makeCache(() => {
        starts.push(performance.now())
        return Promise.resolve({ groups: new Map([[1, { processes: 1, rssBytes: 4096, cpuTicks: 1 }]]), takenAt: 0 })
      }, { missRescanGapMillis: 50 })
      yield* cache.table(1000)
      // a hundred agents started after that scan, each missing from it
      for (let i = 0; i < 100; i++) cache.born(100 + i)
      const readings = yield* Effect.all(
        Array.from({ length: 100 }, (_, i) => cache.group(100 + i, 1000, "serve")),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(starts.length, 2)
      // the gap holds by performance.now(), although Node's timers may fire a little early by it
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

  it.effect("no /proc: every reading is undefined", () =>
    Effect.gen(function*() {
      const cache = ProcessTable.makeCache(() => undefined)
      assert.isUndefined(yield* cache.group(1, 500))
      assert.isUndefined(yield* cache.table(500))
    }))
})

describe("ProcessTree.sample", () => {
  it.effect("reads this process's group from the shared table; an unknown group has no process", () =>
    Effect.gen(function*() {
      const self = ProcessTable.parseStat(fs.readFileSync("/proc/self/stat", "latin1"))!
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

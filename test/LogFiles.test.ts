/**
 * Rotated log files on their own: the writer (rotation order, the `keep` bound, the byte bound under a flood and
 * its drop line, failed writes, order, flush on close), the registry of open files, file names, the settings'
 * errors and the host's logger.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import type { ConfigError } from "../src/Errors.js"
import { encode } from "../src/internal/logFiles/fileName.js"
import * as Registry from "../src/internal/logFiles/registry.js"
import { LINE_BYTES_CAP, queueBytes, type Settings } from "../src/internal/logFiles/settings.js"
import * as Writer from "../src/internal/logFiles/writer.js"
import * as LogFiles from "../src/LogFiles.js"
import * as Supervisor from "../src/Supervisor.js"
import { adjustUntilDone, eventuallyEffect, failureOf, tempDir, TestLive } from "./support.js"

/** The lines of a log's files, oldest file first (`.<keep>` ... `.1`, then the current one). */
const readLog = (file: string, keep: number): Array<Array<string>> => {
  const files = [...Array.from({ length: keep }, (_, i) => `${file}.${keep - i}`), file]
  return files.filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, "utf8").split("\n").slice(0, -1))
}

/** The files of a log in `dir` and their sizes. */
const sizes = (dir: string): Record<string, number> =>
  Object.fromEntries(fs.readdirSync(dir).map((name) => [name, fs.statSync(path.join(dir, name)).size]))

/** `text` padded with dots to `bytes` UTF-8 bytes, newline included. */
const sized = (text: string, bytes: number) => text.padEnd(bytes - 1, ".")

const settings = (dir: string, maxBytes: number, keep: number): Settings => ({ dir, maxBytes, keep })

/** A writer closed with the test's scope. */
const writerOf = (file: string, s: Settings) => Effect.acquireRelease(Writer.make(file, s), (writer) => writer.close)

/** Log messages and levels seen by the loggers of the effect's fiber (and the fibers it forks). */
const capturingLogs = () => {
  const seen: Array<{ readonly level: string; readonly message: string }> = []
  const logger = Logger.make(({ logLevel, message }) => {
    seen.push({ level: logLevel.label, message: String(Array.isArray(message) ? message.join(" ") : message) })
  })
  return { seen, layer: Logger.replace(Logger.defaultLogger, logger) }
}

describe("LogFiles writer", () => {
  it.scopedLive("rotates before a line would pass maxBytes: .1 is the newest, and no more than keep are kept", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      const file = path.join(dir, "a.log")
      const writer = yield* writerOf(file, settings(dir, 1024, 2))
      // 100-byte lines: ten fill 1000 bytes, an eleventh would pass 1024. Five writes of ten lines, each flushed.
      for (let w = 0; w < 5; w++) {
        for (let i = 0; i < 10; i++) writer.offer(sized(`line ${w * 10 + i}`, 100))
        yield* writer.flush
      }
      const files = readLog(file, 2)
      const expected = (from: number) => Array.from({ length: 10 }, (_, i) => sized(`line ${from + i}`, 100))
      assert.deepStrictEqual(files, [expected(20), expected(30), expected(40)])
      assert.deepStrictEqual(Object.keys(sizes(dir)).sort(), ["a.log", "a.log.1", "a.log.2"])
      assert.deepStrictEqual(Object.values(sizes(dir)), [1000, 1000, 1000])
      const stats = writer.stats()
      assert.strictEqual(stats.written, 50)
      assert.strictEqual(stats.rotations, 4)
      assert.strictEqual(stats.dropped + stats.lost, 0)
    }))

  it.scopedLive("keep 0 removes the file instead of keeping it; old files past keep are removed at the start", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      const file = path.join(dir, "a.log")
      // Left by a run that kept more.
      for (const n of [1, 2, 7]) fs.writeFileSync(`${file}.${n}`, "old\n")
      const writer = yield* writerOf(file, settings(dir, 1024, 0))
      for (let w = 0; w < 3; w++) {
        for (let i = 0; i < 10; i++) writer.offer(sized(`line ${w * 10 + i}`, 100))
        yield* writer.flush
      }
      assert.deepStrictEqual(sizes(dir), { "a.log": 1000 })
      assert.strictEqual(fs.readFileSync(file, "utf8").split("\n")[0], sized("line 20", 100))
    }))

  it.scopedLive("a flood holds at most the byte bound; the lines dropped become one drop line, in their place", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      const file = path.join(dir, "flood.log")
      const s = settings(dir, 64 * 1024, 3)
      const writer = yield* writerOf(file, s)
      // Offered in one go, faster than any disk: the queue fills and the rest is dropped.
      for (let i = 0; i < 10_000; i++) writer.offer(sized(`line ${i}`, 100))
      const full = writer.stats()
      assert.strictEqual(full.capacity, queueBytes(s))
      assert.isAtMost(full.peakHeld, full.capacity)
      assert.isAbove(full.dropped, 0)
      yield* writer.flush
      const stats = writer.stats()
      assert.strictEqual(stats.written + stats.dropped, 10_000)
      const lines = readLog(file, 3).flat()
      // Every line kept, in order, then the drop line that stands for the rest.
      assert.deepStrictEqual(
        lines.slice(0, -1),
        Array.from({ length: stats.written }, (_, i) => sized(`line ${i}`, 100))
      )
      assert.match(
        lines.at(-1)!,
        new RegExp(
          `^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\[${stats.dropped} lines dropped: the log file could not keep up\\]$`
        )
      )
      // Then keep flooding: the files never hold more than (keep + 1) x maxBytes, none more than maxBytes.
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 5_000; i++) writer.offer(sized(`round ${round} line ${i}`, 200))
        yield* writer.flush
        const now = sizes(dir)
        assert.isAtMost(Object.keys(now).length, 4)
        assert.isTrue(Object.values(now).every((size) => size <= 64 * 1024), JSON.stringify(now))
      }
      assert.isAtMost(writer.stats().peakHeld, full.capacity)
      assert.strictEqual(writer.stats().held, 0)
    }))

  it.scopedLive("a line longer than maxBytes is cut to fit, at a character boundary, saying how much was cut", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      const file = path.join(dir, "long.log")
      const writer = yield* writerOf(file, settings(dir, 1024, 1))
      writer.offer("é".repeat(2000))
      writer.offer("after")
      yield* writer.flush
      const [cut, after] = readLog(file, 1).flat()
      assert.match(cut, /^(é)+ \[\d+ bytes cut\]$/)
      assert.isAtMost(Buffer.byteLength(cut) + 1, 1024)
      assert.strictEqual(after, "after")
      assert.isTrue(LINE_BYTES_CAP >= 1024)
    }))

  it.scoped("a directory that cannot be made fails nothing: warned once, lines wait, the overflow is reported", () => {
    const logs = capturingLogs()
    return Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      // A file where the directory should be: mkdir fails with ENOTDIR, also for root.
      const blocker = path.join(dir, "blocker")
      fs.writeFileSync(blocker, "")
      const logDir = path.join(blocker, "logs")
      const file = path.join(logDir, "a.log")
      const writer = yield* writerOf(file, settings(logDir, 4096, 5))
      // 200 lines of 100 bytes, more than the queue holds (16 KiB): the first wait, the rest are dropped.
      for (let i = 0; i < 200; i++) writer.offer(sized(`line ${i}`, 100))
      yield* eventuallyEffect("the failure is logged", Effect.sync(() => logs.seen.some((l) => l.level === "WARN")))
      const waiting = 200 - writer.stats().dropped
      assert.isAbove(waiting, 0)
      assert.strictEqual(writer.stats().lost, 0)
      // The directory can be made now; the next try (a second later on the Clock) writes the lines that waited.
      fs.rmSync(blocker)
      const flushed = yield* Effect.fork(writer.flush)
      yield* adjustUntilDone(flushed)
      const lines = readLog(file, 5).flat()
      assert.deepStrictEqual(lines.slice(0, -1), Array.from({ length: waiting }, (_, i) => sized(`line ${i}`, 100)))
      assert.match(lines.at(-1)!, /^\S+ \[\d+ lines dropped: the log file could not be written \(ENOTDIR\)\]$/)
      assert.include(lines.at(-1)!, `[${200 - waiting} lines dropped`)
      const warnings = logs.seen.filter((l) => l.level === "WARN")
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0].message, "cannot be written")
      assert.isTrue(logs.seen.some((l) => l.level === "INFO" && l.message.includes("is written again")))
    }).pipe(Effect.provide(logs.layer))
  })

  it.scoped.skipIf(process.platform !== "linux")(
    "a directory under /proc (no directory can be made there): its failure is said, never a hang",
    () => {
      const logs = capturingLogs()
      return Effect.gen(function*() {
        // Node's recursive mkdir loops for ever there (procfs answers ENOENT with the parent in place).
        const logDir = "/proc/self/no-such-dir/logs"
        const writer = yield* writerOf(path.join(logDir, "a.log"), settings(logDir, 4096, 5))
        writer.offer("a line")
        yield* eventuallyEffect(
          "the failure is logged",
          Effect.sync(() => logs.seen.some((l) => l.level === "WARN" && l.message.includes("cannot be written")))
        )
        assert.strictEqual(writer.stats().lost, 0)
      }).pipe(Effect.provide(logs.layer))
    }
  )

  it.scoped("a failed append gives its lines up, counted, and says so in the file once it can be written", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      const file = path.join(dir, "a.log")
      // A directory where the file should be: appending fails with EISDIR.
      fs.mkdirSync(file)
      const writer = yield* writerOf(file, settings(dir, 1024 * 1024, 1))
      for (let i = 0; i < 5; i++) writer.offer(`lost ${i}`)
      yield* eventuallyEffect("the lines are given up on", Effect.sync(() => writer.stats().lost === 5))
      writer.offer("kept 0")
      writer.offer("kept 1")
      fs.rmdirSync(file)
      const flushed = yield* Effect.fork(writer.flush)
      yield* adjustUntilDone(flushed)
      assert.deepStrictEqual(readLog(file, 1).flat().map((line) => line.replace(/^\d{4}-\S+ /, "")), [
        "[5 lines dropped: the log file could not be written (EISDIR)]",
        "kept 0",
        "kept 1"
      ])
      assert.strictEqual(writer.stats().written, 2)
    }).pipe(Effect.provide(Logger.minimumLogLevel(LogLevel.None))))

  it.scopedLive("a directory removed while writing is made again, with no line lost", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      const logDir = path.join(dir, "logs")
      const file = path.join(logDir, "a.log")
      const writer = yield* writerOf(file, settings(logDir, 4096, 1))
      writer.offer("before")
      yield* writer.flush
      fs.rmSync(logDir, { recursive: true })
      writer.offer("after")
      yield* writer.flush
      assert.deepStrictEqual(readLog(file, 1).flat(), ["after"])
      assert.strictEqual(writer.stats().lost, 0)
    }))

  it.scopedLive("closing writes every line offered before it, and refuses the later ones", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      const file = path.join(dir, "a.log")
      const writer = yield* Writer.make(file, settings(dir, 1024 * 1024, 1))
      for (let i = 0; i < 1000; i++) writer.offer(`line ${i}`)
      yield* writer.close
      assert.deepStrictEqual(readLog(file, 1).flat(), Array.from({ length: 1000 }, (_, i) => `line ${i}`))
      writer.offer("too late")
      assert.strictEqual(writer.stats().refused, 1)
      yield* writer.flush
    }))

  it.scopedLive("holders of one file share its writer; the last to let go closes it, each flushing its own lines", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      const before = Registry.openFiles()
      const first = yield* Scope.make()
      const second = yield* Scope.make()
      const s = settings(dir, 4096, 1)
      const a = yield* Registry.acquire("same", s).pipe(Scope.extend(first))
      const b = yield* Registry.acquire("same", s).pipe(Scope.extend(second))
      assert.strictEqual(a, b)
      assert.strictEqual(Registry.openFiles(), before + 1)
      a.offer("from a")
      yield* Scope.close(first, Exit.void)
      // The first holder's close waited for its line; the writer is still open for the second.
      assert.deepStrictEqual(readLog(path.join(dir, "same.log"), 1).flat(), ["from a"])
      b.offer("from b")
      yield* Scope.close(second, Exit.void)
      assert.strictEqual(Registry.openFiles(), before)
      assert.deepStrictEqual(readLog(path.join(dir, "same.log"), 1).flat(), ["from a", "from b"])
      assert.strictEqual(b.stats().written, 2)
    }))
})

/** Names mixing plain ASCII with what a file name cannot hold as it is, up to past the length that is hashed. */
const names = FastCheck.string({
  unit: FastCheck.oneof(
    FastCheck.constantFrom(".", "%", "/", "\\", "~", ":", " ", "\u0000", "\n", "é", "日", "😀", "\uD800", "\uFFFD"),
    FastCheck.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 })
  ),
  maxLength: 250
})

/** The name back from an encoding that was not cut: `%XX` runs are UTF-8 bytes, `%uXXXX` a lone surrogate. */
const decode = (encoded: string): string =>
  encoded.replace(/%u([0-9A-F]{4})/g, (_, hex) => `\u0000u${hex}`).split("\u0000").map((part, i) =>
    i === 0 ? part : String.fromCharCode(parseInt(part.slice(1, 5), 16)) + part.slice(5)
  ).map((part) =>
    part.replace(/(%[0-9A-F]{2})+/g, (run) => Buffer.from(run.replaceAll("%", ""), "hex").toString("utf8"))
  ).join("")

describe("LogFiles.fileName", () => {
  it("keeps plain names, escapes the rest", () => {
    assert.strictEqual(LogFiles.fileName("billing-2.worker_a"), "billing-2.worker_a.log")
    assert.strictEqual(LogFiles.fileName("team/a:b c"), "team%2Fa%3Ab%20c.log")
    assert.strictEqual(LogFiles.fileName(".."), "%2E..log")
    assert.strictEqual(LogFiles.fileName("100%"), "100%25.log")
    assert.strictEqual(LogFiles.fileName("日"), "%E6%97%A5.log")
  })

  it("is safe and one-to-one for any name", () =>
    FastCheck.assert(
      FastCheck.property(
        names,
        names,
        (a, b) => {
          for (const name of [a, b]) {
            const file = LogFiles.fileName(name)
            assert.match(file, /^[A-Za-z0-9_%~-][A-Za-z0-9._%~-]*\.log$/)
            assert.isAtMost(Buffer.byteLength(file) + ".1000".length, 255)
          }
          // One-to-one: a name kept whole reads back from its file name; hashed ones differ by their hash.
          if (!encode(a).includes("~")) assert.strictEqual(decode(encode(a)), a)
          if (a !== b) assert.notStrictEqual(encode(a), encode(b))
        }
      )
    ))
})

describe("LogFiles options", () => {
  it.effect("a bad logs option of AgentSupervisor.make is a ConfigError naming each field, before any start", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        AgentSupervisor.make({ name: "x", command: "definitely-not-run" }, { logs: { dir: "", maxBytes: 10 } })
      )
      const error = failureOf(exit) as ConfigError
      assert.strictEqual(error._tag, "ConfigError")
      assert.deepStrictEqual(error.problems.map((p) => p.field), ["logs.dir", "logs.maxBytes"])
      assert.include(error.problems[1].rule, "at least 1024")
    }).pipe(Effect.scoped, Effect.provide(TestLive)))

  it.effect("a bad logs option of a tree is part of the tree's ConfigError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Supervisor.make({ logs: { dir: "logs", keep: -1, extra: 1 } as any }))
      const error = failureOf(exit) as ConfigError
      assert.deepStrictEqual(error.problems.map((p) => p.field).sort(), ["logs.extra", "logs.keep"])
      const notObject = failureOf(yield* Effect.exit(Supervisor.make({ logs: "logs" as any }))) as ConfigError
      assert.strictEqual(notObject.field, "logs")
      assert.include(notObject.rule, "must be an object")
    }).pipe(Effect.scoped, Effect.provide(TestLive)))

  it.effect("bad logger options are a ConfigError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(LogFiles.logger({ dir: "logs", format: "xml" as any, keep: 1.5 }))
      const error = failureOf(exit) as ConfigError
      assert.deepStrictEqual(error.problems.map((p) => p.field), ["keep", "format"])
    }).pipe(Effect.scoped))

  it("defaults are 10 MiB and 5 files", () => {
    assert.strictEqual(LogFiles.DEFAULT_MAX_BYTES, 10 * 1024 * 1024)
    assert.strictEqual(LogFiles.DEFAULT_KEEP, 5)
  })
})

/** The log file only, not the console. */
const fileOnly = (options: LogFiles.LoggerOptions) =>
  LogFiles.layer(options).pipe(Layer.provideMerge(Logger.remove(Logger.defaultLogger)))

describe("LogFiles.logger", () => {
  it.scopedLive("writes the host's log lines in logfmt, annotations included, one line each", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      yield* Effect.gen(function*() {
        yield* Effect.logInfo("started").pipe(Effect.annotateLogs({ tree: "root" }))
        yield* Effect.logWarning("two\nlines")
      }).pipe(Effect.provide(fileOnly({ dir, name: "host" })))
      const lines = readLog(path.join(dir, "host.log"), 5).flat()
      assert.strictEqual(lines.length, 2)
      assert.match(lines[0], /^timestamp=\S+ level=INFO fiber=\S+ message=started tree=root$/)
      assert.match(lines[1], /level=WARN .*message="two\\nlines"/)
    }))

  it.scopedLive("writes JSON lines", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      yield* Effect.logError("failed").pipe(
        Effect.annotateLogs({ agent: "echo" }),
        Effect.provide(fileOnly({ dir, format: "json" }))
      )
      const [line] = readLog(path.join(dir, "supervisor.log"), 5).flat()
      const parsed = JSON.parse(line)
      assert.strictEqual(parsed.message, "failed")
      assert.strictEqual(parsed.logLevel, "ERROR")
      assert.deepStrictEqual(parsed.annotations, { agent: "echo" })
    }))

  it.scopedLive("a logger whose file cannot be written never fails the program", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles")
      fs.writeFileSync(path.join(dir, "blocker"), "")
      const result = yield* Effect.gen(function*() {
        for (let i = 0; i < 100; i++) yield* Effect.logInfo(`line ${i}`)
        return "done"
      }).pipe(Effect.provide(fileOnly({ dir: path.join(dir, "blocker", "logs") })))
      assert.strictEqual(result, "done")
    }))
})

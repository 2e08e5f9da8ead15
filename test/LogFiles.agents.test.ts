/**
 * Agents' stderr in rotated log files, end to end with real agent processes: a standalone agent and a tree's,
 * over a restart, the last lines in the file when the scope's close completes, and a flood held to the bounds.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import * as Registry from "../src/internal/logFiles/registry.js"
import * as LogFiles from "../src/LogFiles.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, closeableScope, eventuallyEffect, sleepLive, tempDir, TestLive } from "./support.js"

/** The lines of a log's files, oldest file first. */
const readLog = (file: string, keep: number): Array<string> =>
  [...Array.from({ length: keep }, (_, i) => `${file}.${keep - i}`), file]
    .filter((f) => fs.existsSync(f))
    .flatMap((f) => fs.readFileSync(f, "utf8").split("\n").slice(0, -1))

/** `[pid, text]` of each `<ISO time> [pid N] <text>` line whose text is one the fixture floods with (`3:e`). */
const numbered = (lines: ReadonlyArray<string>): Array<[number, string]> =>
  lines.flatMap((line) => {
    const match = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[pid (\d+)\] (\d+:e+)$/.exec(line)
    return match === null ? [] : [[Number(match[1]), match[2]] as [number, string]]
  })

const pidOf = (agent: AgentSupervisor.AgentSupervisor) => Effect.map(agent.metadata, (m) => Option.getOrThrow(m.pid))

/** The total size of the files in `dir`, the oldest rotated file read first (see the flood test). */
const diskBytes = (dir: string): number => {
  const names = fs.readdirSync(dir).sort((a, b) => rank(b) - rank(a))
  let total = 0
  for (const name of names) {
    try {
      total += fs.statSync(path.join(dir, name)).size
    } catch {
      // Rotated away between the listing and the stat.
    }
  }
  return total
}
const rank = (name: string) => name.endsWith(".log") ? 0 : Number(name.slice(name.lastIndexOf(".") + 1))

describe.sequential("LogFiles with agents", () => {
  it.scopedLive("AgentSupervisor.make writes every line of both incarnations, with their pids, by the scope's close", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles-agent")
      const scope = yield* closeableScope
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { name: "echo-logs" }), { logs: { dir } }).pipe(
        Scope.extend(scope)
      )
      const first = yield* pidOf(agent)
      yield* agent.handleEvent({ stderr: { lines: 3, length: 1 } })
      yield* agent.restart
      const second = yield* pidOf(agent)
      yield* agent.handleEvent({ stderr: { lines: 3, length: 2 } })
      // No wait for the lines: closing the scope stops the agent (its stderr read to the end) and writes them.
      yield* Scope.close(scope, Exit.void)
      const lines = readLog(path.join(dir, "echo-logs.log"), 5)
      assert.deepStrictEqual(numbered(lines), [
        [first, "0:e"],
        [first, "1:e"],
        [first, "2:e"],
        [second, "0:ee"],
        [second, "1:ee"],
        [second, "2:ee"]
      ])
      assert.notStrictEqual(first, second)
      assert.strictEqual(Registry.openFiles(), 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a tree writes each agent's stderr to a file named safely for it, over a restart", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("logfiles-tree")
      const scope = yield* closeableScope
      const sup = yield* Supervisor.make({
        logs: { dir, maxBytes: 4096, keep: 1 },
        children: [
          Supervisor.agent({ id: "a", config: agentConfig("echo", { name: "team.a:b" }) }),
          Supervisor.agent({ id: "b", config: agentConfig("echo", { name: "plain" }) })
        ]
      }).pipe(Scope.extend(scope))
      const pidOfChild = (id: string) =>
        Effect.map(sup.whichChildren, (children) => Option.getOrThrow(children.find((c) => c.id === id)!.pid))
      const first = yield* pidOfChild("a")
      yield* sup.call("a", { stderr: { lines: 2, length: 1 } })
      yield* sup.call("b", { stderr: { lines: 1, length: 3 } })
      // OTP's way: a running child is terminated, then restarted (its agent, and its file, kept).
      yield* sup.terminateChild("a")
      yield* sup.restartChild("a")
      const second = yield* pidOfChild("a")
      yield* sup.call("a", { stderr: { lines: 2, length: 1 } })
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(LogFiles.fileName("team.a:b"), "team.a%3Ab.log")
      assert.deepStrictEqual(numbered(readLog(path.join(dir, "team.a%3Ab.log"), 1)), [
        [first, "0:e"],
        [first, "1:e"],
        [second, "0:e"],
        [second, "1:e"]
      ])
      assert.deepStrictEqual(numbered(readLog(path.join(dir, "plain.log"), 1)).map(([, text]) => text), ["0:eee"])
      assert.strictEqual(Registry.openFiles(), 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive(
    "a flood of 20 MB of stderr never holds more than (keep + 1) x maxBytes on disk",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("logfiles-flood")
        const maxBytes = 64 * 1024
        const keep = 2
        const bound = (keep + 1) * maxBytes
        // The test holds the file too, to read its writer's counts: the agent shares the writer (one per file).
        const writer = yield* Registry.acquire("flood", { dir, maxBytes, keep })
        const scope = yield* closeableScope
        const agent = yield* AgentSupervisor.make(
          // Every line kept in the agent's tail too: what the writer was offered, to compare its counts with.
          agentConfig("echo", { name: "flood", requestTimeout: "60 seconds", stderrLines: 30_000 }),
          { logs: { dir, maxBytes, keep } }
        ).pipe(Scope.extend(scope))
        // Watched while it floods. The oldest file is read first: a rotation between two reads moves bytes to an
        // older name, already read, so it can only make the sum smaller, never count a file's bytes twice.
        let most = 0
        const watcher = yield* Effect.fork(Effect.forever(Effect.zipRight(
          Effect.sync(() => {
            most = Math.max(most, diskBytes(dir))
          }),
          sleepLive("5 millis")
        )))
        yield* agent.handleEvent({ stderr: { lines: 20_000, length: 1000 } })
        // The agent's stderr is a pipe Node writes to in the background: it replies before its last lines are out.
        yield* eventuallyEffect(
          "the flood's last line is read",
          Effect.map(agent.recentStderr, (lines) => lines.at(-1)?.line.startsWith("19999:") === true),
          "60 seconds"
        )
        yield* Scope.close(scope, Exit.void)
        const offered = (yield* agent.recentStderr).map((line) => line.line)
        yield* Fiber.interrupt(watcher)
        most = Math.max(most, diskBytes(dir))
        assert.isAtMost(most, bound)
        // Memory: the lines held never weighed more than the queue's bound; every line is written or dropped.
        const stats = writer.stats()
        assert.isAtMost(stats.peakHeld, stats.capacity)
        assert.strictEqual(stats.capacity, 4 * maxBytes)
        // Every line offered is written or dropped. The agent's own lines besides the flood (a Node warning, say)
        // are offered too: they are shown, not failed on; the flood's lines are read whole and in order.
        const flood = /^\d+:e+$/
        const others = offered.filter((line) => !flood.test(line))
        if (others.length > 0) console.warn(`the flood agent wrote ${others.length} other lines:`, others.slice(0, 5))
        assert.strictEqual(
          stats.written + stats.dropped,
          offered.length,
          `${offered.length} lines offered, ${others.length} not the flood's: ${JSON.stringify(others.slice(0, 5))}`
        )
        const floodLines = offered.filter((line) => flood.test(line))
        assert.strictEqual(floodLines.length, 20_000)
        assert.isTrue(floodLines.every((line, i) => line === `${i}:${"e".repeat(1000)}`), "the flood's lines whole")
        assert.strictEqual(stats.lost, 0)
        const files = fs.readdirSync(dir).sort()
        assert.deepStrictEqual(files, ["flood.log", "flood.log.1", "flood.log.2"])
        for (const name of files) assert.isAtMost(fs.statSync(path.join(dir, name)).size, maxBytes)
        // What is there is whole lines in order, each an agent's line or a drop line standing for a gap.
        const lines = readLog(path.join(dir, "flood.log"), keep)
        const drop = /^\S+ \[\d+ lines? dropped: the log file could not keep up\]$/
        const kept = numbered(lines).map(([, text]) => Number(text.slice(0, text.indexOf(":"))))
        const other = (line: string) => others.some((text) => line.endsWith(`] ${text}`))
        assert.strictEqual(kept.length + lines.filter((line) => drop.test(line) || other(line)).length, lines.length)
        assert.isTrue(kept.every((n, i) => i === 0 || n > kept[i - 1]), "lines in order")
        // The end of the flood reached the file by the close: its last line, or the drop line standing for it.
        const last = lines.filter((line) => !other(line)).at(-1)!
        assert.isTrue(last.endsWith(`] 19999:${"e".repeat(1000)}`) || drop.test(last), last.slice(0, 80))
      }).pipe(Effect.provide(TestLive)),
    { timeout: 120_000 }
  )
})

/**
 * An agent's stderr across a rolling reload, as across a restart: the lines kept (its last `stderrLines`) and the
 * follow stream cover the old process and the new one, each line once and in the order read, and a follower sees
 * the new process's lines from its first (written right after it spawned, before it was ready). Also a pool member
 * reloaded, an agent reloaded again while the first reload's old process still stops, a child replaced (deleted and
 * added again), and a reload that changes `stderrLines`. Real agent processes (test/fixtures/cli/teller.mjs), a real
 * tree, its admin API over real HTTP, and the built `agent-supervisor` command.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as fs from "node:fs"
import * as path from "node:path"
import { Routes } from "../src/internal/admin/api.js"
import * as Supervisor from "../src/Supervisor.js"
import { type Frame, http, post, serve, sse, type SseClient } from "./fixtures/admin/harness.js"
import { BIN, eventuallyEffect, runCli, spawnApp, takeUntil, teller, tempDir, TestLive, upListens } from "./support.js"

/** What process `pid` of the teller writes: `texts`, each as `teller PID text`. */
const says = (pid: number, ...texts: ReadonlyArray<string>) => texts.map((text) => `teller ${pid} ${text}`)

/** The lines a teller writes as it starts. */
const boots = (pid: number) => says(pid, "started", "boot 0", "boot 1", "boot 2")

/**
 * `lines` are exactly the lines of `stories` (one per process, each in the order it wrote them), no line missing,
 * none twice, none other, each process's in its order (the processes' lines interleave as they were read).
 */
const assertStories = (lines: ReadonlyArray<string>, stories: ReadonlyArray<ReadonlyArray<string>>) => {
  const shown = `\n${lines.join("\n")}`
  for (const story of stories) {
    const prefix = story[0].split(" ").slice(0, 2).join(" ") + " "
    assert.deepStrictEqual(lines.filter((line) => line.startsWith(prefix)), [...story], `${prefix}in:${shown}`)
  }
  assert.strictEqual(lines.length, stories.reduce((n, story) => n + story.length, 0), `no other line in:${shown}`)
}

/** Reads a stderr follow stream until every line of `wanted` has come, `within`; all the lines it read. */
const followUntil = (follow: SseClient, wanted: ReadonlyArray<string>, within = "20 seconds" as const) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const done = (frame: Frame) => {
      if (frame.data !== undefined) lines.push(JSON.parse(frame.data).line)
      return wanted.every((line) => lines.includes(line))
    }
    yield* follow.until(done).pipe(
      Effect.timeoutFail({
        duration: within,
        onTimeout: () =>
          new Error(`not within ${within}: ${wanted.join(", ")}; the follower read:\n${lines.join("\n")}`)
      })
    )
    return lines
  })

/** An agent child's stderr lines as `GET /api/children/ID/stderr` gives them. */
const kept = (served: { readonly url: string }, id: string) =>
  Effect.map(
    http(served, `/api/children/${encodeURIComponent(id)}/stderr`),
    (r) => (r.json() as ReadonlyArray<{ readonly line: string }>).map((l) => l.line)
  )

/** What a follower read is what is kept from the moment it listened: a suffix of the kept lines. */
const assertSuffix = (followed: ReadonlyArray<string>, all: ReadonlyArray<string>) =>
  assert.deepStrictEqual(followed, all.slice(all.length - followed.length), `followed:\n${followed.join("\n")}`)

const pidOf = (sup: Supervisor.Supervisor, id: string) =>
  Effect.map(sup.whichChildren, (children) => Option.getOrThrow(children.find((c) => c.id === id)!.pid))

const connected = (frame: Frame) => frame.comment === "connected"

describe.sequential("stderr across a reload, through the admin API", () => {
  it.scopedLive("a pool reloaded: each member's lines kept over both its processes; a follower of one sees all", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [Supervisor.pool({ id: "tellers", size: 2, config: teller("pooled") })] })
      const pool = yield* Effect.orDie(served.root.childSupervisor("tellers"))
      const [old0, old1] = [yield* pidOf(pool, "0"), yield* pidOf(pool, "1")]
      const follow = yield* sse(`${served.url}${Routes.stderrFollow("tellers/0")}`)
      yield* follow.until(connected)
      assert.strictEqual((yield* post(served, "/api/children/tellers/reload")).status, 200)
      const [new0, new1] = [yield* pidOf(pool, "0"), yield* pidOf(pool, "1")]
      process.kill(new0, "SIGUSR1")
      const followed = yield* followUntil(follow, [...says(new0, "mark 0"), ...says(old0, "stopping")])
      const all0 = yield* kept(served, "tellers/0")
      assertStories(all0, [[...boots(old0), ...says(old0, "stopping")], [...boots(new0), ...says(new0, "mark 0")]])
      assertSuffix(followed, all0)
      for (const line of boots(new0)) assert.include(followed, line, "the new process's first lines, followed")
      yield* eventuallyEffect(
        "member 1's old process's last line kept",
        Effect.map(kept(served, "tellers/1"), (lines) => lines.includes(says(old1, "stopping")[0]))
      )
      assertStories(yield* kept(served, "tellers/1"), [[...boots(old1), ...says(old1, "stopping")], boots(new1)])
    }))

  it.scopedLive("an agent reloaded again while the first reload's old process stops: three processes, all kept", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [Supervisor.agent({ id: "teller", config: teller("twice") })] })
      const first = yield* pidOf(served.root, "teller")
      const events = yield* served.root.subscribe
      const follow = yield* sse(`${served.url}${Routes.stderrFollow("teller")}`)
      yield* follow.until(connected)
      const once = yield* Effect.fork(served.root.reload("teller"))
      // The first reload has put its new process in and stops the old one: the second starts now, beside both.
      const before = yield* takeUntil(
        events,
        (e) => e._tag === "Agent" && e.event._tag === "StateChanged" && e.event.to === "STOPPING"
      )
      const twice = yield* Effect.fork(served.root.reload("teller"))
      yield* Fiber.join(once)
      yield* Fiber.join(twice)
      const after = yield* Queue.takeAll(events)
      const spawned = [...before, ...after].flatMap((e) =>
        e._tag === "Agent" && e.event._tag === "Spawned" ? [e.event.pid] : []
      )
      assert.strictEqual(spawned.length, 2, "two new processes")
      const [second, third] = spawned
      assert.strictEqual(yield* pidOf(served.root, "teller"), third)
      process.kill(third, "SIGUSR1")
      const followed = yield* followUntil(follow, [
        ...says(third, "mark 0"),
        ...says(first, "stopping"),
        ...says(second, "stopping")
      ])
      const all = yield* kept(served, "teller")
      assertStories(all, [
        [...boots(first), ...says(first, "stopping")],
        [...boots(second), ...says(second, "stopping")],
        [...boots(third), ...says(third, "mark 0")]
      ])
      assertSuffix(followed, all)
      for (const line of [...boots(second), ...boots(third)]) assert.include(followed, line)
    }))

  it.scopedLive("a child deleted and added again: a follower sees the new agent's lines from its first", () =>
    Effect.gen(function*() {
      const spec = Supervisor.agent({ id: "teller", config: teller("replaced") })
      const served = yield* serve({ children: [spec] })
      const first = yield* pidOf(served.root, "teller")
      const follow = yield* sse(`${served.url}${Routes.stderrFollow("teller")}`)
      yield* follow.until(connected)
      yield* Effect.orDie(served.root.terminateChild("teller"))
      yield* Effect.orDie(served.root.deleteChild("teller"))
      yield* Effect.orDie(served.root.startChild(spec))
      const second = yield* pidOf(served.root, "teller")
      process.kill(second, "SIGUSR1")
      const followed = yield* followUntil(follow, [...says(second, "mark 0"), ...says(first, "stopping")])
      // Another child now, another agent: what is kept is the new one's
      const all = yield* kept(served, "teller")
      assertStories(all, [[...boots(second), ...says(second, "mark 0")]])
      assert.deepStrictEqual(followed.filter((line) => !line.startsWith(`teller ${first} `)), all)
    }))
})

describe.sequential("stderr across a reload, in the library", () => {
  it.scopedLive("a reload to a larger stderrLines keeps the old lines; to a smaller, the last of them", () =>
    Effect.gen(function*() {
      const config = teller("resized", { stderrLines: 4 })
      const sup = yield* Supervisor.make({ children: [Supervisor.agent({ id: "teller", config })] })
      const first = yield* pidOf(sup, "teller")
      const recent = Effect.flatMap(Effect.orDie(sup.child("teller")), (agent) => agent.recentStderr)
      const lines = Effect.map(recent, (all) => all.map((l) => l.line))
      yield* eventuallyEffect("the first process's lines", Effect.map(lines, (all) => all.length === 4))
      yield* Effect.orDie(sup.reload("teller", { config: { ...config, stderrLines: 50 } }))
      const second = yield* pidOf(sup, "teller")
      yield* Effect.orDie(sup.call("teller", { mark: true }))
      yield* eventuallyEffect(
        "the mark and the old process's last line",
        Effect.map(lines, (all) => all.includes(says(second, "mark 0")[0]) && all.includes(says(first, "stopping")[0]))
      )
      const all = yield* lines
      assertStories(all, [[...boots(first), ...says(first, "stopping")], [...boots(second), ...says(second, "mark 0")]])
      // Each line with the pid of the process that wrote it
      for (const line of yield* recent) assert.strictEqual(line.line.split(" ")[1], String(line.pid))

      yield* Effect.orDie(sup.reload("teller", { config: { ...config, stderrLines: 3 } }))
      const third = yield* pidOf(sup, "teller")
      yield* Effect.orDie(sup.call("teller", { mark: true }))
      yield* eventuallyEffect(
        "the third process's mark and the second's last line",
        Effect.map(lines, (all) => all.includes(says(third, "mark 0")[0]) && all.includes(says(second, "stopping")[0]))
      )
      // The last 3 lines read: the third process's mark, the second's last line, and one more of theirs
      const last = yield* lines
      assert.strictEqual(last.length, 3, last.join("\n"))
      assert.includeMembers(last, [...says(third, "mark 0"), ...says(second, "stopping")])
      for (const line of last) assert.match(line, new RegExp(`^teller (${second}|${third}) `))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a reloaded agent's stderr stream, run before the reload, goes on with the new process", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({ children: [Supervisor.agent({ id: "teller", config: teller("stream") })] })
      const first = yield* pidOf(sup, "teller")
      const agent = yield* Effect.orDie(sup.child("teller"))
      yield* eventuallyEffect(
        "the first process's lines read",
        Effect.map(agent.recentStderr, (lines) => lines.length === boots(first).length)
      )
      const queue = yield* agent.subscribeStderr
      yield* Effect.orDie(sup.reload("teller"))
      const second = yield* pidOf(sup, "teller")
      yield* Effect.orDie(sup.call("teller", { mark: true }))
      const seen = (yield* takeUntil(queue, (l) => l.line === says(second, "mark 0")[0]).pipe(
        Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the new process's mark never came") })
      )).map((l) => l.line)
      for (const line of boots(second)) assert.include(seen, line)
      assert.notInclude(seen, boots(first)[0])
      // The new agent is the child's now, and keeps both processes' lines
      const now = yield* Effect.orDie(sup.child("teller"))
      assert.notStrictEqual(now, agent)
      assert.includeMembers((yield* now.recentStderr).map((l) => l.line), [...boots(first), ...boots(second)])
    }).pipe(Effect.provide(TestLive)))
})

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the command to its end. */
const cli = (args: ReadonlyArray<string>): Effect.Effect<Result> => runCli(args)

/** `<ISO time> [PID] LINE` (as `logs` prints it, or `[pid PID]` as the log file has it) to LINE. */
const lineOf = (printed: string) => printed.replace(/^\S+ \[(pid )?\d+\] /, "")

describe.sequential("agent-supervisor logs across a reload", () => {
  it.scopedLive(
    "logs -f shows the new process's lines from its first and the old one's last; logs keeps both; the file each once",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("stderr-reload")
        const file = path.join(dir, "tree.json")
        fs.writeFileSync(
          file,
          JSON.stringify({
            name: "reload-logs",
            store: { type: "memory" },
            logs: { dir: "logs" },
            children: [{ type: "agent", id: "teller", config: teller("teller") }]
          })
        )
        const up = yield* spawnApp(BIN, ["up", file, "--log-format", "json"], { onLine: () => {} })
        const stateFile = path.join(dir, ".tree.json.admin.json")
        yield* eventuallyEffect(`up's state file (stderr: ${up.stderr()})`, Effect.sync(() => upListens(stateFile)))
        const state = JSON.parse(fs.readFileSync(stateFile, "utf8"))
        const pid = Effect.map(http(state, "/api/tree"), (r) => r.json().children[0].pid as number)
        const first = yield* pid

        const printed: Array<string> = []
        const waiting: Array<{ readonly line: string; readonly done: Deferred.Deferred<void> }> = []
        const printedLine = (line: string) =>
          Effect.gen(function*() {
            const done = yield* Deferred.make<void>()
            waiting.push({ line, done })
            if (printed.includes(line)) yield* Deferred.succeed(done, void 0)
            yield* Deferred.await(done).pipe(
              Effect.timeoutFail({
                duration: "20 seconds",
                onTimeout: () => new Error(`the follower never printed "${line}"; it printed:\n${printed.join("\n")}`)
              })
            )
          })
        yield* spawnApp(BIN, ["logs", "teller", "-f", "--file", file], {
          onLine: (text) => {
            const line = lineOf(text)
            printed.push(line)
            for (const w of waiting) if (w.line === line) Deferred.unsafeDone(w.done, Effect.void)
          }
        })
        // Printed only once the follower listens (it prints the kept lines after it has subscribed).
        yield* printedLine(says(first, "boot 2")[0])
        const reloaded = yield* cli(["reload", "teller", "--file", file])
        assert.strictEqual(reloaded.code, 0, reloaded.stderr)
        const second = yield* pid
        assert.notStrictEqual(second, first)
        process.kill(second, "SIGUSR1")
        yield* printedLine(says(second, "mark 0")[0])
        yield* printedLine(says(first, "stopping")[0])
        const story = [[...boots(first), ...says(first, "stopping")], [...boots(second), ...says(second, "mark 0")]]
        assertStories(printed, story)

        // Plain `logs` after the reload: both processes' lines, as the follower printed them
        const logs = yield* cli(["logs", "teller", "--file", file])
        assert.strictEqual(logs.code, 0, logs.stderr)
        assert.deepStrictEqual(logs.stdout.trimEnd().split("\n").map(lineOf), printed)

        // The agent's log file: every line once
        const agentLog = path.join(dir, "logs", "teller.log")
        const inFile = Effect.sync(() =>
          fs.existsSync(agentLog) ? fs.readFileSync(agentLog, "utf8").trimEnd().split("\n").map(lineOf) : []
        )
        yield* eventuallyEffect(
          "the log file has the last lines",
          Effect.map(inFile, (lines) =>
            lines.includes(says(second, "mark 0")[0]) && lines.includes(says(first, "stopping")[0]))
        )
        assertStories(yield* inFile, story)
      }),
    120_000
  )
})

/**
 * An agent's stderr as its supervisor keeps it for the outside (the admin API, log files): the last lines over
 * restarts, and a live stream of them.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as StderrTail from "../../src/Agent/internal/supervisor/stderrTail.js"
import { agentConfig, eventuallyEffect, TestLive } from "../support.js"

/** Asks the agent to write `lines` stderr lines (`0:e`, `1:e`, ...) and waits for its reply. */
const writeStderr = (agent: AgentSupervisor.AgentSupervisor, lines: number) =>
  agent.handleEvent({ stderr: { lines, length: 1 } })

describe("StderrTail", () => {
  it("keeps the last lines in order once the ring wraps, and calls each listener until it is forgotten", () => {
    const tail = StderrTail.make(3)
    const seen: Array<string> = []
    const forget = tail.listen((line) => seen.push(line.line))
    for (let i = 0; i < 5; i++) tail.push(7, `line ${i}`, 1000 + i)
    assert.deepStrictEqual(tail.recent().map((l) => l.line), ["line 2", "line 3", "line 4"])
    assert.deepStrictEqual(tail.recent().map((l) => l.timestamp), [1002, 1003, 1004])
    forget()
    tail.push(7, "line 5", 1005)
    assert.deepStrictEqual(seen, ["line 0", "line 1", "line 2", "line 3", "line 4"])
    assert.deepStrictEqual(tail.recent().map((l) => l.line), ["line 3", "line 4", "line 5"])
  })

  it("a listener that throws loses nothing for the others or the ring", () => {
    const tail = StderrTail.make(2)
    const seen: Array<string> = []
    tail.listen(() => {
      throw new Error("listener bug")
    })
    tail.listen((line) => seen.push(line.line))
    tail.push(1, "a", 1)
    assert.deepStrictEqual(seen, ["a"])
    assert.deepStrictEqual(tail.recent().map((l) => l.line), ["a"])
  })

  it("held by agents sharing it (a reload's old and new), keeps the most any holder wants; the rest once it goes", () => {
    const tail = StderrTail.make(3)
    const lines = () => tail.recent().map((l) => l.line)
    const old = tail.hold(3)
    for (let i = 0; i < 4; i++) tail.push(1, `old ${i}`, i)
    assert.deepStrictEqual(lines(), ["old 1", "old 2", "old 3"])
    // The new agent wants more: nothing of the old one's is pushed out by its start
    const fresh = tail.hold(5)
    tail.push(2, "new 0", 10)
    tail.push(2, "new 1", 11)
    assert.deepStrictEqual(lines(), ["old 1", "old 2", "old 3", "new 0", "new 1"])
    old()
    tail.push(2, "new 2", 12)
    assert.deepStrictEqual(lines(), ["old 2", "old 3", "new 0", "new 1", "new 2"])
    // A later one that wants fewer: the last of them once the one that wanted more is gone
    const smaller = tail.hold(2)
    assert.strictEqual(tail.recent().length, 5)
    fresh()
    fresh()
    assert.deepStrictEqual(lines(), ["new 1", "new 2"])
    tail.push(3, "small 0", 20)
    assert.deepStrictEqual(lines(), ["new 2", "small 0"])
    // Held by none: it keeps its last capacity
    smaller()
    tail.push(3, "small 1", 21)
    assert.deepStrictEqual(lines(), ["small 0", "small 1"])
  })

  it("numbers each line above every line pushed before it, in this tail or another (a tail made anew numbers on)", () => {
    const first = StderrTail.make(2)
    const a = first.push(1, "a", 0).seq
    const b = first.push(1, "a", 0).seq
    assert.isAbove(b, a, "two lines alike in one millisecond: two numbers")
    // a nested supervisor's restart makes its agents, and their tails, anew
    const again = StderrTail.make(2)
    assert.isAbove(again.push(2, "c", 0).seq, b)
    assert.isAbove(first.push(1, "d", 0).seq, b)
  })

  it("push gives the line kept, the very object its listeners get (a follower knows a line seen twice by it)", () => {
    const tail = StderrTail.make(2)
    const heard: Array<unknown> = []
    tail.listen((line) => heard.push(line))
    const pushed = tail.push(4, "x", 1)
    assert.strictEqual(heard[0], pushed)
    assert.strictEqual(tail.recent()[0], pushed)
  })
})

describe.sequential("AgentSupervisor stderr", () => {
  it.scopedLive("recentStderr keeps the last stderrLines lines over restarts, each with its incarnation's pid", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { name: "tail", stderrLines: 3 }))
      const first = Option.getOrThrow((yield* agent.metadata).pid)
      yield* writeStderr(agent, 2)
      yield* eventuallyEffect("two lines", Effect.map(agent.recentStderr, (lines) => lines.length === 2))
      yield* agent.restart
      const second = Option.getOrThrow((yield* agent.metadata).pid)
      yield* writeStderr(agent, 2)
      yield* eventuallyEffect(
        "the second incarnation's lines",
        Effect.map(agent.recentStderr, (lines) => lines.at(-1)?.pid === second && lines.length === 3)
      )
      const lines = yield* agent.recentStderr
      assert.deepStrictEqual(lines.map((l) => [l.pid, l.line]), [[first, "1:e"], [second, "0:e"], [second, "1:e"]])
      assert.isTrue(lines.every((l) => l.timestamp > 0))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("stderr streams lines as they come, from when it is run, over a restart", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo", { name: "follow" }))
      const received: Array<string> = []
      const fiber = yield* agent.stderr.pipe(
        Stream.tap((line) => Effect.sync(() => received.push(line.line))),
        Stream.takeUntil((line) => line.line === "3:e"),
        Stream.runCollect,
        Effect.fork
      )
      // The stream listens once it runs: keep writing until a line has reached it.
      yield* eventuallyEffect(
        "the stream runs",
        Effect.map(writeStderr(agent, 1), () => received.length > 0)
      )
      yield* agent.restart
      const pid = Option.getOrThrow((yield* agent.metadata).pid)
      yield* writeStderr(agent, 4)
      const lines = Chunk.toArray(yield* Fiber.join(fiber))
      assert.deepStrictEqual(lines.slice(-4).map((l) => [l.pid, l.line]), [
        [pid, "0:e"],
        [pid, "1:e"],
        [pid, "2:e"],
        [pid, "3:e"]
      ])
    }).pipe(Effect.provide(TestLive)))
})

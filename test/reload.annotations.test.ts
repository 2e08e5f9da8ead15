/**
 * An agent's log lines (its stderr, as the supervisor logs it) carry the tree's annotations whatever started the
 * agent: a reload, a pool's reload or scale, `startChild`, `restartChild`, and every restart after them, never the
 * annotations or log spans of the fiber that asked for the operation (an admin API request's `operation` and
 * `child`, say). A reload requested over the admin API gave the new agent, and every later incarnation of it, the
 * request's annotations in place of the tree's `supervisor`. Real agent processes (test/fixtures/cli/teller.mjs).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as List from "effect/List"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { takeUntil, teller } from "./support.js"

/** One log entry as the logger saw it. */
interface Entry {
  readonly message: string
  readonly annotations: Record<string, unknown>
  readonly spans: ReadonlyArray<string>
}

/** A logger that keeps every entry, and waits for one that matches. */
const recording = () => {
  const entries: Array<Entry> = []
  const waiters = new Set<{ readonly match: (entry: Entry) => boolean; readonly done: Deferred.Deferred<Entry> }>()
  const logger = Logger.make<unknown, void>(({ annotations, message, spans }) => {
    const entry: Entry = {
      message: String(Array.isArray(message) ? message.join(" ") : message),
      annotations: Object.fromEntries(HashMap.toEntries(annotations)),
      spans: List.toArray(spans).map((span) => span.label)
    }
    entries.push(entry)
    for (const waiter of waiters) {
      if (!waiter.match(entry)) continue
      waiters.delete(waiter)
      Deferred.unsafeDone(waiter.done, Exit.succeed(entry))
    }
  })
  /** The first entry logged that matches, waiting for it (bounded, to fail with what was logged). */
  const entry = (what: string, match: (entry: Entry) => boolean): Effect.Effect<Entry, Error> =>
    Effect.suspend(() => {
      const found = entries.find(match)
      if (found !== undefined) return Effect.succeed(found)
      const done = Deferred.unsafeMake<Entry>(FiberId.none)
      waiters.add({ match, done })
      return Deferred.await(done)
    }).pipe(
      Effect.timeoutFail({
        duration: "20 seconds",
        onTimeout: () =>
          new Error(
            `not logged within 20 seconds: ${what}; logged:\n${
              entries.map((e) => `${e.message} ${JSON.stringify(e.annotations)}`).join("\n")
            }`
          )
      })
    )
  /** The stderr line `text` of process `pid`, as logged. */
  const line = (pid: number, text: string) =>
    entry(
      `"teller ${pid} ${text}"`,
      (e) => e.annotations.stream === "stderr" && e.annotations.pid === pid && e.message === `teller ${pid} ${text}`
    )
  return { logger, entry, line, entries }
}

/** What an admin API request runs the operation in: its own annotations and a log span of its own. */
const asCaller = (operation: string, child: string) => <A, E>(effect: Effect.Effect<A, E>) =>
  effect.pipe(Effect.withLogSpan(`caller ${operation}`), Effect.annotateLogs({ operation, child }))

/** The annotations of a line but its pid (each process has its own). */
const withoutPid = (annotations: Record<string, unknown>) => {
  const { pid: _pid, ...rest } = annotations
  return rest
}

/** A line of an agent started by an operation: the annotations of a line the tree started itself, no caller's. */
const assertOwn = (entry: Entry, expected: Record<string, unknown>, what: string) => {
  assert.deepStrictEqual(withoutPid(entry.annotations), expected, `${what}: ${entry.message}`)
  assert.deepStrictEqual(entry.spans, [], `${what}: no log span of the caller's`)
}

const pidOf = (sup: Supervisor.Supervisor, id: string) =>
  Effect.map(sup.whichChildren, (children) => Option.getOrThrow(children.find((c) => c.id === id)!.pid))

/** Makes the agent `pid` write a `mark` line (its handler is in place: the agent is RUNNING) and gives it. */
const marked = (log: ReturnType<typeof recording>, pid: number) =>
  Effect.suspend(() => {
    process.kill(pid, "SIGUSR1")
    return log.line(pid, "mark 0")
  })

/**
 * Kills the agent child `id` of `sup` (reached through `events`, a subscription of the root) with SIGKILL and gives
 * the pid of the incarnation its supervisor restarted it into, once that one runs.
 */
const crashed = (
  sup: Supervisor.Supervisor,
  events: Queue.Dequeue<Supervisor.SupervisorEvent>,
  supervisor: string,
  id: string
) =>
  Effect.gen(function*() {
    const pid = yield* pidOf(sup, id)
    yield* Queue.takeAll(events)
    process.kill(pid, "SIGKILL")
    const restarted = (e: Supervisor.SupervisorEvent) =>
      e._tag === "ChildStarted" && e.supervisor === supervisor && e.child === id
    yield* takeUntil(events, (e) => e._tag === "RestartScheduled" && e.supervisor === supervisor).pipe(
      Effect.zipRight(takeUntil(events, restarted)),
      Effect.timeoutFail({
        duration: "20 seconds",
        onTimeout: () => new Error(`"${id}" of "${supervisor}" not restarted within 20 seconds`)
      })
    )
    const next = yield* pidOf(sup, id)
    assert.notStrictEqual(next, pid, "a new incarnation")
    return next
  })

/** A tree's layer: real processes, the memory store, and every log entry recorded. */
const live = (logger: Logger.Logger<unknown, void>) =>
  Layer.mergeAll(
    NodeContext.layer,
    Store.layerMemory,
    Logger.replace(Logger.defaultLogger, logger),
    Logger.minimumLogLevel(LogLevel.Info)
  )

describe.sequential("an agent's log annotations, whatever started it", () => {
  it.scopedLive("a reloaded agent's lines name the tree, not the caller; so do those after its next restart", () => {
    const log = recording()
    return Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        name: "t1",
        children: [Supervisor.agent({ id: "ticker", config: teller("ticker", { jitter: 0 }) })]
      })
      const events = yield* sup.subscribe
      const first = yield* pidOf(sup, "ticker")
      const own = withoutPid((yield* log.line(first, "started")).annotations)
      assert.strictEqual(own.supervisor, "t1", "the tree's own start names it")

      yield* sup.reload("ticker").pipe(asCaller("reload", "ticker"))
      const reloaded = yield* pidOf(sup, "ticker")
      assert.notStrictEqual(reloaded, first)
      assertOwn(yield* log.line(reloaded, "started"), own, "the reloaded agent's first line")
      assertOwn(yield* marked(log, reloaded), own, "the reloaded agent's line")

      const restarted = yield* crashed(sup, events, "t1", "ticker")
      assertOwn(yield* log.line(restarted, "started"), own, "the restarted agent's first line")
      assertOwn(yield* marked(log, restarted), own, "the restarted agent's line")
    }).pipe(Effect.provide(live(log.logger)))
  })

  it.scopedLive("a pool reloaded and scaled: every member's lines name the pool, before and after a restart", () => {
    const log = recording()
    return Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        name: "t2",
        children: [Supervisor.pool({ id: "cbpool", size: 2, config: teller("pooled", { jitter: 0 }) })]
      })
      const events = yield* sup.subscribe
      const pool = yield* Effect.orDie(sup.childSupervisor("cbpool"))
      const first = yield* pidOf(pool, "0")
      const own = withoutPid((yield* log.line(first, "started")).annotations)
      assert.strictEqual(own.supervisor, "t2/cbpool", "the tree's own start names the pool")
      const member = (name: string) => ({ ...own, agent: name })

      yield* sup.reload("cbpool").pipe(asCaller("reload", "cbpool"))
      for (const id of ["0", "1"]) {
        const pid = yield* pidOf(pool, id)
        assert.notStrictEqual(pid, first)
        assertOwn(yield* log.line(pid, "started"), member(`pooled-${id}`), `reloaded member ${id}'s first line`)
        assertOwn(yield* marked(log, pid), member(`pooled-${id}`), `reloaded member ${id}'s line`)
      }

      yield* sup.scale("cbpool", 3).pipe(asCaller("scale", "cbpool"))
      const added = yield* pidOf(pool, "2")
      assertOwn(yield* log.line(added, "started"), member("pooled-2"), "the added member's first line")
      assertOwn(yield* marked(log, added), member("pooled-2"), "the added member's line")

      const restarted = yield* crashed(pool, events, "t2/cbpool", "0")
      assertOwn(yield* log.line(restarted, "started"), member("pooled-0"), "the restarted member's first line")
      assertOwn(yield* marked(log, restarted), member("pooled-0"), "the restarted member's line")
    }).pipe(Effect.provide(live(log.logger)))
  })

  it.scopedLive("startChild and restartChild (an agent, a pool): the lines name the tree, not the caller", () => {
    const log = recording()
    return Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        name: "t3",
        // Two crashes below, the pool's counted in the tree's intensity: room for both.
        intensity: { maxRestarts: 10, window: "5 seconds" },
        children: [
          Supervisor.agent({ id: "ticker", config: teller("ticker", { jitter: 0 }) }),
          Supervisor.pool({ id: "cbpool", size: 1, config: teller("pooled", { jitter: 0 }) })
        ]
      })
      const events = yield* sup.subscribe
      const own = withoutPid((yield* log.line(yield* pidOf(sup, "ticker"), "started")).annotations)
      assert.strictEqual(own.supervisor, "t3", "the tree's own start names it")

      yield* sup.startChild(Supervisor.agent({ id: "added", config: teller("added", { jitter: 0 }) })).pipe(
        asCaller("start", "added")
      )
      const added = yield* pidOf(sup, "added")
      assertOwn(yield* log.line(added, "started"), { ...own, agent: "added" }, "the added agent's first line")
      assertOwn(yield* marked(log, added), { ...own, agent: "added" }, "the added agent's line")

      yield* sup.terminateChild("added")
      yield* sup.restartChild("added").pipe(asCaller("restart", "added"))
      const again = yield* pidOf(sup, "added")
      assertOwn(yield* log.line(again, "started"), { ...own, agent: "added" }, "the restarted agent's first line")

      const restarted = yield* crashed(sup, events, "t3", "added")
      assertOwn(yield* log.line(restarted, "started"), { ...own, agent: "added" }, "after a crash, its first line")

      yield* sup.terminateChild("cbpool")
      yield* sup.restartChild("cbpool").pipe(asCaller("restart", "cbpool"))
      const pool = yield* Effect.orDie(sup.childSupervisor("cbpool"))
      const memberPid = yield* pidOf(pool, "0")
      const member = { ...own, supervisor: "t3/cbpool", agent: "pooled-0" }
      assertOwn(yield* log.line(memberPid, "started"), member, "the restarted pool's member's first line")
      const memberRestarted = yield* crashed(pool, events, "t3/cbpool", "0")
      assertOwn(yield* log.line(memberRestarted, "started"), member, "that member after a crash, its first line")
    }).pipe(Effect.provide(live(log.logger)))
  })

  it.scopedLive("a pool's reload that fails and cannot roll a member back logs that as the pool's, not the caller's", () => {
    const log = recording()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rollback-"))
    const gate = path.join(dir, "reloaded")
    /** The teller behind a shell test: the running version starts only before `gate` exists, the new one once. */
    const gated = (test: string) => ({
      ...teller("pooled", { jitter: 0 }),
      command: "sh",
      args: ["-c", `${test} || exit 3; exec "$0" "$@"`, process.execPath, ...teller("pooled").args!]
    })
    return Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const sup = yield* Supervisor.make({
        name: "t5",
        children: [Supervisor.pool({ id: "cbpool", size: 2, config: gated(`test ! -e '${gate}'`) })]
      })
      // Member 0 takes the new version (it makes the gate), member 1 cannot (the gate exists), and member 0 cannot
      // go back (the running version does not start once the gate exists).
      const failed = yield* Effect.flip(
        sup.reload("cbpool", { config: gated(`mkdir '${gate}' 2>/dev/null`) }).pipe(asCaller("reload", "cbpool"))
      )
      assert.strictEqual(failed._tag, "AgentStartupError")
      const rollback = yield* log.entry(
        "the failed rollback",
        (e) => e.message.includes(`the reload of member "0" back to the running version failed`)
      )
      assert.deepStrictEqual(rollback.annotations, { supervisor: "t5/cbpool" }, "the pool's annotations alone")
      assert.deepStrictEqual(rollback.spans, [], "no log span of the caller's")
    }).pipe(Effect.provide(live(log.logger)))
  })

  it.scopedLive("an operation that fails is the caller's failure: the runtime logs no unhandled error of it", () => {
    const log = recording()
    return Effect.gen(function*() {
      const sup = yield* Supervisor.make({ name: "t4", children: [] })
      const failed = yield* Effect.flip(sup.restartChild("nope"))
      assert.strictEqual(failed._tag, "SupervisorChildError")
      assert.deepStrictEqual(log.entries.filter((entry) => entry.message.includes("unhandled")), [])
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Debug), Effect.provide(live(log.logger)))
  })
})

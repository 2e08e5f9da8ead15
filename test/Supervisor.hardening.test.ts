/**
 * Issue 16's regressions for supervision trees, with real processes: Ctrl-C and SIGTERM of an application that runs
 * a tree (item 2), stop order after a nested supervisor restarted (6), events and views (7), restarts that do not
 * wait for each other (8), one store record per restart (9).
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as readline from "node:readline"
import * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { describeWithService, pgLayer, pgUnavailable } from "./Store/services.js"
import { agentConfig, closeableScope, fixture, groupMembers, isAlive, root, takeUntil, TestLive } from "./support.js"

type Event = Supervisor.SupervisorEvent

const pgMissing = await pgUnavailable()

// ---- children and events ----

const echo = (id: string, overrides: Parameters<typeof agentConfig>[1] = {}) =>
  Supervisor.agent({ id, config: agentConfig("echo", { name: id, restartBackoff: 0, ...overrides }) })

const tiny = (id: string) =>
  Supervisor.agent({ id, config: { name: id, command: "/bin/sh", args: [fixture("agents", "tiny.sh")] } })

/** An agent run as `node agent.mjs MODE FILE` (the fixture's `*-unless FILE` modes). */
const withFile = (id: string, mode: string, file: string, overrides: Parameters<typeof agentConfig>[1] = {}) => {
  const config = agentConfig(mode, { name: id, restartBackoff: 0, ...overrides })
  return Supervisor.agent({ id, config: { ...config, args: [...config.args!, file] } })
}

/**
 * An echo agent whose restarts are slow: its first start is a plain one, every later one sleeps `delaySeconds`
 * before the agent even spawns (a marker file tells them apart).
 */
const slowToRestart = (id: string, delay: number | { readonly gate: string }, dir: string) =>
  Supervisor.agent({
    id,
    config: {
      ...agentConfig("echo", { name: id, restartBackoff: 0, gracefulTimeout: "300 millis", jitter: 0 }),
      command: "/bin/sh",
      args: [
        "-c",
        `if [ -e "$MARK" ]; then ${
          typeof delay === "number"
            ? `sleep ${delay}`
            : `while [ ! -e ${JSON.stringify(delay.gate)} ]; do sleep 0.05; done`
        }; fi; : > "$MARK"; exec "$0" "$1" echo`,
        process.execPath,
        fixture("agents", "agent.mjs")
      ],
      env: { MARK: path.join(dir, `${id}.started`) },
      maxRestartAttempts: 100
    }
  })

const tempDirs: Array<string> = []
afterAll(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true })
})

/** A temporary directory, removed after the file's tests. */
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sup-hardening-"))
  tempDirs.push(dir)
  return dir
}

/** A file whose presence lets an agent start (created here; the test removes it to break the agent). */
const switchFile = () => {
  const file = path.join(tempDir(), "ok")
  fs.writeFileSync(file, "")
  return file
}

const crash = (sup: Supervisor.Supervisor, id: string, code = 1) => Effect.exit(sup.call(id, { crash: code }))

const pids = (sup: Supervisor.Supervisor) =>
  Effect.map(
    sup.whichChildren,
    (children) => Object.fromEntries(children.map((c) => [c.id, Option.getOrUndefined(c.pid)] as const))
  )

/** Every event of a tree through `onEvent`, kept in order and offered to a queue to wait on. */
interface Recorder {
  readonly all: Array<Event>
  readonly queue: Queue.Queue<Event>
  readonly onEvent: (event: Event) => Effect.Effect<void>
}

const recorder: Effect.Effect<Recorder> = Effect.map(Queue.unbounded<Event>(), (queue) => {
  const all: Array<Event> = []
  return {
    all,
    queue,
    onEvent: (event) =>
      Effect.suspend(() => {
        all.push(event)
        return Effect.asVoid(Queue.offer(queue, event))
      })
  }
})

/** Forgets the events queued so far (the first starts, say), so that waits match only what follows. */
const skipQueued = (rec: Recorder) => Effect.asVoid(Queue.takeAll(rec.queue))

/** Takes events until one matches; returns everything seen, the match last. */
const until = (queue: Queue.Dequeue<Event>, match: (event: Event) => boolean) => takeUntil(queue, match)

/** Takes events until each of `matches` has matched one. */
const untilAll = (queue: Queue.Dequeue<Event>, matches: ReadonlyArray<(event: Event) => boolean>) =>
  Effect.gen(function*() {
    const left = new Set(matches)
    while (left.size > 0) {
      const event = yield* Queue.take(queue)
      for (const match of left) if (match(event)) left.delete(match)
    }
  })

/** Matches the `n`th event that `match` matches (a stateful predicate: one per wait). */
const nth = (n: number, match: (e: Event) => boolean) => {
  let seen = 0
  return (e: Event) => match(e) && ++seen === n
}

const entered = (child: string, state: string) => (e: Event) =>
  e._tag === "Agent" && e.child === child && e.event._tag === "StateChanged" && e.event.to === state
const isRunning = (child: string) => entered(child, "RUNNING")
const isStarting = (child: string) => entered(child, "STARTING")

/** Agents in the order they reached STOPPED. */
const agentStops = (events: ReadonlyArray<Event>) =>
  events.flatMap((e) =>
    e._tag === "Agent" && e.event._tag === "StateChanged" && e.event.to === "STOPPED" ? [e.child] : []
  )
const stopsOf = (events: ReadonlyArray<Event>, supervisor: string) =>
  events.flatMap((e) => e._tag === "ChildStopped" && e.supervisor === supervisor ? [e.child] : [])
const countBy = (items: ReadonlyArray<string>) => {
  const counts: Record<string, number> = {}
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1
  return counts
}
const spawnedPids = (events: ReadonlyArray<Event>) =>
  events.flatMap((e) => e._tag === "Agent" && e.event._tag === "Spawned" ? [e.event.pid] : [])

/** No process of any agent's group is left. */
const assertNoProcessLeft = (agentPids: ReadonlyArray<number>) => {
  for (const pid of agentPids) assert.deepStrictEqual(groupMembers(pid), [], `process group ${pid} is still there`)
}

/** The last state the store holds for each agent. */
const lastStates = (names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const states: Record<string, string | undefined> = {}
    for (const name of names) {
      const restored = yield* Store.restore(name)
      states[name] = Option.getOrUndefined(Option.map(restored.state, (s) => s.state))
    }
    return states
  })

const allStopped = (names: ReadonlyArray<string>) => Object.fromEntries(names.map((name) => [name, "STOPPED"]))

/**
 * Lines logged at Error level or above, kept instead of printed; `watch` makes every fiber forked below it report
 * a failure at Error level (Effect reports them at Debug by default), so that a defect anywhere is seen.
 */
const errorLog = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ cause, logLevel, message }) => {
    if (!LogLevel.greaterThanEqual(logLevel, LogLevel.Error)) return
    const text = Array.isArray(message) ? message.join(" ") : String(message)
    lines.push(Cause.isEmpty(cause) ? text : `${text}: ${Cause.pretty(cause)}`)
  })
  return {
    lines,
    layer: Logger.replace(Logger.defaultLogger, logger),
    watch: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.withUnhandledErrorLogLevel(effect, Option.some(LogLevel.Error))
  }
}

// ---- an application in a child process (item 2) ----

const appPath = fixture("apps", "tree-app.mjs")

// The app runs the built package, as a user's would: `npm test` builds it first; a bare `vitest run` may not have.
const builtAt = (file: string) => fs.statSync(path.join(root, file), { throwIfNoEntry: false })?.mtimeMs ?? 0
if (builtAt("dist/Supervisor.js") < builtAt("src/Supervisor.ts")) {
  console.warn("dist/ is older than src/Supervisor.ts: the app tests run the old build (npm run build)")
}

interface AppRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** What it logged (stdout lines other than the ready line, and stderr). */
  readonly output: string
  readonly agentPids: Record<string, number>
  readonly appPid: number
}

/**
 * Runs `tree-app.mjs` in `mode` on a SQLite store in `filename`, waits until it reports its agents up, sends it
 * `signal`, and waits for it to exit. The app is SIGKILLed if the test ends first.
 */
const runApp = (mode: "layer" | "make" | "fork", signal: NodeJS.Signals, filename: string) =>
  Effect.gen(function*() {
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [appPath, mode, filename], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
      ),
      (child) =>
        Effect.sync(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        })
    )
    // Effect's default logger writes to stdout: keep both streams for the checks on what was logged.
    let output = ""
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (chunk: string) => {
      output += chunk
    })
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("close", (code, signal) => resolve({ code, signal }))
    )
    const ready = new Promise<Record<string, number>>((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).on("line", (line) => {
        if (line.startsWith(`{"ready":true`)) resolve((JSON.parse(line) as { pids: Record<string, number> }).pids)
        else output += line + "\n"
      })
      void closed.then(({ code, signal }) =>
        reject(new Error(`the app exited before it was ready (code ${code}, signal ${signal}): ${output}`))
      )
    })
    const agentPids = yield* Effect.promise(() => ready).pipe(
      Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error(`the app never got ready: ${output}`) })
    )
    process.kill(child.pid!, signal)
    const exit = yield* Effect.promise(() => closed).pipe(
      Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error(`the app did not exit: ${output}`) })
    )
    return { ...exit, output, agentPids, appPid: child.pid! } satisfies AppRun
  })

const APP_AGENTS = ["app-raw", "app-py", "app-node", "app-w1", "app-flaky"]

describe.sequential("Supervisor hardening", () => {
  // ---- item 2: Ctrl-C / SIGTERM ----

  const errors = errorLog()
  it.scopedLive("2: interrupting the fiber that owns a tree stops every agent, STOPPED in the store, no defect", () =>
    Effect.gen(function*() {
      errors.lines.length = 0
      const rec = yield* recorder
      const file = switchFile()
      const file2 = switchFile()
      const made = yield* Deferred.make<Supervisor.Supervisor>()
      const owner = yield* Effect.fork(errors.watch(Effect.scoped(Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          name: "owned",
          intensity: { maxRestarts: 100, window: "1 minute" },
          onEvent: rec.onEvent,
          children: [
            echo("a"),
            tiny("sh"),
            Supervisor.supervisor({
              id: "workers",
              intensity: { maxRestarts: 100, window: "1 minute" },
              children: [echo("w1"), echo("w2")]
            }),
            // RESTARTING (waiting out a minute of backoff) when the owner is interrupted
            withFile("flaky", "crash-unless", path.join(path.dirname(file), "never-there"), {
              restartBackoff: "1 minute",
              jitter: 0
            }),
            // STARTING (a restart that never gets ready) when the owner is interrupted
            withFile("hang", "no-ready-unless", file, { startupTimeout: "1 minute" }),
            // being rebuilt after its escalation, r2 never ready, when the owner is interrupted
            Supervisor.supervisor({
              id: "rebuilding",
              intensity: { maxRestarts: 0, window: "1 minute" },
              children: [echo("r1"), withFile("r2", "no-ready-unless", file2, { startupTimeout: "1 minute" })]
            })
          ]
        })
        yield* Deferred.succeed(made, sup)
        return yield* Effect.never
      }))))
      const sup = yield* Deferred.await(made)
      fs.rmSync(file)
      fs.rmSync(file2)
      yield* crash(sup, "hang")
      yield* crash(yield* sup.childSupervisor("rebuilding"), "r1")
      const restartOfHang = (e: Event) =>
        e._tag === "Agent" && e.child === "hang" && e.event._tag === "StateChanged" && e.event.from === "RESTARTING" &&
        e.event.to === "STARTING"
      yield* untilAll(rec.queue, [entered("flaky", "RESTARTING"), restartOfHang, nth(2, isStarting("r2"))])
      const exit = yield* Fiber.interrupt(owner)
      assert.isTrue(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause), String(exit))
      // The one error logged is the escalation the test caused.
      assert.deepStrictEqual(errors.lines.filter((line) => !line.includes(`"owned/rebuilding" exceeded`)), [])
      const names = ["a", "sh", "w1", "w2", "flaky", "hang", "r1", "r2"]
      assert.deepStrictEqual(yield* lastStates(names), allStopped(names))
      assertNoProcessLeft(spawnedPids(rec.all))
    }).pipe(Effect.provide(Layer.mergeAll(TestLive, Store.layerMemory, errors.layer))))

  it.scopedLive("2: interrupting the owner while the tree is still starting its children stops those started", () =>
    Effect.gen(function*() {
      const rec = yield* recorder
      errors.lines.length = 0
      const owner = yield* Effect.fork(errors.watch(Effect.scoped(Effect.zipRight(
        Supervisor.make({
          name: "starting",
          onEvent: rec.onEvent,
          children: [
            echo("first"),
            Supervisor.supervisor({
              id: "nested",
              children: [
                echo("n1"),
                Supervisor.agent({ id: "never", config: agentConfig("no-ready", { name: "never" }) })
              ]
            }),
            echo("last")
          ]
        }),
        Effect.never
      ))))
      yield* until(rec.queue, isStarting("never"))
      const exit = yield* Fiber.interrupt(owner)
      assert.isTrue(Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause), String(exit))
      assert.deepStrictEqual(errors.lines, [])
      assert.deepStrictEqual(yield* lastStates(["first", "n1", "never", "last"]), {
        ...allStopped(["first", "n1", "never"]),
        last: undefined
      })
      assertNoProcessLeft(spawnedPids(rec.all))
    }).pipe(Effect.provide(Layer.mergeAll(TestLive, Store.layerMemory, errors.layer))))

  const appCases = [
    ["layer", "SIGINT"],
    ["layer", "SIGTERM"],
    ["make", "SIGINT"],
    ["fork", "SIGTERM"]
  ] as const
  for (const [mode, signal] of appCases) {
    const how = mode === "layer" ? "Supervisor.layer" : mode === "make" ? "Supervisor.make" : "a forked fiber"
    it.scopedLive(
      `2: an app (${how}, NodeRuntime.runMain) sent ${signal} exits 0, every agent STOPPED`,
      () =>
        Effect.gen(function*() {
          const dir = tempDir()
          yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
          const filename = path.join(dir, "app.sqlite")
          const run = yield* runApp(mode, signal, filename)
          // runMain interrupts the main fiber on SIGINT and SIGTERM and exits 0 when it ends interrupted only.
          assert.deepStrictEqual([run.code, run.signal], [0, null], run.output)
          assert.notMatch(run.output, /illegal transition|defect|\bDie\b|uncaught|unhandled/i)
          assert.notMatch(run.output, /\b(ERROR|FATAL)\b/)
          assert.isFalse(isAlive(run.appPid))
          assert.deepStrictEqual(Object.keys(run.agentPids).sort(), ["node", "py", "raw", "w1"])
          assertNoProcessLeft(Object.values(run.agentPids))
          const states = yield* lastStates(APP_AGENTS).pipe(Effect.provide(Store.layerSqlite({ filename })))
          assert.deepStrictEqual(states, allStopped(APP_AGENTS))
        }).pipe(Effect.provide(TestLive)),
      120_000
    )
  }

  // ---- item 6: stop order after a nested supervisor restarted ----

  const dbW1Tail = (rec: Recorder) =>
    Supervisor.make({
      name: "root",
      intensity: { maxRestarts: 10, window: "1 minute" },
      onEvent: rec.onEvent,
      children: [
        echo("db"),
        Supervisor.supervisor({
          id: "w1",
          intensity: { maxRestarts: 0, window: "1 minute" },
          children: [echo("x"), echo("y")]
        }),
        echo("tail")
      ]
    })

  const startedAt = (supervisor: string, child: string) => (e: Event) =>
    e._tag === "ChildStarted" && e.supervisor === supervisor && e.child === child

  it.scopedLive("6: after w1 escalated and was rebuilt, the tree stops as tail, w1, db; one ChildStopped per stop", () =>
    Effect.gen(function*() {
      const rec = yield* recorder
      const scope = yield* closeableScope
      const sup = yield* dbW1Tail(rec).pipe(Scope.extend(scope))
      yield* skipQueued(rec)
      yield* crash(yield* sup.childSupervisor("w1"), "x")
      yield* until(rec.queue, startedAt("root", "w1"))
      // The escalation stopped x and y once each (x had crashed: its stop is the end of its incarnation).
      assert.deepStrictEqual(countBy(stopsOf(rec.all, "root/w1")), { x: 1, y: 1 })
      assert.deepStrictEqual(countBy(agentStops(rec.all)), { x: 1, y: 1 })
      const mark = rec.all.length
      yield* Scope.close(scope, Exit.void)
      const shutdown = rec.all.slice(mark)
      assert.deepStrictEqual(stopsOf(shutdown, "root"), ["tail", "w1", "db"])
      assert.deepStrictEqual(stopsOf(shutdown, "root/w1"), ["y", "x"])
      assert.deepStrictEqual(agentStops(shutdown), ["tail", "y", "x", "db"])
      assertNoProcessLeft(spawnedPids(rec.all))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("6: after restartChild of w1 and a restart of db, the tree still stops as tail, w1, db", () =>
    Effect.gen(function*() {
      const rec = yield* recorder
      const scope = yield* closeableScope
      const sup = yield* dbW1Tail(rec).pipe(Scope.extend(scope))
      yield* skipQueued(rec)
      yield* sup.terminateChild("w1")
      yield* sup.restartChild("w1")
      yield* crash(sup, "db")
      yield* until(rec.queue, isRunning("db"))
      // terminateChild stopped w1 once and each of its children once
      assert.deepStrictEqual(countBy(stopsOf(rec.all, "root")), { w1: 1 })
      assert.deepStrictEqual(countBy(stopsOf(rec.all, "root/w1")), { x: 1, y: 1 })
      const mark = rec.all.length
      yield* Scope.close(scope, Exit.void)
      const shutdown = rec.all.slice(mark)
      assert.deepStrictEqual(stopsOf(shutdown, "root"), ["tail", "w1", "db"])
      assert.deepStrictEqual(agentStops(shutdown), ["tail", "y", "x", "db"])
      assertNoProcessLeft(spawnedPids(rec.all))
    }).pipe(Effect.provide(TestLive)))

  // ---- item 7: events and views ----

  it.scopedLive("7: every start is one ChildStarted, first starts and restarts alike, through onEvent from make", () =>
    Effect.gen(function*() {
      const rec = yield* recorder
      const sup = yield* Supervisor.make({
        name: "group",
        strategy: "one-for-all",
        intensity: { maxRestarts: 10, window: "1 minute" },
        onEvent: rec.onEvent,
        children: [echo("a"), echo("b")]
      })
      const started = (events: ReadonlyArray<Event>) =>
        events.flatMap((e) => e._tag === "ChildStarted" && e.supervisor === "group" ? [e.child] : [])
      // The first starts happened inside make, before it returned: onEvent saw them.
      assert.deepStrictEqual(started(rec.all), ["a", "b"])
      yield* skipQueued(rec)
      for (let i = 0; i < 2; i++) {
        yield* crash(sup, "a")
        yield* until(rec.queue, startedAt("group", "b"))
      }
      assert.deepStrictEqual(started(rec.all), ["a", "b", "a", "b", "a", "b"])
      const runs = rec.all.flatMap((e) =>
        isRunning("a")(e) || isRunning("b")(e) ? [(e as { child: string }).child] : []
      )
      assert.deepStrictEqual(runs, started(rec.all))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("7: a tree's events arrive in causal order, the same through onEvent and subscribe", () =>
    Effect.gen(function*() {
      const rec = yield* recorder
      const sup = yield* dbW1Tail(rec)
      yield* skipQueued(rec)
      const subscription = yield* sup.subscribe
      const mark = rec.all.length
      const w1 = yield* sup.childSupervisor("w1")
      yield* crash(w1, "x")
      yield* until(rec.queue, startedAt("root", "w1"))
      const events = rec.all.slice(mark)
      // The root's subscribers see exactly what onEvent saw, in the same order.
      const subscribed: Array<Event> = []
      while (subscribed.length < events.length) subscribed.push(yield* Queue.take(subscription))
      assert.deepStrictEqual(subscribed, events)
      const at = (what: string, match: (e: Event) => boolean) => {
        const index = events.findIndex(match)
        assert.isAtLeast(index, 0, `no ${what}`)
        return index
      }
      const chain = [
        at("Exited of x", (e) => e._tag === "Agent" && e.child === "x" && e.event._tag === "Exited"),
        at(
          "x RUNNING -> CRASHED",
          (e) =>
            e._tag === "Agent" && e.child === "x" && e.event._tag === "StateChanged" && e.event.from === "RUNNING" &&
            e.event.to === "CRASHED"
        ),
        at("ChildExited of x", (e) => e._tag === "ChildExited" && e.supervisor === "root/w1" && e.child === "x"),
        at("w1's ChildStopped of y", (e) => e._tag === "ChildStopped" && e.supervisor === "root/w1" && e.child === "y"),
        at("w1's ChildStopped of x", (e) => e._tag === "ChildStopped" && e.supervisor === "root/w1" && e.child === "x"),
        at("Escalated of w1", (e) => e._tag === "Escalated" && e.supervisor === "root/w1"),
        at("ChildExited of w1", (e) => e._tag === "ChildExited" && e.supervisor === "root" && e.child === "w1"),
        at("RestartScheduled of w1", (e) => e._tag === "RestartScheduled" && e.record.child === "w1"),
        at("x STARTING again", (e) => isStarting("x")(e)),
        at("ChildStarted of the new x", startedAt("root/w1", "x")),
        at("ChildStarted of the new w1", startedAt("root", "w1"))
      ]
      assert.deepStrictEqual(chain, [...chain].sort((l, r) => l - r))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("7: with Supervisor.layer, onEvent sees the tree's whole history from its first start", () => {
    const seen: Array<Event> = []
    return Effect.gen(function*() {
      const sup = yield* Supervisor.RootSupervisor
      const first = seen[0]
      assert.isTrue(
        first._tag === "Agent" && first.child === "a" && first.event._tag === "StateChanged" &&
          first.event.from === "IDLE" && first.event.to === "STARTING",
        JSON.stringify(first)
      )
      const started = seen.flatMap((e) => e._tag === "ChildStarted" ? [`${e.supervisor}:${e.child}`] : [])
      assert.deepStrictEqual(started, ["layered:a", "layered/nested:n1", "layered:nested", "layered:c"])
      assert.strictEqual(yield* sup.call("c", { echo: "up" }), "up")
    }).pipe(
      Effect.provide(
        Supervisor.layer({
          name: "layered",
          onEvent: (event) => Effect.sync(() => seen.push(event)),
          children: [echo("a"), Supervisor.supervisor({ id: "nested", children: [echo("n1")] }), echo("c")]
        }).pipe(Layer.provideMerge(TestLive))
      )
    )
  })

  it.scopedLive("7: whichChildren names nested supervisors, shows parked children, and agrees with restartChild", () =>
    Effect.gen(function*() {
      const rec = yield* recorder
      const file = switchFile()
      const sup = yield* Supervisor.make({
        name: "tree",
        intensity: { maxRestarts: 100, window: "1 minute" },
        onEvent: rec.onEvent,
        children: [
          echo("slowly", { restartBackoff: "1 minute", jitter: 0 }),
          echo("fragile", { maxRestartAttempts: 0 }),
          Supervisor.agent({
            id: "done",
            restart: "transient",
            config: agentConfig("echo", { name: "done-agent" })
          }),
          withFile("hang", "no-ready-unless", file, { startupTimeout: "1 minute" }),
          Supervisor.supervisor({ id: "nested", children: [echo("n1")] })
        ]
      })
      yield* skipQueued(rec)
      const infoOf = (id: string) => Effect.map(sup.whichChildren, (children) => children.find((c) => c.id === id))
      /**
       * What whichChildren says of `id`, then what restartChild answers: "running" and "restarting" are refusals
       * with that reason, "stopped" a start (after which whichChildren says "running").
       */
      const agrees = (id: string) =>
        Effect.gen(function*() {
          const info = yield* infoOf(id)
          const answer = yield* Effect.either(sup.restartChild(id))
          const got = answer._tag === "Right"
            ? "started"
            : answer.left._tag === "SupervisorChildError"
            ? answer.left.reason
            : answer.left._tag
          const expected = info === undefined ? "not_found" : info.status === "stopped" ? "started" : info.status
          assert.strictEqual(got, expected, `${id}: whichChildren said ${JSON.stringify(info)}`)
          if (got === "started") assert.strictEqual((yield* infoOf(id))?.status, "running")
          return info
        })
      const view = (info: Supervisor.ChildInfo | undefined) =>
        info === undefined ? undefined : [info.status, info.state, info.parked]

      // running
      assert.deepStrictEqual(view(yield* agrees("slowly")), ["running", "RUNNING", false])
      // restarting: waiting out its backoff
      yield* crash(sup, "slowly")
      yield* until(rec.queue, (e) => e._tag === "RestartScheduled" && e.record.child === "slowly")
      assert.deepStrictEqual(view(yield* agrees("slowly")), ["restarting", "RESTARTING", false])
      // stopped by hand
      yield* sup.terminateChild("slowly")
      assert.deepStrictEqual(view(yield* agrees("slowly")), ["stopped", "STOPPED", false])
      // parked: the circuit opened; the agent stays CRASHED until restarted by hand
      yield* crash(sup, "fragile")
      yield* until(rec.queue, (e) => e._tag === "ChildParked" && e.child === "fragile")
      assert.deepStrictEqual(view(yield* agrees("fragile")), ["stopped", "CRASHED", true])
      assert.deepStrictEqual(view(yield* infoOf("fragile")), ["running", "RUNNING", false])
      // a transient child that ended normally: stopped, kept
      yield* crash(sup, "done", 0)
      yield* until(rec.queue, entered("done", "STOPPED"))
      assert.deepStrictEqual(view(yield* agrees("done")), ["stopped", "STOPPED", false])
      // being restarted: running for the supervisor while its new incarnation starts
      fs.rmSync(file)
      yield* crash(sup, "hang")
      yield* until(rec.queue, isStarting("hang"))
      assert.deepStrictEqual(view(yield* agrees("hang")), ["running", "STARTING", false])
      yield* sup.terminateChild("hang")
      // a nested supervisor: named by its path in the tree, whatever its state
      const nested = yield* agrees("nested")
      assert.deepStrictEqual([nested?.kind, nested?.name, view(nested)], [
        "supervisor",
        "tree/nested",
        ["running", "RUNNING", false]
      ])
      yield* sup.terminateChild("nested")
      assert.deepStrictEqual(view(yield* agrees("nested")), ["stopped", "STOPPED", false])
      assert.strictEqual((yield* infoOf("nested"))?.name, "tree/nested")
      // an agent is named by its agent's name
      assert.strictEqual((yield* infoOf("done"))?.name, "done-agent")
      // gone
      yield* sup.terminateChild("done")
      yield* sup.deleteChild("done")
      assert.isUndefined(yield* agrees("done"))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("7: a restartChild or startChild whose caller gives up leaves nothing running unsupervised", () =>
    Effect.gen(function*() {
      const rec = yield* recorder
      const sup = yield* Supervisor.make({ onEvent: rec.onEvent, children: [slowToRestart("late", 1.5, tempDir())] })
      yield* sup.terminateChild("late")
      yield* skipQueued(rec)
      // Its start now takes 1.5 s: the caller gives up long before.
      const gaveUp = yield* sup.restartChild("late").pipe(Effect.timeoutOption("200 millis"))
      assert.isTrue(Option.isNone(gaveUp))
      const ended = yield* until(rec.queue, (e) => isRunning("late")(e) || entered("late", "STOPPED")(e))
      assert.isTrue(entered("late", "STOPPED")(ended[ended.length - 1]), "the abandoned start went on")
      const info = (yield* sup.whichChildren)[0]
      assert.deepStrictEqual([info.status, info.state], ["stopped", "STOPPED"])
      yield* sup.restartChild("late")
      assert.strictEqual(yield* sup.call("late", { echo: "back" }), "back")
      // Same for startChild: the child is not added, its process is gone, its id is free.
      const gaveUpAgain = yield* sup.startChild(
        Supervisor.agent({ id: "never", config: agentConfig("no-ready", { name: "never" }) })
      ).pipe(Effect.timeoutOption("300 millis"))
      assert.isTrue(Option.isNone(gaveUpAgain))
      assert.deepStrictEqual((yield* sup.whichChildren).map((c) => c.id), ["late"])
      const spawned = spawnedPids(rec.all.filter((e) => e._tag === "Agent" && e.child === "never"))
      assert.strictEqual(spawned.length, 1)
      assertNoProcessLeft(spawned)
      yield* sup.startChild(echo("never"))
      assert.strictEqual(yield* sup.call("never", { echo: "now" }), "now")
    }).pipe(Effect.provide(TestLive)))

  // ---- item 8: restarts do not wait for each other ----

  // Each restart below waits for a gate the test opens: what is asserted is the order of events, not a time.
  it.scopedLive("8: a slow restart does not hold up a fast one", () =>
    Effect.gen(function*() {
      const rec = yield* recorder
      const dir = tempDir()
      const gate = path.join(dir, "gate")
      const sup = yield* Supervisor.make({
        intensity: { maxRestarts: 10, window: "1 minute" },
        onEvent: rec.onEvent,
        children: [slowToRestart("slow", { gate }, dir), echo("fast")]
      })
      yield* skipQueued(rec)
      const before = yield* pids(sup)
      process.kill(before.slow!, "SIGKILL")
      yield* until(rec.queue, isStarting("slow")) // its restart is under way, and waits for the gate
      process.kill(before.fast!, "SIGKILL")
      const seen = yield* until(rec.queue, isRunning("fast"))
      assert.isFalse(seen.some(isRunning("slow")), "the slow child's restart cannot have ended")
      fs.writeFileSync(gate, "")
      yield* until(rec.queue, isRunning("slow"))
      assert.strictEqual(yield* sup.call("slow", { echo: "back" }), "back")
    }).pipe(Effect.provide(TestLive)), 60_000)

  it.scopedLive(
    "8: ten children killed at once restart together: all ten are starting again before any is running",
    () =>
      Effect.gen(function*() {
        const rec = yield* recorder
        const dir = tempDir()
        const gate = path.join(dir, "gate")
        const ids = Array.from({ length: 10 }, (_, i) => `k${i}`)
        const sup = yield* Supervisor.make({
          intensity: { maxRestarts: 100, window: "1 minute" },
          onEvent: rec.onEvent,
          children: ids.map((id) => slowToRestart(id, { gate }, dir))
        })
        yield* skipQueued(rec)
        const all = yield* pids(sup)
        for (const id of ids) process.kill(all[id]!, "SIGKILL")
        // Serialised restarts would leave the second waiting behind the first, which waits for the gate: this
        // wait would never end (the test's timeout)
        yield* untilAll(rec.queue, ids.map(isStarting))
        fs.writeFileSync(gate, "")
        yield* untilAll(rec.queue, ids.map(isRunning))
        const after = yield* pids(sup)
        for (const id of ids) assert.notStrictEqual(after[id], all[id])
      }).pipe(Effect.provide(TestLive)),
    90_000
  )
})

// ---- item 9: one store record per restart ----

const restartRecords = (name: string, store: Layer.Layer<Store.Store, unknown>) =>
  it.scopedLive(`9: a crash loop of N restarts leaves N restart records (${name})`, () =>
    Effect.gen(function*() {
      const rec = yield* recorder
      const never = path.join(tempDir(), "never-there")
      const scope = yield* closeableScope
      const sup = yield* Supervisor.make({
        name: "looping",
        intensity: { maxRestarts: 1000, window: "1 minute" },
        onEvent: rec.onEvent,
        children: [withFile("loop", "crash-unless", never, { maxRestartAttempts: 1000, jitter: 0 })]
      }).pipe(Scope.extend(scope))
      for (let n = 1; n <= 5; n++) {
        yield* until(rec.queue, (e) => e._tag === "RestartScheduled" && e.record.attempt === n)
      }
      yield* sup.terminateChild("loop")
      const decided = rec.all.filter((e) => e._tag === "RestartScheduled").length
      const scheduledByAgent = rec.all.filter((e) => e._tag === "Agent" && e.event._tag === "RestartScheduled").length
      assert.isAtLeast(decided, 5)
      assert.strictEqual(scheduledByAgent, decided)
      yield* Scope.close(scope, Exit.void) // flushes the writers
      const records = yield* Effect.orDie(Effect.flatMap(Store.Store, (s) => s.restartHistory()))
      assert.deepStrictEqual(
        records.map((r) => [r.agent_name, r.attempt]),
        Array.from({ length: decided }, (_, i) => ["looping/loop", decided - i])
      )

      // A standalone agent records its own restarts, under its name, once each too.
      const config = agentConfig("crash-unless", {
        name: "alone",
        restartBackoff: 0,
        jitter: 0,
        maxRestartAttempts: 1000
      })
      const agentScope = yield* closeableScope
      const agent = yield* AgentSupervisor.make({ ...config, args: [...config.args!, never] }).pipe(
        Scope.extend(agentScope)
      )
      const agentEvents = yield* agent.subscribe
      while (true) {
        const event = yield* Queue.take(agentEvents)
        if (event._tag === "RestartScheduled" && event.attempt >= 5) break
      }
      yield* agent.stop
      const restarts = (yield* agent.metadata).restartCount
      yield* Scope.close(agentScope, Exit.void)
      const own = yield* Effect.orDie(Effect.flatMap(Store.Store, (s) => s.restartHistory("alone")))
      assert.deepStrictEqual(own.map((r) => r.attempt), Array.from({ length: restarts }, (_, i) => restarts - i))
    }).pipe(Effect.provide(Layer.merge(TestLive, store))), 60_000)

describe.sequential("Supervisor hardening: store records", () => {
  restartRecords(
    "SQLite",
    Layer.unwrapScoped(
      Effect.map(
        Effect.acquireRelease(Effect.sync(tempDir), (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true }))),
        (dir) => Store.layerSqlite({ filename: path.join(dir, "restarts.sqlite") })
      )
    )
  )
  describeWithService("PostgreSQL", pgMissing, () => {
    restartRecords("PostgreSQL", pgLayer())
  })
})

/**
 * A tree that restores (issue 17 item 8): with `restore: true`, the children added by `startChild` and the parked
 * ones are kept in the store, and a tree made again (the next run of the application) brings them back, the parked
 * ones parked until `restartChild`. In process over the memory and SQLite stores, then a real application on SQLite
 * killed with SIGKILL and started again.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Config from "../src/Agent/Config.js"
import { StoreError } from "../src/Errors.js"
import * as Spec from "../src/internal/supervisor/spec.js"
import * as Stored from "../src/internal/supervisor/stored.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import {
  agentConfig,
  eventually,
  eventuallyEffect,
  failureOf,
  fixture,
  isAlive,
  spawnApp,
  tempDir,
  TestLive
} from "./support.js"

/** A spec decoded as added to a supervisor with no children. */
const NO_SIBLINGS: Spec.Present = { count: 0, siblings: () => [] }

const echo = (id: string) => Supervisor.agent({ id, config: agentConfig("echo", { name: `restore-${id}` }) })

/** An agent that crashes right after ready while `file` is missing, and is parked at its first crash. */
const crashing = (id: string, file: string) => {
  const config = agentConfig("crash-unless", { name: `restore-${id}`, maxRestartAttempts: 0 })
  return Supervisor.agent({ id, config: { ...config, args: [...config.args!, file] } })
}

const summary = (sup: Supervisor.Supervisor) =>
  Effect.map(sup.whichChildren, (children) => children.map((c) => `${c.id}:${c.status}${c.parked ? ":parked" : ""}`))

/** Every line logged from Warning up, kept out of the test output. */
const captureLog = () => {
  const lines: Array<{ readonly level: string; readonly text: string }> = []
  const logger = Logger.make(({ cause, logLevel, message }) => {
    const text = Array.isArray(message) ? message.join(" ") : String(message)
    lines.push({ level: logLevel.label, text: `${text}\n${Cause.isEmpty(cause) ? "" : Cause.pretty(cause)}` })
  })
  return {
    lines,
    layer: Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.Warning))
  }
}

/** `TestLive` without the logs: parking a child is logged at Error level. */
const Quiet = Layer.merge(TestLive, Logger.replace(Logger.defaultLogger, Logger.none))

/** Runs `f` with a tree made over `store` in a scope of its own, closed afterwards (an application's run). */
const run = <A, E>(
  store: Store.Store["Type"],
  options: Supervisor.Options,
  f: (sup: Supervisor.Supervisor) => Effect.Effect<A, E, Scope.Scope>
) => Effect.scoped(Effect.flatMap(Supervisor.make(options), f)).pipe(Effect.provideService(Store.Store, store))

const stores: ReadonlyArray<readonly [string, Effect.Effect<Store.Store["Type"], unknown, Scope.Scope>]> = [
  ["memory", Store.makeMemory()],
  [
    "SQLite",
    Effect.flatMap(
      tempDir("restore-sqlite"),
      (dir) =>
        Effect.map(
          Layer.build(Store.layerSqlite({ filename: path.join(dir, "agents.sqlite") })),
          (context) => Context.get(context, Store.Store)
        )
    )
  ]
]

describe.sequential("Supervisor restore, in process", () => {
  for (const [name, makeStore] of stores) {
    it.scopedLive(
      `${name}: dynamic children come back, parked ones parked, deleted ones not, statics once`,
      () =>
        Effect.gen(function*() {
          const store = yield* makeStore
          const file = path.join(yield* tempDir("restore-switch"), "ok")
          const options: Supervisor.Options = { restore: true, children: [echo("s")] }
          yield* run(store, options, (sup) =>
            Effect.gen(function*() {
              const events = yield* sup.subscribe
              yield* sup.startChild(echo("d1"))
              yield* sup.startChild(crashing("d2", file))
              yield* sup.startChild(echo("gone"))
              yield* sup.startChild(Supervisor.supervisor({ id: "sub", children: [echo("n1")] }))
              const sub = yield* sup.childSupervisor("sub")
              yield* sub.startChild(echo("x"))
              yield* sup.terminateChild("gone")
              yield* sup.deleteChild("gone")
              while ((yield* Queue.take(events))._tag !== "ChildParked");
              assert.deepStrictEqual(yield* summary(sup), [
                "sub:running",
                "d2:stopped:parked",
                "d1:running",
                "s:running"
              ])
            }))
          const records = yield* store.listChildren!()
          assert.deepStrictEqual(records.map((r) => [r.supervisor, r.child_id, r.parked, r.spec !== undefined]), [
            ["root", "d1", false, true],
            ["root", "d2", true, true],
            ["root", "sub", false, true],
            ["root/sub", "x", false, true]
          ])

          // The next run: d2 parked until restarted by hand, n1 and x back in the nested supervisor, gone gone.
          yield* run(store, options, (sup) =>
            Effect.gen(function*() {
              assert.deepStrictEqual(yield* summary(sup), [
                "sub:running",
                "d2:stopped:parked",
                "d1:running",
                "s:running"
              ])
              assert.deepStrictEqual(yield* sup.call("d1", { echo: "back" }), "back")
              const sub = yield* sup.childSupervisor("sub")
              assert.deepStrictEqual(yield* summary(sub), ["x:running", "n1:running"])
              assert.deepStrictEqual(yield* sub.call("x", { echo: "x" }), "x")
              fs.writeFileSync(file, "")
              yield* sup.restartChild("d2")
              assert.deepStrictEqual((yield* summary(sup))[1], "d2:running")
              // A dynamic nested supervisor deleted: its own children's records go with it.
              yield* sup.terminateChild("sub")
              yield* sup.deleteChild("sub")
            }))
          assert.deepStrictEqual((yield* store.listChildren!()).map((r) => [r.supervisor, r.child_id, r.parked]), [
            ["root", "d1", false],
            ["root", "d2", false]
          ])
          yield* run(store, options, (sup) =>
            Effect.map(
              summary(sup),
              (children) => assert.deepStrictEqual(children, ["d2:running", "d1:running", "s:running"])
            ))
        }).pipe(Effect.provide(Quiet)),
      60_000
    )
  }

  it.scopedLive(
    "a scale and a reload's new configuration of a dynamic child outlive the tree; a static pool's scale does not",
    () =>
      Effect.gen(function*() {
        const store = yield* Store.makeMemory()
        const pool = (id: string, size: number) =>
          Supervisor.pool({ id, size, config: agentConfig("echo", { name: `restore-${id}` }) })
        const options: Supervisor.Options = { restore: true, children: [pool("fixed", 1)] }
        yield* run(store, options, (sup) =>
          Effect.gen(function*() {
            yield* sup.startChild(pool("workers", 1))
            yield* sup.startChild(echo("d"))
            yield* sup.startChild(Supervisor.supervisor({ id: "sub", children: [pool("inner", 1)] }))
            yield* sup.scale("workers", 3)
            // a pool of a nested supervisor added by startChild: the nested one's record is written again
            yield* (yield* sup.childSupervisor("sub")).scale("inner", 2)
            yield* sup.scale("fixed", 2)
            yield* sup.reload("d", { config: agentConfig("echo", { name: "restore-d", requestTimeout: "42 seconds" }) })
          }))
        yield* run(store, options, (sup) =>
          Effect.gen(function*() {
            assert.strictEqual((yield* sup.poolInfo("workers")).size, 3)
            assert.deepStrictEqual((yield* sup.poolInfo("workers")).members.map((m) => m.id), ["0", "1", "2"])
            assert.strictEqual((yield* (yield* sup.childSupervisor("sub")).poolInfo("inner")).size, 2)
            // A static child is the code's: its size is the one the options give
            assert.strictEqual((yield* sup.poolInfo("fixed")).size, 1)
            const d = yield* sup.child("d")
            assert.deepStrictEqual(Duration.toMillis(d.config.requestTimeout), 42_000)
            assert.deepStrictEqual(yield* sup.call("workers", { echo: "w" }), "w")
          }))
      }).pipe(Effect.provide(Quiet)),
    60_000
  )

  it.scopedLive(
    "a nested supervisor restarted by its parent gets its dynamic children back",
    () =>
      Effect.gen(function*() {
        const store = yield* Store.makeMemory()
        const sub = Supervisor.supervisor({
          id: "sub",
          intensity: { maxRestarts: 0, window: "1 minute" },
          children: [echo("n1")]
        })
        const options: Supervisor.Options = {
          restore: true,
          intensity: { maxRestarts: 10, window: "1 minute" },
          children: [sub]
        }
        yield* run(store, options, (sup) =>
          Effect.gen(function*() {
            const events = yield* sup.subscribe
            const before = yield* sup.childSupervisor("sub")
            yield* before.startChild(echo("x"))
            yield* Effect.exit(before.call("n1", { crash: 1 }))
            while (true) {
              const event = yield* Queue.take(events)
              if (event._tag === "ChildStarted" && event.supervisor === "root" && event.child === "sub") break
            }
            const after = yield* sup.childSupervisor("sub")
            assert.notStrictEqual(after, before)
            assert.deepStrictEqual(yield* summary(after), ["x:running", "n1:running"])
          }))
      }).pipe(Effect.provide(Quiet)),
    60_000
  )

  it.scopedLive(
    "a static child parked stays parked; without restore nothing is written or read",
    () =>
      Effect.gen(function*() {
        const store = yield* Store.makeMemory()
        const file = path.join(yield* tempDir("restore-switch"), "ok")
        const options: Supervisor.Options = { restore: true, children: [echo("a"), crashing("b", file)] }
        yield* run(store, options, (sup) =>
          eventuallyEffect(
            "b parked",
            Effect.map(summary(sup), (c) => c.includes("b:stopped:parked"))
          ))
        assert.deepStrictEqual(yield* store.listChildren!(), [
          { supervisor: "root", child_id: "b", parked: true, updated_at: (yield* store.listChildren!())[0].updated_at }
        ])
        // Without restore: b starts (and crashes again), and nothing is written.
        yield* run(store, { children: [echo("a"), echo("b")] }, (sup) =>
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* summary(sup), ["b:running", "a:running"])
            yield* sup.startChild(echo("c"))
          }))
        assert.deepStrictEqual((yield* store.listChildren!()).map((r) => r.child_id), ["b"])
        yield* run(store, options, (sup) =>
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* summary(sup), ["b:stopped:parked", "a:running"])
            fs.writeFileSync(file, "")
            yield* sup.restartChild("b")
            // A static child's record only said that it was parked: it goes.
            yield* eventuallyEffect("b's record gone", Effect.map(store.listChildren!(), (r) => r.length === 0))
          }))
      }).pipe(Effect.provide(Quiet)),
    60_000
  )

  it.scopedLive(
    "a stored spec that no longer decodes is logged (ConfigError) and skipped; others start",
    () =>
      Effect.gen(function*() {
        const store = yield* Store.makeMemory()
        const spec = (input: Supervisor.ChildSpec) =>
          Effect.map(Spec.decodeAdded({ ...tree, children: [] }, NO_SIBLINGS, input), Stored.encode)
        const tree = {
          name: "root",
          strategy: "one-for-one",
          intensity: { maxRestarts: 1, window: Duration.seconds(5) },
          autoShutdown: "never",
          children: []
        } as const
        const good = yield* spec(echo("good"))
        const record = (child_id: string, text: string | undefined): Store.ChildRecord => ({
          supervisor: "root",
          child_id,
          parked: false,
          updated_at: 1,
          ...(text !== undefined ? { spec: text } : {})
        })
        const bad = JSON.parse(good)
        bad.spec.config.requestTimeout = "soon"
        for (
          const r of [
            record("not-json", "{nope"),
            record("future", JSON.stringify({ ...JSON.parse(good), format: 2 })),
            record("bad-config", JSON.stringify(bad)),
            record("good", good),
            record("wrong-id", good),
            record("s", yield* spec(echo("s"))),
            record("was-static", undefined)
          ]
        ) yield* store.saveChild!(r)
        const log = captureLog()
        yield* run(store, { restore: true, children: [echo("s")] }, (sup) =>
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* summary(sup), ["good:running", "s:running"])
          })).pipe(Effect.provide(log.layer))
        const errors = log.lines.filter((l) => l.level === "ERROR").map((l) => l.text)
        for (const id of ["not-json", "future", "bad-config", "wrong-id"]) {
          const line = errors.find((text) => text.includes(`child "${id}" in the store no longer decodes`))
          assert.isDefined(line, `${id}: ${JSON.stringify(errors)}`)
          assert.include(line, "ConfigError")
        }
        assert.include(errors.find((t) => t.includes("bad-config")), "requestTimeout")
        assert.isTrue(log.lines.some((l) => l.level === "WARN" && l.text.includes(`child "s" is static now`)))
        // What was skipped is removed from the store; the static child's record keeps no spec.
        assert.deepStrictEqual((yield* store.listChildren!()).map((r) => [r.child_id, r.spec === undefined]), [
          ["good", false],
          ["s", true]
        ])
      }).pipe(Effect.provide(Quiet)),
    60_000
  )

  it.scopedLive(
    "a restored child that no longer starts stays stopped, logged; the tree starts",
    () =>
      Effect.gen(function*() {
        const store = yield* Store.makeMemory()
        const file = path.join(yield* tempDir("restore-switch"), "ok")
        fs.writeFileSync(file, "")
        const config = agentConfig("fail-start-unless", { name: "restore-later" })
        const later = Supervisor.agent({ id: "later", config: { ...config, args: [...config.args!, file] } })
        yield* run(store, { restore: true }, (sup) => sup.startChild(later))
        fs.rmSync(file)
        const log = captureLog()
        yield* run(store, { restore: true, children: [echo("a")] }, (sup) =>
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* summary(sup), ["later:stopped", "a:running"])
            // listed, so not "not found": a call or a look at its agent says it is stopped and how to start it
            for (const refused of [yield* Effect.flip(sup.call("later", 1)), yield* Effect.flip(sup.child("later"))]) {
              assert.strictEqual(refused._tag === "SupervisorChildError" && refused.reason, "stopped", refused.message)
              assert.include(refused.remediation, "restartChild")
            }
            assert.strictEqual(failureOf(yield* Effect.exit(sup.restartChild("later")))._tag, "AgentStartupError")
            fs.writeFileSync(file, "")
            yield* sup.restartChild("later")
            assert.deepStrictEqual(yield* summary(sup), ["later:running", "a:running"])
          })).pipe(Effect.provide(log.layer))
        assert.isTrue(log.lines.some((l) => l.level === "ERROR" && l.text.includes(`"later", restored from the store`)))
      }).pipe(Effect.provide(Quiet)),
    60_000
  )

  it.scopedLive(
    "the store down: startChild starts the child, warns, and the record is written once it is back",
    () =>
      Effect.gen(function*() {
        const memory = yield* Store.makeMemory()
        let broken = false
        const down = (operation: string) =>
          Effect.fail(new StoreError({ operation, reason: "failure", detail: "connection refused" }))
        const store: Store.Store["Type"] = {
          ...memory,
          saveChild: (record) => broken ? down("saveChild") : memory.saveChild!(record)
        }
        const log = captureLog()
        yield* run(store, { restore: true, storeFlushTimeout: "300 millis" }, (sup) =>
          Effect.gen(function*() {
            broken = true
            yield* sup.startChild(echo("a"))
            assert.deepStrictEqual(yield* summary(sup), ["a:running"])
            assert.isTrue(log.lines.some((l) => l.text.includes(`the spec of child "a" is not in the store yet`)))
            assert.deepStrictEqual(yield* memory.listChildren!(), [])
            broken = false
            yield* eventuallyEffect("a written", Effect.map(memory.listChildren!(), (r) => r.length === 1))
          })).pipe(Effect.provide(log.layer))
      }).pipe(Effect.provide(Quiet)),
    60_000
  )

  it.effect("a store without child records: restore is a ConfigError at make", () =>
    Effect.gen(function*() {
      const { deleteChild: _d, listChildren: _l, saveChild: _s, ...old } = yield* Store.makeMemory()
      const exit = yield* Effect.exit(
        Effect.scoped(Supervisor.make({ restore: true })).pipe(
          Effect.provideService(Store.Store, old)
        )
      )
      const error = failureOf(exit)
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, "restore")
      assert.isTrue(Exit.isSuccess(
        yield* Effect.exit(
          Effect.scoped(Supervisor.make({})).pipe(
            Effect.provideService(Store.Store, old)
          )
        )
      ))
    }))

  it.effect("a stored spec decodes to the spec it was written from: durations, infinity, shutdown, nested trees", () =>
    Effect.gen(function*() {
      const tree = {
        name: "root",
        strategy: "one-for-one",
        intensity: { maxRestarts: 1, window: Duration.seconds(5) },
        autoShutdown: "any-significant",
        children: []
      } as const
      const specs: ReadonlyArray<Supervisor.ChildSpec> = [
        Supervisor.agent({
          id: "a",
          config: new Config.AgentConfig({
            name: "a",
            command: "x",
            requestTimeout: Duration.nanos(1_500_001n),
            resetAfter: Duration.infinity,
            maxBackoff: Duration.millis(1.5),
            env: { K: "v" },
            cwd: "/tmp"
          }),
          restart: "transient",
          shutdown: "brutal-kill",
          significant: true
        }),
        Supervisor.agent({ id: "b", config: { name: "b", command: "y", args: ["1"] }, shutdown: "infinity" }),
        Supervisor.supervisor({
          id: "sub",
          strategy: "rest-for-one",
          intensity: { maxRestarts: 3, window: "1 minute" },
          autoShutdown: "all-significant",
          children: [
            Supervisor.agent({ id: "c", config: { name: "c", command: "z" }, restart: "temporary", significant: true })
          ]
        })
      ]
      for (const input of specs) {
        const decoded = yield* Spec.decodeAdded(tree, NO_SIBLINGS, input)
        const text = Stored.encode(decoded)
        const again = yield* Spec.decodeAdded(tree, NO_SIBLINGS, Either.getOrThrow(Stored.decode(text)))
        assert.strictEqual(Stored.encode(again), text)
        assert.deepStrictEqual([again.id, again.restart, again.significant], [
          decoded.id,
          decoded.restart,
          decoded.significant
        ])
        if (again._tag === "Agent" && decoded._tag === "Agent") {
          const before = decoded.config as unknown as Record<string, unknown>
          const after = again.config as unknown as Record<string, unknown>
          assert.deepStrictEqual(Object.keys(after), Object.keys(before))
          for (const key of Object.keys(before)) {
            if (Duration.isDuration(before[key])) assert.isTrue(Equal.equals(after[key], before[key]), key)
            else assert.deepStrictEqual(after[key], before[key], key)
          }
        }
      }
      // A pool written before pools had a maxSize, scaled past today's default: it still decodes, at its size
      const old = (spec: Record<string, unknown>) => JSON.stringify({ format: 1, spec })
      const pool = { _tag: "Pool", id: "p", size: 1500, routing: "round-robin", config: { name: "p", command: "x" } }
      for (
        const [text, id] of [
          [old(pool), "p"],
          [old({ _tag: "Supervisor", id: "s", children: [pool] }), "s"]
        ] as const
      ) {
        const restored = yield* Spec.decodeAdded(tree, NO_SIBLINGS, Either.getOrThrow(Stored.decode(text)))
        assert.strictEqual(restored.id, id)
        const inner = restored._tag === "Supervisor" && restored.tree.pool === undefined
          ? restored.tree.children[0]
          : restored
        assert.deepStrictEqual(
          inner._tag === "Supervisor" ? [inner.tree.pool?.size, inner.tree.pool?.maxSize] : [],
          [1500, 1500]
        )
      }
    }))
})

// ---- a real application, killed with SIGKILL and started again ----

const appPath = fixture("apps", "restore-app.mjs")

interface Child {
  readonly id: string
  readonly status: string
  readonly parked: boolean
  readonly pid: number | null
}

interface App {
  readonly pid: number
  /** Sends one command and waits for its reply (the commands are answered in order). */
  readonly send: (command: Record<string, unknown>) => Effect.Effect<unknown, Error>
  /** Waits for a line with `key` (`ready`, `parked`). */
  readonly fact: (key: string) => Effect.Effect<Record<string, unknown>, Error>
  readonly stderr: () => string
  readonly exited: Effect.Effect<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Starts `restore-app.mjs` in a process group of its own (killed whole when the test ends). */
const startApp = (filename: string, switchFile: string) =>
  Effect.gen(function*() {
    const facts = yield* Queue.unbounded<Record<string, unknown>>()
    const replies = yield* Queue.unbounded<Record<string, unknown>>()
    const app = yield* spawnApp(appPath, [filename, switchFile], {
      stdin: true,
      onLine: (line) => {
        if (!line.startsWith("{")) return
        const parsed = JSON.parse(line) as Record<string, unknown>
        Queue.unsafeOffer("reply" in parsed ? replies : facts, parsed)
      }
    })
    const { child, stderr } = app
    const bounded = <A>(what: string, effect: Effect.Effect<A, Error>) =>
      effect.pipe(
        Effect.timeoutFail({
          duration: "60 seconds",
          onTimeout: () => new Error(`no ${what} from the app: ${stderr()}`)
        })
      )
    const fact = (key: string) =>
      bounded(
        key,
        Effect.gen(function*() {
          while (true) {
            const line = yield* Queue.take(facts)
            if (key in line) return line
          }
        })
      )
    let sent = 0
    const send = (command: Record<string, unknown>) =>
      Effect.gen(function*() {
        const reply = ++sent
        child.stdin!.write(JSON.stringify(command) + "\n")
        while (true) {
          const line = yield* bounded(`reply ${reply}`, Queue.take(replies))
          if (line.reply !== reply) continue
          if (line.ok !== true) return yield* Effect.fail(new Error(`${JSON.stringify(command)}: ${line.error}`))
          return line.result
        }
      })
    return {
      pid: app.pid,
      send,
      fact,
      stderr,
      exited: app.exited
    } satisfies App
  })

const which = (app: App, under?: string) =>
  Effect.map(
    app.send(under === undefined ? { op: "which" } : { op: "which", under }),
    (children) => children as ReadonlyArray<Child>
  )

const view = (children: ReadonlyArray<Child>) => children.map((c) => `${c.id}:${c.status}${c.parked ? ":parked" : ""}`)

/** The ids of the children parked in a SQLite store's file, read behind the application's back. */
const parkedInFile = (filename: string) =>
  Effect.scoped(
    Effect.flatMap(
      SqliteClient.make({ filename, readonly: true }).pipe(
        Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
      ),
      (sql) => sql<{ readonly child_id: string }>`SELECT child_id FROM agent_supervisor_children WHERE parked = 1`
    )
  ).pipe(Effect.map((rows) => rows.map((r) => r.child_id)), Effect.orElseSucceed((): Array<string> => []))

describe.sequential("Supervisor restore: an application killed with SIGKILL", () => {
  it.scopedLive(
    "started again, it finds its dynamic children back, the parked one parked until restartChild",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("restore-app")
        const filename = path.join(dir, "data", "agents.sqlite")
        const switchFile = path.join(dir, "switch")

        const first = yield* startApp(filename, switchFile)
        yield* first.fact("ready")
        yield* first.send({ op: "start", id: "d1", mode: "echo" })
        yield* first.send({ op: "start", id: "d2", mode: "crash-unless" })
        yield* first.send({ op: "start", id: "w1", mode: "echo", under: "workers" })
        yield* first.send({ op: "start", id: "gone", mode: "echo" })
        yield* first.send({ op: "terminate", id: "gone" })
        yield* first.send({ op: "delete", id: "gone" })
        assert.deepStrictEqual(yield* first.fact("parked"), { parked: "d2" })
        const before = yield* which(first)
        assert.deepStrictEqual(view(before), ["d2:stopped:parked", "d1:running", "workers:running", "static:running"])
        const agents = [...before, ...(yield* which(first, "workers"))].flatMap((c) => c.pid === null ? [] : [c.pid])
        assert.strictEqual(agents.length, 3)

        // The parked flag is written in the background, a moment after the decision: the test waits for the file to
        // hold it (startChild and deleteChild waited for theirs before they answered).
        yield* eventuallyEffect(
          "d2 parked in the file",
          Effect.map(parkedInFile(filename), (ids) => ids.includes("d2"))
        )
        process.kill(first.pid, "SIGKILL")
        assert.deepStrictEqual(yield* first.exited, { code: null, signal: "SIGKILL" })
        // Orphaned, the agents see their stdin end and exit.
        yield* eventually("the first run's agents exit", () => agents.every((pid) => !isAlive(pid)), "20 seconds")

        const second = yield* startApp(filename, switchFile)
        yield* second.fact("ready")
        const after = yield* which(second)
        assert.deepStrictEqual(view(after), ["d2:stopped:parked", "d1:running", "workers:running", "static:running"])
        assert.deepStrictEqual(view(yield* which(second, "workers")), ["w1:running"])
        assert.isNull(after[0].pid, "the parked child is not started")
        assert.deepStrictEqual(yield* second.send({ op: "call", id: "d1", payload: { echo: "again" } }), "again")
        assert.deepStrictEqual(
          yield* second.send({ op: "call", id: "w1", payload: { echo: "w" }, under: "workers" }),
          "w"
        )
        // Fixed, and restarted by hand: running, and no longer parked for the next run either.
        fs.writeFileSync(switchFile, "")
        yield* second.send({ op: "restart", id: "d2" })
        assert.deepStrictEqual(view(yield* which(second))[0], "d2:running")
        process.kill(second.pid, "SIGTERM")
        assert.deepStrictEqual(yield* second.exited, { code: 0, signal: null }, second.stderr())

        const third = yield* startApp(filename, switchFile)
        yield* third.fact("ready")
        assert.deepStrictEqual(view(yield* which(third)), [
          "d2:running",
          "d1:running",
          "workers:running",
          "static:running"
        ])
        process.kill(third.pid, "SIGTERM")
        assert.deepStrictEqual(yield* third.exited, { code: 0, signal: null }, third.stderr())
      }),
    120_000
  )
})

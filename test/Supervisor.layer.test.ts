/**
 * A tree as an application runs it (issue 17): its `Store` is a requirement of its type, never a silent in-memory
 * fallback (item 7), and an escalation at the root of `Supervisor.layer` ends the program the layer is provided to,
 * so that `runMain` exits non-zero; every operation on an escalated tree fails with its `SupervisorIntensityError`
 * (item 6).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as fs from "node:fs"
import * as path from "node:path"
import * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import type { SupervisorIntensityError } from "../src/Errors.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import {
  agentConfig,
  eventually,
  failureOf,
  fixture,
  groupMembers,
  isAlive,
  spawnApp,
  tempDir,
  TestLive
} from "./support.js"

const echo = (id: string) => Supervisor.agent({ id, config: agentConfig("echo", { name: id, restartBackoff: 0 }) })

/** A tree whose first crash escalates. */
const fragile = (onEvent?: (event: Supervisor.SupervisorEvent) => Effect.Effect<void>): Supervisor.Options => ({
  name: "fragile",
  intensity: { maxRestarts: 0, window: "1 minute" },
  children: [echo("a")],
  ...(onEvent === undefined ? {} : { onEvent })
})

/** An error's tag and fields (a traced operation may hand on a copy of it). */
const factsOf = (error: unknown) => ({ ...(error as object) })

const crash = (sup: Supervisor.Supervisor, id: string) => Effect.exit(sup.call(id, { crash: 1 }))

const pidOf = (sup: Supervisor.Supervisor, id: string) =>
  Effect.map(sup.whichChildren, (children) => Option.getOrThrow(children.find((c) => c.id === id)!.pid))

/** `TestLive` without the logs: these tests cause escalations, which are logged at Error level. */
const Quiet = Layer.merge(TestLive, Logger.replace(Logger.defaultLogger, Logger.none))

/** The error lines logged, kept out of the test output. */
const errorLog = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ cause, logLevel, message }) => {
    if (logLevel._tag !== "Error") return
    lines.push([message].flat().map(String).join(" ") + (Cause.isEmpty(cause) ? "" : "\n" + Cause.pretty(cause)))
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/**
 * Compiled by `tsc -p tsconfig.json` (never run): a tree without a `Store` does not compile, nor does one whose
 * store is merged beside it instead of provided to it. An unused `@ts-expect-error` fails the type check.
 */
export const typeChecks = () => {
  // @ts-expect-error Supervisor.make requires a Store
  Effect.runFork(Effect.scoped(Supervisor.make({})))
  // @ts-expect-error Supervisor.run too
  Effect.runFork(Supervisor.run({}))
  // @ts-expect-error AgentSupervisor.make too
  Effect.runFork(Effect.scoped(AgentSupervisor.make(agentConfig("echo"))))
  // @ts-expect-error a store merged beside the tree is not provided to it: the requirement stays
  Effect.runFork(Layer.launch(Layer.merge(Supervisor.layer({}), Store.layerMemory)))
  // The memory store is chosen by providing it.
  Effect.runFork(Layer.launch(Layer.provide(Supervisor.layer({}), Store.layerMemory)))
  Effect.runFork(Effect.scoped(Supervisor.make({})).pipe(Effect.provide(Store.layerMemory)))
}

describe("a supervisor's Store", () => {
  it.scoped("a store merged beside the tree (types bypassed) fails the build with a ConfigError, starts nothing", () =>
    Effect.gen(function*() {
      const events: Array<Supervisor.SupervisorEvent> = []
      const options = fragile((event) => Effect.sync(() => void events.push(event)))
      const beside = Layer.merge(Supervisor.layer(options), Store.layerMemory) as Layer.Layer<
        Supervisor.RootSupervisor | Store.Store,
        Supervisor.StartError
      >
      const error = failureOf(yield* Effect.exit(Layer.launch(beside)))
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual(error._tag === "ConfigError" ? error.field : undefined, "Store")
      assert.include(error.message, "Store.layerMemory")
      if (error._tag === "ConfigError") {
        assert.match(error.remediation, /^Store is missing from the supervisor's context: provide Store\.layerMemory/)
      }
      assert.deepStrictEqual(events, [])
      // The same for a standalone agent, whose writer would otherwise have been in memory.
      const standalone = AgentSupervisor.make(agentConfig("echo")) as Effect.Effect<
        AgentSupervisor.AgentSupervisor,
        unknown,
        never
      >
      const agentError = failureOf(yield* Effect.exit(Effect.scoped(standalone)))
      assert.deepStrictEqual([(agentError as { _tag: string })._tag, (agentError as { field: string }).field], [
        "ConfigError",
        "Store"
      ])
    }))

  it.scopedLive("the store provided to the tree is the one it writes to", () =>
    Effect.gen(function*() {
      const store = yield* Store.makeMemory()
      const sup = yield* Supervisor.make({ children: [echo("a")] }).pipe(
        Effect.provideService(Store.Store, store)
      )
      yield* sup.call("a", {})
      yield* eventually("the agent's state is written to that store", () => {
        const state = Effect.runSync(Effect.orDie(store.getState("a")))
        return Option.isSome(state) && state.value.state === "RUNNING"
      })
    }).pipe(Effect.provide(Quiet)))
})

describe.sequential("an escalated tree", () => {
  it.scopedLive("every operation fails with the SupervisorIntensityError, never a misleading error", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        ...fragile(),
        children: [echo("a"), Supervisor.supervisor({ id: "s", children: [echo("b")] })]
      })
      const pid = yield* pidOf(sup, "a")
      yield* crash(sup, "a")
      const escalation = failureOf(yield* Effect.exit(sup.await))
      assert.strictEqual(escalation._tag, "SupervisorIntensityError")
      const operations: Record<string, Effect.Effect<unknown, unknown>> = {
        call: sup.call("a", {}),
        callMissing: sup.call("missing", {}),
        child: sup.child("a"),
        childSupervisor: sup.childSupervisor("s"),
        startChild: sup.startChild(echo("late")),
        terminateChild: sup.terminateChild("a"),
        restartChild: sup.restartChild("a"),
        deleteChild: sup.deleteChild("a"),
        deleteMissing: sup.deleteChild("missing")
      }
      for (const [name, operation] of Object.entries(operations)) {
        assert.deepStrictEqual(factsOf(failureOf(yield* Effect.exit(operation))), factsOf(escalation), name)
      }
      // The views still tell what there is: every child stopped, none deleted.
      const children = yield* sup.whichChildren
      assert.deepStrictEqual(children.map((c) => [c.id, c.status]), [["s", "stopped"], ["a", "stopped"]])
      assert.deepStrictEqual(groupMembers(pid), [])
    }).pipe(Effect.provide(Quiet)))

  it.scopedLive("a request in flight to a child the escalation stops fails with the SupervisorIntensityError", () =>
    Effect.gen(function*() {
      // `b` starts first, so the escalation stops it last, after `a`: its request is in flight all along.
      const sup = yield* Supervisor.make({ ...fragile(), children: [echo("b"), echo("a")] })
      const b = yield* sup.child("b")
      const request = yield* Effect.fork(Effect.exit(sup.call("b", { sleep: 60_000 })))
      yield* b.metadata.pipe(
        Effect.repeat({ until: (meta) => meta.inFlight === 1, schedule: Schedule.spaced("10 millis") }),
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the request never went out") })
      )
      yield* crash(sup, "a")
      const escalation = failureOf(yield* Effect.exit(sup.await))
      assert.strictEqual(escalation._tag, "SupervisorIntensityError")
      assert.deepStrictEqual(factsOf(failureOf(yield* Fiber.join(request))), factsOf(escalation))
    }).pipe(Effect.provide(Quiet)))

  it.scopedLive("a nested supervisor that escalated: its old handle fails with its own error, the tree goes on", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        intensity: { maxRestarts: 10, window: "1 minute" },
        children: [
          Supervisor.supervisor({ id: "s", intensity: { maxRestarts: 0, window: "1 minute" }, children: [echo("b")] })
        ]
      })
      const events = yield* sup.subscribe
      const nested = yield* sup.childSupervisor("s")
      yield* crash(nested, "b")
      const escalation = failureOf(yield* Effect.exit(nested.await))
      assert.deepStrictEqual(factsOf(failureOf(yield* Effect.exit(nested.call("b", {})))), factsOf(escalation))
      // The parent restarts it: a new handle that works.
      while (true) {
        const event = yield* Queue.take(events)
        if (event._tag === "ChildStarted" && event.supervisor === "root" && event.child === "s") break
      }
      const again = yield* sup.childSupervisor("s")
      assert.strictEqual(yield* again.call("b", { echo: 1 }), 1)
    }).pipe(Effect.provide(Quiet)))
})

describe.sequential("Supervisor.layer: an escalation at the root", () => {
  /** `program` run with the tree's layer provided by `provide`, until the tree is up; then `a` crashes. */
  const escalateUnder = <A>(
    provide: (program: Effect.Effect<A, unknown, Supervisor.RootSupervisor>) => Effect.Effect<A, unknown, Store.Store>,
    program: (sup: Supervisor.Supervisor) => Effect.Effect<A, unknown>
  ) =>
    Effect.gen(function*() {
      const made = yield* Deferred.make<Supervisor.Supervisor>()
      const fiber = yield* Effect.fork(
        provide(
          Effect.flatMap(Supervisor.RootSupervisor, (sup) => Effect.zipRight(Deferred.succeed(made, sup), program(sup)))
        )
      )
      const sup = yield* Deferred.await(made)
      const pid = yield* pidOf(sup, "a")
      yield* crash(sup, "a")
      const escalation = failureOf(yield* Effect.exit(sup.await))
      return { exit: yield* Fiber.await(fiber), escalation, pid }
    })

  /** Ended with the escalation as a defect (an interruption alone would make `runMain` exit 0). */
  const assertEndedWith = (exit: Exit.Exit<unknown, unknown>, escalation: SupervisorIntensityError) => {
    assert.isTrue(Exit.isFailure(exit), "the program was ended")
    if (Exit.isSuccess(exit)) return
    assert.isFalse(Cause.isInterruptedOnly(exit.cause), "not a bare interruption")
    assert.deepStrictEqual(Chunk.toArray(Cause.defects(exit.cause)).map(factsOf), [factsOf(escalation)])
  }

  it.scopedLive("ends the program of Effect.provide(program, layer) with it; the log names it", () =>
    Effect.gen(function*() {
      const errors = errorLog()
      const { escalation, exit, pid } = yield* escalateUnder(
        (program) => Effect.provide(program, Supervisor.layer(fragile())),
        () => Effect.never
      ).pipe(Effect.provide(errors.layer))
      assertEndedWith(exit, escalation)
      assert.deepStrictEqual(groupMembers(pid), [])
      const logged = errors.lines.find((line) => line.includes("ending the program"))
      assert.isDefined(logged)
      assert.include(logged, "SupervisorIntensityError")
    }).pipe(Effect.provide(Quiet)))

  it.scopedLive("ends it also when the layer is built in parallel with others (Layer.merge, nested)", () =>
    Effect.gen(function*() {
      let closed = 0
      const other = Layer.scopedDiscard(Effect.addFinalizer(() => Effect.sync(() => closed++)))
      const app = Layer.mergeAll(other, Layer.merge(Supervisor.layer(fragile()), other.pipe(Layer.fresh)))
      const { escalation, exit } = yield* escalateUnder(
        (program) => Effect.provide(program, app),
        () => Effect.never
      )
      assertEndedWith(exit, escalation)
      assert.strictEqual(closed, 2, "the other services were closed")
    }).pipe(Effect.provide(Quiet)))

  it.scopedLive("onEscalation \"keep\": the program goes on, every operation fails with the error", () =>
    Effect.gen(function*() {
      const { escalation, exit } = yield* escalateUnder<ReadonlyArray<unknown>>(
        (program) => Effect.provide(program, Supervisor.layer({ ...fragile(), onEscalation: "keep" })),
        (sup) =>
          Effect.gen(function*() {
            const seen = failureOf(yield* Effect.exit(sup.await))
            const call = failureOf(yield* Effect.exit(sup.call("a", {})))
            const child = failureOf(yield* Effect.exit(sup.child("a")))
            return [seen, call, child]
          })
      )
      // The program ran to its end after the escalation: it was not ended.
      assert.isTrue(Exit.isSuccess(exit), String(exit))
      if (Exit.isSuccess(exit)) {
        assert.deepStrictEqual(exit.value.map(factsOf), [escalation, escalation, escalation].map(factsOf))
      }
    }).pipe(Effect.provide(Quiet)))

  it.effect("a bad onEscalation is a ConfigError naming it", () =>
    Effect.gen(function*() {
      const layer = Supervisor.layer({ onEscalation: "crash" as "fail" })
      const error = failureOf(yield* Effect.exit(Layer.launch(layer)))
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual(error._tag === "ConfigError" ? error.field : undefined, "onEscalation")
    }).pipe(Effect.provide(Store.layerMemory)))
})

// ---- an application in a child process, under NodeRuntime.runMain ----

const appPath = fixture("apps", "escalate-app.mjs")

interface App {
  /** Each JSON line of its stdout, as it comes. */
  readonly facts: Queue.Dequeue<Record<string, unknown>>
  readonly stderr: () => string
  readonly exited: Effect.Effect<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly pid: number
}

/** Starts `escalate-app.mjs` in `mode`, in a process group of its own (killed whole if the test ends first). */
const startApp = (mode: "fail" | "keep", switchFile: string) =>
  Effect.gen(function*() {
    const facts = yield* Queue.unbounded<Record<string, unknown>>()
    const app = yield* spawnApp(appPath, [mode, switchFile], {
      onLine: (line) => Queue.unsafeOffer(facts, JSON.parse(line) as Record<string, unknown>)
    })
    return {
      facts,
      stderr: app.stderr,
      exited: app.exited,
      pid: app.pid
    } satisfies App
  })

/** Takes facts until one has `key`; returns the pids of every agent spawned meanwhile, and that fact. */
const factWith = (app: App, key: string, spawned: Array<number>) =>
  Effect.gen(function*() {
    while (true) {
      const fact = yield* Queue.take(app.facts)
      if (typeof fact.spawned === "number") spawned.push(fact.spawned)
      if (key in fact) return fact
    }
  }).pipe(
    Effect.timeoutFail({
      duration: "60 seconds",
      onTimeout: () => new Error(`no "${key}" from the app: ${app.stderr()}`)
    })
  )

/** Makes the tree's only child fail for good: it will never start again, and the running one is killed. */
const breakChild = (switchFile: string, pid: number) =>
  Effect.sync(() => {
    fs.rmSync(switchFile)
    process.kill(pid, "SIGKILL")
  })

const assertNoAgentLeft = (appPid: number, spawned: ReadonlyArray<number>) => {
  assert.deepStrictEqual(spawned.filter(isAlive), [], "every agent process is gone")
  assert.deepStrictEqual(spawned.flatMap(groupMembers), [], "and every agent's process group")
  assert.deepStrictEqual(groupMembers(appPid).filter((pid) => pid !== appPid), [], "nothing left in the app's group")
}

describe.sequential("Supervisor.layer under NodeRuntime.runMain (a real application)", () => {
  it.scopedLive(
    "the root escalates: the application exits with code 1, names the error, leaves no agent behind",
    () =>
      Effect.gen(function*() {
        const switchFile = path.join(yield* tempDir("escalate-app"), "switch")
        fs.writeFileSync(switchFile, "")
        const app = yield* startApp("fail", switchFile)
        const spawned: Array<number> = []
        yield* factWith(app, "ready", spawned)
        yield* breakChild(switchFile, spawned[0])
        const { code, signal } = yield* app.exited.pipe(
          Effect.timeoutFail({
            duration: "60 seconds",
            onTimeout: () => new Error(`the app did not exit: ${app.stderr()}`)
          })
        )
        // Every agent spawned until the end: the facts the app wrote before it exited.
        for (const fact of Chunk.toArray(yield* Queue.takeAll(app.facts))) {
          if (typeof fact.spawned === "number") spawned.push(fact.spawned)
        }
        assert.deepStrictEqual([code, signal], [1, null], app.stderr())
        assert.include(app.stderr(), "SupervisorIntensityError")
        assert.include(app.stderr(), "the other service closed")
        assert.isAtLeast(spawned.length, 3, "the first start and the restarts that never got ready")
        assertNoAgentLeft(app.pid, spawned)
      }),
    90_000
  )

  it.scopedLive(
    "onEscalation \"keep\": the application stays up, its calls fail with SupervisorIntensityError",
    () =>
      Effect.gen(function*() {
        const switchFile = path.join(yield* tempDir("escalate-app"), "switch")
        fs.writeFileSync(switchFile, "")
        const app = yield* startApp("keep", switchFile)
        const spawned: Array<number> = []
        yield* factWith(app, "ready", spawned)
        yield* breakChild(switchFile, spawned[0])
        assert.deepStrictEqual(yield* factWith(app, "escalated", spawned), { escalated: "SupervisorIntensityError" })
        assert.deepStrictEqual(yield* factWith(app, "call", spawned), { call: "SupervisorIntensityError" })
        // Up after its program's last step, with the tree down: every agent gone.
        assert.isTrue(isAlive(app.pid))
        assertNoAgentLeft(app.pid, spawned)
        process.kill(app.pid, "SIGTERM")
        const { code } = yield* app.exited.pipe(
          Effect.timeoutFail({
            duration: "30 seconds",
            onTimeout: () => new Error(`the app did not exit: ${app.stderr()}`)
          })
        )
        assert.strictEqual(code, 0, app.stderr())
      }),
    90_000
  )
})

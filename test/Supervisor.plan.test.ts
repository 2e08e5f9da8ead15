/**
 * The restart plan as a pure function (OTP's strategies), property-tested without processes, and the decoding
 * of a tree at the edge.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Tracer from "effect/Tracer"
import type * as Config from "../src/Agent/Config.js"
import * as Plan from "../src/internal/supervisor/plan.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, failureOf } from "./support.js"

interface TestChild {
  readonly index: number
  readonly spec: { readonly restart: Config.RestartType }
}

const arbStrategy = FastCheck.constantFrom<Array<Supervisor.Strategy>>(
  "one-for-one",
  "one-for-all",
  "rest-for-one"
)
const arbRestart = FastCheck.constantFrom<Array<Config.RestartType>>("permanent", "transient", "temporary")

/** Children in start order and the one that crashed (never temporary: a temporary child's exit removes it). */
const arbCase = FastCheck.array(arbRestart, { minLength: 1, maxLength: 12 }).chain((restarts) =>
  FastCheck.tuple(
    FastCheck.constant(restarts.map((restart, index): TestChild => ({ index, spec: { restart } }))),
    FastCheck.integer({ min: 0, max: restarts.length - 1 })
  ).map(([children, at]) => {
    const crashed = children[at].spec.restart === "temporary"
      ? { index: at, spec: { restart: "permanent" as const } }
      : children[at]
    return { children: children.map((child, i) => i === at ? crashed : child), crashed }
  })
)

const indices = (children: ReadonlyArray<TestChild>) => children.map((child) => child.index)

/** The supervisor's restart code before it was a function of its own (affected set, then a reverse sweep). */
const previous = (children: ReadonlyArray<TestChild>, strategy: Supervisor.Strategy, crashed: TestChild) => {
  const set = strategy === "one-for-one"
    ? [crashed]
    : strategy === "one-for-all"
    ? [...children]
    : children.slice(children.indexOf(crashed))
  const stopped: Array<TestChild> = []
  const removed: Array<TestChild> = []
  const kept: Array<TestChild> = []
  for (const member of [...set].reverse()) {
    if (member === crashed) {
      kept.unshift(member)
      continue
    }
    stopped.push(member)
    if (member.spec.restart === "temporary") {
      removed.push(member)
      continue
    }
    kept.unshift(member)
  }
  return { members: set, stop: stopped, remove: removed, start: kept }
}

describe("Supervisor restart plan", () => {
  it.prop("one-for-one touches only the crashed child", [arbCase], ([{ children, crashed }]) => {
    const plan = Plan.plan(children, "one-for-one", crashed)
    assert.deepStrictEqual(plan, { members: [crashed], stop: [], remove: [], start: [crashed] })
  })

  it.prop("one-for-all touches every child", [arbCase], ([{ children, crashed }]) => {
    const plan = Plan.plan(children, "one-for-all", crashed)
    assert.deepStrictEqual(indices(plan.members), indices(children))
    assert.strictEqual(plan.stop.length, children.length - 1)
  })

  it.prop(
    "rest-for-one touches the crashed child and every child started after it",
    [arbCase],
    ([{ children, crashed }]) => {
      const plan = Plan.plan(children, "rest-for-one", crashed)
      assert.deepStrictEqual(
        indices(plan.members),
        indices(children).filter((i) => i >= crashed.index)
      )
    }
  )

  it.prop(
    "stops the bystanders in reverse start order, then starts in the original order",
    [arbCase, arbStrategy],
    ([{ children, crashed }, strategy]) => {
      const plan = Plan.plan(children, strategy, crashed)
      const stopped = indices(plan.stop)
      const started = indices(plan.start)
      // The crashed child has exited already: everything else in the set is stopped, newest first.
      assert.deepStrictEqual(stopped, indices(plan.members).filter((i) => i !== crashed.index).reverse())
      assert.deepStrictEqual(started, [...started].sort((a, b) => a - b))
      // Those stopped and started again go down in the reverse of the order they come back up in.
      assert.deepStrictEqual(
        stopped.filter((i) => started.includes(i)),
        started.filter((i) => i !== crashed.index).reverse()
      )
    }
  )

  it.prop(
    "temporary bystanders are removed, not restarted; the crashed child always restarts",
    [arbCase, arbStrategy],
    ([{ children, crashed }, strategy]) => {
      const plan = Plan.plan(children, strategy, crashed)
      assert.isTrue(plan.start.includes(crashed))
      assert.isTrue(plan.start.every((child) => child === crashed || child.spec.restart !== "temporary"))
      assert.deepStrictEqual(plan.remove, plan.stop.filter((child) => child.spec.restart === "temporary"))
      // Every member is either started again or removed, never both.
      assert.deepStrictEqual(
        [...plan.start, ...plan.remove].map((child) => child.index).sort((a, b) => a - b),
        indices(plan.members)
      )
    }
  )

  it.prop(
    "is what the supervisor's restart code did before it was a function of its own",
    [arbCase, arbStrategy],
    ([{ children, crashed }, strategy]) => {
      assert.deepStrictEqual(Plan.plan(children, strategy, crashed), previous(children, strategy, crashed))
    }
  )

  it("a child no longer among the children restarts alone", () => {
    const gone: TestChild = { index: 9, spec: { restart: "permanent" } }
    const children: Array<TestChild> = [{ index: 0, spec: { restart: "permanent" } }]
    for (const strategy of ["one-for-one", "one-for-all", "rest-for-one"] as const) {
      assert.deepStrictEqual(Plan.plan(children, strategy, gone), {
        members: [gone],
        stop: [],
        remove: [],
        start: [gone]
      })
    }
  })
})

describe("Supervisor specs are decoded at the edge", () => {
  const configErrorOf = <A, E>(effect: Effect.Effect<A, E, any>) =>
    Effect.map(Effect.exit(effect), (exit) => {
      const error = failureOf(exit) as { readonly _tag: string; readonly field?: string }
      assert.strictEqual(error._tag, "ConfigError")
      return error.field
    })

  it.scoped("a bad intensity window is a ConfigError, not a throw", () =>
    Effect.gen(function*() {
      const field = yield* configErrorOf(Supervisor.make({ intensity: { maxRestarts: 1, window: "5 secs" as any } }))
      assert.strictEqual(field, "intensity.window")
      const negative = yield* configErrorOf(Supervisor.make({ intensity: { maxRestarts: 1, window: -1 } }))
      assert.strictEqual(negative, "intensity.window")
    }))

  it.scoped("maxRestarts must be a whole number of 0 or more, with that rule whatever the wrong value's type", () =>
    Effect.gen(function*() {
      const field = yield* configErrorOf(Supervisor.make({ intensity: { maxRestarts: 1.5, window: "5 seconds" } }))
      assert.strictEqual(field, "intensity.maxRestarts")
      const text = yield* Effect.flip(Supervisor.make({ intensity: { maxRestarts: "3" as any, window: "5 seconds" } }))
      assert.include(text.message, "must be a whole number of 0 or more")
    }))

  it.scoped("a child that is not a spec (null, a number, no id) is a ConfigError naming its position, never a defect", () =>
    Effect.gen(function*() {
      for (const bad of [null, 42, undefined, { _tag: "Agent" }]) {
        const field = yield* configErrorOf(
          Supervisor.make({ children: [Supervisor.agent({ id: "ok", config: agentConfig("echo") }), bad as any] })
        )
        assert.strictEqual(field, "children[1]")
      }
      const sup = yield* Supervisor.make({})
      for (const bad of [null, 42, undefined]) {
        assert.strictEqual(yield* configErrorOf(sup.startChild(bad as any)), "children[0]")
      }
      assert.deepStrictEqual(yield* sup.countChildren, { specs: 0, active: 0, supervisors: 0, workers: 0 })
    }).pipe(Effect.provide(Store.layerMemory)))

  it.scoped("a strategy that does not exist is a ConfigError", () =>
    Effect.gen(function*() {
      const field = yield* configErrorOf(Supervisor.make({ strategy: "one-for-some" as any }))
      assert.strictEqual(field, "strategy")
    }))

  it.scoped("a bad shutdown of a nested agent names its place in the tree, before anything starts", () =>
    Effect.gen(function*() {
      const field = yield* configErrorOf(Supervisor.make({
        name: "top",
        children: [
          Supervisor.supervisor({
            id: "workers",
            children: [Supervisor.agent({ id: "w", config: agentConfig("echo"), shutdown: "soon" as any })]
          })
        ]
      }))
      assert.strictEqual(field, "children[0].children[0].shutdown")
    }))

  it.scoped("a nested supervisor's rules are checked with the whole tree", () =>
    Effect.gen(function*() {
      const field = yield* configErrorOf(Supervisor.make({
        children: [
          Supervisor.supervisor({
            id: "s",
            children: [
              Supervisor.agent({ id: "a", config: agentConfig("echo") }),
              Supervisor.agent({ id: "a", config: agentConfig("echo") })
            ]
          })
        ]
      }))
      assert.strictEqual(field, "children[0].children[1].id")
    }))

  it.scoped("startChild decodes its spec: a bad one is a ConfigError and is not added", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({})
      const field = yield* configErrorOf(
        sup.startChild(Supervisor.agent({ id: "x", config: agentConfig("echo"), shutdown: -5 }))
      )
      assert.strictEqual(field, "children[0].shutdown")
      const nested = yield* configErrorOf(
        sup.startChild(Supervisor.supervisor({ id: "s", intensity: { maxRestarts: -1, window: 0 } }))
      )
      assert.strictEqual(nested, "children[0].intensity.maxRestarts")
      assert.deepStrictEqual(yield* sup.countChildren, { specs: 0, active: 0, supervisors: 0, workers: 0 })
    }).pipe(Effect.provide(Store.layerMemory)))
})

describe("Supervisor spans", () => {
  it.scoped("make and each manual operation are spans naming the child; call is not", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const tracer = yield* Effect.tracer
      const recorder = Tracer.make({
        span: (...args) => {
          const span = tracer.span(...args)
          spans.push(span)
          return span
        },
        context: (f, fiber) => tracer.context(f, fiber)
      })
      yield* Effect.gen(function*() {
        const sup = yield* Supervisor.make({ name: "traced" })
        yield* Effect.flip(sup.startChild(Supervisor.agent({ id: "a", config: agentConfig("echo"), shutdown: -1 })))
        yield* Effect.flip(sup.terminateChild("b"))
        yield* Effect.flip(sup.restartChild("c"))
        yield* Effect.flip(sup.deleteChild("d"))
        yield* Effect.flip(sup.call("e", {}))
      }).pipe(Effect.withTracer(recorder), Effect.provide(Store.layerMemory))
      const named = spans.filter((span) => span.name.startsWith("Supervisor."))
      assert.deepStrictEqual(
        named.map((span) => [span.name, span.attributes.get("child")]),
        [
          ["Supervisor.make", undefined],
          ["Supervisor.startChild", "a"],
          ["Supervisor.terminateChild", "b"],
          ["Supervisor.restartChild", "c"],
          ["Supervisor.deleteChild", "d"]
        ]
      )
      assert.isTrue(named.slice(1).every((span) => span.attributes.get("supervisor") === "traced"))
    }))
})

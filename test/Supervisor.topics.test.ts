/**
 * Topics (`Topic.ts`, `Supervisor.publish`): a work queue over two subscribers, retries on the topic's Schedule and
 * the dead letter after the last, republish, fanout, the queue bound, a topic waiting for its first subscriber,
 * outcomes in the store, and every problem of the topics option in one ConfigError. Real agent processes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Adapters from "../src/Adapters.js"
import * as Metrics from "../src/Metrics.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import { agentConfig, eventuallyEffect, failureOf, fixture, logMessages, TestLive } from "./support.js"

/** The raw test agent: `{ whoami: true }` answers its pid, `{ fail: "..." }` fails the task. */
const raw = (id: string, topics: ReadonlyArray<string>) =>
  Supervisor.agent({ id, topics, config: agentConfig("echo", { name: id, restartBackoff: "50 millis" }) })

/** A Node adapter agent that answers its payload as it is. */
const echo = (id: string, topics: ReadonlyArray<string>) =>
  Supervisor.agent({
    id,
    topics,
    config: { name: id, ...Adapters.nodeCallback(fixture("node", "echo.mjs")), startupTimeout: "20 seconds" }
  })

const noDelay = Schedule.recurs(2)

describe("Supervisor topics", () => {
  it.scopedLive(
    "a work queue: each task to one subscriber, the least loaded first; both take their share",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [raw("a", ["work"]), raw("b", ["work"]), raw("other", [])] })
        const ids = yield* Effect.forEach([1, 2, 3, 4, 5, 6], () => sup.publish("work", { whoami: true, sleep: 100 }))
        assert.strictEqual(new Set(ids).size, 6)
        const pids = yield* Effect.forEach(ids, (id) => sup.awaitResult(id))
        const children = yield* sup.whichChildren
        const pidOf = (id: string) => Option.getOrThrow(children.find((c) => c.id === id)!.pid)
        const counts = new Map<number, number>()
        for (const reply of pids) {
          const pid = (reply as { pid: number }).pid
          counts.set(pid, (counts.get(pid) ?? 0) + 1)
        }
        assert.deepStrictEqual([...counts.keys()].sort(), [pidOf("a"), pidOf("b")].sort())
        assert.deepStrictEqual([...counts.values()], [3, 3], "in flight together: spread evenly")
        // An outcome is kept in the store too.
        const store = yield* Store.Store
        yield* eventuallyEffect(
          "the outcome in the store",
          Effect.map(store.getTask!(ids[0]), (record) => Option.isSome(record) && record.value.status === "succeeded")
        )
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "a failing task: retried on the topic's schedule, then dead-lettered with each error; republished",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          topics: { jobs: { retry: noDelay } },
          children: [raw("failing", ["jobs"])]
        })
        const id = yield* sup.publish("jobs", { fail: "boom" })
        const error = failureOf(yield* Effect.exit(sup.awaitResult(id)))
        assert.strictEqual(error._tag, "TaskFailedError")
        if (error._tag !== "TaskFailedError") return
        assert.strictEqual(error.attempts, 3)
        assert.deepStrictEqual(error.errors.map((e) => [e.attempt, e.child, e.tag]), [
          [1, "root/failing", "AgentTaskError"],
          [2, "root/failing", "AgentTaskError"],
          [3, "root/failing", "AgentTaskError"]
        ])
        assert.include(error.errors[0].message, "boom")
        const dead = yield* eventuallyEffect(
          "in the dead letters",
          Effect.map(sup.deadLetters({ topic: "jobs" }), (letters) => letters.length === 1)
        ).pipe(Effect.zipRight(sup.deadLetters()))
        assert.deepStrictEqual([dead[0].task_id, dead[0].status, dead[0].attempts], [id, "dead", 3])
        assert.deepStrictEqual(dead[0].payload, { fail: "boom" })

        // Fixed: the failing subscriber goes, one that answers comes; the task is sent again.
        yield* sup.terminateChild("failing")
        yield* sup.startChild(echo("fixed", ["jobs"]))
        const again = yield* sup.republish(id)
        assert.notStrictEqual(again, id)
        assert.deepStrictEqual(yield* sup.awaitResult(again), { fail: "boom" })
        assert.deepStrictEqual(yield* sup.deadLetters(), [])
        const tasks = (event: string) =>
          Effect.map(
            Metric.value(Metric.tagged(Metric.tagged(Metrics.topicTasks, "topic", "jobs"), "event", event)),
            (state) => state.count
          )
        assert.deepStrictEqual(
          [
            yield* tasks("published"),
            yield* tasks("retried"),
            yield* tasks("dead_lettered"),
            yield* tasks("delivered")
          ],
          [2, 2, 1, 1]
        )
        const notDead = failureOf(yield* Effect.exit(sup.republish(again)))
        assert.strictEqual(notDead._tag === "TopicError" && notDead.reason, "not_dead")
        const never = failureOf(yield* Effect.exit(sup.republish("no-such-task")))
        assert.strictEqual(never.message, "No task no-such-task: neither in flight nor in the store")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "topics: those declared, those a child takes or took (nested, stopped or not), those with tasks; subscribers, " +
      "queued; a task's outcome at once",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          topics: { declared: { maxQueued: 5 } },
          children: [
            raw("a", ["work", "news"]),
            Supervisor.supervisor({ id: "group", children: [raw("b", ["news"])] }),
            raw("c", [])
          ]
        })
        yield* sup.terminateChild("a") // stopped: still its topics' subscriber (it may be started again)
        yield* sup.publish("nobody", 1) // no child takes it: kept, queued
        yield* sup.publish("declared", 2)
        const topics = yield* sup.topics
        assert.deepStrictEqual(topics, [
          { name: "declared", declared: true, subscribers: [], queued: 1 },
          { name: "news", declared: false, subscribers: ["root/a", "root/group/b"], queued: 0 },
          { name: "nobody", declared: false, subscribers: [], queued: 1 },
          { name: "work", declared: false, subscribers: ["root/a"], queued: 0 }
        ])
        // the nested supervisor's view is the tree's: one bus
        assert.deepStrictEqual(yield* Effect.flatMap(sup.childSupervisor("group"), (group) => group.topics), topics)
        // a deleted child's topics stay topics of the tree, taken by none
        yield* sup.deleteChild("a")
        assert.deepStrictEqual((yield* sup.topics).find((t) => t.name === "work"), {
          name: "work",
          declared: false,
          subscribers: [],
          queued: 0
        })
        // a nested supervisor stopped: its children's topics stay the tree's
        yield* sup.terminateChild("group")
        assert.deepStrictEqual((yield* sup.topics).find((t) => t.name === "news")?.subscribers, [])
        // a task's outcome at once: none while in flight, the outcome once ended, not_found for an id never made
        const waiting = yield* sup.publish("nobody", 3)
        assert.isTrue(Option.isNone(yield* sup.taskOutcome(waiting)))
        const unknown = yield* Effect.flip(sup.taskOutcome("no-such-task"))
        assert.strictEqual(unknown.reason, "not_found")
        // its topic is not known: none is named
        assert.strictEqual(unknown.topic, "")
        assert.strictEqual(unknown.message, "No task no-such-task: neither in flight nor in the store")
        yield* sup.startChild(echo("taker", ["nobody"]))
        yield* sup.awaitResult(waiting)
        const ended = yield* sup.taskOutcome(waiting)
        assert.deepStrictEqual(Option.map(ended, (o) => [o._tag, o.taskId]), Option.some(["Succeeded", waiting]))
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive("fanout: to every subscriber, the result by each one's path", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        children: [echo("x", ["news"]), Supervisor.supervisor({ id: "group", children: [echo("y", ["news"])] })]
      })
      const id = yield* sup.publish("news", { headline: "hi" }, { fanout: true })
      assert.deepStrictEqual(yield* sup.awaitResult(id), {
        "root/x": { headline: "hi" },
        "root/group/y": { headline: "hi" }
      })
    }).pipe(Effect.provide(TestLive)), 60_000)

  it.scopedLive(
    "a payload JSON cannot encode is refused at publish, typed: never queued, retried nor lost as a dead letter",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ children: [echo("taker", ["work"])] })
        const cyclic: Record<string, unknown> = {}
        cyclic.self = cyclic
        for (const payload of [{ n: 10n }, cyclic, () => 1, { tags: new Set(["a"]) }, { score: NaN }]) {
          const refused = yield* Effect.flip(sup.publish("work", payload))
          assert.strictEqual(refused._tag, "TopicError")
          if (refused._tag !== "TopicError") return
          assert.strictEqual(refused.reason, "unencodable")
          assert.match(refused.message, /^Topic "work" takes no task whose payload cannot be sent as JSON: \S/)
        }
        assert.deepStrictEqual((yield* sup.topics).map((t) => [t.name, t.queued]), [["work", 0]])
        assert.deepStrictEqual(yield* sup.deadLetters(), [])
        // the topic goes on: a payload JSON encodes is delivered
        assert.deepStrictEqual(yield* sup.awaitResult(yield* sup.publish("work", { n: "10" })), { n: "10" })
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "the first publish to a name neither declared nor taken is warned of, with the topic meant; once",
    () => {
      const { lines, provide } = logMessages()
      return Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          topics: { declared: {} },
          children: [raw("a", ["reports"])]
        })
        yield* sup.publish("declared", 1)
        yield* sup.awaitResult(yield* sup.publish("reports", { whoami: true }))
        assert.deepStrictEqual(lines, [], "a declared or taken topic: no warning")
        // A publish refused (a bad option) queues nothing: the warning waits for one that does
        assert.strictEqual(
          (yield* Effect.flip(sup.publish("reprots", 1, { fanout: "yes" as any })))._tag,
          "ConfigError"
        )
        assert.deepStrictEqual(lines, [], "a refused publish: no warning spent")
        yield* sup.publish("reprots", 2)
        yield* sup.publish("reprots", 3)
        yield* sup.publish("elsewhere", 4)
        assert.deepStrictEqual(lines, [
          `published to "reprots", a topic neither declared in the tree's topics nor taken by any child (did you ` +
          `mean "reports"?); its tasks wait, within its maxQueued, for a child that takes it (declare the topic to ` +
          "say that is meant)",
          `published to "elsewhere", a topic neither declared in the tree's topics nor taken by any child; its ` +
          "tasks wait, within its maxQueued, for a child that takes it (declare the topic to say that is meant)"
        ])
      }).pipe(provide, Effect.provide(TestLive))
    },
    60_000
  )

  it.scopedLive(
    "a topic no child takes keeps its tasks, within maxQueued, until one does",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({ topics: { later: { maxQueued: 1 } }, children: [] })
        const first = yield* sup.publish("later", "one")
        const full = failureOf(yield* Effect.exit(sup.publish("later", "two")))
        assert.strictEqual(full._tag === "TopicError" && full.reason, "full")
        yield* sup.startChild(echo("late", ["later"]))
        assert.strictEqual(yield* sup.awaitResult(first), "one")
        assert.strictEqual(yield* sup.awaitResult(yield* sup.publish("later", "two")), "two")
        const unknown = failureOf(yield* Effect.exit(sup.awaitResult("no-such-task")))
        assert.strictEqual(unknown._tag === "TopicError" && unknown.reason, "not_found")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "a publish's own retry overrides the topic's; backpressure makes a publish wait for room",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          topics: {
            jobs: { retry: Schedule.recurs(5) },
            narrow: { maxQueued: 1, backpressure: true }
          },
          children: [raw("worker", ["jobs", "narrow"])]
        })
        // The topic would try 6 times; this task says once.
        const once = failureOf(
          yield* Effect.exit(
            Effect.flatMap(sup.publish("jobs", { fail: "no" }, { retry: Schedule.stop }), sup.awaitResult)
          )
        )
        assert.strictEqual(once._tag === "TaskFailedError" && once.attempts, 1)
        // One slow task fills "narrow": the second publish waits until it ends, then goes.
        const first = yield* sup.publish("narrow", { whoami: true, sleep: 300 })
        const second = yield* Effect.fork(sup.publish("narrow", { whoami: true }))
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
        assert.isTrue(Option.isNone(yield* Fiber.poll(second)), "waiting for room")
        yield* sup.awaitResult(first)
        const secondId = yield* Fiber.join(second)
        assert.isDefined(yield* sup.awaitResult(secondId))
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "an agent publishes from its callback (Python adapter): the tasks reach the Node subscriber",
    () =>
      Effect.gen(function*() {
        const sup = yield* Supervisor.make({
          children: [
            Supervisor.agent({
              id: "producer",
              config: {
                name: "producer",
                ...Adapters.pythonCallback(fixture("python", "publish_agent.py"), "handle_request"),
                startupTimeout: "20 seconds"
              }
            }),
            echo("consumer", ["jobs", "reports.daily"])
          ]
        })
        const results = yield* sup.subscribeResults
        assert.deepStrictEqual(yield* sup.call("producer", { op: "publish" }), { published: 2 })
        const seen = [yield* Queue.take(results), yield* Queue.take(results)]
          .sort((a, b) => a.topic.localeCompare(b.topic))
        assert.deepStrictEqual(
          seen.map((o) => [o._tag, o.topic, o._tag === "Succeeded" ? o.result : null]),
          [
            ["Succeeded", "jobs", { n: 1 }],
            ["Succeeded", "reports.daily", {
              job: { steps: [1, { deep: [true, null, 2.5] }], text: "héllo ✓" },
              tags: []
            }]
          ]
        )
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.effect("every problem of the topics option and of a child's topics in one ConfigError", () =>
    Effect.gen(function*() {
      const error = failureOf(
        yield* Effect.exit(Supervisor.make({
          topics: { t: { maxQueued: 0, retry: 5 as any, timeout: "soon" as any, color: "red" } as any },
          children: [Supervisor.agent({ id: "a", topics: ["", 3 as any], config: agentConfig("echo") })]
        }))
      )
      assert.strictEqual(error._tag, "ConfigError")
      if (error._tag !== "ConfigError") return
      assert.sameMembers(error.problems.map((p) => p.field), [
        `topics.t.color`,
        `topics.t.retry`,
        `topics.t.maxQueued`,
        `topics.t.timeout`,
        "children[0].topics[0]",
        "children[0].topics[1]"
      ])
    }).pipe(Effect.scoped, Effect.provide(TestLive)))
})

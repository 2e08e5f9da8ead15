/**
 * Pools, topics and watch mode in tree files (issue 14): a `type: pool` child, `topics` and `watch` on agent-like
 * children, the top-level `topics` section with `retry` written as data and run as a `Schedule`; every problem with
 * its path and the key meant; and a file with a pool subscribed to a topic, run for real (real agent processes),
 * its tasks published through the library.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Supervisor from "../src/Supervisor.js"
import * as TreeFile from "../src/TreeFile.js"
import { fixture, tempDir, TestLive } from "./support.js"
import { problemsOf, yaml } from "./treeFileSupport.js"

/**
 * The delays a schedule waits before each retry, in milliseconds, for as long as it recurs (`Schedule.run` adds
 * the output it ends with last: dropped).
 */
const delaysOf = (schedule: Schedule.Schedule<unknown, unknown>) =>
  Effect.map(
    Schedule.run(Schedule.delays(schedule), 0, Array.from({ length: 10 }, (_, i) => i)),
    (delays) => Chunk.toArray(delays).slice(0, -1).map(Duration.toMillis)
  )

const POOLED = `
name: pooled
topics:
  doc.uploaded:
    retry: { maxAttempts: 3, backoff: 50 millis, factor: 3 }
    maxQueued: 10
    backpressure: true
    timeout: 5 seconds
  plain: {}
children:
  - type: pool
    id: inference
    size: 3
    routing: round-robin
    intensity: { maxRestarts: 2, window: 10 seconds }
    topics: [doc.uploaded]
    watch: { paths: [models], debounce: 1 second }
    config: { name: inference, command: python3, args: [infer.py] }
  - type: agent
    id: indexer
    topics: [doc.uploaded, plain]
    watch: { paths: [agents/indexer, /srv/shared] }
    config: { name: indexer, command: python3, cwd: agents }
  - type: directory
    id: summarizer
    topics: [plain]
    watch: { paths: [agents/summarizer] }
    config: { agentName: summarizer, agentDir: agents/summarizer }
`

describe("tree files: pools, topics, watch", () => {
  it.effect("a pool, topics and watch are read as written; relative paths (watch included) from the file's directory", () =>
    Effect.gen(function*() {
      const file = yield* yaml(POOLED, "/srv/app")
      assert.deepStrictEqual(file.topics, {
        "doc.uploaded": {
          retry: { maxAttempts: 3, backoff: "50 millis", factor: 3 },
          maxQueued: 10,
          backpressure: true,
          timeout: "5 seconds"
        },
        plain: {}
      })
      assert.deepStrictEqual(file.children, [
        {
          type: "pool",
          id: "inference",
          size: 3,
          routing: "round-robin",
          intensity: { maxRestarts: 2, window: "10 seconds" },
          topics: ["doc.uploaded"],
          watch: { paths: ["/srv/app/models"], debounce: "1 second" },
          config: { name: "inference", command: "python3", args: ["infer.py"], cwd: "/srv/app" }
        },
        {
          type: "agent",
          id: "indexer",
          topics: ["doc.uploaded", "plain"],
          watch: { paths: ["/srv/app/agents/indexer", "/srv/shared"] },
          config: { name: "indexer", command: "python3", cwd: "/srv/app/agents" }
        },
        {
          type: "directory",
          id: "summarizer",
          topics: ["plain"],
          watch: { paths: ["/srv/app/agents/summarizer"] },
          config: { agentName: "summarizer", agentDir: "/srv/app/agents/summarizer" }
        }
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("toOptions: a Supervisor.pool spec, an agent's topics and watch, each topic's retry as its Schedule", () =>
    Effect.gen(function*() {
      // The directory child is resolved by toOptions (it needs a real directory): the others are what is checked.
      const file = yield* yaml(POOLED.slice(0, POOLED.indexOf("  - type: directory")), "/srv/app")
      const options = yield* TreeFile.toOptions(file)
      const [pool, agent] = options.children!
      assert.deepStrictEqual(
        pool,
        Supervisor.pool({
          id: "inference",
          size: 3,
          routing: "round-robin",
          intensity: { maxRestarts: 2, window: "10 seconds" },
          topics: ["doc.uploaded"],
          watch: { paths: ["/srv/app/models"], debounce: "1 second" },
          config: { name: "inference", command: "python3", args: ["infer.py"], cwd: "/srv/app" }
        })
      )
      assert.deepStrictEqual(
        [agent._tag, (agent as Supervisor.AgentSpec).topics, (agent as Supervisor.AgentSpec).watch],
        ["Agent", ["doc.uploaded", "plain"], { paths: ["/srv/app/agents/indexer", "/srv/shared"] }]
      )
      const { retry, ...rest } = options.topics!["doc.uploaded"]
      assert.deepStrictEqual(rest, { maxQueued: 10, backpressure: true, timeout: "5 seconds" })
      // maxAttempts 3: 2 retries, backoff × factor^n
      assert.deepStrictEqual(yield* delaysOf(retry!), [50, 150])
      // A topic without retry is left to the library's default
      assert.deepStrictEqual(options.topics!.plain, {})
      // What a retry leaves out is the library's default: 4 attempts, 100 millis, doubling
      const defaults = yield* Effect.flatMap(
        yaml("topics: { a: { retry: {} }, b: { retry: { maxAttempts: 1 } }, c: { retry: { factor: 1 } } }"),
        TreeFile.toOptions
      )
      assert.deepStrictEqual(yield* delaysOf(defaults.topics!.a.retry!), [100, 200, 400])
      assert.deepStrictEqual(yield* delaysOf(defaults.topics!.b.retry!), [])
      assert.deepStrictEqual(yield* delaysOf(defaults.topics!.c.retry!), [100, 100, 100])
      // Ready for the tree: Supervisor.make's decoding accepts the options as they are
      assert.deepStrictEqual(yield* TreeFile.warnings(file), [])
      // A pool's autoscale, as Supervisor.pool takes it; a bad one is the tree's problem with its path
      const scaledFile = yield* yaml(
        "children: [{ type: pool, id: p, size: 1, config: { name: w, command: node }, " +
          "autoscale: { min: 1, max: 3, target: 2, interval: 200 millis } }]"
      )
      // in the file's type too (TreeFile.PoolChild had no autoscale)
      assert.strictEqual((scaledFile.children[0] as TreeFile.PoolChild).autoscale?.max, 3)
      const scaled = yield* TreeFile.toOptions(scaledFile)
      assert.deepStrictEqual((scaled.children![0] as Supervisor.PoolSpec).autoscale, {
        min: 1,
        max: 3,
        target: 2,
        interval: "200 millis"
      })
      const badScale = yield* Effect.flip(Effect.flatMap(
        yaml(
          "children: [{ type: pool, id: p, size: 5, config: { name: w, command: node }, " +
            "autoscale: { min: 1, max: 3, target: 1 } }]"
        ),
        TreeFile.warnings
      ))
      assert.include(JSON.stringify(badScale), "children[0].autoscale")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("every problem at once, with its path (a topic's name in quotes) and the key or value meant", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
topics:
  doc.uploaded: { retry: { maxAttempts: 0, backof: 1 second, factor: 0.5 }, maxQueued: 0, backpressure: yes }
  work: { timeout: 0, maxQueud: 5 }
children:
  - type: pool
    id: p
    size: 1.5
    routing: round-robbin
    topics: [a, ""]
    watch: { paths: [], debounce: 5 secs }
    config: { name: p, command: x, requestTimeout: 5 secs }
  - type: pol
    id: q
  - type: agent
    id: a
    topics: doc.uploaded
    watch: { path: [a] }
    config: { name: a, command: x }
  - type: pool
    id: a
    size: 1
    significant: true
    config: { name: a2, command: x }
`)
      assert.deepStrictEqual(problems, [
        `topics["doc.uploaded"].retry.maxAttempts: must be a whole number of 1 or more`,
        `topics["doc.uploaded"].retry.backof: is not a known setting: did you mean "backoff"?`,
        `topics["doc.uploaded"].retry.factor: must be a number of 1 or more`,
        `topics["doc.uploaded"].maxQueued: must be a whole number of 1 or more`,
        `topics["doc.uploaded"].backpressure: must be true or false`,
        `topics.work.timeout: must be a duration longer than 0, such as "30 seconds"`,
        `topics.work.maxQueud: is not a known setting: did you mean "maxQueued"?`,
        `children[0].size: must be a whole number of 0 or more`,
        `children[0].routing: must be "least-in-flight" or "round-robin": did you mean "round-robin"?`,
        `children[0].topics[1]: must be a topic name (a non-empty string)`,
        `children[0].watch.paths: must be a non-empty list of paths`,
        `children[0].watch.debounce: must be a duration like "5 seconds", "250ms" or "1h30m"`,
        `children[0].config.requestTimeout: must be a duration like "5 seconds", "250ms" or "1h30m"`,
        `children[1].type: must be "agent", "callback", "directory", "pool" or "supervisor": did you mean "pool"?`,
        `children[2].topics: must be a list of topic names`,
        `children[2].watch.paths: is missing`,
        `children[2].watch.path: is not a known setting: did you mean "paths"?`,
        `children[3].id: child ids must be unique: children[2] has it too`,
        `children[3].significant: a significant child must be transient or temporary (as in OTP); its restart is ` +
        `"permanent"`,
        `children[3].significant: a significant child needs its supervisor's autoShutdown ("autoShutdown") to be ` +
        `"any-significant" or "all-significant", not "never" (as in OTP): nothing would read its exit`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a pool's restart type or stop timeout given twice is the tree's problem, as Supervisor.make says", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
children:
  - type: pool
    id: p
    size: 2
    shutdown: brutal-kill
    config: { name: p, command: x, gracefulTimeout: 3 seconds }
`)
      assert.strictEqual(problems.length, 1)
      assert.match(problems[0], /^children\[0\]\.shutdown: conflicts with children\[0\]\.config\.gracefulTimeout/)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a pool's size or autoscale.max above its maxSize (1000 unless given) is a problem, before any start", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
children:
  - type: pool
    id: big
    size: 1000000
    config: { name: b, command: x }
  - type: pool
    id: auto
    size: 2
    maxSize: 3
    autoscale: { min: 1, max: 5, target: 2 }
    config: { name: a, command: x }
  - type: pool
    id: zero
    size: 0
    maxSize: 0
    config: { name: z, command: x }
`)
      const rule = (n: number) =>
        `must be at most the pool's maxSize, ${n} (each member is a process; give the pool a larger maxSize to run more)`
      assert.deepStrictEqual(problems, [
        `children[0].size: ${rule(1000)}`,
        `children[1].autoscale.max: ${rule(3)}`,
        "children[2].maxSize: must be a whole number of 1 or more"
      ])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe.sequential("tree files: a pool and a topic, run", () => {
  it.scopedLive(
    "a pool subscribed to a topic takes its tasks, each member in turn; a failing task is retried maxAttempts times",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("treefile-pool")
        const member = {
          name: "member",
          command: process.execPath,
          args: [fixture("agents", "agent.mjs"), "echo"],
          startupTimeout: "20s"
        }
        fs.writeFileSync(
          path.join(dir, "tree.json"),
          // (durations in the short forms: each setting takes them, not only the file's decode)
          JSON.stringify({
            name: "pooled",
            intensity: { maxRestarts: 5, window: "1m" },
            topics: { work: { retry: { maxAttempts: 2, backoff: "10ms" }, timeout: "10s" } },
            children: [{
              type: "pool",
              id: "workers",
              shutdown: "2s",
              size: 2,
              routing: "round-robin",
              topics: ["work"],
              config: member
            }]
          })
        )
        const file = yield* TreeFile.load(path.join(dir, "tree.json"))
        const sup = yield* TreeFile.make(file)
        const pool = yield* sup.childSupervisor("workers")
        const members = yield* pool.whichChildren
        assert.deepStrictEqual(members.map((m) => [m.id, m.name]).sort(), [["0", "member-0"], ["1", "member-1"]])
        const pids = members.map((m) => Option.getOrThrow(m.pid)).sort()

        // Each task to one member, in turn: both members answer
        const ids = yield* Effect.forEach([1, 2, 3, 4], () => sup.publish("work", { whoami: true }))
        const answered = yield* Effect.forEach(ids, (id) => sup.awaitResult(id))
        assert.deepStrictEqual([...new Set(answered.map((r) => (r as { pid: number }).pid))].sort(), pids)
        // A call to the pool goes to a member too
        assert.include(pids, ((yield* sup.call("workers", { whoami: true })) as { pid: number }).pid)

        // The file's retry: 2 attempts in all, then the dead letter
        const failing = yield* sup.publish("work", { fail: "no good" })
        const error = yield* Effect.flip(sup.awaitResult(failing))
        assert.strictEqual(error._tag, "TaskFailedError")
        if (error._tag !== "TaskFailedError") return
        assert.strictEqual(error.attempts, 2)
        assert.strictEqual(error.errors.length, 2)
        for (const attempt of error.errors) assert.match(attempt.message, /^Agent "member-[01]" failed task .*no good$/)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )
})

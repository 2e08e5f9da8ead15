/**
 * Findings of a new user's trial: a per-call timeout of 0 is a `ConfigError` (not a start timeout on a running
 * agent), as is a `requestTimeout` of 0; a request pending when its agent is killed for a limit fails with an
 * `AgentCrashError` naming the limit; a configuration's account problems are reported with its other problems;
 * `inheritEnv` has one rule; a uid without a passwd entry reads well. Real agent processes (the raw-protocol agent,
 * test/fixtures/agents/agent.mjs, and the Python adapter running test/fixtures/python/hog_agent.py).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Adapters from "../../src/Adapters.js"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as Config from "../../src/Agent/Config.js"
import * as Cgroup from "../../src/Agent/internal/limits/cgroup.js"
import * as Identity from "../../src/Agent/internal/limits/identity.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import { AgentCrashError, ConfigError } from "../../src/Errors.js"
import * as Store from "../../src/Store/Store.js"
import * as Supervisor from "../../src/Supervisor.js"
import { agentConfig, failureOf, fixture, logMessages, TestLive } from "../support.js"

const LONGER_THAN_ZERO = "must be a duration longer than 0"
const MiB = 1024 * 1024

/** The `ConfigError` an effect fails with (a test failure when it fails otherwise, or succeeds). */
const configErrorOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    const error = failureOf(exit)
    assert.instanceOf(error, ConfigError, String(error))
    return error as unknown as ConfigError
  })

const assertNotPositive = (error: ConfigError, field: string, what: string) => {
  assert.deepStrictEqual(
    error.problems.map((p) => [p.field, p.rule]),
    [[field, LONGER_THAN_ZERO]],
    what
  )
  assert.notInclude(error.message, "start", what)
}

const nonPositive: ReadonlyArray<Duration.DurationInput> = [0, -1, "0 millis", "-5 seconds", Duration.zero]

describe.sequential("a per-call timeout must be longer than 0", () => {
  it.scopedLive("handleEvent, handleEventStream (timeout, idleTimeout) on a running agent: a ConfigError", () =>
    Effect.gen(function*() {
      const agent = yield* AgentSupervisor.make(agentConfig("echo"))
      assert.strictEqual(yield* agent.handleEvent({ echo: 1 }), 1, "the agent is running")
      for (const timeout of nonPositive) {
        const what = `timeout ${String(timeout)}`
        assertNotPositive(yield* configErrorOf(agent.handleEvent({ echo: 1 }, { timeout })), "timeout", what)
        const streamed = yield* configErrorOf(Stream.runDrain(agent.handleEventStream({ echo: 1 }, { timeout })))
        assertNotPositive(streamed, "timeout", what)
        const idle = yield* configErrorOf(
          Stream.runDrain(agent.handleEventStream({ echo: 1 }, { idleTimeout: timeout }))
        )
        assertNotPositive(idle, "idleTimeout", `idleTimeout ${String(timeout)}`)
      }
      const error = yield* configErrorOf(agent.handleEvent({ echo: 1 }, { timeout: 0 }))
      assert.strictEqual(error.message, `Invalid configuration at timeout: ${LONGER_THAN_ZERO} (got 0)`)
      // 1 ms is a timeout: the request is sent (it may well time out, but it is no ConfigError).
      const tight = yield* Effect.exit(agent.handleEvent({ echo: 2 }, { timeout: 1 }))
      if (tight._tag === "Failure") assert.strictEqual(failureOf(tight)._tag, "AgentTimeoutError")
      assert.strictEqual(yield* agent.handleEvent({ echo: 3 }), 3, "the agent was not disturbed")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("AgentProcess.request and ping: a ConfigError", () =>
    Effect.gen(function*() {
      const proc = yield* AgentProcess.make(agentConfig("echo"))
      assertNotPositive(yield* configErrorOf(proc.request({ echo: 1 }, { timeout: 0 })), "timeout", "request")
      assertNotPositive(yield* configErrorOf(proc.ping({ timeout: 0 })), "timeout", "ping")
      assert.strictEqual((yield* proc.stats).requests, 0, "nothing was sent")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("Supervisor.call to an agent child and to a pool: a ConfigError", () =>
    Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        children: [
          Supervisor.agent({ id: "one", config: agentConfig("echo", { name: "one" }) }),
          Supervisor.pool({ id: "pool", size: 1, config: agentConfig("echo", { name: "member" }) })
        ]
      })
      for (const id of ["one", "pool"]) {
        assertNotPositive(yield* configErrorOf(sup.call(id, { echo: 1 }, { timeout: 0 })), "timeout", id)
        const streamed = yield* configErrorOf(Stream.runDrain(sup.callStream(id, { echo: 1 }, { timeout: -1 })))
        assertNotPositive(streamed, "timeout", `${id} stream`)
      }
    }).pipe(Effect.provide(TestLive)))

  it.effect("requestTimeout and pingTimeout of 0 or less: a ConfigError with the path, in a tree too", () =>
    Effect.gen(function*() {
      for (const field of ["requestTimeout", "pingTimeout"] as const) {
        for (const value of [0, "0 seconds", -5]) {
          const error = yield* configErrorOf(Config.make({ name: "a", command: "x", [field]: value }))
          assert.deepStrictEqual(error.problems.map((p) => [p.field, p.rule]), [[field, LONGER_THAN_ZERO]])
        }
      }
      const config = yield* Config.make({ name: "a", command: "x", requestTimeout: 1 })
      assert.strictEqual(Duration.toMillis(config.requestTimeout), 1)
      const tree = yield* configErrorOf(
        Supervisor.make({
          children: [Supervisor.agent({ id: "a", config: { name: "a", command: "x", requestTimeout: 0 } })]
        }).pipe(Effect.scoped)
      )
      assert.strictEqual(tree.field, "children[0].config.requestTimeout")
      assert.strictEqual(tree.rule, LONGER_THAN_ZERO)
    }).pipe(Effect.provide(TestLive)))
})

// ---- a request pending when its agent is killed for a limit ----

const support = Cgroup.detect()
const hard = support._tag !== "none" && process.getuid?.() === 0

const hog = (limits: NonNullable<Config.AgentConfigInput["limits"]>): Config.AgentConfigInput => ({
  name: "hog",
  ...Adapters.pythonCallback(fixture("python", "hog_agent.py"), "handle_request"),
  limits,
  gracefulTimeout: "2 seconds",
  sigtermTimeout: "2 seconds",
  startupTimeout: "20 seconds",
  requestTimeout: "30 seconds",
  restartBackoff: "100 millis",
  jitter: 0,
  outputLogLevel: "None"
})

/** The error of a task that allocates 200 MiB and then holds on, under a 64 MiB limit. */
const killedForMemory = (limits: NonNullable<Config.AgentConfigInput["limits"]>) =>
  Effect.gen(function*() {
    const agent = yield* AgentSupervisor.make(hog(limits))
    const error = yield* Effect.flip(agent.handleEvent({ mib: 200 }))
    assert.instanceOf(error, AgentCrashError, String(error))
    const crash = error as AgentCrashError
    assert.strictEqual(crash.limit, "memory_limit")
    assert.strictEqual(crash.limitValue, 64 * MiB)
    assert.strictEqual(crash.signal, "SIGKILL")
    assert.include(crash.message, "killed by SIGKILL for exceeding its memory limit (limits.memory 64 MiB)")
    assert.include(crash.remediation, "Raise limits.memory or lower the agent's memory use")
    return agent
  })

describe.sequential("a request pending at a kill for a limit fails with AgentCrashError naming it", () => {
  it.scopedLive(
    "soft (polling): limit memory_limit, its value, the message and remediation say so",
    () =>
      Effect.gen(function*() {
        const agent = yield* killedForMemory({ memory: "64 MiB", enforce: "soft", memoryGrace: "200 millis" })
        const metadata = yield* agent.metadata
        assert.strictEqual(metadata.limits._tag === "Some" ? metadata.limits.value.mode : undefined, "polling")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive.skipIf(!hard)(
    "hard (cgroup): an OOM kill fails the request the same way",
    () =>
      Effect.gen(function*() {
        const agent = yield* killedForMemory({ memory: "64 MiB" })
        const metadata = yield* agent.metadata
        const mode = metadata.limits._tag === "Some" ? metadata.limits.value.mode : undefined
        assert.include(["cgroup-v1", "cgroup-v2"], mode)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it("the message and remediation of each limit", () => {
    const crash = (limit: AgentCrashError["limit"], limitValue?: number, exit = { signal: "SIGKILL" }) =>
      new AgentCrashError({ agent: "hog", pid: 7, ...exit, limit, ...(limitValue !== undefined ? { limitValue } : {}) })
    assert.strictEqual(
      crash("cpu_limit", 0.5).message,
      `Agent "hog" (pid 7) killed by SIGKILL for exceeding its CPU limit (limits.cpu 0.5 cores)`
    )
    assert.include(crash("cpu_limit", 0.5).remediation, "Raise limits.cpu")
    const pids = crash("pids_limit", 32, { exitCode: 1 } as never)
    assert.strictEqual(
      pids.message,
      `Agent "hog" (pid 7) exited with code 1 after a fork was refused at its limit of processes and threads ` +
        `(limits.pids 32)`
    )
    assert.include(pids.remediation, "Raise limits.pids")
    assert.include(crash("memory_limit").message, "for exceeding its memory limit (limits.memory)")
    const plain = new AgentCrashError({ agent: "hog", pid: 7, signal: "SIGKILL" })
    assert.strictEqual(plain.message, `Agent "hog" (pid 7) killed by SIGKILL`)
    assert.include(plain.remediation, "stderr")
  })
})

// ---- the configuration's problems, all at once and each reading well ----

describe("configuration problems", () => {
  it.effect("account problems are reported with the other problems, in one ConfigError", () =>
    Effect.gen(function*() {
      const error = yield* configErrorOf(Config.make({
        name: "a",
        command: "x",
        limits: { memory: "lots", cpu: 0, pids: -1 },
        user: "nosuchuser"
      }))
      assert.deepStrictEqual(error.problems.map((p) => p.field), ["limits.memory", "limits.cpu", "limits.pids", "user"])
      assert.include(error.message, "4 problems")
      // Alone, the account problem is the same one.
      const alone = yield* configErrorOf(Config.make({ name: "a", command: "x", user: "nosuchuser" }))
      assert.deepStrictEqual(alone.problems, [error.problems[3]])
      // An account given badly is reported once, by its schema.
      const bad = yield* configErrorOf(Config.make({ name: "a", command: "x", user: "bad name", jitter: 3 }))
      assert.deepStrictEqual(bad.problems.map((p) => p.field), ["user", "jitter"])
    }))

  it.effect("inheritEnv: one problem with one rule", () =>
    Effect.gen(function*() {
      for (const inheritEnv of ["yes", 3, ["PATH", 1]]) {
        const error = yield* configErrorOf(Config.make({ name: "a", command: "x", inheritEnv: inheritEnv as never }))
        assert.deepStrictEqual(
          error.problems.map((p) => [p.field, p.rule]),
          [["inheritEnv", "must be true, false or a list of variable names"]],
          JSON.stringify(inheritEnv)
        )
        assert.strictEqual(
          error.remediation,
          `inheritEnv must be true, false or a list of variable names.`
        )
      }
      const fine = yield* Config.make({ name: "a", command: "x", inheritEnv: ["PATH"] })
      assert.deepStrictEqual(fine.inheritEnv, ["PATH"])
    }))

  it("a uid with no passwd entry and no group: the rule names the user, no value is made up", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trial-accounts-"))
    try {
      const databases = { passwd: path.join(dir, "passwd"), group: path.join(dir, "group") }
      fs.writeFileSync(databases.passwd, "root:x:0:0:root:/root:/bin/sh\n")
      fs.writeFileSync(databases.group, "root:x:0:\n")
      const resolved = Identity.resolve(99999, undefined, databases, true)
      assert.isTrue("problems" in resolved)
      const problems = "problems" in resolved ? resolved.problems : []
      assert.deepStrictEqual(problems, [{
        field: "group",
        rule: `is needed: user 99999 is not in ${databases.passwd}, so its primary group is unknown; give group too`
      }])
      assert.deepStrictEqual(Identity.resolve(99999, 100, databases, true), {
        identity: { uid: 99999, gid: 100, account: undefined }
      })
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it.effect.skipIf(process.getuid?.() !== 0)(
    "user 99999 in a configuration: the message reads well",
    () =>
      Effect.gen(function*() {
        const error = yield* configErrorOf(Config.make({ name: "a", command: "x", user: 99999 }))
        assert.strictEqual(
          error.message,
          `Invalid configuration at group: is needed: user 99999 is not in /etc/passwd, so its primary group is ` +
            `unknown; give group too`
        )
        assert.notInclude(error.message, "(got")
      })
  )
})

describe("an agent that never sent ready is not asked to stop", () => {
  it.live(
    "after its startup timeout: stdin closed and SIGTERM at once, no shutdown line, no gracefulTimeout",
    () =>
      Effect.gen(function*() {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "no-ready-"))
        const heard = path.join(dir, "stdin")
        // Keeps what it reads, never says ready, and ignores the end of its stdin: only a signal ends it
        const exit = yield* Effect.exit(Effect.scoped(AgentProcess.make({
          name: "silent",
          command: "sh",
          args: ["-c", `cat > "${heard}"; sleep 100`],
          startupTimeout: "300 millis",
          // were it asked, the test would wait this long
          gracefulTimeout: "1 hour"
        })))
        const error = failureOf(exit) as { readonly _tag?: string; readonly reason?: string }
        assert.deepStrictEqual([error._tag, error.reason], ["AgentStartupError", "no_ready_in_time"])
        assert.strictEqual(fs.readFileSync(heard, "utf8"), "", "it was sent a shutdown line")
        fs.rmSync(dir, { recursive: true, force: true })
      }),
    30_000
  )
})

describe("a start that fails is reported once", () => {
  it.live(
    "an exit before ready is the start's failure: logged as that, not also as an unexpected exit",
    () => {
      const { lines, provide } = logMessages()
      return Effect.gen(function*() {
        const exit = yield* Effect.exit(Effect.scoped(AgentSupervisor.make({
          name: "early",
          command: "sh",
          args: ["-c", "echo 'missing API key' >&2; exit 1"]
        })))
        const error = failureOf(exit) as { readonly _tag?: string; readonly reason?: string }
        assert.deepStrictEqual([error._tag, error.reason], ["AgentStartupError", "exited_before_ready"])
        assert.deepStrictEqual(lines.filter((line) => line.includes("exited unexpectedly")), [])
        assert.strictEqual(lines.filter((line) => line.startsWith("agent failed to start")).length, 1, lines.join("\n"))
      }).pipe(provide, Effect.provide(Store.layerMemory))
    },
    30_000
  )
})

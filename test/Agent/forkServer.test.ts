/**
 * Agents spawned through a fork server (`Agent.ForkServer`, issue 10: a fork of a large supervisor is slow): real
 * processes, the server's own and its children; each test synchronises on what it reads (a pid in /proc, an exit
 * reported), never on elapsed time.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import * as ForkServer from "../../src/Agent/ForkServer.js"
import * as Internal from "../../src/Agent/internal/forkServer.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import {
  agentConfig,
  emfileHost,
  eventually,
  failureOf,
  fixture,
  isAlive,
  openFileDescriptors,
  parentOf,
  spawnApp,
  tempDir,
  TestLive
} from "../support.js"

/** The fork server of the context: its pid once it runs. */
const serverPid = Effect.map(ForkServer.ForkServer, (server) => server.pid())

/** Runs `effect` with a fork server of its own, closed with it. */
const withServer = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, Layer.fresh(ForkServer.layer))

describe.sequential("fork server", () => {
  it.scopedLive("an agent spawned through it is the server's child, answers, and its exit code is reported", () =>
    withServer(Effect.gen(function*() {
      // The server's own channel is open from the first spawn on: counted from there.
      yield* Effect.scoped(AgentProcess.make(agentConfig("echo", { name: "first" })))
      // (once its pipes have closed: two reads alike, 10 ms apart)
      let last = -1
      yield* eventually("the first agent's pipes are closed", () => last === (last = openFileDescriptors()))
      const descriptors = openFileDescriptors()
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const server = yield* serverPid
      assert.isDefined(server)
      assert.strictEqual(parentOf(agent.pid), server)
      assert.notStrictEqual(server, process.pid)
      assert.deepStrictEqual(yield* agent.request({ echo: "through the fork server" }), "through the fork server")
      // It exits by itself with code 3: the code is reported, and what it wrote on stderr before is read.
      const crashed = yield* Effect.exit(agent.request({ crash: 3 }))
      const error = failureOf(crashed)
      assert.strictEqual(error._tag, "AgentCrashError")
      if (error._tag !== "AgentCrashError") return
      assert.deepStrictEqual([error.pid, error.exitCode, error.signal], [agent.pid, 3, null])
      assert.include(error.stderr?.join("\n") ?? "", "crashing with code 3 as asked")
      const exit = yield* agent.awaitExit
      assert.deepStrictEqual([exit.exitCode, exit.signal, exit.requested], [3, null, false])
      // Its pipes are closed, stdin too (only a write would have found its other end gone): no descriptor is left.
      yield* eventually("the crashed agent's pipes are closed", () => openFileDescriptors() === descriptors)
    })).pipe(Effect.provide(TestLive)))

  it.scopedLive("a signal's end is reported as the signal, and a stop stops the agent's whole group", () =>
    withServer(Effect.gen(function*() {
      const killed = yield* AgentProcess.make(agentConfig("echo"))
      process.kill(killed.pid, "SIGKILL")
      const exit = yield* killed.awaitExit
      assert.deepStrictEqual([exit.exitCode, exit.signal], [null, "SIGKILL"])
      // A stop (the scope's close): shutdown, then the group; the agent's grandchild goes with it.
      const scope = yield* Scope.make()
      const stopped = yield* AgentProcess.make(agentConfig("echo")).pipe(Scope.extend(scope))
      const { pid: grandchild } = (yield* stopped.request({ grandchild: true })) as { readonly pid: number }
      assert.isTrue(isAlive(grandchild))
      yield* Scope.close(scope, Exit.void)
      const stoppedExit = yield* stopped.awaitExit
      assert.isTrue(stoppedExit.requested)
      assert.isFalse(isAlive(stopped.pid))
      yield* eventually("the agent's grandchild is gone with its group", () => !isAlive(grandchild))
    })).pipe(Effect.provide(TestLive)))

  it.scopedLive("a spawn that fails fails as it does without the server (ENOENT, EACCES)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("fork-server-")
      const notExecutable = path.join(dir, "agent.sh")
      fs.writeFileSync(notExecutable, "#!/bin/sh\n", { mode: 0o644 })
      for (const command of [path.join(dir, "missing"), notExecutable]) {
        const config = { ...agentConfig("echo"), command, args: [] }
        const direct = failureOf(yield* Effect.exit(Effect.scoped(AgentProcess.make(config))))
        const through = failureOf(yield* Effect.exit(withServer(Effect.scoped(AgentProcess.make(config)))))
        assert.strictEqual(through._tag, "AgentStartupError")
        assert.strictEqual(through.message, direct.message)
      }
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the server ignores the signals that end a process: its owner's stop needs the exits it reports", () =>
    withServer(Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const server = (yield* serverPid)!
      for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.kill(server, signal)
      // Signals are delivered before a later message is handled: the server still answers a spawn after them.
      const second = yield* AgentProcess.make(agentConfig("echo", { name: "second" }))
      assert.strictEqual(parentOf(second.pid), server)
      assert.isTrue(isAlive(server))
      assert.deepStrictEqual(yield* agent.request({ echo: 1 }), 1)
    })).pipe(Effect.provide(TestLive)))

  it.scopedLive("the server killed: its agents are killed and their exit reported as SIGKILL; a new server spawns", () =>
    withServer(Effect.gen(function*() {
      const agent = yield* AgentProcess.make(agentConfig("echo"))
      const first = (yield* serverPid)!
      const waiting = yield* Effect.fork(agent.awaitExit)
      process.kill(first, "SIGKILL")
      const exit = yield* Fiber.join(waiting)
      assert.deepStrictEqual([exit.exitCode, exit.signal, exit.requested], [null, "SIGKILL", false])
      yield* eventually("the agent is gone", () => !isAlive(agent.pid))
      // The next spawn starts a new server.
      const next = yield* AgentProcess.make(agentConfig("echo", { name: "next" }))
      const second = (yield* serverPid)!
      assert.notStrictEqual(second, first)
      assert.strictEqual(parentOf(next.pid), second)
      assert.deepStrictEqual(yield* next.request({ echo: "again" }), "again")
    })).pipe(Effect.provide(TestLive)))

  it.live(
    "no descriptor left for its pipes: the start fails with AgentStartupError EMFILE, the agent is killed",
    () =>
      Effect.gen(function*() {
        // The review test's host (test/fixtures/emfile/spawn.mjs) through the environment's fork server: the server
        // spawns the agent, but this process cannot take its pipes (Node drops a handle it cannot receive).
        const result = yield* emfileHost({ AGENT_SUPERVISOR_FORK_SERVER: "1" })
        assert.deepStrictEqual(result, { tag: "AgentStartupError", code: "EMFILE", uncaught: 0 })
      }),
    90_000
  )

  it.scopedLive("the layer's scope closed: the server exits, at once or once the agents spawned after it stop", () =>
    Effect.gen(function*() {
      const [server, first] = yield* withServer(Effect.scoped(Effect.gen(function*() {
        yield* AgentProcess.make(agentConfig("echo"))
        return [yield* ForkServer.ForkServer, (yield* serverPid)!] as const
      })))
      yield* eventually("the server has exited", () => !isAlive(first))
      // Still asked after its scope closed (a restart of a tree it was provided to alone): a server runs as long as
      // the agent does, then ends.
      const scope = yield* Scope.make()
      const late = yield* AgentProcess.make(agentConfig("echo")).pipe(
        Effect.provideService(ForkServer.ForkServer, server),
        Scope.extend(scope)
      )
      const second = server.pid()!
      assert.strictEqual(parentOf(late.pid), second)
      assert.deepStrictEqual(yield* late.request({ echo: "late" }), "late")
      yield* Scope.close(scope, Exit.void)
      yield* eventually("the second server has exited with its agent", () => !isAlive(second))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the agent holds nothing of the server's: its only sockets are its stdin, stdout and stderr", () =>
    withServer(Effect.gen(function*() {
      const agent = yield* AgentProcess.make({ name: "pong", command: "/bin/sh", args: [fixture("agents", "pong.sh")] })
      const sockets = fs.readdirSync(`/proc/${agent.pid}/fd`).filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/${agent.pid}/fd/${fd}`).startsWith("socket:")
        } catch {
          return false
        }
      })
      assert.deepStrictEqual(sockets.map(Number).sort(), [0, 1, 2])
    })).pipe(Effect.provide(TestLive)))

  it.scopedLive("a server that answers nothing while a spawn waits is killed: the spawn fails, its agents are reported", () =>
    Effect.gen(function*() {
      // A bound of 300 ms here (30 s by default): the server is stopped (SIGSTOP), as by a debugger.
      const server = Internal.make({ replyTimeoutMillis: 300 })
      yield* Effect.addFinalizer(() => Effect.sync(server.close))
      const withIt = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, Internal.Tag, server)
      const running = yield* withIt(AgentProcess.make(agentConfig("echo")))
      const stopped = server.pid()!
      process.kill(stopped, "SIGSTOP")
      const failed = failureOf(yield* Effect.exit(withIt(Effect.scoped(AgentProcess.make(agentConfig("echo"))))))
      assert.strictEqual(failed._tag, "AgentStartupError")
      const exit = yield* running.awaitExit
      assert.deepStrictEqual([exit.exitCode, exit.signal], [null, "SIGKILL"])
      yield* eventually("the stopped server is gone", () => !isAlive(stopped))
      const next = yield* withIt(AgentProcess.make(agentConfig("echo", { name: "next" })))
      assert.notStrictEqual(server.pid(), stopped)
      assert.deepStrictEqual(yield* next.request({ echo: 2 }), 2)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("the server dies after handing over an agent's pipes, before it says so: the agent is killed, its spawn fails", () =>
    Effect.gen(function*() {
      const server = Internal.make({ script: fixture("apps", "forkServerDiesMidSpawn.mjs") })
      yield* Effect.addFinalizer(() => Effect.sync(server.close))
      const pidFile = path.join(yield* tempDir("fork-server-dies"), "forked.pid")
      // An agent that would run on with its pipes closed (it reads none of them): only a kill ends it.
      const config = agentConfig("echo", {
        command: "/bin/sh",
        args: ["-c", "exec sleep 300"],
        env: { FORKED_PID_FILE: pidFile }
      })
      const failed = failureOf(
        yield* Effect.exit(Effect.scoped(AgentProcess.make(config)).pipe(Effect.provideService(Internal.Tag, server)))
      )
      assert.strictEqual(failed._tag, "AgentStartupError")
      assert.include(failed.message, "before the agent was spawned")
      // (without the pid in the pipes' messages, this agent ran on, orphaned, for its 300 s)
      const forked = Number(fs.readFileSync(pidFile, "utf8"))
      yield* eventually(`the forked agent ${forked} is gone`, () => !isAlive(forked))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a host whose agents have stopped exits by itself: the server does not keep it alive", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const app = yield* spawnApp(fixture("apps", "forkServerHost.mjs"), [], { onLine: (line) => lines.push(line) })
      const ended = yield* app.exited
      assert.deepStrictEqual(ended, { code: 0, signal: null }, app.stderr())
      assert.strictEqual(lines.length, 1)
      const agent = JSON.parse(lines[0]) as { readonly pid: number; readonly parent: number }
      // Spawned through the server (not the host), which ended with its host.
      assert.notStrictEqual(agent.parent, app.pid)
      yield* eventually("the host's server has exited", () => !isAlive(agent.parent))
    }))
})

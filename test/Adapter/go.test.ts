/**
 * The Go adapter (`adapters/go`): its own `go test` suite (with all of `go vet`, and `gofmt`), then its
 * conformance command `cmd/echo-agent` driven through the library's real `AgentSupervisor.make` and
 * `AgentProcess.make`, as endToEnd.test.ts drives the Python and Node adapters; and the README's Go steps, run as
 * written in a project of their own (the reader's layout: the package in `node_modules`). Go is the system's (Debian:
 * `golang-go`); where there is none the suite is skipped with the reason printed, or fails under
 * `REQUIRE_SERVICES=1` (CI).
 *
 * Nothing comes from the network: GOPROXY=off (the module has no dependencies), GOTOOLCHAIN=local, and a build
 * cache of its own in a temporary directory, shared by the build and the tests of one run (so every run compiles
 * cold; the standard library comes precompiled with Debian's Go 1.19). Measured on a 2-core machine: the build
 * ~2 s and `go test` ~8 s (3 s of it the tests) when idle, 10-14 s for the file's tests in all; beside 3 busy loops
 * 22-44 s, `go test` most of it.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import { buildEchoAgent, GO_COMMAND_TIMEOUT_MS, goEnv, probeGo, run } from "../fixtures/go.js"
import { eventuallyEffect, failureOf, root, TestLive } from "../support.js"

/** The README's Go section: its first shell block (the steps to a built agent) and its Go block (`main.go`). */
const readmeGo = () => {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
  const start = readme.indexOf("\n#### Go\n")
  const section = readme.slice(start, readme.indexOf("\n#### ", start + 1))
  const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map(([, lang, code]) => ({ lang, code }))
  return {
    steps: blocks.find(({ lang }) => lang === "sh")!.code,
    main: blocks.find(({ lang }) => lang === "go")!.code
  }
}

const go = probeGo()

const describeWithGo = (name: string, body: () => void) => {
  if ("goroot" in go) return describe.sequential(name, body)
  if (process.env.REQUIRE_SERVICES === "1") {
    return describe(name, () => {
      it("has Go (REQUIRE_SERVICES=1)", () => assert.fail(go.unavailable))
    })
  }
  console.warn(`skipping "${name}": ${go.unavailable}`)
  return describe.skip(name, body)
}

describeWithGo("Go adapter", () => {
  // Made when the suite runs (not when it is collected, which a skipped suite is too).
  let scratch = ""
  let env: NodeJS.ProcessEnv = {}
  const echoAgent = () => path.join(scratch, "echo-agent")
  const config = (name: string) => ({ name, command: echoAgent() })

  beforeAll(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "go-adapter-"))
    env = goEnv(scratch)
    assert.strictEqual(await buildEchoAgent(scratch), echoAgent())
  }, GO_COMMAND_TIMEOUT_MS + 30_000)

  afterAll(() => {
    if (scratch !== "") fs.rmSync(scratch, { recursive: true, force: true })
  })

  it("passes gofmt, and its go test suite with every go vet check", async () => {
    const gofmt = await run(path.join("goroot" in go ? go.goroot : "", "bin", "gofmt"), ["-l", "."], env)
    assert.strictEqual(gofmt.code, 0, gofmt.output)
    assert.strictEqual(gofmt.output, "", `files gofmt would change:\n${gofmt.output}`)
    // -vet=all: the whole of go vet on every package (each has tests), in the same build as the tests.
    const test = await run("go", ["test", "-vet=all", "./..."], env)
    assert.strictEqual(test.code, 0, `go test:\n${test.output}`)
  }, GO_COMMAND_TIMEOUT_MS + 30_000)

  it.scopedLive(
    "through AgentSupervisor: echo, health, 64 requests at once, an error as AgentTaskError",
    () =>
      Effect.gen(function*() {
        const agent = yield* AgentSupervisor.make(config("go-echo"))
        const value = { text: "héllo ✓ 你好 🎉", n: [1, 2.5, null, true] }
        assert.deepStrictEqual(yield* agent.handleEvent({ op: "echo", value }), value)
        assert.deepStrictEqual(yield* agent.handleEvent(["not", "an", "op"]), ["not", "an", "op"])

        // Sleeps of different lengths finish out of order: each answer must still reach its caller.
        const results = yield* Effect.forEach(
          Array.from({ length: 64 }, (_, i) => i),
          (i) => agent.handleEvent({ op: "sleep", ms: (i * 7) % 50, value: { i } }),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(results, Array.from({ length: 64 }, (_, i) => ({ i })))

        const sample = yield* agent.health
        const report = Option.getOrThrow(sample.report)
        assert.isAtLeast(report.total_requests, 66)
        assert.isAbove(report.memory_mb, 1)
        assert.isAtLeast(report.uptime_seconds, 0)
        assert.isAtLeast(report.cpu_percent, 0)

        const error = failureOf(yield* Effect.exit(agent.handleEvent({ op: "fail", message: "kaputt ✗" })))
        assert.strictEqual(error._tag, "AgentTaskError")
        if (error._tag === "AgentTaskError") {
          assert.strictEqual(error.errorType, "*errors.errorString")
          assert.strictEqual(error.errorMessage, "kaputt ✗")
          assert.isString(error.stack)
        }
        assert.strictEqual(yield* agent.state, "RUNNING")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "the README's steps, as written: go mod init, the replace to node_modules, go build offline; it answers",
    () =>
      Effect.gen(function*() {
        // A project as the README's reader has it: the package in node_modules (here, this repository)
        const project = path.join(scratch, "project")
        fs.mkdirSync(path.join(project, "node_modules"), { recursive: true })
        fs.symlinkSync(root, path.join(project, "node_modules", "effect-agent-supervisor"))
        const { main, steps } = readmeGo()
        fs.mkdirSync(path.join(project, "classify"))
        fs.writeFileSync(path.join(project, "classify", "main.go"), main)
        // Go's defaults (-mod=readonly), but offline: a step that would download fails
        const built = yield* Effect.promise(() =>
          run("sh", ["-e", "-c", steps], { ...env, GOFLAGS: "", GOPROXY: "off" }, project)
        )
        assert.strictEqual(built.code, 0, `the README's steps:\n${built.output}`)
        const agent = yield* AgentSupervisor.make({
          name: "go-readme",
          command: path.join(project, "classify", "classify")
        })
        assert.deepStrictEqual(yield* agent.handleEvent({ text: "hello" }), { length: 5 })
      }).pipe(Effect.provide(TestLive)),
    GO_COMMAND_TIMEOUT_MS + 30_000
  )

  it.scopedLive(
    "through AgentProcess: a timed-out request is cancelled in the agent; the agent keeps serving",
    () =>
      Effect.gen(function*() {
        const agent = yield* AgentProcess.make(config("go-slow"))
        const error = failureOf(
          yield* Effect.exit(agent.request({ op: "sleep", ms: 5000, value: 1 }, { timeout: "200 millis" }))
        )
        assert.strictEqual(error._tag, "AgentTimeoutError")
        // The cancel went out with the timeout; the agent's answer says its context was cancelled.
        yield* eventuallyEffect(
          "the agent reports the sleep cut short by the cancel",
          Effect.map(agent.request({ op: "wasCancelled" }), (cancelled) => cancelled === true)
        )
        assert.deepStrictEqual(yield* agent.request({ op: "sleep", ms: 1, value: "after" }), "after")
        const pong = yield* agent.ping()
        assert.isTrue(Option.isSome(pong.report))
        const stats = yield* agent.stats
        assert.strictEqual(stats.inFlight, 0)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive(
    "through AgentProcess: what a handler and its child process print goes to stderr only",
    () =>
      Effect.gen(function*() {
        const agent = yield* AgentProcess.make(config("go-print"))
        assert.strictEqual(yield* agent.request({ op: "print", text: "printed by the handler" }), "printed")
        assert.strictEqual(yield* agent.request({ op: "spawn", text: "echoed by its child ✓" }), "spawned")
        yield* eventuallyEffect(
          "both lines reach the agent's stderr",
          Effect.map(
            agent.recentStderr,
            (lines) => lines.includes("printed by the handler") && lines.includes("echoed by its child ✓")
          )
        )
        const stats = yield* agent.stats
        assert.strictEqual(stats.outputLines, 0) // no stray line on the protocol stream
        assert.strictEqual(stats.protocolErrors, 0)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )
})

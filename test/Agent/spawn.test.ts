import { SystemError } from "@effect/platform/Error"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../../src/Agent/Config.js"
import * as Spawn from "../../src/Agent/internal/spawn.js"
import * as AgentProcess from "../../src/Agent/Process.js"
import type { AgentStartupError } from "../../src/Errors.js"
import { agentConfig, failureOf, TestLive } from "../support.js"

const KiB = 1024

/** A directory of its own for each test's files, removed when the test ends. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "spawn-test-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Starts an agent that cannot start, returning its failure and the command line errors show for it. */
const startFailure = (input: Config.AgentConfigInput) =>
  Effect.gen(function*() {
    const config = yield* Config.make(input)
    const error = failureOf(yield* Effect.exit(AgentProcess.make(config)))
    assert.strictEqual(error._tag, "AgentStartupError")
    return { error: error as AgentStartupError, command: Spawn.commandLine(config) }
  })

const occurrences = (text: string, part: string) => text.split(part).length - 1

/** What every spawn failure must say: the agent, the command line once, the code; no stack, no placeholder. */
const assertSpawnFailure = (
  { command, error }: { readonly error: AgentStartupError; readonly command: string },
  agent: string,
  code: string
) => {
  assert.strictEqual(error.reason, "spawn_failed")
  assert.strictEqual(error.code, code)
  assert.strictEqual(error.agent, agent)
  assert.include(error.message, `Agent "${agent}"`)
  assert.strictEqual(occurrences(error.message, command), 1, `the command once in: ${error.message}`)
  assert.include(error.message, `(${code})`)
  assert.notInclude(error.message, "(unknown)")
  assert.notInclude(error.remediation, "(unknown)")
  assert.notMatch(error.message, /\n\s+at /, "no stack trace")
}

describe.sequential("spawn failures (real spawns through AgentProcess.make)", () => {
  it.scopedLive("a command that is not on PATH: ENOENT, and the PATH directories searched", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const searched = [path.join(dir, "bin"), "/usr/bin", "/bin"]
      const failure = yield* startFailure(
        agentConfig("echo", {
          name: "no-such-program",
          command: "no-such-agent-program-0x7f",
          args: ["--serve"],
          env: { PATH: [...searched, "/usr/bin"].join(path.delimiter) }
        })
      )
      assertSpawnFailure(failure, "no-such-program", "ENOENT")
      const { error } = failure
      assert.strictEqual(error.subject, "command")
      assert.deepStrictEqual(error.searchPath, searched, "in order, each once")
      assert.include(error.message, "not on PATH")
      assert.include(error.message, searched.join(", "))
      assert.include(error.remediation, `Install "no-such-agent-program-0x7f"`)
      assert.include(error.remediation, "absolute path")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a path that does not exist: ENOENT, and where it was looked for", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const failure = yield* startFailure({ name: "no-file", command: "./missing/agent", cwd: dir })
      assertSpawnFailure(failure, "no-file", "ENOENT")
      assert.strictEqual(failure.error.resolvedPath, path.join(dir, "missing", "agent"))
      assert.include(failure.error.message, `does not exist at ${path.join(dir, "missing", "agent")}`)
      assert.include(failure.error.remediation, "relative path resolves against the agent's cwd")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a script whose #! interpreter does not exist: ENOENT about the interpreter", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const script = path.join(dir, "agent.sh")
      fs.writeFileSync(script, "#!/nonexistent/interpreter -u\necho never\n", { mode: 0o755 })
      const failure = yield* startFailure({ name: "bad-shebang", command: script })
      assertSpawnFailure(failure, "bad-shebang", "ENOENT")
      assert.strictEqual(failure.error.subject, "interpreter")
      assert.strictEqual(failure.error.interpreter, "/nonexistent/interpreter")
      assert.include(failure.error.message, "the interpreter its #! line names, /nonexistent/interpreter")
      assert.include(failure.error.remediation, "Install /nonexistent/interpreter or fix the #! line")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a file that is not executable: EACCES, chmod +x or its interpreter", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const script = path.join(dir, "agent.py")
      fs.writeFileSync(script, "print('never')\n")
      fs.chmodSync(script, 0o644)
      const failure = yield* startFailure(agentConfig("echo", { name: "not-executable", command: script, args: [] }))
      assertSpawnFailure(failure, "not-executable", "EACCES")
      assert.strictEqual(failure.error.subject, "command")
      assert.include(failure.error.message, "is not executable")
      assert.include(failure.error.remediation, `chmod +x ${script}`)
      assert.include(failure.error.remediation, "interpreter")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a directory as the command: EACCES, it is a directory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const failure = yield* startFailure({ name: "a-directory", command: dir })
      assertSpawnFailure(failure, "a-directory", "EACCES")
      assert.isTrue(failure.error.isDirectory)
      assert.include(failure.error.message, "is a directory")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a cwd that does not exist: ENOENT about the cwd, not the command", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const cwd = path.join(dir, "gone")
      const failure = yield* startFailure(agentConfig("echo", { name: "no-cwd", cwd }))
      assertSpawnFailure(failure, "no-cwd", "ENOENT")
      assert.strictEqual(failure.error.subject, "cwd")
      assert.include(failure.error.message, `working directory ${cwd} does not exist`)
      assert.notInclude(failure.error.message, "PATH")
      assert.include(failure.error.remediation, `Create ${cwd}`)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a cwd that is a file: ENOTDIR about the cwd", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const cwd = path.join(dir, "file")
      fs.writeFileSync(cwd, "")
      const failure = yield* startFailure(agentConfig("echo", { name: "file-cwd", cwd }))
      assertSpawnFailure(failure, "file-cwd", "ENOTDIR")
      assert.strictEqual(failure.error.subject, "cwd")
      assert.include(failure.error.message, `working directory ${cwd} is not a directory`)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("one 200 KiB argument: E2BIG, the sizes, the command line abbreviated", () =>
    Effect.gen(function*() {
      const big = "a".repeat(200 * KiB)
      const failure = yield* startFailure(agentConfig("echo", { name: "big-arg", args: ["--data", big, "--last"] }))
      assertSpawnFailure(failure, "big-arg", "E2BIG")
      const { command, error } = failure
      assert.isBelow(command.length, 400, "abbreviated")
      assert.include(command, "--data")
      assert.include(command, "(200 KiB)")
      assert.include(command, "[3 args,")
      assert.isBelow(error.message.length, 1000)
      assert.isAbove(error.sizes!.largestArgBytes, 200 * KiB)
      assert.include(error.message, "one argument of 200 KiB is over Linux's 128 KiB limit")
      assert.include(error.remediation, "ARG_MAX")
      assert.include(error.remediation, "task payload")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a 3 MiB env value: E2BIG, naming the variable", () =>
    Effect.gen(function*() {
      const failure = yield* startFailure(
        agentConfig("echo", { name: "big-env", env: { AGENT_CONTEXT: "b".repeat(3 * KiB * KiB) } })
      )
      assertSpawnFailure(failure, "big-env", "E2BIG")
      const { error } = failure
      assert.strictEqual(error.sizes!.largestEnvName, "AGENT_CONTEXT")
      assert.isAbove(error.sizes!.envBytes, 3 * KiB * KiB)
      assert.include(error.message, "the variable AGENT_CONTEXT (3 MiB) is over Linux's 128 KiB limit")
      assert.isBelow(error.message.length, 1000)
      assert.include(error.remediation, "ARG_MAX")
    }).pipe(Effect.provide(TestLive)))
})

describe("Spawn.classify (errors the machine cannot be asked to produce)", () => {
  const config = Effect.runSync(Config.make({ name: "classified", command: process.execPath, args: ["agent.mjs"] }))
  const errno = (code: string) => Object.assign(new Error(`spawn ${code}`), { code, syscall: "spawn", errno: -1 })
  const cases: ReadonlyArray<readonly [code: string, message: string, remediation: string]> = [
    ["EMFILE", "no file descriptors left", "ulimit -n"],
    ["ENFILE", "open file table is full", "fs.file-max"],
    ["EAGAIN", "no more processes can be created", "ulimit -u"],
    ["ENOMEM", "not enough memory", "Free memory"],
    ["EPERM", "spawn EPERM (EPERM)", "Run the command by hand"]
  ]
  for (const [code, message, remediation] of cases) {
    it(`${code}, as Node's error, the platform's SystemError around it, or a child SpawnError`, () => {
      const platform = new SystemError({ reason: "Unknown", module: "Command", method: "spawn", cause: errno(code) })
      const child = { _tag: "SpawnError", error: errno(code) }
      for (const error of [errno(code), platform, child].map((e) => Spawn.classify(config, e))) {
        assert.strictEqual(error._tag, "AgentStartupError")
        assert.strictEqual(error.reason, "spawn_failed")
        assert.strictEqual(error.code, code)
        assert.include(error.message, `Agent "classified" could not start \`${Spawn.commandLine(config)}\``)
        assert.strictEqual(occurrences(error.message, Spawn.commandLine(config)), 1)
        assert.include(error.message, message)
        assert.include(error.remediation, remediation)
      }
    })
  }

  it("an error without a code keeps its text and still names the agent and the command", () => {
    const error = Spawn.classify(config, new TypeError("The argument 'args[0]' must be a string without null bytes"))
    assert.isUndefined(error.code)
    assert.include(error.message, `Agent "classified"`)
    assert.include(error.message, "without null bytes")
    assert.strictEqual(occurrences(error.message, Spawn.commandLine(config)), 1)
  })
})

describe("Spawn.commandLine", () => {
  const line = (command: string, args: ReadonlyArray<string>) =>
    Spawn.commandLine(Effect.runSync(Config.make({ name: "cl", command, args })))

  it("quotes what a shell would need quoted, and leaves a short line whole", () => {
    assert.strictEqual(line("python3", ["agent.py", "a b", ""]), `python3 agent.py "a b" ""`)
  })

  it("shows a long argument as its start and its size, and cuts a long line with the count and total", () => {
    assert.strictEqual(
      line("node", ["-e", "x".repeat(300)]),
      `node -e ${"x".repeat(32)}...(300 bytes) [2 args, 309 bytes in all]`
    )
    const many = line("node", Array.from({ length: 10_000 }, (_, i) => `argument-${i}`))
    assert.isBelow(many.length, 320)
    assert.match(many, /^node argument-0 argument-1 .* \.\.\. \(\+\d+ more\) \[10000 args, \d+ KiB in all\]$/)
  })
})

import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Directory from "../../src/Agent/Directory.js"
import { eventually, failureOf, fixture, root, TestLive } from "../support.js"

const MARKER = ".effect-agent-supervisor.json"

/** A fresh directory, removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "directory-test-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Copies a fixture directory into a temporary one, so installs and edits never touch the repository. */
const copyOf = (name: string) =>
  Effect.map(tempDir, (dir) => {
    const target = path.join(dir, name)
    fs.cpSync(fixture("directories", name), target, { recursive: true })
    return target
  })

const options = (
  agentDir: string,
  cacheDir: string,
  overrides: Partial<Directory.DirectoryOptions> = {}
): Directory.DirectoryOptions => ({
  agentName: `dir-${path.basename(agentDir)}`,
  agentDir,
  cacheDir,
  gracefulTimeout: "2 seconds",
  sigtermTimeout: "2 seconds",
  startupTimeout: "10 seconds",
  requestTimeout: "10 seconds",
  ...overrides
})

/** pip must never reach for an index here: offline, it fails fast instead of retrying a network. */
const offlinePip = { PIP_NO_INDEX: "1" }

/** Entries of a cache's language folder; temporary installs end in `.tmp-<pid>-<random>`. */
const cacheEntries = (cacheDir: string, language: string) => {
  const dir = path.join(cacheDir, language)
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []
}

/** Live processes whose command line mentions `text`. */
const commandLinesWith = (text: string) =>
  fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).flatMap((pid) => {
    try {
      const line = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ")
      return line.includes(text) ? [line] : []
    } catch {
      return []
    }
  })

describe.sequential("Directory", () => {
  describe.sequential("Python", () => {
    it.scopedLive("callback.py with handle_request runs and answers", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = fixture("directories", "python-basic")
        const config = yield* Directory.resolve(options(dir, cache))
        // The interpreter found once on the agent's PATH, by its file: the install and the check ran it too.
        assert.strictEqual(
          config.command,
          execFileSync("sh", ["-c", "command -v python3"], { encoding: "utf8" }).trim()
        )
        assert.deepStrictEqual(config.args, [
          path.join(root, "adapters", "python", "supervisor_adapter.py"),
          `${path.join(dir, "callback.py")}:handle_request`
        ])
        assert.strictEqual(config.cwd, dir)
        const agent = yield* Directory.fromDirectory(options(dir, cache))
        assert.deepStrictEqual(yield* agent.handleEvent({ task: "hi" }), { language: "python", echo: { task: "hi" } })
        assert.strictEqual(yield* agent.state, "RUNNING")
        assert.deepStrictEqual(cacheEntries(cache, "python"), [], "no dependencies, nothing installed")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a named callbackFunction is the one called", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = fixture("directories", "python-basic")
        const agent = yield* Directory.fromDirectory(options(dir, cache, { callbackFunction: "shout" }))
        assert.strictEqual(yield* agent.handleEvent("quiet please"), "QUIET PLEASE")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("the only .py file of a directory is its entry", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const agent = yield* Directory.fromDirectory(options(fixture("directories", "python-single"), cache))
        assert.deepStrictEqual(yield* agent.handleEvent(7), { file: "agent.py", echo: 7 })
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a missing function fails with AgentCallbackNotFoundError listing the functions there", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = fixture("directories", "python-basic")
        const error = failureOf(
          yield* Effect.exit(Directory.fromDirectory(options(dir, cache, { callbackFunction: "handle" })))
        )
        assert.strictEqual(error._tag, "AgentCallbackNotFoundError")
        if (error._tag !== "AgentCallbackNotFoundError") return
        assert.strictEqual(error.callback, "handle")
        assert.strictEqual(error.module, path.join(dir, "callback.py"))
        assert.deepStrictEqual(error.available, ["handle_request", "shout"])
        assert.include(error.message, "handle_request, shout")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a module that fails while loading gives AgentStartupError with its traceback", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const error = failureOf(
          yield* Effect.exit(Directory.resolve(options(fixture("directories", "python-broken"), cache)))
        )
        assert.strictEqual(error._tag, "AgentStartupError")
        if (error._tag !== "AgentStartupError") return
        assert.strictEqual(error.reason, "exited_before_ready")
        assert.strictEqual(error.exitCode, 2)
        assert.include(error.detail, "RuntimeError: boom while loading the agent")
        assert.include(error.detail, "Traceback")
        assert.include(error.message, "boom while loading the agent")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a module importing a package that is not installed gives AgentStartupError naming it", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const error = failureOf(
          yield* Effect.exit(Directory.resolve(options(fixture("directories", "python-missing-module"), cache)))
        )
        assert.strictEqual(error._tag, "AgentStartupError")
        if (error._tag !== "AgentStartupError") return
        assert.strictEqual(error.reason, "exited_before_ready")
        assert.include(error.detail, "No module named 'surely_missing_module_for_tests'")
        assert.include(error.message, `module "surely_missing_module_for_tests" is not installed`)
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("requirements.txt is installed with pip into the cache, put on PYTHONPATH, and reused", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = yield* copyOf("python-wheel")
        execFileSync("python3", [
          fixture("directories", "make_wheel.py"),
          path.join(dir, "localdep-0.1-py3-none-any.whl")
        ])
        const config = yield* Directory.resolve(options(dir, cache, { env: offlinePip }))
        const installs = cacheEntries(cache, "python")
        assert.strictEqual(installs.length, 1, `one complete install, no leftovers: ${installs.join(", ")}`)
        const target = path.join(cache, "python", installs[0])
        assert.isTrue(fs.existsSync(path.join(target, "localdep", "__init__.py")))
        assert.strictEqual(config.env?.PYTHONPATH?.split(path.delimiter)[0], target)
        const marker = fs.statSync(path.join(target, MARKER))

        const agent = yield* Directory.fromDirectory(options(dir, cache, { env: offlinePip }))
        const reply = (yield* agent.handleEvent("you")) as { greeting: string; from: string }
        assert.strictEqual(reply.greeting, "hello you")
        assert.isTrue(reply.from.startsWith(target), reply.from)
        assert.deepStrictEqual(cacheEntries(cache, "python"), installs)
        const again = fs.statSync(path.join(target, MARKER))
        assert.strictEqual(again.mtimeMs, marker.mtimeMs, "the install was reused, not redone")
        assert.strictEqual(again.ino, marker.ino)
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("an install reports its start, its output and its end to Directory.Progress; a reporter's bug changes nothing", () =>
      Effect.gen(function*() {
        const dir = yield* copyOf("python-wheel")
        execFileSync("python3", [
          fixture("directories", "make_wheel.py"),
          path.join(dir, "localdep-0.1-py3-none-any.whl")
        ])
        const seen: Array<string> = []
        let output = ""
        const recording: Directory.InstallProgress = {
          onStart: (agent, installer) => seen.push(`start ${agent} ${installer}`),
          onOutput: (_, chunk) => (output += Buffer.from(chunk).toString("utf8")),
          onEnd: (agent, ok) => seen.push(`end ${agent} ${ok}`)
        }
        yield* Directory.resolve(options(dir, yield* tempDir, { env: offlinePip })).pipe(
          Effect.provideService(Directory.Progress, recording)
        )
        assert.strictEqual(seen.length, 2, seen.join("\n"))
        assert.match(seen[0], /^start \S+ python3 -m pip install/)
        assert.match(seen[1], /^end \S+ true$/)
        assert.match(output, /localdep/i, "the installer's output was reported")
        // A reporter that throws: the install still reads the installer's output to its end, and succeeds.
        const throwing: Directory.InstallProgress = {
          onStart: () => {
            throw new Error("reporter bug")
          },
          onOutput: () => {
            throw new Error("reporter bug")
          },
          onEnd: () => {
            throw new Error("reporter bug")
          }
        }
        const config = yield* Directory.resolve(options(dir, yield* tempDir, { env: offlinePip })).pipe(
          Effect.provideService(Directory.Progress, throwing)
        )
        assert.isString(config.env?.PYTHONPATH)
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("an interrupted install kills the installer and leaves nothing behind", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = yield* copyOf("python-wheel")
        execFileSync("python3", [
          fixture("directories", "make_wheel.py"),
          path.join(dir, "localdep-0.1-py3-none-any.whl")
        ])
        const fiber = yield* Effect.fork(Directory.resolve(options(dir, cache, { env: offlinePip })))
        yield* eventually(
          "pip runs on a temporary install",
          () => commandLinesWith(path.join(cache, "python")).some((line) => line.includes("pip install")),
          "10 seconds"
        )
        const temporary = path.join(cache, "python", cacheEntries(cache, "python")[0])
        assert.include(temporary, ".tmp-")
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(cacheEntries(cache, "python"), [])
        yield* eventually("no process works on the temporary install", () => commandLinesWith(temporary).length === 0)
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a requirement pip cannot find gives AgentDependencyError with pip's output", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = yield* copyOf("python-requirements")
        const error = failureOf(yield* Effect.exit(Directory.resolve(options(dir, cache, { env: offlinePip }))))
        assert.strictEqual(error._tag, "AgentDependencyError")
        if (error._tag !== "AgentDependencyError") return
        assert.isFalse(error.timedOut)
        assert.isTrue(typeof error.exitCode === "number" && error.exitCode !== 0, `exit code ${error.exitCode}`)
        assert.strictEqual(error.manifest, path.join(dir, "requirements.txt"))
        assert.include(error.output, "surely-not-a-real-package-for-tests")
        assert.include(error.message, "surely-not-a-real-package-for-tests")
        assert.deepStrictEqual(cacheEntries(cache, "python"), [], "a failed install leaves nothing behind")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("pyproject.toml's [project] dependencies are installed the same way", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = yield* copyOf("python-pyproject")
        const error = failureOf(yield* Effect.exit(Directory.resolve(options(dir, cache, { env: offlinePip }))))
        assert.strictEqual(error._tag, "AgentDependencyError")
        if (error._tag !== "AgentDependencyError") return
        assert.strictEqual(error.manifest, path.join(dir, "pyproject.toml"))
        assert.include(error.output, "surely-not-a-real-pyproject-dep")
        assert.notInclude(error.output, "not-this-one")
        assert.notInclude(error.output, "pytest")
      }).pipe(Effect.provide(TestLive)))

    /** The install of a pyproject fixture whose only dependency does not exist: pip's error names what it read. */
    const pyprojectInstallError = (name: string) =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = yield* copyOf(name)
        const error = failureOf(yield* Effect.exit(Directory.resolve(options(dir, cache, { env: offlinePip }))))
        assert.strictEqual(error._tag, "AgentDependencyError", error.message)
        if (error._tag !== "AgentDependencyError") return assert.fail(error.message)
        assert.strictEqual(error.manifest, path.join(dir, "pyproject.toml"))
        return error
      })

    it.scopedLive("pyproject.toml's dependencies are found when [project] is written with dotted keys", () =>
      Effect.gen(function*() {
        const error = yield* pyprojectInstallError("python-pyproject-dotted")
        assert.include(error.output, "surely-not-a-real-dotted-dep")
        assert.notInclude(error.output, "not-this-poetry-one")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("pyproject.toml's dependencies are found after and inside multi-line strings", () =>
      Effect.gen(function*() {
        const error = yield* pyprojectInstallError("python-pyproject-multiline")
        assert.include(error.output, "surely-not-a-real-multiline-dep")
        assert.notInclude(error.output, "not-this-multiline-one")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("pyproject.toml's \\u escapes are decoded", () =>
      Effect.gen(function*() {
        const error = yield* pyprojectInstallError("python-pyproject-unicode")
        assert.include(error.output, "surely-not-a-real-unicode-dep")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a pyproject.toml that is not TOML gives ConfigError naming the file and the line", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = fixture("directories", "python-pyproject-malformed")
        const error = failureOf(yield* Effect.exit(Directory.resolve(options(dir, cache, { env: offlinePip }))))
        assert.strictEqual(error._tag, "ConfigError")
        if (error._tag !== "ConfigError") return
        assert.strictEqual(error.field, "agentDir")
        assert.strictEqual(error.value, dir)
        assert.include(error.rule, "pyproject.toml is not valid TOML")
        assert.include(error.rule, "line 4")
        assert.include(error.message, "pyproject.toml")
        assert.deepStrictEqual(cacheEntries(cache, "python"), [], "nothing was installed")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("an install that exceeds installTimeout gives AgentDependencyError with timedOut", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = yield* copyOf("python-requirements")
        const error = failureOf(
          yield* Effect.exit(Directory.resolve(options(dir, cache, { env: offlinePip, installTimeout: "1 millis" })))
        )
        assert.strictEqual(error._tag, "AgentDependencyError")
        if (error._tag !== "AgentDependencyError") return
        assert.isTrue(error.timedOut)
        assert.include(error.message, "timed out")
        assert.deepStrictEqual(cacheEntries(cache, "python"), [], "a timed-out install leaves nothing behind")
      }).pipe(Effect.provide(TestLive)))
  })

  describe.sequential("Node", () => {
    it.scopedLive("package.json's main is the entry and its default export the callback", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = fixture("directories", "node-main")
        const config = yield* Directory.resolve(options(dir, cache))
        assert.strictEqual(config.command, process.execPath)
        assert.deepStrictEqual(config.args, [
          path.join(root, "dist", "Adapter", "node.js"),
          path.join(dir, "src", "agent.js")
        ])
        const agent = yield* Directory.fromDirectory(options(dir, cache))
        assert.deepStrictEqual(yield* agent.handleEvent(1), { language: "node", entry: "src/agent.js", echo: 1 })
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a named callbackFunction is the export called", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = fixture("directories", "node-main")
        const agent = yield* Directory.fromDirectory(options(dir, cache, { callbackFunction: "shout" }))
        assert.strictEqual(yield* agent.handleEvent("loud"), "LOUD")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("index.mjs without package.json is the entry, handleRequest the callback", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const agent = yield* Directory.fromDirectory(options(fixture("directories", "node-index"), cache))
        assert.deepStrictEqual(yield* agent.handleEvent("x"), { entry: "index.mjs", echo: "x" })
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a missing export fails with AgentCallbackNotFoundError listing the exported functions", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = fixture("directories", "node-index")
        const error = failureOf(
          yield* Effect.exit(Directory.resolve(options(dir, cache, { callbackFunction: "missing" })))
        )
        assert.strictEqual(error._tag, "AgentCallbackNotFoundError")
        if (error._tag !== "AgentCallbackNotFoundError") return
        assert.strictEqual(error.callback, "missing")
        assert.strictEqual(error.module, path.join(dir, "index.mjs"))
        assert.deepStrictEqual(error.available, ["handleRequest", "other"])
        assert.isUndefined(error.defaultExport, "a function named: only it was looked for")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("no function named and neither a default export nor handleRequest: the error names both", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        fs.writeFileSync(path.join(dir, "index.mjs"), "export const other = () => 1\nexport default 42\n")
        const error = failureOf(yield* Effect.exit(Directory.resolve(options(dir, yield* tempDir))))
        assert.strictEqual(error._tag, "AgentCallbackNotFoundError")
        if (error._tag !== "AgentCallbackNotFoundError") return
        assert.isTrue(error.defaultExport)
        assert.strictEqual(
          error.message,
          `Agent "dir-${path.basename(dir)}": no default export function nor function "handleRequest" in ` +
            `${path.join(dir, "index.mjs")} (functions there: other)`
        )
        assert.include(error.remediation, "Export a function as the module's default or as \"handleRequest\"")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a module that throws while loading gives AgentStartupError with the error", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const error = failureOf(
          yield* Effect.exit(Directory.resolve(options(fixture("directories", "node-broken"), cache)))
        )
        assert.strictEqual(error._tag, "AgentStartupError")
        if (error._tag !== "AgentStartupError") return
        assert.strictEqual(error.reason, "exited_before_ready")
        assert.include(error.detail, "boom while loading the node agent")
        assert.include(error.message, "boom while loading the node agent")
        // The user's frame, none of the adapter's nor of Node's loader, and a last line naming the module, as
        // Python's traceback and message are
        const text = error.detail ?? ""
        const detail = text.split("\n")
        assert.isTrue(detail.some((line) => line.includes("node-broken/index.mjs:2")), text)
        assert.isFalse(/Adapter\/|node:internal/.test(text), text)
        assert.strictEqual(
          detail[detail.length - 1],
          `cannot load ${fixture("directories", "node-broken", "index.mjs")}: boom while loading the node agent`
        )
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive.skipIf(process.platform !== "linux")(
      "a cacheDir where no directory can be made (under /proc) fails at once, never hangs",
      () =>
        Effect.gen(function*() {
          const dir = yield* copyOf("node-deps")
          // Node's recursive mkdir loops for ever there (procfs answers ENOENT with the parent in place).
          const exit = yield* Effect.exit(Directory.resolve(options(dir, "/proc/self/no-such-cache"))).pipe(
            Effect.timeout("20 seconds")
          )
          assert.isTrue(exit._tag === "Failure", "it fails")
          assert.include(String(failureOf(exit)), "/proc/self/no-such-cache")
        }).pipe(Effect.provide(TestLive))
    )

    it.scopedLive("dependencies are installed with npm into a keyed copy, run from there, and reused", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = yield* copyOf("node-deps")
        const config = yield* Directory.resolve(options(dir, cache))
        const installs = cacheEntries(cache, "node")
        assert.strictEqual(installs.length, 1, `one complete install, no leftovers: ${installs.join(", ")}`)
        const installed = path.join(cache, "node", installs[0])
        assert.strictEqual(config.cwd, installed)
        assert.deepStrictEqual(config.args?.[1], path.join(installed, "index.mjs"))
        assert.isTrue(fs.existsSync(path.join(installed, "node_modules", "local-dep", "index.js")))
        assert.isFalse(fs.existsSync(path.join(dir, "node_modules")), "the agent's own directory is left alone")
        const marker = fs.statSync(path.join(installed, MARKER))
        const modules = fs.statSync(path.join(installed, "node_modules"))

        const agent = yield* Directory.fromDirectory(options(dir, cache))
        assert.deepStrictEqual(yield* agent.handleEvent("npm"), { greeting: "hello npm", version: 1 })
        assert.deepStrictEqual(cacheEntries(cache, "node"), installs)
        const again = fs.statSync(path.join(installed, MARKER))
        assert.strictEqual(again.mtimeMs, marker.mtimeMs, "npm did not run again")
        assert.strictEqual(again.ino, marker.ino)
        assert.strictEqual(fs.statSync(path.join(installed, "node_modules")).mtimeMs, modules.mtimeMs)
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("an edit to the code alone runs from a fresh copy beside the same install", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = yield* copyOf("node-deps")
        const first = yield* Directory.resolve(options(dir, cache))
        const installs = cacheEntries(cache, "node")
        const marker = fs.statSync(path.join(cache, "node", installs[0], MARKER))
        const source = path.join(dir, "index.mjs")
        fs.writeFileSync(source, fs.readFileSync(source, "utf8").replace("version: 1", "version: 2"))
        // mtimes have a coarse resolution on some file systems: make the edit visible whatever it is
        const later = new Date(Date.now() + 5_000)
        fs.utimesSync(source, later, later)

        const second = yield* Directory.resolve(options(dir, cache))
        assert.notStrictEqual(second.cwd, first.cwd)
        assert.isTrue(second.cwd!.startsWith(path.join(cache, "node", installs[0]) + path.sep), second.cwd)
        assert.deepStrictEqual(cacheEntries(cache, "node"), installs, "no second install")
        assert.strictEqual(fs.statSync(path.join(cache, "node", installs[0], MARKER)).mtimeMs, marker.mtimeMs)
        const agent = yield* Directory.fromDirectory(options(dir, cache))
        assert.deepStrictEqual(yield* agent.handleEvent("edit"), { greeting: "hello edit", version: 2 })
      }).pipe(Effect.provide(TestLive)))
    it.scopedLive("concurrent resolves of one agent share one complete install", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = yield* copyOf("node-deps")
        const configs = yield* Effect.all(
          [1, 2, 3].map(() => Directory.resolve(options(dir, cache))),
          { concurrency: "unbounded" }
        )
        const installs = cacheEntries(cache, "node")
        assert.strictEqual(installs.length, 1, `one complete install, no leftovers: ${installs.join(", ")}`)
        for (const config of configs) assert.strictEqual(config.cwd, path.join(cache, "node", installs[0]))
      }).pipe(Effect.provide(TestLive)))
  })

  describe.sequential("configuration errors", () => {
    const agentDirError = (agentDir: string, expected: string) =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const error = failureOf(yield* Effect.exit(Directory.resolve(options(agentDir, cache))))
        assert.strictEqual(error._tag, "ConfigError")
        if (error._tag !== "ConfigError") return
        assert.strictEqual(error.field, "agentDir")
        assert.strictEqual(error.value, agentDir)
        assert.include(error.rule, "callback.py")
        assert.include(error.rule, expected)
        assert.deepStrictEqual(cacheEntries(cache, "python"), [])
      })

    it.scopedLive("a path that does not exist", () =>
      agentDirError(fixture("directories", "no-such-agent"), "nothing exists at this path").pipe(
        Effect.provide(TestLive)
      ))

    it.scopedLive("a path that is a file", () =>
      agentDirError(fixture("directories", "python-basic", "callback.py"), "it is a file, not a directory").pipe(
        Effect.provide(TestLive)
      ))

    it.scopedLive("an empty directory", () =>
      Effect.gen(function*() {
        const empty = yield* tempDir
        yield* agentDirError(empty, "the directory is empty")
      }).pipe(Effect.provide(TestLive)))

    it.scopedLive("a directory with neither a Python nor a Node agent", () =>
      agentDirError(fixture("directories", "readme-only"), "it holds neither, only README.md").pipe(
        Effect.provide(TestLive)
      ))

    it.scopedLive("several .py files and no callback.py", () =>
      agentDirError(fixture("directories", "python-several"), "several .py files (first.py, second.py)").pipe(
        Effect.provide(TestLive)
      ))

    it.scopedLive("a callbackFunction that is no Python name, and a bad agentName", () =>
      Effect.gen(function*() {
        const cache = yield* tempDir
        const dir = fixture("directories", "python-basic")
        const badFunction = failureOf(
          yield* Effect.exit(Directory.resolve(options(dir, cache, { callbackFunction: "handle-request" })))
        )
        assert.strictEqual(badFunction._tag, "ConfigError")
        if (badFunction._tag === "ConfigError") assert.strictEqual(badFunction.field, "callbackFunction")
        const badName = failureOf(
          yield* Effect.exit(Directory.resolve(options(dir, cache, { agentName: "no spaces" })))
        )
        assert.strictEqual(badName._tag, "ConfigError")
        if (badName._tag === "ConfigError") assert.strictEqual(badName.field, "agentName")
        const badTimeout = failureOf(
          yield* Effect.exit(Directory.resolve(options(dir, cache, { installTimeout: "soon" as any })))
        )
        assert.strictEqual(badTimeout._tag, "ConfigError")
        if (badTimeout._tag === "ConfigError") assert.strictEqual(badTimeout.field, "installTimeout")
      }).pipe(Effect.provide(TestLive)))
  })
})

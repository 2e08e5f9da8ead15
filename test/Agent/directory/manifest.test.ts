import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pythonDependencies } from "../../../src/Agent/internal/directory/manifest.js"
import { failureOf, fixture } from "../../support.js"

/** pip's arguments for the fixture's dependencies, none when it lists no dependency. */
const argsOf = (name: string) =>
  pythonDependencies(fixture("directories", name)).pipe(
    Effect.map(Option.map((dependencies) => dependencies.args))
  )

/** A directory holding only `pyproject.toml` with `text`, removed when the test's scope closes. */
const withPyproject = (text: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "manifest-test-"))
      fs.writeFileSync(path.join(dir, "pyproject.toml"), text)
      return dir
    }),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )

describe("Directory manifests: pyproject.toml", () => {
  it.effect("[project] dependencies, comments and literal strings included, nothing from other tables", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* argsOf("python-pyproject"),
        Option.some(["surely-not-a-real-pyproject-dep>=1.0", "another-missing-dep"])
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("dotted keys (project.dependencies) with a [tool.poetry.dependencies] table beside", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* argsOf("python-pyproject-dotted"),
        Option.some(["surely-not-a-real-dotted-dep>=1.0"])
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("multi-line strings, one holding a line like a table header and one like the key", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* argsOf("python-pyproject-multiline"),
        Option.some(["surely-not-a-real-multiline-dep"])
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("\\u and \\U escapes", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* argsOf("python-pyproject-unicode"),
        Option.some(["surely-not-a-real-unicode-dep"])
      )
      const dir = yield* withPyproject(`[project]\ndependencies = ["caf\\u00e9", "\\U0001F600-dep", 'raw\\u00e9']\n`)
      assert.deepStrictEqual(
        Option.getOrUndefined(yield* pythonDependencies(dir))?.args,
        ["café", "😀-dep", "raw\\u00e9"]
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("no [project] table, or no dependencies in it: nothing to install", () =>
    Effect.gen(function*() {
      for (const text of ["", "[tool.poetry.dependencies]\npython = \"^3.9\"\n", "[project]\nname = \"x\"\n"]) {
        const dir = yield* withPyproject(text)
        assert.isTrue(Option.isNone(yield* pythonDependencies(dir)), JSON.stringify(text))
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a file that is not TOML is a ConfigError at agentDir naming the file and the position", () =>
    Effect.gen(function*() {
      const dir = fixture("directories", "python-pyproject-malformed")
      const error = failureOf(yield* Effect.exit(pythonDependencies(dir)))
      assert.strictEqual(error._tag, "ConfigError")
      assert.strictEqual(error.field, "agentDir")
      assert.strictEqual(error.value, dir)
      assert.include(error.rule, "pyproject.toml is not valid TOML: unexpected character encountered (line 4, column")
      assert.notInclude(error.rule, "\n", "one line, without smol-toml's code excerpt")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("dependencies that are not an array of strings, a [project] that is not a table, and a pip option", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["[project]\ndependencies = \"requests\"\n", "[project] dependencies must be an array of strings"],
        ["[project]\ndependencies = [\"requests\", 1]\n", "[project] dependencies must be an array of strings"],
        ["project = 1\n", "project must be a table"],
        ["[project]\ndependencies = [\"--index-url=http://example.invalid\"]\n", "which is not a requirement"]
      ]
      for (const [text, expected] of cases) {
        const dir = yield* withPyproject(text)
        const error = failureOf(yield* Effect.exit(pythonDependencies(dir)))
        assert.strictEqual(error._tag, "ConfigError")
        assert.include(error.rule, expected, JSON.stringify(text))
      }
    }).pipe(Effect.provide(NodeContext.layer)))
})

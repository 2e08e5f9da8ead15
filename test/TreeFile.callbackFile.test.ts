/**
 * What a tree file names on disk for the library to run or read at start is checked where the file is read
 * (`TreeFile.load`, which `validate` and `up` read it with): a callback agent's `file` (Node, and Python when it is a
 * path), a pool's members' in the callback form, a directory agent's `agentDir`, and every `cwd` the file sets.
 * Before, `validate` said OK for a callback whose file did not exist and `up` failed at start with
 * ERR_MODULE_NOT_FOUND. And a field of the wrong type reads like the file's other problems (`must be a number`),
 * not as the Schema's own words (`Expected number, actual "abc"`). From a user's trial.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ConfigError } from "../src/Errors.js"
import { validate } from "../src/internal/cli/validate.js"
import * as TreeFile from "../src/TreeFile.js"
import { failureOf, tempDir } from "./support.js"
import { problemsOf } from "./treeFileSupport.js"

/** `text` written as `tree.yaml` in `dir` (with `files` beside it, each path to its content), and its path. */
const writeTree = (dir: string, text: string, files: Record<string, string> = {}) => {
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), content)
  }
  const file = path.join(dir, "tree.yaml")
  fs.writeFileSync(file, text)
  return file
}

/** The problems `effect` fails with, as `field: rule` lines. */
const problemLines = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    const error = failureOf(exit)
    assert.instanceOf(error, ConfigError)
    return (error as unknown as ConfigError).problems.map((p) => `${p.field}: ${p.rule}`)
  })

const HANDLER = "export default async () => ({ ok: true })\n"

describe("tree files: the files a tree names are there", () => {
  it.scoped("a callback whose file does not exist: its path in the file, and where it was looked for", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile-callback-file")
      const file = writeTree(
        dir,
        `
name: t4
children:
  - type: callback
    id: missing
    config: { name: missing, language: node, file: agents/nope.mjs }
`
      )
      const expected = [
        `children[0].config.file: no file agents/nope.mjs (looked for ${path.join(dir, "agents", "nope.mjs")})`
      ]
      assert.deepStrictEqual(yield* problemLines(TreeFile.load(file)), expected)
      // `validate` reads the file as `up` does: the same problem, not OK.
      assert.deepStrictEqual(yield* problemLines(validate(file)), expected)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a file that is there passes, relative to the agent's cwd; a Python module is left to Python", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile-callback-file")
      const file = writeTree(
        dir,
        `
children:
  - type: callback
    id: node
    config: { name: node, language: node, file: agents/ok.mjs, function: handle }
  - type: callback
    id: python
    config: { name: python, language: python, file: agents/ok.py, cwd: py }
  - type: callback
    id: module
    config: { name: module, language: python, file: agents.summarize }
  - type: callback
    id: absolute
    config: { name: absolute, language: node, file: ${path.join(dir, "agents", "ok.mjs")} }
`,
        { "agents/ok.mjs": HANDLER, "py/agents/ok.py": "def handle_request(p):\n    return p\n" }
      )
      const tree = yield* TreeFile.load(file)
      assert.strictEqual(tree.children.length, 4)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("Python and Node files, a directory where a file should be, a cwd that is not there: each a problem", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile-callback-file")
      const file = writeTree(
        dir,
        `
children:
  - type: callback
    id: py
    config: { name: py, language: python, file: agents/summarize.py, function: handle }
  - type: callback
    id: folder
    config: { name: folder, language: node, file: agents }
  - type: callback
    id: elsewhere
    config: { name: elsewhere, language: node, file: ok.mjs, cwd: work }
  - type: agent
    id: plain
    config: { name: plain, command: ./run.sh, cwd: nowhere }
  - type: agent
    id: onPath
    config: { name: on-path, command: no-such-program-on-path }
`,
        { "agents/ok.mjs": HANDLER }
      )
      assert.deepStrictEqual(yield* problemLines(TreeFile.load(file)), [
        `children[0].config.file: no file agents/summarize.py (looked for ${path.join(dir, "agents", "summarize.py")})`,
        `children[1].config.file: agents is a directory, not a file (looked for ${path.join(dir, "agents")})`,
        // The file is not looked for in a cwd that is not there: one problem, the cwd's.
        `children[2].config.cwd: no directory work (looked for ${path.join(dir, "work")})`,
        // A command is the program's to find (on PATH, or from its cwd), at start.
        `children[3].config.cwd: no directory nowhere (looked for ${path.join(dir, "nowhere")})`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a pool's members in the callback or directory form, and children of nested supervisors", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile-callback-file")
      const file = writeTree(
        dir,
        `
children:
  - type: pool
    id: classifiers
    size: 2
    config: { name: classifier, language: node, file: agents/classify.mjs }
  - type: supervisor
    id: workers
    children:
      - type: directory
        id: summarizer
        config: { agentName: summarizer, agentDir: agents/summarizer }
      - type: pool
        id: readers
        size: 1
        config: { agentName: reader, agentDir: agents/ok.mjs }
      - type: pool
        id: fine
        size: 1
        config: { name: fine, language: node, file: agents/ok.mjs }
`,
        { "agents/ok.mjs": HANDLER }
      )
      assert.deepStrictEqual(yield* problemLines(TreeFile.load(file)), [
        `children[0].config.file: no file agents/classify.mjs (looked for ${path.join(dir, "agents", "classify.mjs")})`,
        `children[1].children[0].config.agentDir: no directory agents/summarizer ` +
        `(looked for ${path.join(dir, "agents", "summarizer")})`,
        `children[1].children[1].config.agentDir: agents/ok.mjs is a file, not a directory ` +
        `(looked for ${path.join(dir, "agents", "ok.mjs")})`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a file that cannot be read", () =>
    Effect.gen(function*() {
      // root reads any file: nothing to see there.
      if (process.getuid?.() === 0) return
      const dir = yield* tempDir("treefile-callback-file")
      const file = writeTree(
        dir,
        `
children:
  - type: callback
    id: secret
    config: { name: secret, language: node, file: secret.mjs }
`,
        { "secret.mjs": HANDLER }
      )
      fs.chmodSync(path.join(dir, "secret.mjs"), 0o000)
      assert.deepStrictEqual(yield* problemLines(TreeFile.load(file)), [
        `children[0].config.file: cannot read secret.mjs: permission denied (looked for ${
          path.join(dir, "secret.mjs")
        })`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("with the file's other problems, in one list, in the order the file writes them", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile-callback-file")
      const file = writeTree(
        dir,
        `
admin: { port: "abc" }
children:
  - type: callback
    id: missing
    config: { name: missing, language: node, file: nope.mjs }
  - type: agent
    id: typo
    config: { name: typo, command: node, requestTimeot: 5 seconds }
`
      )
      assert.deepStrictEqual(yield* problemLines(TreeFile.load(file)), [
        "admin.port: must be a number",
        `children[0].config.file: no file nope.mjs (looked for ${path.join(dir, "nope.mjs")})`,
        `children[1].config.requestTimeot: is not a known setting: did you mean "requestTimeout"?`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("parse checks no file: its text may describe a tree of another machine", () =>
    Effect.gen(function*() {
      const tree = yield* TreeFile.parse(
        "children:\n  - { type: callback, id: a, config: { name: a, language: node, file: nope.mjs, cwd: nowhere } }\n",
        { format: "yaml", env: {}, dir: "/no/such/dir" }
      )
      assert.strictEqual(tree.children.length, 1)
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("tree files: a field of the wrong type", () => {
  it.effect("says what it must be, in the file's words, whatever the field", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(
        yield* problemsOf(`
name: 3
admin: { port: "abc", host: 3 }
store: { type: memory, maxMetrics: "many" }
logs: { dir: 3, maxBytes: "a" }
children:
  - { type: agent, id: a, config: { name: a, command: x, maxInFlight: "x" } }
  - { type: pool, id: p, size: 1, autoscale: { min: "a", max: 2, target: 1 }, config: { name: p, command: x } }
`),
        [
          "name: must be text",
          "admin.port: must be a number",
          "admin.host: must be text",
          "store.maxMetrics: must be a number",
          "logs.dir: must be text",
          "logs.maxBytes: must be a number",
          "children[0].config.maxInFlight: must be a number",
          "children[1].autoscale.min: must be a number"
        ]
      )
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("keeps the value given, which the error's message shows", () =>
    Effect.gen(function*() {
      const error = failureOf(yield* Effect.exit(TreeFile.parse(`admin: { port: "abc" }\n`, { format: "yaml" })))
      assert.instanceOf(error, ConfigError)
      assert.deepStrictEqual((error as ConfigError).problems, [
        { field: "admin.port", rule: "must be a number", value: `"abc"` }
      ])
      assert.strictEqual(
        (error as ConfigError).message,
        `Invalid configuration at admin.port: must be a number (got "abc")`
      )
    }).pipe(Effect.provide(NodeContext.layer)))
})

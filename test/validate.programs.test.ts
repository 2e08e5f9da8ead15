/**
 * `agent-supervisor validate` looks for what the file's agents run, as their start will (a new user's finding: it
 * said OK for a Python callback with a syntax error and for a function misspelt, which only `up` then found): an
 * agent's program on the child's PATH, a callback's module loaded by its adapter's `--check`. Every problem at
 * once, each at its path; nothing of an agent started. The built bin, in child processes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Programs from "../src/internal/treeFile/programs.js"
import * as TreeFile from "../src/TreeFile.js"
import { runCli, tempDir, TestLive } from "./support.js"

const validate = (file: string, env: Record<string, string> = {}) => runCli(["validate", file], { env })

/** The modules the trees below name, in `dir`. */
const writeModules = (dir: string) => {
  fs.writeFileSync(path.join(dir, "good.py"), "def handle_request(payload):\n    return payload\n")
  fs.writeFileSync(path.join(dir, "broken.py"), "def handle_request(payload)\n    return payload\n")
  fs.writeFileSync(path.join(dir, "good.mjs"), "export const handleRequest = (payload) => payload\n")
  // A module whose top-level code would start something: the check must not serve it (a marker says it loaded)
  fs.writeFileSync(
    path.join(dir, "marks.mjs"),
    `import * as fs from "node:fs"\nfs.writeFileSync(${JSON.stringify(path.join(dir, "loaded"))}, "")\n` +
      "export const handleRequest = (payload) => payload\n"
  )
  // Loads only where the supervisor's own environment is not inherited and the agent's own is given.
  fs.writeFileSync(
    path.join(dir, "env.mjs"),
    "if (process.env.SUPERVISOR_ONLY !== undefined) throw new Error(\"inherited SUPERVISOR_ONLY\")\n" +
      "if (process.env.NEEDED !== \"yes\") throw new Error(\"NEEDED is not given\")\n" +
      "export const handleRequest = (payload) => payload\n"
  )
  fs.writeFileSync(path.join(dir, "other.mjs"), "export function other() {}\n")
  fs.writeFileSync(
    path.join(dir, "slow.mjs"),
    "await new Promise((resolve) => setTimeout(resolve, 60_000))\nexport const handleRequest = (payload) => payload\n"
  )
  // Says who loaded it, in a directory any user may write.
  fs.mkdirSync(path.join(dir, "marks"), { mode: 0o777 })
  fs.chmodSync(path.join(dir, "marks"), 0o777)
  fs.writeFileSync(
    path.join(dir, "uid.mjs"),
    `import * as fs from "node:fs"\nfs.writeFileSync(${JSON.stringify(path.join(dir, "marks", "uid"))}, ` +
      "String(process.getuid()))\nexport const handleRequest = (payload) => payload\n"
  )
}

/** A tree file of `children` in a new directory beside the modules. */
const treeWith = (children: ReadonlyArray<unknown>) =>
  Effect.map(tempDir("validate-programs"), (dir) => {
    writeModules(dir)
    const file = path.join(dir, "tree.json")
    fs.writeFileSync(file, JSON.stringify({ children }))
    return { dir, file }
  })

const callback = (
  id: string,
  language: "python" | "node",
  file: string,
  fn?: string,
  more: Record<string, unknown> = {}
) => ({
  type: "callback",
  id,
  config: { name: id, language, file, ...(fn === undefined ? {} : { function: fn }), ...more }
})

const isRoot = process.getuid?.() === 0

/** What stderr says from `at <field>: ` on. */
const atIn = (stderr: string) => (field: string) => {
  const start = stderr.indexOf(`at ${field}: `)
  assert.isAtLeast(start, 0, `${field} in ${stderr}`)
  return stderr.slice(start)
}

describe("agent-supervisor validate: what the agents run", () => {
  it.scoped("every program that is not there and every callback that does not load, each at its path, exit 1", () =>
    Effect.gen(function*() {
      const { file } = yield* treeWith([
        { type: "agent", id: "ghost", config: { name: "ghost", command: "no-such-program-here" } },
        callback("syntax", "python", "broken.py"),
        callback("misspelt", "node", "good.mjs", "handleRequets"),
        {
          type: "supervisor",
          id: "inner",
          children: [
            {
              type: "pool",
              id: "pool",
              size: 3,
              config: { name: "member", language: "python", file: "good.py", function: "nope" }
            },
            callback("fine", "python", "good.py")
          ]
        }
      ])
      const result = yield* validate(file)
      assert.strictEqual(result.code, 1, result.stdout + result.stderr)
      assert.strictEqual(result.stdout, "")
      const at = (field: string) => {
        const start = result.stderr.indexOf(`at ${field}: `)
        assert.isAtLeast(start, 0, `${field} in ${result.stderr}`)
        return result.stderr.slice(start)
      }
      assert.match(result.stderr, /^error: Invalid configuration: 4 problems\n/)
      assert.match(
        at("children[0].config.command"),
        /^[^\n]*no-such-program-here`: the program is not on PATH \(ENOENT\)/
      )
      assert.match(at("children[1].config.file"), /^[^\n]*does not load \(its adapter's --check\):\n[\s\S]*SyntaxError/)
      assert.match(
        at("children[2].config.function"),
        /^[^\n]*no function "handleRequets" in good\.mjs \(functions there: handleRequest\)/
      )
      // a pool's module, once whatever its size
      assert.match(at("children[3].children[0].config.function"), /^[^\n]*no function "nope" in good\.py/)
      assert.strictEqual(result.stderr.split("children[3].children[0]").length, 2, result.stderr)
      assert.notInclude(result.stderr, "children[3].children[1]")
    }))

  it.scoped("a file with problems of its schema too: its other children's programs are checked in the same run", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("validate-salvage")
      writeModules(dir)
      const file = path.join(dir, "tree.yaml")
      fs.writeFileSync(
        file,
        `
strategy: one-for-none
intensity: { maxRestarts: -1 }
children:
  - { type: agent, id: a, config: { name: a, command: no-such-program-here } }
  - { type: agent, id: b, config: { name: b, command: /bin/cat, requestTimeout: soon } }
  - type: supervisor
    id: s
    strategy: sometimes
    intensity: { maxRestarts: -1, window: soon }
    children:
      - { type: callback, id: c, config: { name: c, language: python, file: broken.py } }
      - { type: agent, id: c, config: { name: c2, command: /bin/cat } }
      - { type: agent, id: d, config: { name: d, command: /bin/cat, restart: often } }
  - { type: callback, id: fine, config: { name: fine, language: node, file: good.mjs } }
store: { type: postgres }
"x.y": 1
`
      )
      const result = yield* validate(file)
      assert.strictEqual(result.code, 1, result.stdout + result.stderr)
      assert.strictEqual(result.stdout, "")
      const at = atIn(result.stderr)
      assert.match(result.stderr, /^error: Invalid configuration: 13 problems\n/)
      // two problems in one section (the file's, a nested supervisor's): both said, the rest still checked
      assert.match(at("intensity.maxRestarts"), /^[^\n]*whole number/)
      assert.match(at("children[2].intensity.window"), /^[^\n]*duration/)
      // a nested supervisor's own field, a problem in two of its children, an unknown key written quoted
      assert.match(at("children[2].strategy"), /^[^\n]*must be "one-for-one"/)
      assert.match(at("children[2].children[2].config.restart"), /^[^\n]*\(got "often"\)/)
      assert.match(at(`["x.y"]`), /^[^\n]*is not a known setting/)
      // the schema's and the tree's
      assert.match(at("strategy"), /^[^\n]*did you mean "one-for-one"/)
      assert.match(at("children[1].config.requestTimeout"), /^[^\n]*\(got "soon"\)/)
      assert.match(at("children[2].children[1].id"), /^[^\n]*: child ids must be unique/)
      assert.match(at("store.url"), /^[^\n]*: is missing/)
      // and what is left of the file, checked as a whole one is: each at its own path
      assert.match(at("children[0].config.command"), /^[^\n]*no-such-program-here`: the program is not on PATH/)
      assert.match(at("children[2].children[0].config.file"), /^[^\n]*does not load \(its adapter's --check\)/)
      assert.notInclude(result.stderr, "children[3]")
      assert.notInclude(result.stderr, "a child with problems")
    }))

  it.scoped("a file whose programs are all there: OK, exit 0; each module was loaded (its top-level code ran)", () =>
    Effect.gen(function*() {
      const { dir, file } = yield* treeWith([
        { type: "agent", id: "shell", config: { name: "shell", command: "sh", args: ["-c", "exit 1"] } },
        callback("py", "python", "good.py"),
        callback("js", "node", "marks.mjs")
      ])
      const result = yield* validate(file)
      assert.strictEqual(result.code, 0, result.stdout + result.stderr)
      assert.match(result.stdout, /OK\. Tree "root": 3 agents/)
      // loaded: its top-level code ran
      assert.isTrue(fs.existsSync(path.join(dir, "loaded")))
    }))

  it.scoped("a callback is checked as it will run: its own environment, its interpreter, its default function, bounded", () =>
    Effect.gen(function*() {
      const { file } = yield* treeWith([
        // inheritEnv: false: the supervisor's SUPERVISOR_ONLY is not there, the agent's NEEDED is
        callback("env", "node", "env.mjs", undefined, { inheritEnv: false, env: { NEEDED: "yes" } }),
        callback("named", "python", "good.py", undefined, { interpreter: "no-such-python-here" }),
        callback("unnamed", "python", "good.py", undefined, { env: { PATH: "/no-such-dir" } }),
        callback("default", "node", "other.mjs"),
        callback("slow", "node", "slow.mjs", undefined, { startupTimeout: "500 millis" }),
        // a warning (a bare number under a second) of a file that fails too
        { type: "agent", id: "warned", config: { name: "warned", command: "sh", heartbeatInterval: 30 } }
      ])
      const result = yield* validate(file, { SUPERVISOR_ONLY: "1" })
      assert.strictEqual(result.code, 1, result.stdout + result.stderr)
      assert.strictEqual(result.stdout, "")
      const at = atIn(result.stderr)
      assert.match(result.stderr, /^warning: [^\n]*children\[5\][^\n]*heartbeatInterval[^\n]*30/)
      assert.match(result.stderr, /\nerror: Invalid configuration: 4 problems\n/)
      assert.notInclude(result.stderr, "children[0]")
      assert.match(
        at("children[1].config.interpreter"),
        /^[^\n]*`no-such-python-here [^`]*`: the program is not on PATH/
      )
      assert.match(
        at("children[2].config.language"),
        /^[^\n]*`python3 [^`]*`: the program is not on PATH \(ENOENT\); searched: \/no-such-dir\n/
      )
      assert.match(
        at("children[3].config.function"),
        /^[^\n]*no default export function nor function "handleRequest" in other\.mjs \(functions there: other\)/
      )
      assert.match(
        at("children[4].config.file"),
        /^at children\[4\]\.config\.file: did not finish loading within 500ms \(its adapter's --check\)/
      )
    }))

  it.scoped(
    "a module still loading when validate's own bound ends, whose startupTimeout allows longer: a warning, not a " +
      "problem (up would wait for it)",
    () =>
      Effect.gen(function*() {
        const { file } = yield* treeWith([
          callback("patient", "node", "slow.mjs", undefined, { startupTimeout: "5 minutes" }),
          callback("impatient", "node", "slow.mjs", undefined, { startupTimeout: "300 millis" })
        ])
        // validate's bound is 60 s; the same rule at 300 ms
        const found = yield* Programs.check(yield* TreeFile.load(file), Duration.millis(300))
        assert.deepStrictEqual(found.warnings, [
          "children[0].config.file: did not finish loading within 300ms (its adapter's --check); its startupTimeout " +
          "(5m) allows longer, so up would wait for it: is its top-level code meant to take that long?"
        ])
        assert.deepStrictEqual(found.problems.map((problem) => problem.field), ["children[1].config.file"])
        assert.match(found.problems[0].rule, /^did not finish loading within 300ms \(its adapter's --check\): /)
      }).pipe(Effect.provide(TestLive))
  )

  it.scoped.skipIf(!isRoot)("a callback with user is loaded as that user", () =>
    Effect.gen(function*() {
      const { dir, file } = yield* treeWith([
        callback("nobody", "node", "uid.mjs", undefined, { user: "nobody", inheritEnv: ["PATH"] })
      ])
      fs.chmodSync(dir, 0o755)
      const result = yield* validate(file)
      assert.strictEqual(result.code, 0, result.stdout + result.stderr)
      assert.strictEqual(fs.readFileSync(path.join(dir, "marks", "uid"), "utf8"), "65534")
    }))
})

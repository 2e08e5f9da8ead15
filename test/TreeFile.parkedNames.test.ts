/**
 * The warning of a child that its supervisor would park rather than escalate for names every kind of child the way
 * a user knows it: its place in the file (`children[1].children[0]`) and its path below the root, as `status` and the
 * admin API name children (`s/x`; a pool's members `inference/0`, `inference/1`...), and says whose intensity it
 * would fail to exceed: its supervisor's, the one a pool shares with its supervisor, or a pool's own. Before, a
 * pool's members were `children[2] ("0")` and the intensity was named after the pool even when it was its
 * supervisor's. Read by `TreeFile.warnings` (what `validate` prints), logged by `startChild`, and logged by `up`.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Supervisor from "../src/Supervisor.js"
import * as TreeFile from "../src/TreeFile.js"
import { agentConfig, BIN, eventually, fixture, spawnApp, tempDir, TestLive } from "./support.js"

const HEAD = "A child that never starts would be parked, and its supervisor would not escalate:"
const TAIL =
  `Raise maxRestartAttempts, lower the intensity's maxRestarts, shorten restartBackoff, or widen the intensity's window (README "Configuration").`
const PARKED = "its circuit opens after 3 restarts in a row (maxRestartAttempts), but"

const TREE = `
name: app
intensity: { maxRestarts: 3, window: 10 seconds }
children:
  - type: agent
    id: a
    config: { name: a, command: sh }
  - type: supervisor
    id: s
    intensity: { maxRestarts: 3, window: 10 seconds }
    children:
      - { type: callback, id: x, config: { name: x, language: node, file: x.mjs } }
      - { type: directory, id: d, config: { agentName: d, agentDir: . } }
      - { type: pool, id: workers, size: 1, config: { name: w, command: sh } }
  - type: pool
    id: inference
    size: 4
    config: { name: inference, command: sh }
  - type: pool
    id: own
    size: 2
    intensity: { maxRestarts: 5, window: 10 seconds }
    config: { name: own, command: sh }
  - type: supervisor
    id: calm
    children:
      - { type: agent, id: fine, config: { name: fine, command: sh } }
`

/** The lines of the warning, each child's. */
const EXPECTED = [
  `children[0] ("a"): ${PARKED} 4 are needed to exceed the intensity of "app" (3 restarts in 10s)`,
  `children[1].children[0] ("s/x"): ${PARKED} 4 are needed to exceed the intensity of "app/s" (3 restarts in 10s)`,
  `children[1].children[1] ("s/d"): ${PARKED} 4 are needed to exceed the intensity of "app/s" (3 restarts in 10s)`,
  `children[1].children[2] (pool "s/workers", each member: "s/workers/0"): ${PARKED} 4 are needed to exceed the ` +
  `intensity the pool shares with "app/s" (3 restarts in 10s)`,
  `children[2] (pool "inference", each member: "inference/0", "inference/1", ...): ${PARKED} 4 are needed to ` +
  `exceed the intensity the pool shares with "app" (3 restarts in 10s)`,
  `children[3] (pool "own", each member: "own/0", "own/1"): ${PARKED} 6 are needed to exceed the pool's own ` +
  `intensity (5 restarts in 10s)`
]

/** Runs a test with the warnings it logs (their messages) put in `lines`, on the live clock. */
const warningsInto = (lines: Array<string>) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.provide(Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) => {
        if (LogLevel.greaterThanEqual(logLevel, LogLevel.Warning)) {
          lines.push(Array.isArray(message) ? message.join(" ") : String(message))
        }
      })
    )),
    Logger.withMinimumLogLevel(LogLevel.Warning),
    Effect.provide(TestLive)
  )

describe("the warning of a child that would be parked: names", () => {
  it.effect("every kind of child by its place in the file and its path below the root; whose intensity it is", () =>
    Effect.gen(function*() {
      const file = yield* TreeFile.parse(TREE, { format: "yaml", env: {} })
      const warnings = yield* TreeFile.warnings(file)
      assert.deepStrictEqual(warnings, [[HEAD, ...EXPECTED.map((line) => `  ${line}`), TAIL].join("\n")])
    }).pipe(Effect.provide(NodeContext.layer)))

  // The tree's logger: a supervisor's operations log as the supervisor, whoever asks for them.
  it.scopedLive("startChild into a nested supervisor names the child by its path below the root", () => {
    const lines: Array<string> = []
    return Effect.gen(function*() {
      const sup = yield* Supervisor.make({
        name: "app",
        children: [Supervisor.supervisor({ id: "s", intensity: { maxRestarts: 3, window: "10 seconds" } })]
      })
      const nested = yield* sup.childSupervisor("s")
      yield* nested.startChild(Supervisor.agent({ id: "late", config: agentConfig("echo", { name: "late" }) }))
      const parked = lines.filter((line) => line.startsWith(HEAD))
      assert.strictEqual(parked.length, 1, lines.join("\n"))
      assert.include(
        parked[0],
        `children[0] ("s/late"): ${PARKED} 4 are needed to exceed the intensity of "app/s" (3 restarts in 10s)`
      )
    }).pipe(warningsInto(lines))
  })
})

describe("the warning of a child that would be parked: a large batch", () => {
  it.effect("TreeFile.warnings (what validate prints) names every one of them", () =>
    Effect.gen(function*() {
      const children = Array.from({ length: 12 }, (_, i) =>
        `  - { type: agent, id: a${i}, config: { name: a${i}, command: x } }`)
      const text = ["name: app", "intensity: { maxRestarts: 3, window: 10 seconds }", "children:", ...children, ""]
      const file = yield* TreeFile.parse(text.join("\n"), { format: "yaml", env: {} })
      const [warning] = yield* TreeFile.warnings(file)
      const named = warning.split("\n").filter((line) =>
        line.startsWith("  children[")
      )
      assert.strictEqual(named.length, 12, warning)
      assert.notInclude(warning, "more children alike")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("names the first ten children of a batch of 25 and counts the rest", () => {
    const lines: Array<string> = []
    return Effect.gen(function*() {
      const sup = yield* Supervisor.make({ name: "app", intensity: { maxRestarts: 3, window: "10 seconds" } })
      // A command that does not exist: nothing starts, and the warning comes first, from the batch's check
      const batch = Array.from(
        { length: 25 },
        (_, i) => Supervisor.agent({ id: `c${i}`, config: { name: `c${i}`, command: "/nonexistent/agent" } })
      )
      const result = yield* sup.startChildren(batch)
      assert.strictEqual(result.failed.length, 25)
      const parked = lines.filter((line) => line.startsWith(HEAD))
      assert.strictEqual(parked.length, 1, lines.join("\n"))
      const named = parked[0].split("\n").slice(1, -1)
      assert.deepStrictEqual(named.map((line) => /^ {2}children\[(\d+)\] \("c\d+"\): /.exec(line)?.[1]), [
        ...Array.from({ length: 10 }, (_, i) => String(i)),
        undefined
      ])
      assert.strictEqual(
        named[10],
        "  and 15 more children alike"
      )
    }).pipe(warningsInto(lines))
  })
})

describe.sequential("the warning of a child that would be parked, from the command line", () => {
  it.scoped("validate prints it with the names", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("parked-validate")
      fs.writeFileSync(path.join(dir, "tree.yaml"), TREE)
      // The callback's file is there: validate looks (TreeFile.callbackFile.test.ts).
      fs.writeFileSync(path.join(dir, "x.mjs"), "export default async () => ({})\n")
      const out = childProcess.execFileSync(process.execPath, [BIN, "validate", "tree.yaml"], {
        cwd: dir,
        encoding: "utf8"
      })
      for (const line of EXPECTED) assert.include(out, `  ${line}\n`)
    }), 60_000)

  it.scopedLive(
    "up logs it once for a pool of callback agents, naming the members as status does, and runs the pool",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("parked-up")
        fs.copyFileSync(fixture("node", "echo.mjs"), path.join(dir, "echo.mjs"))
        const file = path.join(dir, "tree.yaml")
        fs.writeFileSync(
          file,
          [
            "name: parking",
            "intensity: { maxRestarts: 3, window: 10 seconds }",
            "children:",
            "  - type: pool",
            "    id: inference",
            "    size: 2",
            "    config: { name: inference, language: node, file: echo.mjs, startupTimeout: 20 seconds }",
            ""
          ].join("\n")
        )
        const app = yield* spawnApp(BIN, ["up", "--no-admin", "--log-format", "json", file], { onLine: () => {} })
        const messages = () =>
          app.stderr().split("\n").slice(0, -1).flatMap((line) => {
            try {
              return [(JSON.parse(line) as { message: string }).message]
            } catch {
              return []
            }
          })
        // Under load, starting the CLI and two agents takes a while
        yield* eventually("the tree runs", () => messages().includes("tree \"parking\" is running"), "40 seconds").pipe(
          Effect.mapError((error) => new Error(`${error.message} (stderr: ${app.stderr()})`))
        )
        const warnings = messages().filter((message) => message.startsWith(HEAD))
        assert.strictEqual(warnings.length, 1, app.stderr())
        assert.include(
          warnings[0],
          `children[0] (pool "inference", each member: "inference/0", "inference/1"): ${PARKED} 4 are needed to ` +
            `exceed the intensity the pool shares with "parking" (3 restarts in 10s)`
        )
        app.child.kill("SIGTERM")
        assert.deepStrictEqual(yield* app.exited, { code: 0, signal: null }, app.stderr())
      }),
    60_000
  )
})

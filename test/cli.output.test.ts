/**
 * What the CLI writes for a person and for a machine: `up`'s log format (human-readable on a terminal, JSON lines
 * otherwise, `--log-format` over both) through the real loggers, and the status table's colours. The same decisions
 * end to end, in a child process, are in `cli.main.test.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { vi } from "vitest"
import type { ChildView, TreeView } from "../src/internal/admin/api.js"
import * as Logging from "../src/internal/cli/logging.js"
import { afterLine, statusTable } from "../src/internal/cli/remote.js"
import * as Table from "../src/internal/cli/table.js"
import { thirdSignalLine } from "../src/internal/cli/up.js"

const ESC = "\u001b"
// eslint-disable-next-line no-control-regex
const plain = (text: string) => text.replace(/\u001b\[\d+m/g, "")

/**
 * The lines `up`'s logger writes for one log call with an annotation, on a stderr that is (or is not) a terminal.
 * Effect's loggers write through its default `Console`, which is the global `console`: its methods are replaced for
 * the call, and `console.log` too, to see that nothing goes to stdout.
 */
const logged = (format: Logging.Format, stderr: { readonly isTTY?: boolean | undefined }) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const stdout: Array<string> = []
    yield* Effect.acquireRelease(
      Effect.sync(() => [
        vi.spyOn(console, "error").mockImplementation((...args) => void lines.push(args.map(String).join(" "))),
        vi.spyOn(console, "log").mockImplementation((...args) => void stdout.push(args.map(String).join(" "))),
        vi.spyOn(console, "group").mockImplementation(() => {}),
        vi.spyOn(console, "groupEnd").mockImplementation(() => {})
      ]),
      (spies) => Effect.sync(() => spies.forEach((spy) => spy.mockRestore()))
    )
    yield* Effect.log("tree \"demo\" is running").pipe(
      Effect.annotateLogs("agent", "summarizer"),
      Effect.provide(Logging.layer(format, stderr))
    )
    assert.deepStrictEqual(stdout, [], "the log goes to stderr only")
    return lines
  }).pipe(Effect.scoped)

const assertJson = (lines: ReadonlyArray<string>) => {
  assert.strictEqual(lines.length, 1, lines.join("\n"))
  const entry = JSON.parse(lines[0])
  assert.strictEqual(entry.message, "tree \"demo\" is running")
  assert.strictEqual(entry.logLevel, "INFO")
  assert.deepStrictEqual(entry.annotations, { agent: "summarizer" })
}

const assertPretty = (lines: ReadonlyArray<string>) => {
  assert.match(plain(lines[0]), /^\[[\d:.]+\] INFO \(#\d+\): tree "demo" is running$/)
  assert.include(lines.map(plain), "agent: summarizer")
  assert.throws(() => JSON.parse(lines[0]))
}

describe("up's log format", () => {
  it("auto: pretty on a terminal, JSON lines otherwise; a format given is the one on either", () => {
    assert.strictEqual(Logging.decide("auto", { isTTY: true }), "pretty")
    assert.strictEqual(Logging.decide("auto", { isTTY: false }), "json")
    assert.strictEqual(Logging.decide("auto", {}), "json", "a pipe or a file has no isTTY at all")
    for (const isTTY of [true, false]) {
      for (const format of ["pretty", "json", "logfmt"] as const) {
        assert.strictEqual(Logging.decide(format, { isTTY }), format)
      }
    }
  })

  it.effect("on a terminal the logger writes one human-readable entry, annotations beneath it", () =>
    Effect.gen(function*() {
      assertPretty(yield* logged("auto", { isTTY: true }))
      assertPretty(yield* logged("pretty", { isTTY: false }))
    }))

  it.effect("elsewhere one JSON object per line; --log-format json on a terminal too", () =>
    Effect.gen(function*() {
      assertJson(yield* logged("auto", { isTTY: false }))
      assertJson(yield* logged("auto", {}))
      assertJson(yield* logged("json", { isTTY: true }))
    }))

  it.effect("--log-format logfmt: key=value pairs, the message quoted", () =>
    Effect.gen(function*() {
      const lines = yield* logged("logfmt", { isTTY: true })
      assert.strictEqual(lines.length, 1)
      assert.match(
        lines[0],
        /^timestamp=\S+ level=INFO fiber=#\d+ message="tree \\"demo\\" is running" agent=summarizer$/
      )
    }))
})

const child = (id: string, state: string, overrides: Partial<ChildView> = {}): ChildView => ({
  id,
  name: id,
  kind: "worker",
  state,
  status: state === "STOPPED" ? "stopped" : "running",
  parked: false,
  pid: state === "RUNNING" ? 42 : null,
  startedAt: null,
  restarts: 0,
  inFlight: 0,
  lastExit: null,
  limits: null,
  health: null,
  resources: null,
  children: [],
  ...overrides
} as ChildView)

const tree: TreeView = {
  name: "t",
  now: 0,
  children: [
    child("up", "RUNNING"),
    child("coming", "STARTING"),
    child("again", "RESTARTING"),
    child("down", "CRASHED", { parked: true }),
    child("off", "STOPPED"),
    child("group", "RUNNING", { kind: "supervisor", pid: null, children: [child("group/leaf", "STOPPING")] })
  ]
} as TreeView

describe("the status table's colours", () => {
  it("with colour: each state in its colour (green, yellow, red, grey), the header bold, columns as without", () => {
    const coloured = statusTable(tree, true)
    const lines = coloured.split("\n")
    const stateOf = (id: string) => {
      const line = lines.find((l) => l.startsWith(`${id} `))
      assert.isDefined(line, id)
      // eslint-disable-next-line no-control-regex
      return /\u001b\[(\d+)m([A-Z]+(?: \(parked\))?)\u001b\[0m/.exec(line!)!.slice(1)
    }
    assert.deepStrictEqual(stateOf("up"), ["32", "RUNNING"])
    assert.deepStrictEqual(stateOf("coming"), ["33", "STARTING"])
    assert.deepStrictEqual(stateOf("again"), ["33", "RESTARTING"])
    assert.deepStrictEqual(stateOf("down"), ["31", "CRASHED (parked)"])
    assert.deepStrictEqual(stateOf("off"), ["90", "STOPPED"])
    assert.deepStrictEqual(stateOf("group"), ["32", "RUNNING"])
    assert.deepStrictEqual(stateOf("group/leaf"), ["33", "STOPPING"])
    assert.isTrue(lines[0].startsWith(`${ESC}[1mID${ESC}[0m`), JSON.stringify(lines[0]))
    // Only the state and the header are painted, and the padding counts what is shown, not the codes.
    assert.strictEqual(plain(coloured), statusTable(tree, false))
    assert.strictEqual(lines.slice(1).join("").split(ESC).length - 1, 2 * 7)
  })

  // A new user's finding: RSS read "-" until the first heartbeat, 30 s after the start by default.
  it("RSS is the group's reading now where there is one, else the last heartbeat's", () => {
    const health = { latencyMillis: 1, cpuPercent: 2, memoryMb: 10, processes: 1, timestamp: 0 }
    const rows = statusTable({
      name: "t",
      now: 0,
      children: [
        child("both", "RUNNING", { health, resources: { memoryMb: 12.5, processes: 2, timestamp: 0 } }),
        child("beat", "RUNNING", { health }),
        child("fresh", "RUNNING", { resources: { memoryMb: 3.2, processes: 1, timestamp: 0 } })
      ]
    }, false).split("\n")
    const rss = (id: string) => / (\S+ MiB|-) +-$/.exec(rows.find((line) => line.startsWith(`${id} `))!)![1]
    assert.deepStrictEqual([rss("both"), rss("beat"), rss("fresh")], ["12.5 MiB", "10.0 MiB", "3.2 MiB"])
  })

  it("LAST EXIT: how it ended, why, whether it was left behind after SIGKILL, and how long ago", () => {
    const exit = { pid: 7, exitCode: null, signal: "SIGKILL", at: 0, limit: null }
    const rows = statusTable({
      name: "t",
      now: 3_000,
      children: [
        child("asked", "STOPPED", { lastExit: { ...exit, requested: true } }),
        child("stuck", "STOPPED", { lastExit: { ...exit, requested: true, leftBehind: true } }),
        child("hung", "RUNNING", { lastExit: { ...exit, requested: false, leftBehind: true } }),
        child("coded", "RUNNING", { lastExit: { ...exit, signal: null, exitCode: 3, requested: false } })
      ]
    }, false).split("\n")
    const column = rows[0].indexOf("LAST EXIT")
    const last = (id: string) => rows.find((line) => line.startsWith(`${id} `))!.slice(column)
    assert.deepStrictEqual(
      ["asked", "stuck", "hung", "coded"].map(last),
      [
        "SIGKILL (asked), 3s ago",
        "SIGKILL (asked) (left behind), 3s ago",
        "SIGKILL (left behind), 3s ago",
        "code 3, 3s ago"
      ]
    )
  })

  it("without colour: not one escape code", () => {
    assert.notInclude(statusTable(tree, false), ESC)
  })

  it("colour goes to a terminal unless NO_COLOR is set; FORCE_COLOR (not 0) forces it anywhere", () => {
    const saved = { NO_COLOR: process.env.NO_COLOR, FORCE_COLOR: process.env.FORCE_COLOR }
    const set = (name: keyof typeof saved, value: string | undefined) => {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
    try {
      set("NO_COLOR", undefined)
      set("FORCE_COLOR", undefined)
      assert.isTrue(Table.colourFor({ isTTY: true }))
      assert.isFalse(Table.colourFor({ isTTY: false }))
      assert.isFalse(Table.colourFor({}))
      set("NO_COLOR", "1")
      assert.isFalse(Table.colourFor({ isTTY: true }))
      set("FORCE_COLOR", "1")
      assert.isTrue(Table.colourFor({}))
      set("FORCE_COLOR", "0")
      assert.isFalse(Table.colourFor({ isTTY: true }))
    } finally {
      set("NO_COLOR", saved.NO_COLOR)
      set("FORCE_COLOR", saved.FORCE_COLOR)
    }
  })
})

describe("a child after an operation", () => {
  const exit = (exitCode: number | null, signal: string | null, requested = true) => ({
    pool: null,
    lastExit: { pid: 7, exitCode, signal, requested, at: 0, limit: null }
  })
  it("a stop that did not go as asked says how the process ended, as systemd shows a stop's result", () => {
    assert.strictEqual(afterLine(child("a", "RUNNING", { pool: null })), "a: RUNNING (pid 42)")
    for (const [code, signal] of [[0, null], [143, null], [null, "SIGTERM"]] as const) {
      assert.strictEqual(afterLine(child("a", "STOPPED", exit(code, signal))), "a: STOPPED", `${code} ${signal}`)
    }
    assert.strictEqual(afterLine(child("a", "STOPPED", exit(1, null))), "a: STOPPED (it exited with code 1)")
    assert.strictEqual(
      afterLine(child("a", "STOPPED", exit(null, "SIGKILL"))),
      "a: STOPPED (it ended by SIGKILL: it outlived the stop's timeouts)"
    )
    assert.strictEqual(afterLine(child("a", "STOPPED", exit(null, "SIGSEGV"))), "a: STOPPED (it ended by SIGSEGV)")
    // an exit of its own before the stop (it had crashed): not the stop's result
    assert.strictEqual(afterLine(child("a", "STOPPED", exit(1, null, false))), "a: STOPPED")
  })
})

// A new user's finding: "SIGKILL to the 1 agent processes still running".
describe("up's third signal", () => {
  it("says how many agent processes it killed, in the number's grammar", () => {
    assert.deepStrictEqual([0, 1, 2].map((killed) => thirdSignalLine("SIGINT", killed).replace(/^.*stop \(/, "(")), [
      "(no agent process was still running)",
      "(SIGKILL to the 1 agent process still running)",
      "(SIGKILL to the 2 agent processes still running)"
    ])
    assert.isTrue(thirdSignalLine("SIGTERM", 1).startsWith("SIGTERM, a third signal: exiting now"))
  })
})

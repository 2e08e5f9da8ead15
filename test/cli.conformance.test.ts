/**
 * `agent-supervisor conformance`, run as users run it: the built bin (`npm run build` first) in a child process of
 * its own, against real agents. The runs are independent and start at once; each test waits for its own.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as path from "node:path"
import type * as Conformance from "../src/Conformance.js"
import { run } from "../src/internal/cli/main.js"
import { report } from "../src/internal/cli/report.js"
import { fixture, root, runCli } from "./support.js"

/** Startup and request bounds for two busy cores (see test/Conformance.test.ts). */
const LOADED = ["--startup-timeout", "30 seconds", "--request-timeout", "30000", "--exit-timeout", "30 seconds"]
/** Each test waits for its run, which runs beside the others. */
const WAIT = 120_000
const PYTHON_AGENT = [
  "python3",
  path.join(root, "adapters", "python", "supervisor_adapter.py"),
  path.join(root, "adapters", "python", "conformance_agent.py")
]
const SHELL_AGENT = ["sh", fixture("conformance", "raw-agent.sh")]
/** The Node adapter on a callback that answers every payload as it came: no conformance contract. */
const ECHO_EVERYTHING = [process.execPath, path.join(root, "dist", "Adapter", "node.js"), fixture("node", "echo.mjs")]

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the command to its end, with `env` added to this process's; no colour unless `FORCE_COLOR` is given. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Result> =>
  Effect.runPromise(runCli(args, { env, timeout: 90_000, maxBuffer: 64 * 1024 * 1024 }))

/**
 * Command lines of `conformance` (after its name) and the first line of what it prints: an error for those
 * @effect/cli would misread (take for the agent's command, drop silently), the agent it runs for the others.
 */
const MISREAD: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
  [["--only", "--", "true"], "error: --only needs a value: a check's name (ready, echo, "],
  [["--only=", "--", "true"], "error: --only needs a value: a check's name (ready, echo, "],
  [["--only", "", "--", "true"], "error: --only needs a value: a check's name (ready, echo, "],
  [["--startup-timeout=", "--", "true"], `error: --startup-timeout needs a value: milliseconds, "5 seconds" or "5s"`],
  [["--Only", "ready", "--", "true"], `error: "--Only" is read as no option: option names are in lower case (--only)`],
  [["--JSON", "--", "true"], `error: "--JSON" is read as no option: option names are in lower case (--json)`],
  [
    ["--only", "ready", "--log-level", "debug", "--", "true"],
    "error: --log-level is read only as the first argument after conformance"
  ],
  [["--json", "TRUE", "--", "true"], `error: "TRUE" before -- is no option's value (--json takes none); `],
  [["--json=maybe", "--", "true"], `error: "maybe" before -- is no option's value (--json takes none); `],
  [["node", "--", "a.js"], `error: "node" before -- is no option's value (--json takes none); `],
  [
    ["--json", "--json", "--", "true"],
    `error: "--json" was not read as an option: give each option once, before --, as --json`
  ],
  [["-j", "--", "true"], `error: "-j" is no option of conformance; its options are --json, --only, `],
  [["--jsn", "--", "true"], `error: "--jsn" is no option of conformance (did you mean --json?); `],
  [["--onlyy", "ready", "true"], `error: "--onlyy" is no option of conformance (did you mean --only?); `],
  // read as meant: the agent is `true` (it exits with no ready line: the check fails)
  [["--log-level", "info", "--only", "ready", "--", "true"], "agent: true"],
  [["--json", "false", "--only", "ready", "--", "true"], "agent: true"],
  [["--only=ready", "--", "true", "--onlyy"], "agent: true --onlyy"],
  [["--only", "ready", "true"], "agent: true"],
  // options after the agent's command, with no --: read as conformance's (only ready runs, the report is JSON)
  [
    ["true", "--only", "ready", "--json"],
    `{"command":"true","args":[],"protocol":1,"features":[],"checks":[{"name":"ready",`
  ]
]

const runs = {
  // As on a terminal: colour forced (the layout is checked with the colour codes taken out)
  table: () => cli(["conformance", ...LOADED, "--", ...PYTHON_AGENT], { FORCE_COLOR: "1" }),
  json: () => cli(["conformance", "--json", "--only=echo", "--only", "ping-while-busy", "--", ...SHELL_AGENT]),
  // A protocol 1 agent: the 1.1 checks are skipped, which fails nothing
  skips: () =>
    cli(["conformance", "--only", "echo", "--only", "stream", "--only", "checkpoint", "--", ...SHELL_AGENT], {
      FORCE_COLOR: "1"
    }),
  failure: () =>
    cli([
      "conformance",
      "--only",
      "stdout-child",
      "--",
      ...PYTHON_AGENT.slice(0, 1),
      fixture("conformance", "noisy_raw_agent.py")
    ]),
  badOption: () => cli(["conformance", "--only", "nope", "--", ...SHELL_AGENT]),
  misspeltOption: () => cli(["conformance", "--onlyy", "ready", "--", ...SHELL_AGENT]),
  // What @effect/cli would misread, each refused before anything is spawned, and forms it reads as meant
  // (those refused are run in this process: see `refusal`)
  ...Object.fromEntries(
    MISREAD.flatMap(([args, first], i) =>
      first.startsWith("error:") ? [] : [[`misread${i}`, () => cli(["conformance", ...args])]]
    )
  ),
  badTimeouts: () => cli(["conformance", "--startup-timeout", "nope", "--exit-timeout", "0", "--", ...SHELL_AGENT]),
  // Without the ready check: the features read by the start that the stream check waits for
  streamOnly: () => cli(["conformance", "--json", ...LOADED, "--only", "stream", "--", ...PYTHON_AGENT]),
  noContract: () =>
    cli(["conformance", ...LOADED, "--only", "echo", "--only", "concurrent-requests", "--", ...ECHO_EVERYTHING]),
  help: () => cli(["conformance", "--help"]),
  // After --, everything is the agent's, conformance's own option names too: given to it, and said on stderr
  afterDashes: () => cli(["conformance", "--only", "ready", "--", "true", "--only", "echo", "--exit-timeout=5s"])
}

/** The text without its colour codes. */
const plain = (text: string) => text.replace(new RegExp(String.fromCharCode(27) + "\\[\\d+m", "g"), "")

/** What the bin prints on stderr for a command line refused before anything runs: the command line run here. */
const refusal = (args: ReadonlyArray<string>) =>
  run("0.0.0")(["node", "agent-supervisor", ...args]).pipe(
    Effect.provide(NodeContext.layer),
    Effect.exit,
    Effect.map((exit) => Exit.isFailure(exit) ? report(exit.cause) : undefined)
  )

/**
 * Runs at once: each is a CLI process (a second of CPU to start on a slow machine) and its agent. All of them at once
 * (fourteen) held both cores for half a minute, and a test file beside this one timed out.
 */
const AT_ONCE = 3

const results = new Map<keyof typeof runs, Promise<Result>>()
beforeAll(() => {
  // The first AT_ONCE start now; each run that ends starts the next
  const queue: Array<() => void> = []
  for (const [i, [name, run]] of Object.entries(runs).entries()) {
    const started = new Promise<void>((resolve) => i < AT_ONCE ? resolve() : queue.push(resolve))
    results.set(name as keyof typeof runs, started.then(run).finally(() => queue.shift()?.()))
  }
})
afterAll(() => Promise.allSettled(results.values()))

const result = (name: keyof typeof runs) => Effect.promise(() => results.get(name)!)

describe("agent-supervisor conformance", () => {
  it.live("a conforming agent: the table of every check, a count, exit 0", () =>
    Effect.gen(function*() {
      const { code, stderr } = yield* result("table")
      const stdout = plain((yield* result("table")).stdout)
      assert.strictEqual(code, 0, stderr + stdout)
      const lines = stdout.split("\n")
      assert.strictEqual(lines[0], `agent: ${PYTHON_AGENT.join(" ")}`)
      assert.match(lines[1], /^CHECK\s+RESULT\s+EVIDENCE$/)
      assert.match(
        stdout,
        /\nready\s+pass\s+\{"type":"ready","protocol":1(,"features":\[[^\]]*\])?\} \d+ ms after the spawn/
      )
      assert.match(stdout, /\ncancel\s+pass\s+"wasCancelled" answered true/)
      // Protocol 1.1: the adapter announces both features, and both are checked
      assert.match(stdout, /\nstream\s+pass\s+50 chunks in order, then ok "done"/)
      assert.match(stdout, /\ncheckpoint\s+pass\s+"restored" was null, then the checkpoint \{"n":7\} came/)
      assert.match(stdout, /\npublish\s+pass\s+the publish to "conformance\.invoices" came /)
      assert.match(stdout, /\n15 passed, 0 failed, 0 skipped in \d+\.\d s\n?$/)
      assert.strictEqual(stderr, "")
    }), WAIT)

  it.live("--json: the whole report for scripts; a failed check exits 1", () =>
    Effect.gen(function*() {
      const { code, stderr, stdout } = yield* result("json")
      assert.strictEqual(code, 1)
      assert.match(stdout, /^\{[^\n]*\}\n$/, "one line, as every command's --json")
      const report = JSON.parse(stdout) as Conformance.Report
      assert.deepStrictEqual(report.checks.map((c) => [c.name, c.status]), [["echo", "pass"], [
        "ping-while-busy",
        "fail"
      ]])
      assert.deepStrictEqual(report.counts, { pass: 1, fail: 1, skipped: 0 })
      assert.strictEqual(report.passed, false)
      assert.deepStrictEqual([report.command, ...report.args], SHELL_AGENT)
      assert.include(report.checks[1].evidence, `->  {"id":"ping-1","type":"ping"}`)
      assert.strictEqual(stderr.trim(), "error: 1 of 2 conformance checks failed")
    }), WAIT)

  it.live("a failed check: its evidence below the table, exit 1", () =>
    Effect.gen(function*() {
      const { code, stderr, stdout } = yield* result("failure")
      assert.strictEqual(code, 1)
      assert.match(stdout, /\nstdout-child\s+fail\s+2 of 4 stdout line\(s\) were not protocol messages/)
      assert.match(stdout, /\n0 passed, 1 failed, 0 skipped in /)
      assert.match(stdout, /\n\nstdout-child: 2 of 4 stdout line\(s\) were not protocol messages/)
      assert.match(stdout, /\n {2}\s+\+\d+ ms {2}<! {2}loading the model\.\.\.\n/)
      assert.match(stdout, /\n {2}\s+\+\d+ ms {2}<! {2}conformance-spawn-\w+\n/)
      assert.include(stderr, "1 of 1 conformance checks failed")
    }), WAIT)

  it.live(
    "an agent without the contract: every check fails, and the line below the count says why, once",
    () =>
      Effect.gen(function*() {
        const { code, stdout } = yield* result("noContract")
        assert.strictEqual(code, 1, stdout)
        assert.match(stdout, /\necho\s+fail\s+"echo-1" was answered with its whole payload/)
        assert.match(stdout, /\nconcurrent-requests\s+fail\s/)
        const diagnoses = stdout.split("\n").filter((line) => line.startsWith("diagnosis: "))
        assert.deepStrictEqual(diagnoses, [
          "diagnosis: the agent answers every payload as it came: it does not implement the conformance contract " +
          "(docs/CONFORMANCE.md: \"op\": \"echo\" answers with \"value\"), so every check that needs the contract's " +
          "operations fails"
        ])
        assert.match(stdout, /\n0 passed, 2 failed, 0 skipped in [\d.]+ s\ndiagnosis: /)
      }),
    WAIT
  )

  it.live("--help: --only is shown optional, as it is", () =>
    Effect.gen(function*() {
      const { code, stdout } = yield* result("help")
      assert.strictEqual(code, 0, stdout)
      assert.include(stdout, "[--only text...]")
    }), WAIT)

  it.live("checks of features the agent does not announce: skipped, exit 0", () =>
    Effect.gen(function*() {
      const { code, stderr, stdout } = yield* result("skips")
      assert.strictEqual(code, 0, stderr + stdout)
      assert.match(plain(stdout), /\nstream\s+skipped\s+the agent does not announce "stream" in ready's features\n/)
      assert.match(plain(stdout), /\n1 passed, 0 failed, 2 skipped in /)
    }), WAIT)

  it.live("colour on a terminal, as status has it", () =>
    Effect.gen(function*() {
      const { stdout } = yield* result("table")
      assert.include(stdout, "\u001b[32mpass\u001b[0m")
      assert.include((yield* result("skips")).stdout, "\u001b[90mskipped\u001b[0m")
      assert.include(stdout, "\u001b[1mCHECK\u001b[0m")
      // Without a terminal (and NO_COLOR), none
      assert.notInclude((yield* result("json")).stdout + (yield* result("failure")).stdout, "\u001b[")
    }), WAIT)

  it.live("a bad --only: named by its flag, with the checks there are, exit 1", () =>
    Effect.gen(function*() {
      const { code, stderr } = yield* result("badOption")
      assert.strictEqual(code, 1)
      // Named as the user wrote it (the flag), with every check's name.
      assert.include(stderr, `--only "nope" is no check; the checks are ready, echo, `)
      assert.notInclude(stderr, "only[0]")
    }), WAIT)

  it.live(
    "a misspelt option: refused before anything is spawned, with the one meant (not taken for the agent)",
    () =>
      Effect.gen(function*() {
        const { code, stderr, stdout } = yield* result("misspeltOption")
        assert.strictEqual(code, 1)
        assert.strictEqual(stdout, "")
        assert.strictEqual(
          stderr.split("\n")[0],
          `error: "--onlyy" is no option of conformance (did you mean --only?); its options are --json, --only, ` +
            "--startup-timeout, --request-timeout, --ping-timeout, --cancel-timeout, --exit-timeout, and the agent's " +
            "command goes after --"
        )
      }),
    WAIT
  )

  it.live(
    "what @effect/cli would misread is refused, naming what to do; the rest runs as meant",
    () =>
      Effect.gen(function*() {
        for (const [i, [args, first]] of MISREAD.entries()) {
          const what = `conformance ${args.join(" ")}`
          if (first.startsWith("error:")) {
            // refused before anything is spawned: what the bin prints, as `misspeltOption` shows it does
            const printed = yield* refusal(["conformance", ...args])
            assert.isTrue(printed?.split("\n")[0].startsWith(first), `${what}: ${printed}`)
            continue
          }
          const { code, stdout } = yield* result(`misread${i}` as keyof typeof runs)
          const line = stdout.split("\n")[0]
          assert.isTrue(line.startsWith(first), `${what}: ${line}`)
          assert.strictEqual(code, 1, what)
        }
      }),
    WAIT
  )

  it.live(
    "conformance's options after --: given to the agent as typed, and a warning says where they go",
    () =>
      Effect.gen(function*() {
        const { code, stderr, stdout } = yield* result("afterDashes")
        assert.strictEqual(code, 1, stderr + stdout)
        assert.strictEqual(stdout.split("\n")[0], "agent: true --only echo --exit-timeout=5s")
        assert.match(stdout, /\nready\s+fail\s/)
        assert.notMatch(stdout, /\necho\s/, "--only echo is the agent's, not conformance's")
        assert.strictEqual(
          stderr.split("\n")[0],
          `warning: --only, --exit-timeout after -- are given to the agent as its arguments, not read by conformance: ` +
            `its options go before -- (agent-supervisor conformance --only ready --only echo --exit-timeout=5s -- true)`
        )
      }),
    WAIT
  )

  it.live("bad option values: each named by its flag, not by the library's field", () =>
    Effect.gen(function*() {
      const { code, stderr, stdout } = yield* result("badTimeouts")
      assert.strictEqual(code, 1)
      assert.strictEqual(stdout, "")
      assert.match(stderr, /^error: 2 problems:\n {2}--startup-timeout "nope": must be a duration/)
      assert.match(stderr, /\n {2}--exit-timeout 0: /)
      assert.notMatch(stderr, /startupTimeout|exitTimeout/)
    }), WAIT)

  it.live("--only stream --json: the report's features are those the agent announced", () =>
    Effect.gen(function*() {
      const { code, stderr, stdout } = yield* result("streamOnly")
      assert.strictEqual(code, 0, stderr + stdout)
      const report = JSON.parse(stdout) as Conformance.Report
      assert.deepStrictEqual(report.checks.map((c) => [c.name, c.status]), [["stream", "pass"]])
      assert.deepStrictEqual(report.features, ["stream", "checkpoint", "publish"])
    }), WAIT)
})

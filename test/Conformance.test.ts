/**
 * The conformance kit against real agents: the conformance contract through the Python adapter, through the Node
 * adapter, through the Go adapter (`adapters/go/cmd/echo-agent`, built once here), as a raw POSIX shell agent, and
 * deliberately broken agents, each with the exact outcome of every check it runs. Every battery starts at once
 * (they are independent; the kit runs each battery's checks at once too), and each test waits for its own.
 *
 * Go is the system's (Debian: `golang-go`), built offline as test/Adapter/go.test.ts builds it (GOPROXY=off,
 * GOTOOLCHAIN=local, caches in a temporary directory); where there is none its test is skipped with the reason
 * printed, or fails under `REQUIRE_SERVICES=1` (CI).
 *
 * The bounds are the library's defaults, but startup, requests and exits get 30 s: on two busy cores, a dozen
 * agents starting at once take seconds to send `ready`, everything they do is slow, and the shell reads a 4 MiB
 * line one byte per system call. The bounds that decide a verdict on speed (a ping answered while a task runs, a
 * cancel honoured) keep their defaults.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Adapters from "../src/Adapters.js"
import * as Conformance from "../src/Conformance.js"
import { ConfigError } from "../src/Errors.js"
import { buildEchoAgent, probeGo } from "./fixtures/go.js"
import { fixture, root } from "./support.js"

const LOADED = { startupTimeout: "30 seconds", requestTimeout: "30 seconds", exitTimeout: "30 seconds" } as const

/** A test waits for its battery, which runs beside others: on two busy cores that takes longer than a test's 30 s. */
const WAIT = 120_000

type Expected = Partial<Record<Conformance.CheckName, Conformance.Status>>

/** Every check passes but these. */
const allPassBut = (exceptions: Expected): Expected => ({
  ...Object.fromEntries(Conformance.checkNames.map((name) => [name, "pass"])),
  ...exceptions
})

const nodeRaw = (...args: Array<string>) => ({
  command: process.execPath,
  args: [fixture("conformance", "node-raw-agent.mjs"), ...args]
})

interface Case {
  readonly options: Conformance.Options
  readonly expected: Expected
}

const cases = {
  python: {
    options: { ...Adapters.pythonCallback(path.join(root, "adapters", "python", "conformance_agent.py")), ...LOADED },
    expected: allPassBut({})
  },
  // The Node adapter redirects console.log, but cannot move descriptor 1: a child that inherits it writes into the
  // protocol (the README's "Writing an agent" says so).
  node: { options: { ...Conformance.nodeAgent, ...LOADED }, expected: allPassBut({ "stdout-child": "fail" }) },
  // One request at a time: a ping waits behind the task in flight, and a cancel is read only once the sleep is over.
  // Protocol 1 only: it announces no feature, so the 1.1 checks are skipped.
  shell: {
    options: { command: "sh", args: [fixture("conformance", "raw-agent.sh")], ...LOADED },
    expected: allPassBut({
      "ping-while-busy": "fail",
      cancel: "fail",
      stream: "skipped",
      checkpoint: "skipped",
      publish: "skipped"
    })
  },
  noisy: {
    options: {
      command: "python3",
      args: [fixture("conformance", "noisy_raw_agent.py")],
      only: ["ready", "echo", "error-response", "stdout-print", "stdout-child"],
      ...LOADED
    },
    expected: {
      ready: "pass",
      echo: "pass",
      "error-response": "pass",
      "stdout-print": "fail",
      "stdout-child": "fail"
    }
  },
  deaf: {
    options: { ...nodeRaw("deaf"), only: ["echo", "ping-while-busy", "cancel"], ...LOADED },
    expected: { echo: "pass", "ping-while-busy": "fail", cancel: "pass" }
  },
  exitOne: {
    options: { ...nodeRaw("exit-1"), only: ["echo", "shutdown-drains", "exit-on-eof"], ...LOADED },
    expected: { echo: "pass", "shutdown-drains": "fail", "exit-on-eof": "pass" }
  },
  latin1: {
    options: { ...nodeRaw("latin1"), only: ["echo", "large-payload", "multibyte-text"], ...LOADED },
    expected: { echo: "pass", "large-payload": "pass", "multibyte-text": "fail" }
  },
  features: {
    options: { ...nodeRaw("ok", "--features=stream,telepathy"), only: ["ready", "stream", "checkpoint"], ...LOADED },
    expected: { ready: "pass", stream: "pass", checkpoint: "skipped" }
  },
  chunksV1: {
    options: { ...nodeRaw("chunks-v1", "--features=stream"), only: ["stream"], ...LOADED },
    expected: { stream: "fail" }
  },
  ignoresCancel: {
    options: { ...nodeRaw("ignores-cancel", "--features=stream"), only: ["stream"], ...LOADED },
    expected: { stream: "fail" }
  },
  forgetsRestore: {
    options: { ...nodeRaw("forgets-restore", "--features=checkpoint"), only: ["checkpoint"], ...LOADED },
    expected: { checkpoint: "fail" }
  },
  publishes: {
    options: { ...nodeRaw("ok", "--features=publish"), only: ["publish"], ...LOADED },
    expected: { publish: "pass" }
  },
  publishUnchecked: {
    options: { ...nodeRaw("publish-unchecked", "--features=publish"), only: ["publish"], ...LOADED },
    expected: { publish: "fail" }
  },
  publishAsData: {
    options: { ...nodeRaw("publish-as-data", "--features=publish"), only: ["publish"], ...LOADED },
    expected: { publish: "fail" }
  },
  publishDropsNull: {
    options: { ...nodeRaw("publish-drops-null", "--features=publish"), only: ["publish"], ...LOADED },
    expected: { publish: "fail" }
  },
  noFeatures: {
    options: {
      ...nodeRaw("no-stack"),
      only: ["ready", "error-response", "stream", "checkpoint", "publish"],
      ...LOADED
    },
    expected: {
      ready: "pass",
      "error-response": "pass",
      stream: "skipped",
      checkpoint: "skipped",
      publish: "skipped"
    }
  },
  exitsBeforeReady: {
    options: { command: process.execPath, args: ["-e", "process.exit(3)"], only: ["ready", "echo"], ...LOADED },
    expected: { ready: "fail", echo: "fail" }
  },
  missing: {
    options: { command: path.join(root, "test", "fixtures", "conformance", "no-such-agent"), only: ["ready", "echo"] },
    expected: { ready: "fail", echo: "fail" }
  }
} satisfies Record<string, Case>

type Name = keyof typeof cases | "go"

const reports = new Map<Name, Promise<Conformance.Report>>()

// ---- the Go adapter's agent, built once ----

const go = probeGo()
let goScratch = ""

/**
 * Batteries at once: each starts a dozen agents at once, which is CPU-bound work; more batteries than this, on two
 * busy cores, starve the agents that a timed check is measuring.
 */
const slots = Effect.unsafeMakeSemaphore(3)

const runBattery = (options: Conformance.Options) => Effect.runPromise(slots.withPermits(1)(Conformance.run(options)))

beforeAll(() => {
  // The longest first: the shell agent reads its 4 MiB line one byte per system call.
  const order = ["shell", ...Object.keys(cases).filter((name) => name !== "shell")] as Array<keyof typeof cases>
  const started: Array<readonly [Name, Promise<Conformance.Report>]> = order.map((name) => [
    name,
    runBattery(cases[name].options)
  ])
  if ("goroot" in go) {
    // Built beside the first batteries; its own battery queues behind them for a slot.
    goScratch = fs.mkdtempSync(path.join(os.tmpdir(), "conformance-go-"))
    started.push(["go", buildEchoAgent(goScratch).then((command) => runBattery({ command, ...LOADED }))])
  }
  for (const [name, report] of started) {
    // Awaited by its test; a rejection before that must not count as unhandled.
    report.catch(() => {})
    reports.set(name, report)
  }
})

afterAll(async () => {
  await Promise.allSettled(reports.values())
  if (goScratch !== "") fs.rmSync(goScratch, { recursive: true, force: true })
})

const reportOf = (name: Name) => Effect.promise(() => reports.get(name)!)

const statuses = (report: Conformance.Report): Expected =>
  Object.fromEntries(report.checks.map((check) => [check.name, check.status]))

/** What a failed comparison shows: every check's summary, and the evidence of those that did not go as expected. */
const explain = (report: Conformance.Report, expected: Expected): string =>
  report.checks.map((check) =>
    `${check.name}: ${check.status} (expected ${expected[check.name]}): ${check.summary}` +
    (check.status === expected[check.name] ? "" : `\n${check.evidence}`)
  ).join("\n")

const check = (report: Conformance.Report, name: Conformance.CheckName): Conformance.CheckResult => {
  const found = report.checks.find((c) => c.name === name)
  assert.isDefined(found, `no ${name} check in the report`)
  return found!
}

/** What the protocol 1.1 checks of an adapter that speaks both features say when they pass. */
const expectFeaturesChecked = (report: Conformance.Report) => {
  const stream = check(report, "stream")
  assert.match(
    stream.summary,
    new RegExp(
      `^50 chunks in order, then ok "done", in \\d+ ms; without "stream":true no chunk and a list of 5; ` +
        `cancelled after \\d+ chunks, \\d+ more before the ping behind the cancel was answered \\d+ ms later, ` +
        `none after$`
    )
  )
  assert.include(stream.evidence, "watched until the agent exited after shutdown")
  const checkpoint = check(report, "checkpoint")
  assert.match(
    checkpoint.summary,
    /^"restored" was null, then the checkpoint \{"n":7\} came (before the response|\d+ ms after the response); a fresh/
  )
  assert.match(checkpoint.evidence, /<- {2}\{"type":"checkpoint","data":\{"n":7\}\}/)
  assert.match(
    checkpoint.evidence,
    /transcript of agent 2 of 2[^]*<- {2}\{"id":"restored-2","status":"ok","result":\{"n":7\}\}/
  )
  expectPublishChecked(report)
}

/** What the protocol 1.2 check of an agent that publishes as it should says. */
const expectPublishChecked = (report: Conformance.Report) => {
  const publish = check(report, "publish")
  assert.match(
    publish.summary,
    /^the publish to "conformance\.invoices" came (before the response|\d+ ms after the response), its payload as given; a publish to the empty topic was refused with error .+, nothing sent, and the agent answered the next task$/
  )
  assert.match(publish.evidence, /<- {2}\{"type":"publish","topic":"conformance\.invoices","payload":\{"invoice":42,/)
}

/** The Go agent passes every check. */
const GO_EXPECTED = allPassBut({})

/** Runs a case and asserts the outcome of every check; returns the report for more. */
const expectOutcomes = (name: Name) =>
  Effect.map(reportOf(name), (report) => {
    const expected = name === "go" ? GO_EXPECTED : cases[name].expected
    assert.deepStrictEqual(statuses(report), expected, explain(report, expected))
    assert.deepStrictEqual(report.checks.map((c) => c.name), Conformance.checkNames.filter((n) => n in expected))
    assert.strictEqual(report.passed, !Object.values(expected).includes("fail"))
    return report
  })

describe("Conformance: the contract's agents", () => {
  it.live("the Python adapter passes every check", () =>
    Effect.gen(function*() {
      const report = yield* expectOutcomes("python")
      assert.deepStrictEqual(report.counts, { pass: 15, fail: 0, skipped: 0 })
      assert.deepStrictEqual(report.features, ["stream", "checkpoint", "publish"])
      assert.match(check(report, "stdout-child").summary, /the child's output was seen on stderr/)
      assert.match(check(report, "cancel").summary, /"wasCancelled" answered true .* the task was not answered/)
      expectFeaturesChecked(report)
    }), WAIT)

  it.live("the Node adapter passes every check but a child's output on stdout", () =>
    Effect.gen(function*() {
      const report = yield* expectOutcomes("node")
      const child = check(report, "stdout-child")
      assert.match(
        child.summary,
        /1 of 3 stdout line\(s\) were not protocol messages; the child's output was seen on stdout/
      )
      assert.match(child.evidence, /<! {2}conformance-spawn-\w+/)
      assert.match(check(report, "stdout-print").summary, /the printed text was seen on stderr/)
      expectFeaturesChecked(report)
    }), WAIT)

  const goTest = "the Go adapter's echo-agent passes every check"
  if ("goroot" in go) {
    it.live(goTest, () =>
      Effect.gen(function*() {
        const report = yield* expectOutcomes("go")
        assert.deepStrictEqual(report.counts, { pass: 15, fail: 0, skipped: 0 })
        assert.deepStrictEqual(report.features, ["stream", "checkpoint", "publish"])
        assert.match(check(report, "stdout-child").summary, /the child's output was seen on stderr/)
        expectFeaturesChecked(report)
      }), WAIT)
  } else if (process.env.REQUIRE_SERVICES === "1") {
    it(`${goTest} (REQUIRE_SERVICES=1: Go is required)`, () => assert.fail(go.unavailable))
  } else {
    console.warn(`skipping "${goTest}": ${go.unavailable}`)
    it.skip(goTest, () => {})
  }

  it.live("the raw shell agent: everything but what one request at a time cannot do", () =>
    Effect.gen(function*() {
      const report = yield* expectOutcomes("shell")
      assert.match(check(report, "ping-while-busy").summary, /after the task it waited behind/)
      const cancel = check(report, "cancel")
      assert.match(cancel.summary, /"wasCancelled" was not answered within 2000 ms of the cancel/)
      assert.include(cancel.evidence, "no answer to the ping within 1000 ms: cancelling anyway")
      assert.match(check(report, "concurrent-requests").summary, /all 64 answered once .*; in the order sent/)
      assert.include(check(report, "stream").summary, `does not announce "stream"`)
    }), WAIT)
})

describe("Conformance: broken agents are caught, with evidence", () => {
  it.live("a raw Python agent that prints to stdout", () =>
    Effect.gen(function*() {
      const report = yield* expectOutcomes("noisy")
      assert.include(check(report, "ready").evidence, "1 stdout line(s) before it were not protocol messages")
      const print = check(report, "stdout-print")
      assert.match(
        print.summary,
        /2 of 4 stdout line\(s\) were not protocol messages; the printed text was seen on stdout/
      )
      assert.include(print.evidence, "<!  loading the model...")
      assert.match(print.evidence, /<! {2}conformance-print-\w+/)
      assert.match(check(report, "stdout-child").evidence, /<! {2}conformance-spawn-\w+/)
    }), WAIT)

  it.live(
    "an ordinary agent (the demo's summarizer): the echo check says it does not seem to implement the contract",
    () =>
      Effect.gen(function*() {
        const report = yield* Conformance.run({
          ...Adapters.pythonCallback(path.join(root, "examples", "agents", "summarize.py"), "handle_request"),
          ...LOADED,
          only: ["echo"]
        })
        const echo = check(report, "echo")
        assert.strictEqual(echo.status, "fail")
        assert.match(echo.summary, /^"echo-1" was answered with \{"words":0.*\}, not the "value" it sent/)
        assert.include(echo.diagnosis ?? "(none)", "it does not seem to implement the conformance contract")
        assert.include(echo.diagnosis ?? "(none)", "adapters/python/conformance_agent.py")
        assert.deepStrictEqual(report.diagnoses, [echo.diagnosis ?? "(none)"])
      }),
    WAIT
  )

  it.live(
    "an ordinary agent that fails on the kit's payloads (the README's word counter: a KeyError): the same diagnosis",
    () =>
      Effect.gen(function*() {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "conformance-keyerror-"))
        const file = path.join(dir, "summarize.py")
        fs.writeFileSync(
          file,
          "async def handle_request(payload):\n    return {\"words\": len(payload[\"text\"].split())}\n"
        )
        const report = yield* Conformance.run({
          ...Adapters.pythonCallback(file, "handle_request"),
          ...LOADED,
          only: ["echo"]
        }).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))
        const echo = check(report, "echo")
        assert.strictEqual(echo.status, "fail")
        assert.match(echo.summary, /^"echo-1" was answered with error .*KeyError/)
        // Before, no diagnosis: 12 failures and nothing said why
        assert.include(echo.diagnosis ?? "(none)", `answers the kit's "op": "echo" task with an error`)
        assert.include(echo.diagnosis ?? "(none)", "it does not seem to implement the conformance contract")
        assert.include(echo.diagnosis ?? "(none)", "the package's adapters/python/conformance_agent.py is one")
      }),
    WAIT
  )

  it.live(
    "an agent that answers every payload as it came: the echo check says it does not implement the contract",
    () =>
      Effect.gen(function*() {
        const report = yield* Conformance.run({
          ...Adapters.nodeCallback(fixture("node", "echo.mjs")),
          ...LOADED,
          only: ["echo", "concurrent-requests", "ping-while-busy"]
        })
        const echo = check(report, "echo")
        assert.strictEqual(echo.status, "fail")
        assert.include(echo.summary, "answered with its whole payload: the agent echoes what it gets")
        assert.include(echo.diagnosis ?? "(none)", "it does not implement the conformance contract")
        // Its "sleep" task was answered at once: the ping did not wait behind it, and the summary says what happened
        const busy = check(report, "ping-while-busy")
        assert.strictEqual(busy.status, "fail")
        assert.match(
          busy.summary,
          /^the 2000 ms task was answered \d+ ms after it was sent, before its sleep could end/
        )
        assert.include(busy.summary, `the agent does not run the contract's "sleep" operation`)
        assert.notInclude(busy.summary, "waited behind")
        // The other checks fail for the same reason, which the report says once
        assert.deepStrictEqual(report.counts, { pass: 0, fail: 3, skipped: 0 })
        assert.deepStrictEqual(report.diagnoses, [echo.diagnosis ?? "(none)"])
      }),
    WAIT
  )

  it.live("an agent that never answers a ping", () =>
    Effect.gen(function*() {
      const report = yield* expectOutcomes("deaf")
      assert.match(check(report, "ping-while-busy").summary, /the ping was not answered within 3000 ms/)
      assert.include(check(report, "cancel").evidence, "no answer to the ping within 1000 ms: cancelling anyway")
    }), WAIT)

  it.live("an agent that exits 1 on shutdown, dropping its work", () =>
    Effect.gen(function*() {
      const report = yield* expectOutcomes("exitOne")
      const drains = check(report, "shutdown-drains")
      assert.match(drains.summary, /the task in flight was not answered; the agent exited with code 1/)
      assert.match(drains.evidence, /exit: code 1/)
    }), WAIT)

  it.live("an agent that reads its input as Latin-1", () =>
    Effect.gen(function*() {
      const report = yield* expectOutcomes("latin1")
      const text = check(report, "multibyte-text")
      assert.match(text.summary, /answered with another value than it sent/)
      assert.match(text.evidence, /first difference at index 0/)
    }), WAIT)

  it.live(
    "protocol 1.1: chunks for a v1 task, a stream that ignores its cancel, a restore forgotten",
    () =>
      Effect.gen(function*() {
        const chunks = check(yield* expectOutcomes("chunksV1"), "stream")
        assert.match(
          chunks.summary,
          /the task sent without "stream":true got 5 chunk\(s\): a v1 caller cannot take them/
        )
        assert.match(chunks.evidence, /<- {2}\{"id":"collect-1","type":"chunk","data":\{"i":0\}\}/)
        const cancel = check(yield* expectOutcomes("ignoresCancel"), "stream")
        assert.match(
          cancel.summary,
          /\d+ line\(s\) of the cancelled stream came after the ping behind the cancel was answered, the last \d+ ms/
        )
        assert.match(cancel.evidence, /the ping behind it answered at \+\d+ ms: nothing of the cancelled stream/)
        assert.match(cancel.evidence, /\+\d+ ms: "\{\\"id\\":\\"cancel-me\\",\\"type\\":\\"chunk\\"/)
        const restore = check(yield* expectOutcomes("forgetsRestore"), "checkpoint")
        assert.match(
          restore.summary,
          /^a fresh agent sent \{"type":"restore","data":\{"n":7\}\} right after its ready: "restored" was answered null, not \{"n":7\}$/
        )
        assert.include(restore.evidence, "transcript of agent 1 of 2")
        assert.match(restore.evidence, /transcript of agent 2 of 2[^]*-> {2}\{"type":"restore","data":\{"n":7\}\}/)
      }),
    WAIT
  )

  it.live(
    "protocol 1.2: a publish to the empty topic sent, a published value under another name, a payload changed",
    () =>
      Effect.gen(function*() {
        expectPublishChecked(yield* expectOutcomes("publishes"))
        const unchecked = check(yield* expectOutcomes("publishUnchecked"), "publish")
        assert.strictEqual(
          unchecked.summary,
          `a publish to the empty topic was answered ok with "published": the adapter must refuse it, an error in ` +
            "the code that called publish (Python ValueError, Node TypeError, Go ErrEmptyTopic)"
        )
        const asData = check(yield* expectOutcomes("publishAsData"), "publish")
        assert.strictEqual(asData.summary, `the agent published with no "payload" member`)
        assert.match(asData.evidence, /got {6}\{"type":"publish","topic":"conformance\.invoices","data":\{/)
        assert.notInclude(asData.evidence, "first difference")
        // a payload that differs in one member deep inside: the evidence names where
        const dropsNull = check(yield* expectOutcomes("publishDropsNull"), "publish")
        assert.strictEqual(dropsNull.summary, "the agent published with another payload than it was given")
        assert.include(dropsNull.evidence, "first difference at payload.note: expected null, got no such member")
      }),
    WAIT
  )

  it.live(
    "a program that exits before ready, or cannot be spawned: a report of failures that says so",
    () =>
      Effect.gen(function*() {
        const exited = yield* expectOutcomes("exitsBeforeReady")
        // it said "no ready line within 10000 ms of the spawn": Node reported the end of stdout before the exit
        for (const c of exited.checks) {
          assert.match(c.summary, /^no ready line: the agent exited with code 3 at \+\d+ ms$/)
        }
        const report = yield* expectOutcomes("missing")
        for (const c of report.checks) {
          assert.match(c.summary, /could not spawn .*no-such-agent.*ENOENT/)
        }
      }),
    WAIT
  )
})

describe("Conformance: features and options", () => {
  it.live(
    "a feature announced in ready runs its check; one not announced is skipped; unknown names are listed",
    () =>
      Effect.gen(function*() {
        const report = yield* expectOutcomes("features")
        assert.deepStrictEqual(report.features, ["stream", "telepathy"])
        assert.include(check(report, "ready").summary, "features: stream, telepathy")
        assert.match(check(report, "stream").summary, /^50 chunks in order, then ok "done"/)
        assert.include(check(report, "checkpoint").summary, `does not announce "checkpoint"`)
        // Without the ready check, the features read by the start that checks of a feature wait for
        assert.deepStrictEqual((yield* expectOutcomes("chunksV1")).features, ["stream"])
        assert.deepStrictEqual((yield* expectOutcomes("publishes")).features, ["publish"])
        // Nothing read them: no check of a feature ran, nor the ready check
        assert.deepStrictEqual((yield* expectOutcomes("latin1")).features, [])
        const none = yield* expectOutcomes("noFeatures")
        assert.deepStrictEqual(none.features, [])
        assert.include(check(none, "stream").summary, `does not announce "stream"`)
        // Where an agent has no stack to give (it is optional), none is required
        assert.include(check(none, "error-response").summary, "no stack (it is optional)")
        assert.deepStrictEqual(
          Conformance.checks.filter((c) => c.feature !== undefined).map((c) => [c.name, c.feature]),
          [["stream", "stream"], ["checkpoint", "checkpoint"], ["publish", "publish"]]
        )
      }),
    WAIT
  )

  it.effect("bad options: a ConfigError naming each, and nothing spawned", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(Conformance.run({
        command: "",
        pingTimeout: 0,
        concurrency: 0,
        only: ["echo", "nope" as Conformance.CheckName]
      }))
      assert.isTrue(Either.isLeft(result))
      const error = (result as Either.Left<ConfigError, Conformance.Report>).left
      assert.instanceOf(error, ConfigError)
      assert.deepStrictEqual(error.problems.map((p) => p.field), ["command", "pingTimeout", "concurrency", "only[1]"])
      assert.include(error.message, `must be one of "ready", "echo"`)
    }), WAIT)
})

/**
 * The README's main command, end to end: `agent-supervisor up examples/tree.yaml` (the built bin in a child process)
 * on a copy of `examples/`, with its real Python and Node agents. The copy keeps the repository's layout
 * (`DIR/examples/tree.yaml`), so the file's SQLite store (`../.data/tree.sqlite`) and the state file beside it land
 * in the temporary directory.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { caseProblem, withHelpFirst as helpFirst, withRepeatedSplit } from "../src/internal/cli/arguments.js"
import { grammar } from "../src/internal/cli/main.js"
import { BIN, eventually, isAlive, root, runCli, spawnApp, tempDir } from "./support.js"

/** Runs another command to its end in `cwd`, with `env` over this process's (and no colour unless it says). */
const cli = (args: ReadonlyArray<string>, cwd: string, env: Record<string, string>) => runCli(args, { cwd, env })

/** The children of a tree view, nested ones included. */
const flatten = (children: ReadonlyArray<any>): Array<any> => children.flatMap((c) => [c, ...flatten(c.children)])

describe.sequential("agent-supervisor up examples/tree.yaml", () => {
  it.scopedLive("a --port out of range is refused before any agent starts", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cli-port")
      const file = path.join(dir, "tree.yaml")
      fs.writeFileSync(
        file,
        `name: ported\nchildren:\n  - type: agent\n    id: a\n    config: { name: a, command: ${process.execPath}, ` +
          `args: [${JSON.stringify(path.join(root, "test", "fixtures", "agents", "agent.mjs"))}, echo] }\n`
      )
      const result = yield* cli(["up", file, "--port", "99999"], dir, {})
      assert.strictEqual(result.code, 1, result.stderr)
      assert.include(result.stderr, "must be a port number from 0 to 65535", result.stderr)
      assert.notInclude(result.stderr, "is running", "refused before the tree started")
      assert.notInclude(result.stderr, "Spawned", result.stderr)
    }))

  it.scopedLive(
    "logs the dashboard's URL (JSON lines on a pipe); the page, the tree RUNNING; AGENT_SUPERVISOR_URL and _TOKEN " +
      "address it; SIGTERM exits 0",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-main")
        const examples = path.join(dir, "examples")
        fs.mkdirSync(examples)
        fs.cpSync(path.join(root, "examples", "tree.yaml"), path.join(examples, "tree.yaml"))
        fs.cpSync(path.join(root, "examples", "agents"), path.join(examples, "agents"), { recursive: true })
        // No --log-format: stderr is a pipe here, so the log is JSON lines, one object each.
        const app = yield* spawnApp(BIN, ["up", path.join(examples, "tree.yaml")], { onLine: () => {} })
        // Complete lines only: a line may be half written when read
        const logged = () => app.stderr().split("\n").slice(0, -1).map((line) => JSON.parse(line))
        const messages = () => logged().map((entry) => entry.message as string)
        yield* eventually(
          `the dashboard line (stderr: ${app.stderr()})`,
          () => messages().some((message) => message.startsWith("dashboard: ")),
          "60 seconds"
        )
        const at = messages().findIndex((message) => message.startsWith("dashboard: "))
        assert.isAbove(at, messages().indexOf("tree \"demo\" is running"), "the URL once the tree runs")
        assert.isAtLeast(messages().indexOf("tree \"demo\" is running"), 0)
        const line = logged()[at]
        assert.strictEqual(line.logLevel, "INFO")
        const url = /^dashboard: (http:\/\/127\.0\.0\.1:\d+)\/ \(admin API token in (.+)\)$/.exec(line.message)
        assert.isNotNull(url, line.message)
        const [, base, stateFile] = url!
        assert.strictEqual(stateFile, path.join(examples, ".tree.yaml.admin.json"))
        assert.isTrue(fs.existsSync(path.join(dir, ".data", "tree.sqlite")), "the file's store, beside the copy")

        // The dashboard's page, and the tree's agents RUNNING (the tree said it was running before the URL)
        const page = yield* Effect.promise(() => fetch(`${base}/`))
        assert.strictEqual(page.status, 200)
        assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
        assert.include(yield* Effect.promise(() => page.text()), "<h1 id=\"title\" data-testid=\"title\">")
        const tree = () =>
          Effect.promise(() =>
            fetch(`${base}/api/tree`).then((r) => r.json() as Promise<{ name: string; children: any }>)
          )
        const before = yield* tree()
        assert.strictEqual(before.name, "demo")
        const children = flatten(before.children)
        assert.deepStrictEqual(children.map((c) => [c.id, c.kind, c.state]), [
          ["summarizer", "worker", "RUNNING"],
          ["workers", "supervisor", "RUNNING"],
          ["workers/classifier", "worker", "RUNNING"]
        ])
        const pids = children.filter((c) => c.kind === "worker").map((c) => c.pid as number)
        assert.isTrue(pids.every(isAlive), JSON.stringify(pids))

        // The environment names the running up where no state file is: from another directory, no flags
        const elsewhere = yield* tempDir("cli-main-elsewhere")
        const status = yield* cli(["status"], elsewhere, { AGENT_SUPERVISOR_URL: `${base}/`, FORCE_COLOR: "1" })
        assert.strictEqual(status.code, 0, status.stderr)
        assert.match(status.stdout, /^demo\n/)
        // FORCE_COLOR over NO_COLOR and a pipe: the states in green
        // eslint-disable-next-line no-control-regex
        assert.match(status.stdout, /\nworkers\/classifier\s+agent\s+\u001b\[32mRUNNING\u001b\[0m\s+\d+/)
        const { token } = JSON.parse(fs.readFileSync(stateFile, "utf8")) as { token: string }
        const restarted = yield* cli(["restart", "workers/classifier"], elsewhere, {
          AGENT_SUPERVISOR_URL: base,
          AGENT_SUPERVISOR_TOKEN: token
        })
        assert.strictEqual(restarted.code, 0, restarted.stderr)
        const after = flatten((yield* tree()).children).find((c) => c.id === "workers/classifier")
        assert.strictEqual(after.state, "RUNNING")
        assert.notStrictEqual(after.pid, pids[1])
        assert.match(restarted.stdout, new RegExp(`^workers/classifier: RUNNING \\(pid ${after.pid}\\)`))
        // up's log says what was done to the tree from outside, and what was refused (it said nothing of either)
        const refused = yield* cli(["scale", "summarizer", "2"], elsewhere, {
          AGENT_SUPERVISOR_URL: base,
          AGENT_SUPERVISOR_TOKEN: token
        })
        assert.strictEqual(refused.code, 1)
        const unknown = yield* cli(["restart", "nope"], elsewhere, {
          AGENT_SUPERVISOR_URL: base,
          AGENT_SUPERVISOR_TOKEN: token
        })
        assert.strictEqual(unknown.code, 1)
        const operations = () => logged().filter((entry) => String(entry.message).startsWith("admin API: "))
        yield* eventually("the refused scale and restart logged", () => operations().length === 3, "10 seconds")
        const [, , refusal] = operations()
        assert.deepStrictEqual([refusal.logLevel, refusal.annotations], ["WARN", {
          operation: "restart",
          child: "nope"
        }])
        assert.match(
          String(refusal.message),
          /^admin API: refused to restart "nope": No child "nope" in the tree "demo": /
        )
        assert.deepStrictEqual(
          operations().slice(0, 2).map((entry) => [entry.logLevel, entry.message, entry.annotations]),
          [
            [
              "INFO",
              `admin API: restarted "workers/classifier": RUNNING (pid ${after.pid})`,
              { operation: "restart", child: "workers/classifier" }
            ],
            [
              "WARN",
              `admin API: Could not scale "summarizer": Supervisor "demo" cannot scale child "summarizer": not a pool`,
              { operation: "scale", child: "summarizer" }
            ]
          ]
        )
        // The README's call: the demo's agents take the event as the demo sends it, or its payload alone
        for (
          const event of ["{\"text\": \"hi there\"}", "{\"type\": \"data\", \"payload\": {\"text\": \"hi there\"}}"]
        ) {
          const called = yield* cli(["call", "summarizer", event], elsewhere, {
            AGENT_SUPERVISOR_URL: base,
            AGENT_SUPERVISOR_TOKEN: token
          })
          assert.strictEqual(called.code, 0, called.stderr)
          assert.deepStrictEqual(JSON.parse(called.stdout), { words: 2, summary: "hi there" }, event)
        }

        // SIGTERM: the tree stops, its agents are gone, exit 0, the state file removed; the log says why and when
        app.child.kill("SIGTERM")
        assert.deepStrictEqual(yield* app.exited, { code: 0, signal: null }, app.stderr())
        assert.deepStrictEqual(messages().slice(-2), [
          `SIGTERM: stopping tree "demo" (3-phase, in order; SIGTERM again to kill the agents at once)`,
          `tree "demo" stopped`
        ])
        for (const pid of [pids[0], after.pid as number]) assert.isFalse(isAlive(pid), `agent ${pid} stopped`)
        assert.isFalse(fs.existsSync(stateFile))
      }),
    120_000
  )

  // @effect/cli paints its help and errors whatever the output is: through a pipe they came out full of codes.
  it.scopedLive(
    "help and usage errors are plain text through a pipe, painted only where colour is asked for",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-main-help")
        const help = yield* cli(["--help"], dir, {})
        assert.strictEqual(help.code, 0, help.stderr)
        assert.include(help.stdout, "USAGE")
        assert.notInclude(help.stdout, "\u001b", "no colour codes in piped help")
        const wrong = yield* cli(["bogus"], dir, {})
        assert.notStrictEqual(wrong.code, 0)
        assert.include(wrong.stderr, `error: "bogus" is no command of agent-supervisor; the commands are up, `)
        assert.notInclude(wrong.stdout + wrong.stderr, "\u001b", "no colour codes in a piped usage error")
        // FORCE_COLOR over the pipe and NO_COLOR: the help painted as @effect/cli paints it
        const painted = yield* cli(["--help"], dir, { FORCE_COLOR: "1" })
        assert.include(painted.stdout, "\u001b[")
        // a subcommand's help, asked for after it: its usage line names the program (it read `$ up ...`)
        for (const args of [["up", "--help"], ["conformance", "-h"], ["--log-level", "error", "validate", "--help"]]) {
          const sub = yield* cli(args, dir, {})
          assert.strictEqual(sub.code, 0, sub.stderr)
          const name = args.find((arg) => ["up", "conformance", "validate"].includes(arg))
          assert.match(sub.stdout, new RegExp(`^\\$ agent-supervisor ${name}\\b`, "m"), sub.stdout)
        }
        // `-f` follows for the followers (as `tail -f`); for the other commands it is still `--file`
        const followed = yield* cli(["logs", "-f", "chatty"], dir, {})
        assert.strictEqual(followed.code, 1)
        assert.include(followed.stderr, "No running tree found in this directory", followed.stderr)
        const filed = yield* cli(["status", "-f", "elsewhere.yaml"], dir, {})
        assert.strictEqual(filed.code, 1)
        assert.include(filed.stderr, `No running "agent-supervisor up elsewhere.yaml" found`, filed.stderr)
      }),
    60_000
  )

  it("withRepeatedSplit: --only=NAME read as --only NAME; other options and what follows -- as they are", () => {
    assert.deepStrictEqual(
      withRepeatedSplit(["conformance", "--only=ready", "--only", "echo", "--", "node", "--only=x"]),
      ["conformance", "--only", "ready", "--only", "echo", "--", "node", "--only=x"]
    )
    // in any case, as @effect/cli reads names (conformance then refuses --ONLY, which it would drop)
    assert.deepStrictEqual(withRepeatedSplit(["conformance", "--ONLY=ready"]), ["conformance", "--ONLY", "ready"])
    for (const args of [["status", "--url=http://127.0.0.1:1"], ["conformance", "node", "a.js"], ["--only"]]) {
      assert.deepStrictEqual(withRepeatedSplit(args), args)
    }
    // -n with its number attached, as tail -n1 takes it (not after --: the agent's own)
    assert.deepStrictEqual(withRepeatedSplit(["logs", "x", "-n1", "--follow"]), ["logs", "x", "-n", "1", "--follow"])
    assert.deepStrictEqual(withRepeatedSplit(["conformance", "--", "head", "-n1"]), [
      "conformance",
      "--",
      "head",
      "-n1"
    ])
    assert.deepStrictEqual(withRepeatedSplit(["logs", "x", "-nx"]), ["logs", "x", "-nx"])
  })

  it("caseProblem: a long option in another case than its name's (@effect/cli drops it, value and all)", () => {
    assert.strictEqual(
      caseProblem(["status", "--Url", "http://127.0.0.1:1"]),
      `"--Url" is read as no option: option names are in lower case (--url)`
    )
    assert.include(caseProblem(["conformance", "--ONLY=ready", "--", "node"])!, `"--ONLY" is read as no option`)
    // lower case, short aliases (-F is --follow's), values, and anything after --
    for (
      const args of [["logs", "-F", "chatty", "--lines", "5"], ["status", "--url", "http://Host:1"], [
        "conformance",
        "--",
        "node",
        "--Only"
      ]]
    ) assert.isUndefined(caseProblem(args), args.join(" "))
  })

  const withHelpFirst = (args: ReadonlyArray<string>) => helpFirst(args, grammar)

  it("withHelpFirst: --help also before a subcommand asked for after it; nothing after -- is read", () => {
    assert.deepStrictEqual(withHelpFirst(["up", "tree.yaml", "--help"]), ["--help", "up", "tree.yaml", "--help"])
    assert.deepStrictEqual(withHelpFirst(["--log-level", "debug", "status", "-h"]), [
      "--log-level",
      "debug",
      "--help",
      "status",
      "-h"
    ])
    // as they are: no help asked for, help asked for before the subcommand, no subcommand, an agent's own --help
    for (
      const args of [
        ["up", "tree.yaml"],
        ["--help", "up", "--help"],
        ["--help"],
        ["conformance", "--", "node", "agent.js", "--help"]
      ]
    ) assert.deepStrictEqual(withHelpFirst(args), args)
  })

  // `up` logged the warning of a child that would be parked, then the tree's start logged it again.
  it.scopedLive(
    "up warns once of a child that its supervisor would park rather than escalate for",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-main-parked")
        const file = path.join(dir, "tree.yaml")
        fs.writeFileSync(
          file,
          [
            "name: parking",
            "intensity: { maxRestarts: 20, window: 10 seconds }",
            "children:",
            "  - type: agent",
            "    id: echo",
            "    config:",
            "      name: echo",
            `      command: ${JSON.stringify(process.execPath)}`,
            `      args: [${JSON.stringify(path.join(root, "test", "fixtures", "agents", "agent.mjs"))}, echo]`,
            "      maxRestartAttempts: 3",
            ""
          ].join("\n")
        )
        const app = yield* spawnApp(BIN, ["up", "--no-admin", file], { onLine: () => {} })
        const messages = () =>
          app.stderr().split("\n").slice(0, -1).map((line) => (JSON.parse(line) as { message: string }).message)
        // (up's start loads the library and spawns: seconds on a busy machine, more than eventually's default 5)
        yield* eventually(
          `the tree runs (stderr: ${app.stderr()})`,
          () => messages().includes("tree \"parking\" is running"),
          "40 seconds"
        )
        const warnings = messages().filter((message) => message.startsWith("A child that never starts would be parked"))
        assert.strictEqual(warnings.length, 1, app.stderr())
        assert.include(warnings[0], "children[0] (\"echo\")")
        app.child.kill("SIGTERM")
        assert.deepStrictEqual(yield* app.exited, { code: 0, signal: null }, app.stderr())
      }),
    60_000
  )
  it.scopedLive(
    "with a logs section, up's own log file follows --log-format logfmt (JSON lines otherwise)",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-main-logfile")
        const treeFile = (name: string) => {
          const file = path.join(dir, `${name}.yaml`)
          fs.writeFileSync(
            file,
            [
              `name: ${name}`,
              `logs: { dir: ${name}-logs }`,
              "children:",
              "  - type: agent",
              "    id: echo",
              "    config:",
              "      name: echo",
              `      command: ${JSON.stringify(process.execPath)}`,
              `      args: [${JSON.stringify(path.join(root, "test", "fixtures", "agents", "agent.mjs"))}, echo]`,
              ""
            ].join("\n")
          )
          return file
        }
        /** Runs the tree until it runs, stops it, and gives its own log file's lines. */
        const ownLog = (name: string, format: string) =>
          Effect.gen(function*() {
            const app = yield* spawnApp(BIN, ["up", "--no-admin", "--log-format", format, treeFile(name)], {
              onLine: () => {}
            })
            yield* eventually(
              `the tree runs (stderr: ${app.stderr()})`,
              () => app.stderr().includes(`is running`),
              "40 seconds"
            )
            app.child.kill("SIGTERM")
            assert.deepStrictEqual(yield* app.exited, { code: 0, signal: null }, app.stderr())
            // Written and closed by the time up has exited
            return fs.readFileSync(path.join(dir, `${name}-logs`, "agent-supervisor.log"), "utf8").split("\n")
              .filter((line) => line.length > 0)
          })
        const logfmt = yield* ownLog("logfmt", "logfmt")
        assert.isTrue(
          logfmt.some((line) => line.includes(`level=INFO`) && line.includes(`message="tree \\"logfmt\\" is running"`)),
          logfmt.join("\n")
        )
        assert.isFalse(logfmt.some((line) => line.startsWith("{")), logfmt.join("\n"))
        const json = yield* ownLog("pretty", "pretty")
        const entries = json.map((line) => JSON.parse(line) as { message: string; logLevel: string })
        assert.isTrue(entries.some((entry) => entry.message === "tree \"pretty\" is running"), json.join("\n"))
      }),
    90_000
  )
})

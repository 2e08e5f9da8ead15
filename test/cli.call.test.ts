/**
 * `agent-supervisor call ID [JSON]` and `publish TOPIC [JSON]` (from a new user's trial: nothing sent work to a
 * running `up`): the built bin in a child process against `up` running a real tree of real agents. The payload from
 * the argument or from stdin (piped, or `-`; a terminal without one is refused), the answer as JSON on stdout, each
 * refusal `error: ...` on stderr with exit code 1, and `up`'s log saying each call and publish without its payload.
 * A JSON argument is never taken for an option: `-1`, `[1]`, `{...}` are payloads; after `--`, anything is.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { unknownName } from "../src/internal/cli/arguments.js"
import { grammar } from "../src/internal/cli/main.js"
import { agentConfig, BIN, eventually, nodeCallbackConfig, startUp as startUpApp, tempDir } from "./support.js"

const SECRET = "s3cret-of-the-cli-7f2e"

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the command to its end in `cwd`; `input` is written to its stdin (which is /dev/null without it). */
const cli = (args: ReadonlyArray<string>, cwd: string, input?: string) =>
  Effect.async<Result>((resume) => {
    const child = childProcess.spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      timeout: 60_000
    })
    let stdout = ""
    let stderr = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    if (input !== undefined) child.stdin!.end(input)
  })

/** Runs the command with a terminal for its stdin (and stdout), through util-linux's `script`. */
const cliOnTerminal = (args: ReadonlyArray<string>, cwd: string) =>
  Effect.async<Result>((resume) => {
    const command = [process.execPath, BIN, ...args].map((word) => `'${word}'`).join(" ")
    childProcess.execFile(
      "script",
      ["-qec", command, "/dev/null"],
      { cwd, env: { ...process.env, NO_COLOR: "1" }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error === null ? 0 : Number(error.code), stdout, stderr }))
    )
  })

/**
 * `echo` (answers its payload; takes `jobs`), `refuses` (its error repeats the payload; takes `doomed`, tried once),
 * `sleeper` (answers after `ms`), `workers/echo`, the pool `pool` of 2 raw agents (`{ whoami: true }`); the topic
 * `later` holds 1 task.
 */
const writeTree = (dir: string) => {
  const file = path.join(dir, "tree.json")
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: "cli-call",
      store: { type: "memory" },
      topics: { later: { maxQueued: 1 }, doomed: { retry: { maxAttempts: 1 } } },
      children: [
        { type: "agent", id: "echo", topics: ["jobs"], config: nodeCallbackConfig("cli-echo", "echo.mjs") },
        { type: "agent", id: "refuses", topics: ["doomed"], config: nodeCallbackConfig("cli-refuses", "refuses.mjs") },
        { type: "agent", id: "sleeper", config: nodeCallbackConfig("cli-sleeper", "sleeper.mjs") },
        {
          type: "supervisor",
          id: "workers",
          children: [{ type: "agent", id: "echo", config: nodeCallbackConfig("cli-w", "echo.mjs") }]
        },
        { type: "pool", id: "pool", size: 2, config: agentConfig("echo", { name: "cli-member" }) }
      ]
    })
  )
  return file
}

/** `up FILE` in the background, its log as JSON lines; once its state file is there (the admin API listens). */
const startUp = (file: string) =>
  Effect.gen(function*() {
    const { app } = yield* startUpApp(file)
    // Complete lines only: a line may be half written when read
    const logged = () =>
      app.stderr().split("\n").slice(0, -1).map((line) =>
        JSON.parse(line) as { message: string; logLevel: string; annotations: Record<string, string> }
      )
    return { app, logged, operations: () => logged().filter((entry) => entry.message.startsWith("admin API: ")) }
  })

const ok = (result: Result, what: string) => {
  assert.strictEqual(result.code, 0, `${what}: ${result.stderr}`)
  return JSON.parse(result.stdout)
}

/** A refusal: `error: ...` alone on stderr (no stack), nothing on stdout, exit 1; its message. */
const refused = (result: Result, what: string): string => {
  assert.strictEqual(result.code, 1, `${what}: ${result.stdout}${result.stderr}`)
  assert.strictEqual(result.stdout, "", what)
  assert.match(result.stderr, /^error: /, what)
  assert.notInclude(result.stderr, "    at ", `no stack: ${what}`)
  return result.stderr.slice("error: ".length).trim()
}

describe.sequential("agent-supervisor call and publish", () => {
  it.scopedLive(
    "call: the result as JSON, the payload from the argument or stdin (piped, -), --timeout, --json, a pool; " +
      "publish: the task's id; result: the task's result; up logs each, never the payload",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-call")
        const file = writeTree(dir)
        const { operations } = yield* startUp(file)
        const payload = { text: "héllo ✓", list: [1, -2.5, null], secret: SECRET }
        const [argument, piped, dash, compact, nested, pooled, negative, list, afterDashes] = yield* Effect.all([
          cli(["call", "echo", JSON.stringify(payload), "--file", file], dir),
          cli(["call", "echo", "--file", file], dir, JSON.stringify(payload)),
          cli(["call", "--file", file, "echo", "-", "--timeout", "10s"], dir, "\"from stdin\"\n"),
          cli(["call", "echo", "{\"a\": [1, 2]}", "--json", "--timeout", "10000", "--file", file], dir),
          cli(["call", "workers/echo", "null", "--file", file], dir),
          cli(["call", "pool", "{\"whoami\": true}", "--file", file], dir),
          cli(["call", "echo", "-1.5e3", "--file", file], dir),
          cli(["call", "echo", "[-1, \"-x\"]", "--file", file], dir),
          cli(["call", "echo", "--file", file, "--", "-7"], dir)
        ], { concurrency: 3 })
        assert.deepStrictEqual(ok(argument, "argument"), payload)
        assert.strictEqual(argument.stdout, `${JSON.stringify(payload, null, 2)}\n`, "indented for a person")
        assert.deepStrictEqual(ok(piped, "piped"), payload)
        assert.strictEqual(ok(dash, "-"), "from stdin")
        assert.strictEqual(compact.stdout, `{"a":[1,2]}\n`, "--json: one line")
        assert.strictEqual(compact.stderr, "", "a bare number of 1000 or more: no warning")
        assert.isNull(ok(nested, "nested"))
        assert.isNumber(ok(pooled, "pool").pid)
        assert.strictEqual(ok(negative, "negative"), -1500)
        assert.deepStrictEqual(ok(list, "list"), [-1, "-x"])
        assert.strictEqual(ok(afterDashes, "after --"), -7)

        // publish: the task's id; its subscriber takes it
        const published = ok(
          yield* cli(["publish", "jobs", JSON.stringify({ secret: SECRET }), "--file", file], dir),
          "publish"
        )
        assert.deepStrictEqual(Object.keys(published), ["taskId"])
        const fanned = yield* cli(["publish", "jobs", "--fanout", "--json", "--file", file], dir, "{\"n\": 1}")
        assert.match(fanned.stdout, /^\{"taskId":"[^"]+"\}\n$/)
        // result: the task's result once it ends; --json: its whole view on one line
        const [result, view] = yield* Effect.all([
          cli(["result", published.taskId, "--file", file], dir),
          cli(["result", published.taskId, "--json", "--wait", "20s", "--file", file], dir)
        ], { concurrency: 2 })
        assert.deepStrictEqual(ok(result, "result"), { secret: SECRET })
        assert.deepStrictEqual(ok(view, "result --json"), {
          taskId: published.taskId,
          status: "succeeded",
          result: { secret: SECRET }
        })
        // A bare number under a second is milliseconds, said on stderr (a new user's finding: `--timeout 5` was
        // 5 ms without a word); the task has ended, so the wait does not matter here
        const bare = yield* cli(["result", published.taskId, "--wait", "5", "--file", file], dir)
        assert.deepStrictEqual(ok(bare, "result --wait 5"), { secret: SECRET })
        assert.strictEqual(
          bare.stderr,
          `warning: --wait: 5 is 5 milliseconds (a bare number is milliseconds): write "5s" for seconds, or "5ms" ` +
            "to say milliseconds\n"
        )

        const done = () => operations().filter((entry) => entry.logLevel === "INFO")
        yield* eventually("every call and publish logged", () => done().length === 11, "10 seconds")
        assert.deepStrictEqual(
          done().map((entry) => entry.annotations.operation).sort(),
          [...Array(9).fill("call"), "publish", "publish"]
        )
        assert.includeMembers(
          done().map((entry) => entry.message),
          [`admin API: published to "jobs": task ${published.taskId}`]
        )
        const pool = done().find((entry) => entry.annotations.child === "pool")!
        assert.match(pool.message, /^admin API: called "pool": answered in \d+ ms$/)
        assert.notInclude(JSON.stringify(operations()), SECRET)
      }),
    180_000
  )

  it.scopedLive(
    "refused: error: on stderr and exit 1 for the agent's error, a timeout, a supervisor, no such child, a full " +
      "topic, a misspelt topic, a bad payload or timeout, no payload, a task not ended or dead-lettered; up warns of " +
      "each, never the payload; topics lists the tree's",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-call-refused")
        const file = writeTree(dir)
        const { logged, operations } = yield* startUp(file)
        const f = ["--file", file]
        const results = yield* Effect.all({
          task: cli(["call", "refuses", JSON.stringify({ secret: SECRET }), ...f], dir),
          timeout: cli(["call", "sleeper", "{\"ms\": 60000}", "--timeout", "300 millis", ...f], dir),
          supervisor: cli(["call", "workers", "1", ...f], dir),
          missing: cli(["call", "nope", "1", ...f], dir),
          notJson: cli(["call", "echo", "hello", ...f], dir),
          badTimeout: cli(["call", "echo", "1", "--timeout", "5 secs", ...f], dir),
          badStdin: cli(["call", "echo", ...f], dir, "{oops"),
          empty: cli(["call", "echo", "-", ...f], dir),
          terminal: cliOnTerminal(["call", "echo", ...f], dir),
          first: cli(["publish", "later", "1", ...f], dir),
          doomed: cli(["publish", "doomed", "1", "--json", ...f], dir),
          noTask: cli(["result", "no-such-task", ...f], dir),
          badWait: cli(["result", "no-such-task", "--wait", "soon", ...f], dir),
          misspelt: cli(["publish", "jbos", "1", ...f], dir),
          topics: cli(["topics", ...f], dir),
          topicsJson: cli(["topics", "--json", ...f], dir)
        }, { concurrency: 3 })
        const full = yield* cli(["publish", "later", JSON.stringify({ secret: SECRET }), ...f], dir)
        const [pending, dead] = yield* Effect.all([
          cli(["result", ok(results.first, "first").taskId, "--wait", "0", ...f], dir),
          cli(["result", ok(results.doomed, "doomed").taskId, ...f], dir)
        ], { concurrency: 2 })

        const task = refused(results.task, "task")
        assert.include(task, `Could not call "refuses": agent "cli-refuses" answered with an error: RangeError: `)
        assert.include(task, SECRET, "the caller sees the agent's whole answer")
        assert.match(refused(results.timeout, "timeout"), /^Could not call "sleeper": .*300 ms/)
        assert.include(refused(results.supervisor, "supervisor"), "it is a supervisor; only an agent or a pool")
        assert.include(refused(results.missing, "missing"), `No child "nope" in the tree "cli-call"`)
        assert.strictEqual(
          refused(results.notJson, "not JSON"),
          `The payload argument is not JSON: Unexpected token 'h', "hello" is not valid JSON (a string goes in ` +
            `JSON's quotes, inside the shell's: '"hello"')`
        )
        assert.strictEqual(
          refused(results.badTimeout, "bad timeout"),
          `Not sent: --timeout must be milliseconds or a duration ("30 seconds", "30s"), not "5 secs"`
        )
        assert.match(refused(results.badStdin, "bad stdin"), /^The payload on stdin is not JSON: /)
        assert.match(refused(results.empty, "empty"), /^No payload: stdin was empty/)
        // On a terminal (stdout and stderr are the terminal too, through script)
        assert.strictEqual(results.terminal.code, 1, results.terminal.stdout)
        assert.include(
          results.terminal.stdout,
          `error: No payload: give it as JSON after the ID, or on stdin ("-" reads it from a terminal too)`
        )
        assert.strictEqual(ok(results.first, "first publish to later").taskId.length > 0, true)
        assert.match(refused(full, "full"), /^Could not publish to "later": .*nothing was published/)
        // result: a task not ended, dead-lettered, unknown; a bad wait
        assert.match(refused(pending, "pending"), /^Task \S+ has not ended: it is still in flight, or waits for /)
        assert.match(refused(dead, "dead"), /^Task \S+ of topic "doomed" failed 1 time\(s\) and was dead-lettered/)
        assert.match(refused(results.noTask, "no task"), /^No task "no-such-task"/)
        assert.strictEqual(
          refused(results.badWait, "bad wait"),
          `--wait must be milliseconds or a duration ("30 seconds", "30s"), not "soon"`
        )
        // a topic that is none: refused, the one meant named; topics lists them
        assert.match(
          refused(results.misspelt, "misspelt"),
          /^Could not publish to "jbos": the tree has no such topic \(did you mean "jobs"\?\)/
        )
        assert.strictEqual(results.topics.code, 0, results.topics.stderr)
        // --json: one document on one line, as every command prints it
        assert.match(results.topicsJson.stdout, /^\[[^\n]*\]\n$/)
        assert.isAbove(JSON.parse(results.topicsJson.stdout).length, 0)
        const rows = results.topics.stdout.trim().split("\n").map((line) => line.trim().split(/\s{2,}/))
        assert.deepStrictEqual(rows[0], ["TOPIC", "DECLARED", "PENDING", "SUBSCRIBERS"])
        assert.deepStrictEqual(rows.slice(1).map((row) => row[0]), ["doomed", "jobs", "later"])
        assert.deepStrictEqual(rows.find((row) => row[0] === "jobs"), ["jobs", "no", "0", "echo"])

        const warned = () => operations().filter((entry) => entry.logLevel === "WARN")
        yield* eventually("every refusal logged", () => warned().length === 6, "10 seconds")
        assert.deepStrictEqual(
          warned().map((entry) => entry.annotations.child ?? entry.annotations.topic).sort(),
          ["jbos", "later", "nope", "refuses", "sleeper", "workers"]
        )
        assert.notInclude(JSON.stringify(operations()), SECRET)
        // A task dead-lettered is said in up's log too: which, where it failed last; not its payload
        const doomedId = ok(results.doomed, "doomed").taskId
        const deadLettered = logged().filter((entry) => entry.message.includes("was dead-lettered"))
        assert.deepStrictEqual(deadLettered.map((entry) => [entry.logLevel, entry.message.split(", the last")[0]]), [
          ["WARN", `task ${doomedId} of topic "doomed" was dead-lettered after 1 attempt(s)`]
        ])
      }),
    180_000
  )

  it("a JSON argument is no option: -1, [..], {..} and - are values; an unknown option is still named", () => {
    for (
      const args of [
        ["call", "echo", "-1"],
        ["call", "echo", "-0.5e3", "--timeout", "5 seconds"],
        ["call", "echo", "[-1, 2]"],
        ["call", "echo", "{\"a\": \"--json\"}"],
        ["call", "echo", "-", "--json"],
        ["call", "echo", "--", "-x"],
        ["publish", "jobs", "[1]", "--fanout"]
      ]
    ) assert.isUndefined(unknownName(args, grammar), args.join(" "))
    assert.strictEqual(
      unknownName(["call", "echo", "-x"], grammar),
      `"-x" is no option of call; its options are --file (-f), --url, --token, --state-file, --json, --timeout`
    )
    assert.include(unknownName(["publish", "jobs", "1", "--fanot"], grammar)!, "(did you mean --fanout?)")
    assert.include(unknownName(["call", "echo", "1", "--timeout"], grammar)!, "--timeout needs a value")
  })
})

/**
 * The `agent-supervisor` command, run as users run it: the built bin in a child process of its own, a real tree
 * of real agents, its admin API over real HTTP.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import type * as AdminApi from "../src/AdminApi.js"
import * as Address from "../src/internal/cli/address.js"
import * as Progress from "../src/internal/cli/progress.js"
import { describeEvent, statusTable, unseen } from "../src/internal/cli/remote.js"
import * as Sse from "../src/internal/cli/sse.js"
import { topicsTable } from "../src/internal/cli/work.js"
import {
  BIN,
  eventually,
  eventuallyEffect,
  fixture,
  isAlive,
  runCli,
  spawnApp,
  startUp as startUpApp,
  tempDir
} from "./support.js"

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the command to its end in `cwd`, with `env` added to this process's. */
const cli = (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: Record<string, string> } = {}
): Effect.Effect<Result> => runCli(args, options)

const echoAgent = (name: string) => ({
  name,
  command: process.execPath,
  args: [fixture("agents", "agent.mjs"), "echo"],
  gracefulTimeout: "2 seconds",
  heartbeatInterval: "200 millis"
})

/** An agent `echo` and a nested supervisor `workers` with an agent `worker`. */
const defaultChildren = [
  { type: "agent", id: "echo", config: echoAgent("echo") },
  { type: "supervisor", id: "workers", children: [{ type: "agent", id: "worker", config: echoAgent("worker") }] }
]

/** A tree file in `dir`: the default children unless `extra` gives others. */
const writeTree = (dir: string, extra: Record<string, unknown> = {}) => {
  const file = path.join(dir, "tree.json")
  fs.writeFileSync(
    file,
    JSON.stringify({ name: "cli-test", store: { type: "memory" }, children: defaultChildren, ...extra })
  )
  return file
}

/** `up FILE` in the background; resolves once its state file is there (the admin API listens). */
const startUp = (file: string, args: ReadonlyArray<string> = []) => startUpApp(file, args, "30 seconds")

describe("agent-supervisor validate", () => {
  it.scopedLive("a good file: a summary and exit 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cli-validate")
      const result = yield* cli(["validate", writeTree(dir)])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.match(result.stdout, /OK\. Tree "cli-test": 2 agents, 1 nested supervisor; store: memory\./)
      const pooled = writeTree(yield* tempDir("cli-validate"), {
        children: [...defaultChildren, { type: "pool", id: "pool", size: 2, topics: ["t"], config: echoAgent("m") }],
        topics: { t: { retry: { maxAttempts: 2 } } }
      })
      const withPool = yield* cli(["validate", pooled])
      assert.strictEqual(withPool.code, 0, withPool.stderr)
      assert.match(
        withPool.stdout,
        /OK\. Tree "cli-test": 2 agents, 1 pool, 1 nested supervisor, 1 topic; store: memory\./
      )
      const forked = yield* cli(["validate", writeTree(yield* tempDir("cli-validate"), { forkServer: true })])
      assert.strictEqual(forked.code, 0, forked.stderr)
      assert.match(
        forked.stdout,
        /OK\. Tree "cli-test": 2 agents, 1 nested supervisor; store: memory; spawned through a fork server\./
      )
    }))

  it.scopedLive("a bad file: every problem with its path, no stack, exit 1", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cli-validate")
      const file = path.join(dir, "bad.yaml")
      fs.writeFileSync(
        file,
        [
          "name: bad",
          "admin: { port: 70000 }",
          "children:",
          "  - type: agent",
          "    id: a",
          "    config: { name: a, command: node, requestTimeot: 5 seconds }",
          "  - type: agent",
          "    id: b",
          "    config: { name: b, command: node, requestTimeout: 5 secs }"
        ].join("\n")
      )
      const result = yield* cli(["validate", file])
      assert.strictEqual(result.code, 1)
      assert.include(result.stderr, "admin.port")
      assert.include(result.stderr, "children[0].config.requestTimeot")
      assert.include(result.stderr, `did you mean "requestTimeout"`)
      assert.include(result.stderr, "children[1].config.requestTimeout")
      assert.notMatch(result.stderr, /\(?(file:\/\/|\/)\S+:\d+:\d+\)?/, "no stack trace")
    }))

  it.scopedLive("a file that does not exist, or an unknown option: the usage's error, exit 1", () =>
    Effect.gen(function*() {
      const missing = yield* cli(["validate", "/nonexistent/tree.yaml"])
      assert.strictEqual(missing.code, 1)
      assert.match(missing.stdout + missing.stderr, /nonexistent\/tree\.yaml/)
      const unknown = yield* cli(["status", "--colour"])
      assert.strictEqual(unknown.code, 1)
    }))
})

describe.sequential("agent-supervisor up and the commands that talk to it", () => {
  it.scopedLive(
    "status, restart, stop, start, reload, scale, logs, history, events; SIGTERM stops the tree and exits 0",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-up")
        const pool = { type: "pool", id: "pool", size: 2, config: echoAgent("member") }
        const file = writeTree(dir, { children: [...defaultChildren, pool] })
        const { app, stateFile } = yield* startUp(file)
        assert.strictEqual(fs.statSync(stateFile).mode & 0o777, 0o600)
        const state = JSON.parse(fs.readFileSync(stateFile, "utf8")) as { url: string; token: string; pid: number }
        assert.strictEqual(state.pid, app.pid)

        // status: a table of both agents and the nested supervisor, found through the state file in the cwd
        const status = yield* cli(["status"], { cwd: dir })
        assert.strictEqual(status.code, 0, status.stderr)
        assert.match(status.stdout, /^cli-test\nID\s+KIND\s+STATE\s+PID\s+UPTIME\s+RESTARTS\s+CPU%\s+RSS\s+LAST EXIT/)
        assert.match(status.stdout, /\necho\s+agent\s+RUNNING\s+\d+/)
        assert.match(status.stdout, /\nworkers\s+supervisor\s+RUNNING/)
        assert.match(status.stdout, /\nworkers\/worker\s+agent\s+RUNNING\s+\d+/)
        assert.match(status.stdout, /\npool\s+pool\s+RUNNING\s+-/)
        assert.match(status.stdout, /\npool\/0\s+agent\s+RUNNING\s+\d+/)
        assert.match(status.stdout, /\npool\/1\s+agent\s+RUNNING\s+\d+/)

        // a second up of the same file: refused before anything starts, said as every failure is
        const second = yield* cli(["up", file, "--log-format", "json"], { cwd: dir })
        assert.strictEqual(second.code, 1, second.stderr)
        assert.isTrue(second.stderr.startsWith(`error: The state file ${stateFile} is another running admin API's`))
        assert.notMatch(second.stderr, /^Error/m)

        // logs of a supervisor or a pool: an agent below it to ask instead
        const ofSupervisor = yield* cli(["logs", "workers", "--file", file])
        assert.strictEqual(ofSupervisor.code, 1)
        assert.strictEqual(
          ofSupervisor.stderr,
          `error: "workers" is a supervisor: only an agent has stderr; give one of its agents, e.g. ` +
            `"workers/worker"\n`
        )
        const ofPool = yield* cli(["logs", "pool", "--file", file])
        assert.strictEqual(
          ofPool.stderr,
          `error: "pool" is a pool: only an agent has stderr; give one of its members, e.g. "pool/0"\n`
        )
        // logs of an agent that wrote nothing: no line on stdout (JSON lines: none), and it says so on stderr
        const silent = yield* cli(["logs", "echo", "--json", "--file", file])
        assert.strictEqual(silent.code, 0, silent.stderr)
        assert.strictEqual(silent.stdout, "")
        assert.strictEqual(silent.stderr, `"echo" has no stderr lines kept: it has written none\n`)
        const statusJson = (yield* cli(["status", "--json", "--file", file])).stdout
        // --json: one document on one line, as call, result and publish print theirs
        assert.match(statusJson, /^\{[^\n]*\}\n$/)
        const before = JSON.parse(statusJson)
        const pidOf = (tree: any, id: string) =>
          [...tree.children, ...tree.children.flatMap((c: any) => c.children)].find((c: any) => c.id === id).pid
        // What is not about the command line is read from the API directly (each command takes a second to start).
        const tree = Effect.promise(() => fetch(`${state.url}/api/tree`).then((r) => r.json()))

        // events: follows from now; the restart below shows up in it
        const events: Array<string> = []
        const sawRestart = yield* Deferred.make<void>()
        const follower = yield* spawnApp(BIN, ["events", "--json", "--file", file], {
          onLine: (line) => {
            events.push(line)
            if (line.includes("\"ChildStarted\"") && line.includes("worker")) {
              Deferred.unsafeDone(sawRestart, Effect.void)
            }
          }
        })
        // And as lines: where each event happened as status and restart name children (below the root)
        const lines: Array<string> = []
        const lineFollower = yield* spawnApp(BIN, ["events", "--file", file], { onLine: (line) => lines.push(line) })
        // The follower says on stderr once the server has subscribed: a restart before that would never reach it
        // (CI once hung here for the whole test's timeout when the follower started slower than the restart).
        for (const each of [follower, lineFollower]) {
          yield* eventually(
            "the events follower is live",
            () => each.stderr().includes(`Following the tree's events at ${state.url} (Ctrl-C to stop)\n`),
            "30 seconds"
          )
        }

        // restart of a nested child: a new pid
        const restarted = yield* cli(["restart", "workers/worker", "--file", file])
        assert.strictEqual(restarted.code, 0, restarted.stderr)
        assert.match(restarted.stdout, /^workers\/worker: RUNNING \(pid \d+\)/)
        const after = yield* tree
        assert.notStrictEqual(pidOf(after, "workers/worker"), pidOf(before, "workers/worker"))
        assert.strictEqual(pidOf(after, "echo"), pidOf(before, "echo"))
        yield* Deferred.await(sawRestart).pipe(
          Effect.timeoutFail({
            duration: "30 seconds",
            onTimeout: () => new Error(`no ChildStarted of the worker in ${JSON.stringify(events)}`)
          })
        )
        assert.isTrue(events.every((line) => typeof JSON.parse(line)._tag === "string"))
        yield* eventually(
          `the worker's start as a line (${JSON.stringify(lines)})`,
          () => lines.some((line) => / workers\/worker ChildStarted$/.test(line)),
          "30 seconds"
        )

        // history: the manual restart is no restart decision; a crash is
        const crashPid = pidOf(after, "echo")
        process.kill(crashPid, "SIGKILL")
        yield* eventuallyEffect(
          "echo restarted after its crash",
          Effect.map(tree, (now) => pidOf(now, "echo") !== null && pidOf(now, "echo") !== crashPid),
          "20 seconds"
        )
        const history = yield* cli(["history", "echo", "--file", file])
        assert.strictEqual(history.code, 0, history.stderr)
        assert.match(history.stdout, /TIME\s+CHILD\s+ATTEMPT/)
        assert.match(history.stdout, /\n\S+\s+echo\s+1\s/)
        // REASON says how the process ended, as status's LAST EXIT does
        assert.match(history.stdout, /\n\S+\s+echo\s+1\s.*\sexit \(SIGKILL\) *\n/)

        // stop and start
        const stopped = yield* cli(["stop", "echo", "--file", file])
        assert.match(stopped.stdout, /^echo: STOPPED/)
        const started = yield* cli(["start", "echo", "--file", file])
        assert.match(started.stdout, /^echo: RUNNING \(pid \d+\)/)

        // reload: an agent and a pool, each a new process in place of the old one
        const beforeReload = yield* tree
        const poolOf = (view: any) => view.children.find((c: any) => c.id === "pool")
        const members = (pool: any): Array<number> => pool.children.map((m: any) => m.pid)
        const reloaded = yield* cli(["reload", "echo", "--file", file])
        assert.strictEqual(reloaded.code, 0, reloaded.stderr)
        const echoPid = Number(/^echo: RUNNING \(pid (\d+)\)\n$/.exec(reloaded.stdout)?.[1])
        assert.strictEqual(echoPid, pidOf(yield* tree, "echo"), reloaded.stdout)
        assert.notStrictEqual(echoPid, pidOf(beforeReload, "echo"))
        yield* eventually("the reloaded agent's old process is gone", () => !isAlive(pidOf(beforeReload, "echo")))
        const poolReload = yield* cli(["reload", "pool", "--json", "--file", file])
        assert.strictEqual(poolReload.code, 0, poolReload.stderr)
        assert.match(poolReload.stdout, /^\{[^\n]*\}\n$/)
        const poolAfter = JSON.parse(poolReload.stdout)
        assert.deepStrictEqual([poolAfter.id, poolAfter.pool], ["pool", {
          size: 2,
          maxSize: 1000,
          routing: "least-in-flight"
        }])
        assert.deepStrictEqual(members(poolAfter), members(poolOf(yield* tree)))
        for (const old of members(poolOf(beforeReload))) assert.notInclude(members(poolAfter), old)

        // scale: up, then down; an agent is not a pool
        const up3 = yield* cli(["scale", "pool", "3", "--file", file])
        assert.strictEqual(up3.code, 0, up3.stderr)
        assert.match(up3.stdout, /^pool: RUNNING, pool of 3 \(pids \d+, \d+, \d+\)\n$/)
        const down1 = yield* cli(["scale", "pool", "1", "--json", "--file", file])
        assert.deepStrictEqual(JSON.parse(down1.stdout).children.map((m: any) => m.id), ["pool/0"])
        const notAPool = yield* cli(["scale", "echo", "2", "--file", file])
        assert.strictEqual(notAPool.code, 1)
        assert.include(notAPool.stderr, `cannot scale child "echo": not a pool`)
        // A size the API refuses is said so before anything is sent, not as an unexpected answer
        const negative = yield* cli(["scale", "pool", "-1", "--file", file])
        assert.strictEqual(negative.code, 1)
        assert.include(negative.stderr, `N must be a whole number of 0 or more, in digits (got "-1")`)

        // a state-changing call with a wrong token is refused; reads need none
        const refused = yield* cli(["restart", "echo", "--url", state.url, "--token", "x".repeat(32)])
        assert.strictEqual(refused.code, 1)
        assert.include(refused.stderr, "refused the token")
        const unknown = yield* cli(["restart", "nope", "--file", file])
        assert.strictEqual(unknown.code, 1)
        assert.include(
          unknown.stderr,
          `error: No child "nope" in the tree "cli-test": the root has no child "nope"; its children: `
        )
        assert.include(
          unknown.stderr,
          " (a path is ids joined by \"/\", as agent-supervisor status and GET /api/tree list them)"
        )

        // SIGTERM: the tree stops, agents gone, exit 0, state file removed
        const agentPid = pidOf(yield* tree, "workers/worker")
        app.child.kill("SIGTERM")
        const exit = yield* app.exited
        assert.deepStrictEqual(exit, { code: 0, signal: null }, app.stderr())
        assert.isFalse(isAlive(agentPid))
        assert.isFalse(fs.existsSync(stateFile))
        const gone = yield* cli(["status", "--file", file])
        assert.strictEqual(gone.code, 1)
        assert.include(gone.stderr, "No running")
      }),
    120_000
  )

  it.scopedLive(
    "logs prints an agent's last stderr lines and follows new ones over a restart",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-logs")
        const chatty = { ...echoAgent("chatty"), args: [fixture("cli", "chatty.mjs")] }
        const file = writeTree(dir, {
          children: [{ type: "agent", id: "chatty", config: chatty }],
          logs: { dir: "logs" }
        })
        yield* startUp(file)
        const state = JSON.parse(fs.readFileSync(path.join(dir, ".tree.json.admin.json"), "utf8"))
        const pidOf = Effect.promise(() =>
          fetch(`${state.url}/api/tree`).then((r) => r.json()).then((tree: any) => tree.children[0].pid)
        )
        const first = yield* pidOf
        yield* eventuallyEffect(
          "the start line kept",
          Effect.promise(() =>
            fetch(`${state.url}/api/children/chatty/stderr`).then((r) => r.json()).then((lines: any) =>
              lines.length > 0
            )
          )
        )
        const last = yield* cli(["logs", "chatty", "--lines", "1", "--file", file])
        assert.match(last.stdout, new RegExp(`^\\S+ \\[pid ${first}\\] chatty ${first} started\\n$`))

        const lines: Array<string> = []
        const restarted = yield* Deferred.make<void>()
        // `-f` follows, as `tail -f` does (`--file` has no short name for the followers)
        yield* spawnApp(BIN, ["logs", "chatty", "-f", "--file", file], {
          onLine: (line) => {
            lines.push(line)
            if (/chatty \d+ started/.test(line) && !line.includes(`chatty ${first} `)) {
              Deferred.unsafeDone(restarted, Effect.void)
            }
          }
        })
        // The follower prints the kept line first: then it listens, and the restart's lines reach it.
        yield* eventually("the follower printed the kept line", () => lines.length > 0, "20 seconds")
        assert.strictEqual((yield* cli(["restart", "chatty", "--file", file])).code, 0)
        yield* Deferred.await(restarted)
        const second = yield* pidOf
        assert.deepStrictEqual(lines.map((l) => l.replace(/^\S+ /, "")), [
          `[pid ${first}] chatty ${first} started`,
          `[pid ${first}] chatty ${first} stopping`,
          `[pid ${second}] chatty ${second} started`
        ])
        // The file's logs section: the agent's stderr and up's own log in rotated files under logs/
        const agentLog = path.join(dir, "logs", "chatty.log")
        yield* eventually(
          "the agent's log file",
          () => fs.existsSync(agentLog) && fs.readFileSync(agentLog, "utf8").includes(`chatty ${second} started`)
        )
        // each line as `logs` prints it
        assert.include(fs.readFileSync(agentLog, "utf8"), `[pid ${second}] chatty ${second} started\n`)
        const own = fs.readFileSync(path.join(dir, "logs", "agent-supervisor.log"), "utf8")
        assert.include(own, `"tree \\"cli-test\\" is running"`)
      }),
    120_000
  )

  it.scopedLive(
    "a file's metrics.otlp section: up exports the supervisor's metrics to the collector",
    () =>
      Effect.gen(function*() {
        // A collector stand-in: OTLP/HTTP JSON on /v1/metrics
        const bodies: Array<string> = []
        const server = http.createServer((req, res) => {
          let body = ""
          req.on("data", (chunk) => (body += chunk))
          req.on("end", () => {
            if (req.url === "/v1/metrics") bodies.push(body)
            res.writeHead(200, { "content-type": "application/json" }).end("{}")
          })
        })
        yield* Effect.acquireRelease(
          Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
          () => Effect.sync(() => server.close())
        )
        const port = (server.address() as { port: number }).port
        const dir = yield* tempDir("cli-otlp")
        const file = writeTree(dir, {
          metrics: { otlp: { url: `http://127.0.0.1:${port}`, serviceName: "cli-otlp", exportInterval: "200 millis" } }
        })
        const { app } = yield* startUp(file)
        yield* eventually(
          "the supervisor's metrics at the collector",
          () =>
            bodies.some((body) => body.includes("agent_supervisor_time_to_ready_seconds") && body.includes("cli-otlp")),
          "30 seconds"
        )
        app.child.kill("SIGTERM")
        assert.deepStrictEqual(yield* app.exited, { code: 0, signal: null }, app.stderr())
      }),
    120_000
  )

  it.scopedLive("an escalation of the root exits 1 with its message; SIGINT exits 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cli-escalate")
      const file = path.join(dir, "tree.json")
      fs.writeFileSync(
        file,
        JSON.stringify({
          name: "doomed",
          intensity: { maxRestarts: 0, window: "1 minute" },
          children: [{
            type: "agent",
            id: "crasher",
            config: { ...echoAgent("crasher"), args: [fixture("agents", "agent.mjs"), "crash-unless", "/nonexistent"] }
          }]
        })
      )
      const app = yield* spawnApp(BIN, ["up", file, "--no-admin", "--log-format", "json"], { onLine: () => {} })
      const exit = yield* app.exited
      assert.strictEqual(exit.code, 1, app.stderr())
      assert.include(app.stderr(), `error: Supervisor "doomed" exceeded 0 restarts in 60000 ms`)
      assert.notMatch(app.stderr(), /\(?(file:\/\/|\/)\S+\.js:\d+:\d+\)?/, "no stack trace")

      const calm = writeTree(yield* tempDir("cli-sigint"))
      const up = yield* startUp(calm)
      up.app.child.kill("SIGINT")
      assert.deepStrictEqual(yield* up.app.exited, { code: 0, signal: null }, up.app.stderr())
    }), 120_000)
})

describe("CLI pieces", () => {
  it("logs -f: the follow's lines already shown, or older than those shown (-n), are skipped by number", () => {
    const line = (seq: number, text = `line ${seq}`, pid = 7) => ({ pid, line: text, timestamp: 1000, seq })
    const shownOf = (
      recent: ReadonlyArray<ReturnType<typeof line>>,
      stream: ReadonlyArray<ReturnType<typeof line>>
    ) => {
      const fresh = unseen(recent)
      return stream.filter(fresh).map((l) => l.seq)
    }
    // -n 2 with more than 2 lines come between the follow's start and the read: none again, none out of order
    assert.deepStrictEqual(shownOf([line(4), line(5)], [line(3), line(4), line(5), line(6), line(7)]), [6, 7])
    // two lines alike in one millisecond: the second is new (it was skipped when told apart by pid, time and text)
    assert.deepStrictEqual(shownOf([line(8, "same")], [line(8, "same"), line(9, "same")]), [9])
    // nothing shown before: every line
    assert.deepStrictEqual(shownOf([], [line(1), line(2)]), [1, 2])
    // a tail started over (a nested supervisor's restart) numbers on: its lines are shown
    assert.deepStrictEqual(shownOf([line(500)], [line(500), line(501, "new", 9), line(502, "new", 9)]), [501, 502])
  })

  it("Server-Sent Events are parsed as the spec says: fields, multi-line data, comments, CRLF", () => {
    let state = { event: "", data: [] as ReadonlyArray<string>, id: undefined as string | undefined }
    const out: Array<Sse.Event> = []
    for (const line of [": keep-alive", "event: Agent", "data: {\"a\":", "data: 1}", "id: 7", "", "data:x", ""]) {
      const [next, events] = Sse.step(state, line)
      state = next
      out.push(...events)
    }
    assert.deepStrictEqual(out, [{ event: "Agent", data: "{\"a\":\n1}", id: "7" }, {
      event: "message",
      data: "x",
      id: "7"
    }])
  })

  it("lines split on LF, CRLF and CR across chunks (a CR at a chunk's end waits for its LF); a line past the bound throws", () => {
    assert.deepStrictEqual(Sse.lines(["a\r", "\nb\rc", "\n\nd"], ""), { lines: ["a", "b", "c", ""], partial: "d" })
    assert.deepStrictEqual(Sse.lines(["x"], "w"), { lines: [], partial: "wx" })
    assert.throws(() => Sse.lines(["y".repeat(Sse.MAX_LINE + 1)], ""), /more than/)
  })

  it("the topics table: a topic's tasks not yet ended as PENDING, its subscribers by the paths the commands take", () => {
    const table = topicsTable([
      { name: "jobs", declared: true, subscribers: ["echo", "workers/pool"], queued: 3 },
      { name: "later", declared: false, subscribers: [], queued: 0 }
    ], false)
    assert.deepStrictEqual(table.trimEnd().split("\n").map((line) => line.trim().split(/\s{2,}/)), [
      ["TOPIC", "DECLARED", "PENDING", "SUBSCRIBERS"],
      ["jobs", "yes", "3", "echo, workers/pool"],
      ["later", "no", "0", "-"]
    ])
  })

  it("the status table pads columns, flattens nested children, shows what is missing as - and a pool as a pool", () => {
    const child = (id: string, children: Array<any> = [], pool: AdminApi.ChildView["pool"] = null) => ({
      id,
      name: id,
      kind: children.length > 0 ? "supervisor" as const : "worker" as const,
      state: "RUNNING",
      status: "running" as const,
      parked: false,
      pid: children.length > 0 ? null : 42,
      startedAt: 1_000,
      restarts: 2,
      inFlight: 0,
      lastExit: null,
      limits: null,
      health: children.length > 0 ? null : {
        latencyMillis: 1,
        cpuPercent: 12.345,
        memoryMb: 30.04,
        processes: 1,
        timestamp: 1
      },
      resources: null,
      pool,
      children
    })
    const pool = child("p", [child("p/0")], { size: 1, maxSize: 1000, routing: "least-in-flight" })
    const table = statusTable({ name: "t", now: 126_000, children: [child("a", [child("a/b")]), pool] }, false)
    assert.strictEqual(
      table,
      [
        "ID   KIND        STATE    PID  UPTIME  RESTARTS  CPU%  RSS       LAST EXIT",
        "a    supervisor  RUNNING  -    2m      2         -     -         -",
        "a/b  agent       RUNNING  42   2m      2         12.3  30.0 MiB  -",
        "p    pool        RUNNING  -    2m      2         -     -         -",
        "p/0  agent       RUNNING  42   2m      2         12.3  30.0 MiB  -"
      ].join("\n")
    )
  })

  it("an event is one line: time, where, what, then its fields", () => {
    const line = describeEvent(JSON.stringify({
      _tag: "Agent",
      supervisor: "root",
      child: "echo",
      event: { _tag: "StateChanged", agent: "echo", from: "RUNNING", to: "STOPPING", timestamp: 0 }
    }))
    assert.strictEqual(line, "1970-01-01T00:00:00.000Z root/echo StateChanged from=RUNNING to=STOPPING")
    // Where, as status and restart name it: below the root, whose own events keep its name
    const at = (supervisor: string, child?: string) =>
      describeEvent(JSON.stringify({ _tag: "ChildStarted", supervisor, child, timestamp: 0 }), "demo").split(" ")[1]
    assert.deepStrictEqual(
      [at("demo", "echo"), at("demo/workers", "classifier"), at("demo/workers/pool", "0"), at("demo"), at("other/x")],
      ["echo", "workers/classifier", "workers/pool/0", "demo", "other/x"]
    )
  })
})

describe("CLI pieces: installs in progress", () => {
  it("on a terminal: a spinner with the installer's last line and the time, cleared at the end", () => {
    let now = 0
    const drawn: Array<string> = []
    const logged: Array<string> = []
    const progress = Progress.make({
      terminal: { write: (text) => drawn.push(text), columns: () => 100 },
      log: (message) => logged.push(message)
    }, () => now)
    progress.onStart("summarizer", "python3 -m pip install")
    progress.onOutput("summarizer", Buffer.from("Collecting requests\n"))
    now = 1_200
    progress.onOutput("summarizer", Buffer.from("Collecting x\n\u001b[32mDownloading idna-3.7\u001b[0m\r\n"))
    now = 2_500
    progress.onEnd("summarizer", true)
    progress.stop()
    assert.strictEqual(drawn[0].slice(0, 4), "\r\u001b[K")
    assert.match(drawn[0].slice(4), /^. installing summarizer's dependencies \(python3 -m pip install\) 0\.0 s$/)
    assert.strictEqual(drawn.length, 3, "the first output came within the frame: not drawn")
    assert.match(drawn[1], /\) 1\.2 s: Downloading idna-3\.7$/)
    assert.strictEqual(drawn.at(-1), "\r\u001b[K")
    assert.deepStrictEqual(logged, ["installed summarizer's dependencies in 2.5 s"])
  })

  it("without a terminal: log lines at the start and the end, with the failure said", () => {
    const logged: Array<string> = []
    const progress = Progress.make({ terminal: undefined, log: (message) => logged.push(message) }, () => 0)
    progress.onStart("app", "npm install")
    progress.onEnd("app", false)
    progress.stop()
    assert.deepStrictEqual(logged, [
      "installing app's dependencies with npm install",
      "failed to install app's dependencies in 0.0 s"
    ])
  })

  it("the installer's last line: the last non-empty one, colour codes removed", () => {
    assert.strictEqual(Progress.lastLine("a\n\u001b[1mb\u001b[0m\r\n\n"), "b")
    assert.strictEqual(Progress.lastLine("\n\n"), undefined)
    assert.strictEqual(Progress.lastLine("\u001b]0;retitled\u0007done \u0007\u001b[2Jnow\n"), "done now")
  })
})

describe("CLI pieces: finding a running up", () => {
  const resolve = (where: Partial<Address.Where>) =>
    Address.resolve({ url: Option.none(), token: Option.none(), file: Option.none(), ...where }).pipe(
      Effect.provide(NodeContext.layer),
      Effect.exit
    )

  it.scopedLive("flags first; else the state file beside the tree file; a dead pid or a missing file is said", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cli-address")
      const file = path.join(dir, "tree.yaml")
      const stateFile = path.join(dir, ".tree.yaml.admin.json")
      const given = yield* resolve({ url: Option.some("http://h:1/"), token: Option.some("t") })
      assert.deepStrictEqual(given, Exit.succeed({ url: "http://h:1", token: Option.some("t") }))
      // A --url that is no http URL is said so, not "cannot reach"
      for (const [bad, why] of [["notaurl", "is not a URL"], ["ftp://h:1", "is not an http or https URL (ftp:)"]]) {
        const refused = yield* resolve({ url: Option.some(bad) })
        assert.isTrue(Exit.isFailure(refused))
        if (Exit.isSuccess(refused)) return
        assert.include(Cause.pretty(refused.cause), `--url "${bad}" ${why}: give the admin API's base URL`)
      }

      const missing = yield* resolve({ file: Option.some(file) })
      assert.isTrue(Exit.isFailure(missing) && String(missing.cause).includes("No running"))

      const write = (at: string, state: object, mode = 0o600) => {
        fs.writeFileSync(at, JSON.stringify(state), { mode })
        fs.chmodSync(at, mode)
      }
      write(stateFile, { url: "http://127.0.0.1:9", token: "secret", pid: process.pid })
      const found = yield* resolve({ file: Option.some(file) })
      assert.deepStrictEqual(found, Exit.succeed({ url: "http://127.0.0.1:9", token: Option.some("secret") }))
      // A URL given never gets the state file's token: the pair comes from one place
      const urlOver = yield* resolve({ file: Option.some(file), url: Option.some("http://other:2") })
      assert.deepStrictEqual(urlOver, Exit.succeed({ url: "http://other:2", token: Option.none() }))
      // --state-file, anywhere
      const elsewhere = path.join(dir, "run", "admin.json")
      fs.mkdirSync(path.dirname(elsewhere))
      write(elsewhere, { url: "http://127.0.0.1:10", token: "other", pid: process.pid })
      const chosen = yield* resolve({ stateFile: Option.some(elsewhere) })
      assert.deepStrictEqual(chosen, Exit.succeed({ url: "http://127.0.0.1:10", token: Option.some("other") }))
      // a --state-file alone that is not there: the command that writes it, not "agent-supervisor up " and nothing
      const absent = path.join(dir, "run", "none.json")
      const notThere = yield* resolve({ stateFile: Option.some(absent) })
      assert.isTrue(Exit.isFailure(notThere))
      assert.include(
        Exit.isFailure(notThere) ? String(notThere.cause) : "",
        `No running "agent-supervisor up" found: ${absent} does not exist or cannot be read. Start the tree with ` +
          `"agent-supervisor up TREE_FILE --state-file ${absent}", or give --url and --token.`
      )
      // A state file others may read is not trusted
      write(stateFile, { url: "http://127.0.0.1:9", token: "secret", pid: process.pid }, 0o644)
      const open = yield* resolve({ file: Option.some(file) })
      assert.isTrue(Exit.isFailure(open) && String(open.cause).includes("not trusted"), String(open))

      const dead = childProcess.spawnSync(process.execPath, ["-e", "0"]).pid
      write(stateFile, { url: "http://127.0.0.1:9", token: "secret", pid: dead })
      const stale = yield* resolve({ file: Option.some(file) })
      assert.isTrue(
        Exit.isFailure(stale) &&
          String(stale.cause).includes(
            `(pid ${dead}) is no longer running: start it again (up replaces the file), or delete the file`
          ),
        String(stale)
      )
    }))

  it.scopedLive("AGENT_SUPERVISOR_URL and _TOKEN stand for --url and --token (flags first); _STATE_FILE for --state-file", () =>
    Effect.gen(function*() {
      const names = [Address.ENV_URL, Address.ENV_TOKEN, Address.ENV_STATE_FILE]
      const saved = names.map((name) => [name, process.env[name]] as const)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const [name, value] of saved) {
            if (value === undefined) delete process.env[name]
            else process.env[name] = value
          }
        })
      )
      const setEnv = (values: Partial<Record<string, string>>) => {
        for (const name of names) {
          if (values[name] === undefined) delete process.env[name]
          else process.env[name] = values[name]
        }
      }
      const dir = yield* tempDir("cli-address-env")
      const file = path.join(dir, "tree.yaml")
      const stateFile = path.join(dir, ".tree.yaml.admin.json")
      fs.writeFileSync(stateFile, JSON.stringify({ url: "http://127.0.0.1:9", token: "file", pid: process.pid }), {
        mode: 0o600
      })

      setEnv({ AGENT_SUPERVISOR_URL: "http://env:1/", AGENT_SUPERVISOR_TOKEN: "env-token" })
      assert.deepStrictEqual(yield* resolve({}), Exit.succeed({ url: "http://env:1", token: Option.some("env-token") }))
      const flags = yield* resolve({ url: Option.some("http://flag:2"), token: Option.some("flag-token") })
      assert.deepStrictEqual(flags, Exit.succeed({ url: "http://flag:2", token: Option.some("flag-token") }))
      // The environment's URL wins over a state file, and never gets the state file's token
      setEnv({ AGENT_SUPERVISOR_URL: "http://env:1" })
      const urlOnly = yield* resolve({ file: Option.some(file) })
      assert.deepStrictEqual(urlOnly, Exit.succeed({ url: "http://env:1", token: Option.none() }))
      // An empty variable is no variable: the state file beside --file
      setEnv({ AGENT_SUPERVISOR_URL: "", AGENT_SUPERVISOR_TOKEN: "" })
      const empty = yield* resolve({ file: Option.some(file) })
      assert.deepStrictEqual(empty, Exit.succeed({ url: "http://127.0.0.1:9", token: Option.some("file") }))
      // AGENT_SUPERVISOR_STATE_FILE: a state file anywhere, found with no flag at all
      setEnv({ AGENT_SUPERVISOR_STATE_FILE: stateFile })
      const fromEnvFile = yield* resolve({})
      assert.deepStrictEqual(fromEnvFile, Exit.succeed({ url: "http://127.0.0.1:9", token: Option.some("file") }))
    }))
})

import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, assert, describe, it } from "vitest"
import { groupMembers } from "../support.js"

// `npm test` builds first: these tests run the compiled adapter exactly as an agent would
const adapterPath = fileURLToPath(new URL("../../dist/Adapter/node.js", import.meta.url))
const fixturesDir = fileURLToPath(new URL("../fixtures/node/", import.meta.url))

/** A fixture's absolute path. */
const fixture = (name: string): string => join(fixturesDir, name)

/**
 * How long a test waits for one line before failing instead of hanging: a bound, not a measure. 5 s was passed by
 * an adapter's start (Node, the adapter, the fixture) on a 2-core VM under a load average of 9 (fresh-clone CI).
 */
const LINE_TIMEOUT_MS = 20_000

/** The ready line: protocol 1 with the 1.1 and 1.2 features the adapter speaks. */
const READY_LINE = `{"type":"ready","protocol":1,"features":["stream","checkpoint","publish"]}`

/** A decoded stdout line. */
type Message = Record<string, any>

/** How a child ended. */
interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** A running adapter with line-oriented access to its pipes. */
interface Agent {
  readonly child: ChildProcessWithoutNullStreams
  /** Writes one message as a JSON line. */
  readonly send: (message: unknown) => void
  /** Writes raw text to stdin. */
  readonly write: (text: string) => void
  /** The next stdout line, decoded; rejects after a timeout or when stdout closes first. */
  readonly next: (timeoutMs?: number) => Promise<Message>
  /** The next `count` stdout lines. */
  readonly take: (count: number, timeoutMs?: number) => Promise<Array<Message>>
  /** Everything written to stdout so far, raw. */
  readonly stdout: () => string
  /** Everything written to stderr so far. */
  readonly stderr: () => string
  /** Resolves once stderr contains `text`. */
  readonly waitForStderr: (text: string, timeoutMs?: number) => Promise<void>
  /** Resolves when the process has exited and its pipes are closed. */
  readonly exited: (timeoutMs?: number) => Promise<Exit>
}

const running = new Set<ChildProcessWithoutNullStreams>()

afterEach(() => {
  for (const child of running) child.kill("SIGKILL")
  running.clear()
})

/** Rejects after `ms` unless `promise` settles first. */
const within = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error) => {
        clearTimeout(timer)
        reject(error)
      }
    )
  })

/** Resolves after `ms`. */
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Spawns the adapter; `args` follow the adapter path. `detached` gives it a process group of its own. */
const start = (args: ReadonlyArray<string>, cwd: string = process.cwd(), detached = false): Agent => {
  const child = spawn(process.execPath, [adapterPath, ...args], { cwd, detached, stdio: ["pipe", "pipe", "pipe"] })
  running.add(child)
  const lines: Array<string> = []
  const waiters: Array<{ readonly resolve: (line: string) => void; readonly reject: (error: Error) => void }> = []
  let rawOut = ""
  let rest = ""
  let rawErr = ""
  let closed = false
  // The decoder keeps a multi-byte character split across chunks whole
  child.stdout.setEncoding("utf8")
  child.stderr.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    rawOut += chunk
    const parts = (rest + chunk).split("\n")
    rest = parts.pop()!
    for (const line of parts) {
      const waiter = waiters.shift()
      if (waiter === undefined) lines.push(line)
      else waiter.resolve(line)
    }
  })
  child.stderr.on("data", (chunk: string) => {
    rawErr += chunk
  })
  const exit = new Promise<Exit>((resolve) => {
    child.on("close", (code, signal) => {
      closed = true
      running.delete(child)
      for (const waiter of waiters.splice(0)) {
        waiter.reject(new Error(`the adapter exited (code ${code}, signal ${signal}); stderr:\n${rawErr}`))
      }
      resolve({ code, signal })
    })
  })
  // A test may end the agent on purpose while a write is in flight
  child.stdin.on("error", () => {})
  const nextLine = (timeoutMs: number): Promise<string> => {
    const line = lines.shift()
    if (line !== undefined) return Promise.resolve(line)
    if (closed) return Promise.reject(new Error(`the adapter has exited; stderr:\n${rawErr}`))
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Leave no waiter behind that would swallow a later line
        waiters.splice(waiters.indexOf(waiter), 1)
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a stdout line; stderr so far:\n${rawErr}`))
      }, timeoutMs)
      const waiter = {
        resolve: (line: string) => {
          clearTimeout(timer)
          resolve(line)
        },
        reject: (error: Error) => {
          clearTimeout(timer)
          reject(error)
        }
      }
      waiters.push(waiter)
    })
  }
  const next = async (timeoutMs = LINE_TIMEOUT_MS): Promise<Message> => JSON.parse(await nextLine(timeoutMs))
  return {
    child,
    send: (message) => child.stdin.write(JSON.stringify(message) + "\n"),
    write: (text) => child.stdin.write(text),
    next,
    take: async (count, timeoutMs = LINE_TIMEOUT_MS) => {
      const messages: Array<Message> = []
      for (let i = 0; i < count; i++) messages.push(await next(timeoutMs))
      return messages
    },
    stdout: () => rawOut,
    stderr: () => rawErr,
    waitForStderr: async (text, timeoutMs = LINE_TIMEOUT_MS) => {
      const deadline = Date.now() + timeoutMs
      while (!rawErr.includes(text)) {
        if (Date.now() > deadline) throw new Error(`stderr never contained ${JSON.stringify(text)}:\n${rawErr}`)
        await sleep(10)
      }
    },
    exited: (timeoutMs = LINE_TIMEOUT_MS) => within(exit, timeoutMs, `the adapter to exit; stderr:\n${rawErr}`)
  }
}

/** Spawns the adapter and waits for its ready line. */
const startReady = async (args: ReadonlyArray<string>, cwd?: string, detached?: boolean): Promise<Agent> => {
  const agent = start(args, cwd, detached)
  assert.deepStrictEqual(await agent.next(), JSON.parse(READY_LINE))
  return agent
}

/** Runs the adapter to completion with stdin closed, for the load-time paths. */
const run = async (
  args: ReadonlyArray<string>
): Promise<Exit & { readonly stdout: string; readonly stderr: string }> => {
  const agent = start(args)
  agent.child.stdin.end()
  const exit = await agent.exited()
  return { ...exit, stdout: agent.stdout(), stderr: agent.stderr() }
}

/** Indexes responses by id, whatever order they came in. */
const byId = (messages: ReadonlyArray<Message>): Map<string, Message> =>
  new Map(messages.map((message) => [message.id as string, message]))

describe.sequential("Adapter/node", () => {
  describe.sequential("protocol", () => {
    it("sends ready first, then answers a task with the function's result", async () => {
      const agent = await startReady([fixture("echo.mjs")])
      agent.send({ id: "1", type: "task", payload: { hello: "world", list: [1, 2, 3], nested: { ok: true } } })
      assert.deepStrictEqual(await agent.next(), {
        id: "1",
        status: "ok",
        result: { hello: "world", list: [1, 2, 3], nested: { ok: true } }
      })
    })

    it("resolves the module against the working directory and picks a named export", async () => {
      const agent = await startReady(["echo.mjs:shout"], fixturesDir)
      agent.send({ id: "a", type: "task", payload: "quiet" })
      assert.deepStrictEqual(await agent.next(), { id: "a", status: "ok", result: "QUIET" })
    })

    it("runs tasks concurrently and answers in completion order", async () => {
      const agent = await startReady([fixture("slow.mjs")])
      agent.send({ id: "slowest", type: "task", payload: { ms: 600, value: 3 } })
      agent.send({ id: "middle", type: "task", payload: { ms: 300, value: 2 } })
      agent.send({ id: "fastest", type: "task", payload: { ms: 0, value: 1 } })
      const responses = await agent.take(3)
      // One after the other they would answer in the order sent: the order of completion is the proof, not a time
      // (a busy machine stretches any bound)
      assert.deepStrictEqual(responses.map((response) => response.id), ["fastest", "middle", "slowest"])
      assert.deepStrictEqual(responses.map((response) => response.result), [1, 2, 3])
    })

    it("pipelines 256 tasks in flight", async () => {
      const agent = await startReady([fixture("echo.mjs")])
      const count = 256
      let batch = ""
      for (let i = 0; i < count; i++) batch += JSON.stringify({ id: `t${i}`, type: "task", payload: { i } }) + "\n"
      agent.write(batch)
      const responses = byId(await agent.take(count))
      assert.strictEqual(responses.size, count)
      for (let i = 0; i < count; i++) {
        assert.deepStrictEqual(responses.get(`t${i}`), { id: `t${i}`, status: "ok", result: { i } })
      }
    })

    it("answers a ping at once while a slow task runs", async () => {
      const agent = await startReady([fixture("slow.mjs")])
      agent.send({ id: "slow", type: "task", payload: { ms: 3_000 } })
      const sentAt = Date.now()
      agent.send({ id: "ping-1", type: "ping" })
      const pong = await agent.next()
      assert.isBelow(Date.now() - sentAt, 1_000)
      assert.strictEqual(pong.id, "ping-1")
      assert.strictEqual(pong.status, "ok")
      const health = pong.result.health
      assert.deepStrictEqual(Object.keys(health).sort(), [
        "cpu_percent",
        "memory_mb",
        "total_requests",
        "uptime_seconds"
      ])
      assert.strictEqual(health.total_requests, 1)
      assert.isAbove(health.uptime_seconds, 0)
      assert.isAbove(health.memory_mb, 1)
      assert.isAtLeast(health.cpu_percent, 0)
    })

    it("sends nothing for a cancelled task and aborts its signal", async () => {
      const agent = await startReady([fixture("slow.mjs")])
      // Its abort listener throws too: that is the task's failure, silenced by the cancel, not a crash
      agent.send({ id: "doomed", type: "task", payload: { ms: 300, value: "too late", throwOnAbort: true } })
      // This one finishes anyway: its result must not be sent either
      agent.send({ id: "stubborn", type: "task", payload: { ms: 300, value: "too late", ignoreSignal: true } })
      agent.send({ id: "doomed", type: "cancel" })
      agent.send({ id: "stubborn", type: "cancel" })
      await agent.waitForStderr("aborted doomed")
      await agent.waitForStderr("aborted stubborn")
      agent.send({ id: "after", type: "task", payload: { ms: 0, value: "still works" } })
      assert.deepStrictEqual(await agent.next(), { id: "after", status: "ok", result: "still works" })
      // Past the cancelled tasks' deadline: the next line must be the ping's answer, not theirs
      await sleep(500)
      agent.send({ id: "ping-after", type: "ping" })
      const next = await agent.next()
      assert.strictEqual(next.id, "ping-after")
      assert.strictEqual(next.result.health.total_requests, 3)
      assert.notInclude(agent.stderr(), "exiting")
    })

    it("turns a thrown error into an error response with its type and stack", async () => {
      const agent = await startReady([fixture("throws.mjs")])
      agent.send({ id: "sync", type: "task", payload: "sync" })
      agent.send({ id: "async", type: "task", payload: "async" })
      agent.send({ id: "string", type: "task", payload: "string" })
      const responses = byId(await agent.take(3))
      const sync = responses.get("sync")!
      assert.strictEqual(sync.status, "error")
      assert.strictEqual(sync.error.type, "TypeError")
      assert.strictEqual(sync.error.message, "sync failure")
      assert.include(sync.error.stack, "throws.mjs")
      const rejected = responses.get("async")!
      assert.strictEqual(rejected.status, "error")
      // The subclass does not set `name`: its constructor's name is the more useful type
      assert.strictEqual(rejected.error.type, "CustomError")
      assert.strictEqual(rejected.error.message, "async failure")
      assert.include(rejected.error.stack, "throws.mjs")
      assert.deepStrictEqual(responses.get("string"), {
        id: "string",
        status: "error",
        error: { message: "a bare string", type: "string" }
      })
    })

    it("reports an uncaught exception or an unhandled rejection as the failing task's error", async () => {
      const agent = await startReady([fixture("throws.mjs")])
      agent.send({ id: "timer", type: "task", payload: "timer" })
      agent.send({ id: "floating", type: "task", payload: "floating" })
      const responses = byId(await agent.take(2))
      assert.strictEqual(responses.get("timer")!.status, "error")
      assert.strictEqual(responses.get("timer")!.error.type, "RangeError")
      assert.strictEqual(responses.get("timer")!.error.message, "timer failure")
      assert.strictEqual(responses.get("floating")!.status, "error")
      assert.strictEqual(responses.get("floating")!.error.message, "floating failure")
      agent.send({ id: "alive", type: "task", payload: "other" })
      assert.deepStrictEqual(await agent.next(), { id: "alive", status: "ok", result: "fine" })
    })

    it("answers a SerializationError for a result JSON cannot encode, and null for undefined", async () => {
      const agent = await startReady([fixture("not-serialisable.mjs")])
      const kinds = ["bigint", "circular", "function", "set", "nan", "undefined", "date"]
      for (const kind of kinds) agent.send({ id: kind, type: "task", payload: kind })
      const responses = byId(await agent.take(kinds.length))
      for (const kind of ["bigint", "circular", "function", "set", "nan"]) {
        const response = responses.get(kind)!
        assert.strictEqual(response.status, "error", kind)
        assert.strictEqual(response.error.type, "SerializationError", kind)
        assert.isString(response.error.message, kind)
      }
      // Refused where it is, as the supervisor refuses a payload (before, the caller got {} and null)
      assert.strictEqual(
        responses.get("set")!.error.message,
        "the result cannot be encoded as JSON: result.tags is a Set, which JSON sends as {} (convert it: [...set])"
      )
      assert.include(responses.get("nan")!.error.message, "result[1] is NaN, which JSON sends as null")
      assert.deepStrictEqual(responses.get("undefined"), { id: "undefined", status: "ok", result: null })
      assert.deepStrictEqual(responses.get("date"), {
        id: "date",
        status: "ok",
        result: { at: "1970-01-01T00:00:00.000Z" }
      })
    })

    it("keeps the user's output off stdout", async () => {
      const agent = await startReady([fixture("prints.mjs")])
      agent.send({ id: "p", type: "task", payload: "quiet" })
      assert.deepStrictEqual(await agent.next(), { id: "p", status: "ok", result: "quiet" })
      agent.child.stdin.end()
      assert.deepStrictEqual(await agent.exited(), { code: 0, signal: null })
      assert.strictEqual(agent.stdout(), `${READY_LINE}\n{"id":"p","status":"ok","result":"quiet"}\n`)
      const stderr = agent.stderr()
      const printed = ["at import", "via log", "via info", "via debug", "via warn", "via trace", "via stdout.write"]
      for (const via of printed) assert.include(stderr, `print ${via}`)
      assert.include(stderr, "printVia: 'dir'")
      assert.include(stderr, "'table'")
    })

    it("round-trips a 5 MiB payload", async () => {
      const agent = await startReady([fixture("echo.mjs")])
      // Multi-byte characters make chunk boundaries fall inside characters
      const unit = "ascii é€ 😀 "
      const payload = unit.repeat(Math.ceil((5 * 1024 * 1024) / Buffer.byteLength(unit)))
      assert.isAtLeast(Buffer.byteLength(payload), 5 * 1024 * 1024)
      agent.send({ id: "big", type: "task", payload: { text: payload } })
      agent.send({ id: "small", type: "task", payload: "after" })
      // Throughput on a busy machine varies widely: the bound only stops a hang
      const responses = byId(await agent.take(2, 50_000))
      const big = responses.get("big")!
      assert.strictEqual(big.status, "ok")
      assert.strictEqual(big.result.text.length, payload.length)
      assert.isTrue(big.result.text === payload)
      assert.deepStrictEqual(responses.get("small"), { id: "small", status: "ok", result: "after" })
    }, 60_000)

    it("ignores lines that are not protocol messages and keeps working", async () => {
      const agent = await startReady([fixture("echo.mjs")])
      agent.write("this is not json\n")
      agent.write("[1, 2, 3]\n")
      agent.write(`{"type":"task","payload":"no id"}\n`)
      agent.write(`{"id":"x","type":"bogus"}\n`)
      agent.write("\n")
      // One message split across two writes
      agent.write(`{"id":"ok","type":"ta`)
      await sleep(50)
      agent.write(`sk","payload":"works"}\n`)
      assert.deepStrictEqual(await agent.next(), { id: "ok", status: "ok", result: "works" })
      await agent.waitForStderr("bogus")
      assert.include(agent.stderr(), "this is not json")
      assert.include(agent.stderr(), "[1, 2, 3]")
      assert.include(agent.stderr(), "no id")
    })

    it("drains in-flight tasks on shutdown, refuses new ones, then exits 0", async () => {
      const agent = await startReady([fixture("slow.mjs")])
      agent.send({ id: "long", type: "task", payload: { ms: 400, value: "long" } })
      agent.send({ id: "short", type: "task", payload: { ms: 100, value: "short" } })
      agent.send({ type: "shutdown" })
      agent.send({ id: "late", type: "task", payload: { ms: 0, value: "late" } })
      const late = await agent.next()
      assert.strictEqual(late.id, "late")
      assert.strictEqual(late.status, "error")
      assert.strictEqual(late.error.type, "AgentShuttingDown")
      assert.deepStrictEqual(await agent.next(), { id: "short", status: "ok", result: "short" })
      assert.deepStrictEqual(await agent.next(), { id: "long", status: "ok", result: "long" })
      // stdin stays open: the shutdown message alone ends the agent
      assert.deepStrictEqual(await agent.exited(), { code: 0, signal: null })
    })

    it("does not wait for a cancelled task when it drains", async () => {
      const agent = await startReady([fixture("slow.mjs")])
      agent.send({ id: "stuck", type: "task", payload: { ms: 60_000, ignoreSignal: true, value: "never" } })
      agent.send({ id: "stuck", type: "cancel" })
      agent.send({ type: "shutdown" })
      assert.deepStrictEqual(await agent.exited(), { code: 0, signal: null })
    })

    it("drains a running task on shutdown then stdin EOF", async () => {
      const agent = await startReady([fixture("sleeper.mjs")])
      agent.send({ id: "pending", type: "task", payload: { ms: 300, value: "done" } })
      await agent.waitForStderr("started pending")
      agent.send({ type: "shutdown" })
      agent.child.stdin.end()
      assert.deepStrictEqual(await agent.next(), { id: "pending", status: "ok", result: "done" })
      assert.deepStrictEqual(await agent.exited(), { code: 0, signal: null })
    })

    it("drains when the shutdown is an unterminated last line before stdin EOF", async () => {
      const agent = await startReady([fixture("sleeper.mjs")])
      agent.send({ id: "pending", type: "task", payload: { ms: 300, value: "done" } })
      await agent.waitForStderr("started pending")
      agent.write(`{"type":"shutdown"}`)
      agent.child.stdin.end()
      assert.deepStrictEqual(await agent.next(), { id: "pending", status: "ok", result: "done" })
      assert.deepStrictEqual(await agent.exited(), { code: 0, signal: null })
    })

    it("exits 0 on stdin EOF with nothing in flight, after answering an unterminated last line", async () => {
      const idle = await startReady([fixture("echo.mjs")])
      idle.write(`{"id":"tail","type":"ping"}`)
      idle.child.stdin.end()
      assert.strictEqual((await idle.next()).id, "tail")
      assert.deepStrictEqual(await idle.exited(), { code: 0, signal: null })
    })

    // stdin EOF without shutdown: the supervisor is gone, nobody can receive a result. Each task would take 60 s;
    // the adapter promises 1 s, the bound leaves room for a loaded machine.
    for (const ignoreSignal of [false, true]) {
      it(
        `on stdin EOF without shutdown cancels the tasks in flight and exits 4 (a task that ${
          ignoreSignal ? "ignores" : "honours"
        } its signal)`,
        async () => {
          const agent = await startReady([fixture("sleeper.mjs")], undefined, true)
          const pid = agent.child.pid!
          agent.send({ id: "done", type: "task", payload: { ms: 0, value: "early" } })
          assert.deepStrictEqual(await agent.next(), { id: "done", status: "ok", result: "early" })
          agent.send({ id: "t1", type: "task", payload: { ignoreSignal } })
          agent.send({ id: "t2", type: "task", payload: { ignoreSignal } })
          await agent.waitForStderr("started t1")
          await agent.waitForStderr("started t2")
          const closedAt = Date.now()
          agent.child.stdin.end()
          assert.deepStrictEqual(await agent.exited(10_000), { code: 4, signal: null })
          assert.isBelow(Date.now() - closedAt, 3_000)
          assert.deepStrictEqual(groupMembers(pid), [])
          assert.include(agent.stderr(), "aborted t1")
          assert.include(agent.stderr(), "aborted t2")
          assert.include(agent.stderr(), "without shutdown")
          // What was answered before the EOF stays; the cancelled tasks send nothing
          assert.strictEqual(agent.stdout(), `${READY_LINE}\n{"id":"done","status":"ok","result":"early"}\n`)
        }
      )
    }

    it("exits 1 on an uncaught error outside any task", async () => {
      const agent = await startReady([fixture("crash-later.mjs")])
      assert.deepStrictEqual(await agent.exited(), { code: 1, signal: null })
      assert.include(agent.stderr(), "crash outside any task")
    })

    it("loads a CommonJS module", async () => {
      const agent = await startReady([fixture("cjs-echo.cjs")])
      agent.send({ id: "c", type: "task", payload: [1, "two"] })
      assert.deepStrictEqual(await agent.next(), { id: "c", status: "ok", result: { cjs: true, payload: [1, "two"] } })
    })
  })

  describe.sequential("--check", () => {
    it("reports ok when the function exists", async () => {
      for (const target of ["echo.mjs", "echo.mjs:shout", "throws.mjs", "cjs-echo.cjs"]) {
        const result = await run([fixture(target), "--check"])
        assert.strictEqual(result.stdout, `{"type":"check","ok":true}\n`, target)
        assert.strictEqual(result.code, 0, target)
      }
    })

    it("reports a missing function with the exported functions, exit code 3", async () => {
      for (const name of ["nope", "notAFunction"]) {
        const result = await run(["--check", `${fixture("echo.mjs")}:${name}`])
        assert.strictEqual(result.code, 3)
        assert.deepStrictEqual(JSON.parse(result.stdout), {
          type: "check",
          ok: false,
          error: "callback_not_found",
          function: name,
          functions: ["default", "shout"]
        })
      }
    })

    it("says a target that ends in its ':' names no export (exit code 3)", async () => {
      const checked = await run(["--check", `${fixture("echo.mjs")}:`])
      assert.strictEqual(checked.code, 3)
      assert.deepStrictEqual(JSON.parse(checked.stdout), {
        type: "check",
        ok: false,
        error: "callback_not_found",
        function: "",
        functions: ["default", "shout"]
      })
      const result = await run([`${fixture("echo.mjs")}:`])
      assert.strictEqual(result.code, 3)
      assert.include(result.stderr, `names no export after its ':' (leave the ':' out for the default export`)
      assert.include(result.stderr, "exported functions: default, shout.")
    })

    it("says plainly that a target is missing or a directory, with its absolute path (exit code 2)", async () => {
      const missing = relative(process.cwd(), fixture("no-such-module.mjs"))
      const directory = join(fixturesDir, "..", "python")
      for (
        const [target, message] of [
          [missing, `no such file: ${missing} (${fixture("no-such-module.mjs")})`],
          [directory, `${directory} is a directory; name the module file that holds the callback`]
        ]
      ) {
        const checked = await run([target, "--check"])
        assert.strictEqual(checked.code, 2)
        assert.deepStrictEqual(JSON.parse(checked.stdout), { type: "check", ok: false, error: "load_failed", message })
        const result = await run([target])
        assert.strictEqual(result.code, 2)
        assert.strictEqual(result.stderr, `[node-adapter] cannot load ${target}: ${message}\n`)
      }
    })

    it("reports a module that fails to load, exit code 2", async () => {
      const broken = await run([fixture("broken.mjs"), "--check"])
      assert.strictEqual(broken.code, 2)
      const report = JSON.parse(broken.stdout)
      assert.strictEqual(report.type, "check")
      assert.strictEqual(report.ok, false)
      assert.strictEqual(report.error, "load_failed")
      assert.strictEqual(report.message, "broken at import")
      assert.include(report.stack, "broken.mjs")
      // The user's frames alone: not the adapter's (dist/Adapter/...), not Node's module loader's
      assert.notMatch(report.stack, /Adapter\/|node:internal/)
      assert.strictEqual(broken.stdout.split("\n").length, 2)

      const missing = await run([fixture("no-such-module.mjs"), "--check"])
      assert.strictEqual(missing.code, 2)
      assert.strictEqual(JSON.parse(missing.stdout).error, "load_failed")
    })
  })

  describe.sequential("load failures without --check", () => {
    it("exits 2 with the error on stderr and nothing on stdout", async () => {
      const result = await run([fixture("broken.mjs")])
      assert.strictEqual(result.code, 2)
      assert.strictEqual(result.stdout, "")
      assert.include(result.stderr, "broken at import")
      assert.notMatch(result.stderr, /Adapter\/|node:internal/)
    })

    it("exits 3 listing the exported functions when the function is missing", async () => {
      const result = await run([`${fixture("echo.mjs")}:nope`])
      assert.strictEqual(result.code, 3)
      assert.strictEqual(result.stdout, "")
      assert.include(result.stderr, "default, shout")
    })

    it("exits 2 with the usage on a wrong command line", async () => {
      const result = await run([])
      assert.strictEqual(result.code, 2)
      assert.strictEqual(result.stdout, "")
      assert.include(result.stderr, "usage:")
    })
  })
})

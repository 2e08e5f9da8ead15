/**
 * Protocol 1.2's `publish`, agent side, through each adapter run raw as a child process (no supervisor): `ready`
 * announces the feature; a callback's two publishes (one with a nested payload) come out before its response,
 * exactly as `{"type":"publish","topic","payload"}`; a bad topic or payload is the callback's error (caught by the
 * fixture, or its task's error response), and the agent goes on. The Go fixture is built once with the helpers of
 * `test/fixtures/go.ts` (skipped without `go`, as go.test.ts is, failing under `REQUIRE_SERVICES=1`).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, afterEach, assert, beforeAll, describe, it } from "vitest"
import { goEnv, probeGo, run } from "../fixtures/go.js"
import { fixture, root } from "../support.js"

/** How long a test waits for one line before failing instead of hanging. */
const LINE_TIMEOUT_MS = 10_000

/** What every adapter announces now. */
const READY = { type: "ready", protocol: 1, features: ["stream", "checkpoint", "publish"] }

/** The nested payload of each fixture's second publish. */
const NESTED = { job: { steps: [1, { deep: [true, null, 2.5] }], text: "héllo ✓" }, tags: [] }

/** A decoded stdout line. */
type Message = Record<string, unknown>

/** An adapter run raw: lines in, lines out. */
interface Raw {
  readonly send: (message: unknown) => void
  /** The next stdout line, decoded; rejects after a timeout or once the process has exited. */
  readonly next: () => Promise<Message>
  /** Resolves with the exit code. */
  readonly exited: () => Promise<number | null>
}

const running = new Set<ChildProcessWithoutNullStreams>()

afterEach(() => {
  for (const child of running) child.kill("SIGKILL")
  running.clear()
})

/** Spawns an agent and reads its stdout line by line. */
const startRaw = (command: string, args: ReadonlyArray<string>): Raw => {
  const child = spawn(command, args, {
    cwd: root,
    stdio: "pipe",
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" }
  })
  running.add(child)
  const lines: Array<string> = []
  let rest = ""
  let stderr = ""
  let code: number | null | undefined = undefined
  let wake: () => void = () => {}
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    const parts = (rest + chunk).split("\n")
    rest = parts.pop()!
    lines.push(...parts)
    wake()
  })
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
  child.stdin.on("error", () => {})
  const closed = new Promise<number | null>((resolve) =>
    child.on("close", (exitCode) => {
      code = exitCode
      running.delete(child)
      wake()
      resolve(exitCode)
    })
  )
  const next = (): Promise<Message> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no stdout line in ${LINE_TIMEOUT_MS} ms; stderr:\n${stderr}`)),
        LINE_TIMEOUT_MS
      )
      const look = () => {
        const line = lines.shift()
        if (line !== undefined) {
          clearTimeout(timer)
          resolve(JSON.parse(line))
        } else if (code !== undefined) {
          clearTimeout(timer)
          reject(new Error(`the agent exited (${code}) before a line; stderr:\n${stderr}`))
        } else {
          wake = look
        }
      }
      look()
    })
  return {
    send: (message) => child.stdin.write(JSON.stringify(message) + "\n"),
    next,
    exited: () => closed
  }
}

/** One adapter's fixture: how to run it, and what it answers where the adapters differ. */
interface Case {
  readonly command: () => readonly [string, ReadonlyArray<string>]
  /** The errors the `bad` op catches, as the fixture reports them. */
  readonly caught: ReadonlyArray<string>
  /** The error type of the `fail` op's response. */
  readonly failType: string
}

const go = probeGo()
let goScratch = ""

const cases: ReadonlyArray<readonly [string, Case]> = [
  ["Python", {
    command: () => ["python3", [
      path.join(root, "adapters/python/supervisor_adapter.py"),
      fixture("python", "publish_agent.py")
    ]],
    caught: ["ValueError", "ValueError", "ValueError", "TypeError", "TypeError", "TypeError"],
    failType: "TypeError"
  }],
  ["Node", {
    command: () => [process.execPath, [path.join(root, "dist/Adapter/node.js"), fixture("node", "publish.mjs")]],
    caught: Array.from({ length: 6 }, () => "TypeError"),
    failType: "TypeError"
  }],
  ["Go", {
    command: () => [path.join(goScratch, "publish-agent"), []],
    caught: ["ErrEmptyTopic", "SerializationError", "SerializationError"],
    failType: "SerializationError"
  }]
]

describe.sequential("publish (protocol 1.2) through each adapter, raw", () => {
  beforeAll(async () => {
    if (!("goroot" in go)) return
    goScratch = fs.mkdtempSync(path.join(os.tmpdir(), "go-publish-"))
    // A file, not a package path: the fixture lives outside the adapter's module, whose imports it uses.
    const main = path.join(root, "test", "fixtures", "go", "publish-agent", "main.go")
    const build = await run("go", ["build", "-o", path.join(goScratch, "publish-agent"), main], goEnv(goScratch))
    assert.strictEqual(build.code, 0, `go build publish-agent:\n${build.output}`)
  }, 240_000)

  afterAll(() => {
    if (goScratch !== "") fs.rmSync(goScratch, { recursive: true, force: true })
  })

  for (const [name, { caught, command, failType }] of cases) {
    it(`${name}: publishes before the response, bad ones fail the callback only`, async () => {
      if (name === "Go" && !("goroot" in go)) {
        if (process.env.REQUIRE_SERVICES === "1") assert.fail(`Go is required (REQUIRE_SERVICES=1): ${go.unavailable}`)
        console.warn(`skipping the Go adapter's publish test: ${go.unavailable}`)
        return
      }
      const [file, args] = command()
      const agent = startRaw(file, args)
      assert.deepStrictEqual(await agent.next(), READY)

      agent.send({ id: "p", type: "task", payload: { op: "publish" } })
      assert.deepStrictEqual([await agent.next(), await agent.next(), await agent.next()], [
        { type: "publish", topic: "jobs", payload: { n: 1 } },
        { type: "publish", topic: "reports.daily", payload: NESTED },
        { id: "p", status: "ok", result: { published: 2 } }
      ])

      agent.send({ id: "b", type: "task", payload: { op: "bad" } })
      assert.deepStrictEqual(await agent.next(), { type: "publish", topic: "jobs", payload: "still publishing" })
      assert.deepStrictEqual(await agent.next(), { id: "b", status: "ok", result: { caught } })

      agent.send({ id: "f", type: "task", payload: { op: "fail" } })
      const failed = await agent.next()
      assert.deepInclude(failed, { id: "f", status: "error" })
      assert.strictEqual((failed.error as { readonly type: string }).type, failType)

      // Alive and well: it answers, and drains on shutdown.
      agent.send({ id: "e", type: "task", payload: { op: "echo" } })
      assert.deepStrictEqual(await agent.next(), { id: "e", status: "ok", result: { op: "echo" } })
      agent.send({ type: "shutdown" })
      assert.strictEqual(await agent.exited(), 0)
    }, 30_000)
  }

  it("Node: a publish function kept from a context works after its task has answered", async () => {
    const agent = startRaw(process.execPath, [path.join(root, "dist/Adapter/node.js"), fixture("node", "publish.mjs")])
    assert.deepStrictEqual(await agent.next(), READY)
    agent.send({ id: "l", type: "task", payload: { op: "later" } })
    assert.deepStrictEqual(await agent.next(), { id: "l", status: "ok", result: "answered" })
    assert.deepStrictEqual(await agent.next(), { type: "publish", topic: "later", payload: { after: "the response" } })
  })
})

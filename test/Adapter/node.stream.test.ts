/**
 * The Node adapter's protocol 1.1 features, at the protocol level: `features` in `ready`, streamed results
 * (`"stream":true` and chunk lines), checkpoints with and without an id, `restore` before the first task, unknown
 * message types, and the backpressure that keeps a fast generator from piling its chunks up in the adapter.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { afterEach, assert, describe, it } from "vitest"

// `npm test` builds first: these tests run the compiled adapter exactly as an agent would
const adapterPath = fileURLToPath(new URL("../../dist/Adapter/node.js", import.meta.url))
const streamFixture = fileURLToPath(new URL("../fixtures/node/stream.mjs", import.meta.url))

/** How long a test waits for one line before failing instead of hanging. */
const LINE_TIMEOUT_MS = 5_000

/** The ready line: protocol 1 with the 1.1 and 1.2 features. */
const READY = { type: "ready", protocol: 1, features: ["stream", "checkpoint", "publish"] }

/** A decoded stdout line. */
type Message = Record<string, any>

/** A running adapter with line-oriented access to its pipes. */
interface Agent {
  readonly child: ChildProcessWithoutNullStreams
  /** Writes messages, one JSON line each, in a single write. */
  readonly send: (...messages: ReadonlyArray<unknown>) => void
  /** The next stdout line, decoded; rejects after a timeout or when the adapter has exited first. */
  readonly next: (timeoutMs?: number) => Promise<Message>
  /** The next `count` stdout lines. */
  readonly take: (count: number, timeoutMs?: number) => Promise<Array<Message>>
  /** The lines up to and including the first one that `done` accepts. */
  readonly until: (done: (message: Message) => boolean, timeoutMs?: number) => Promise<Array<Message>>
  /** Everything written to stderr so far. */
  readonly stderr: () => string
  /** Resolves with the first match once stderr matches `pattern`. */
  readonly waitForStderr: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** Resolves with the exit code once the process has exited. */
  readonly exited: (timeoutMs?: number) => Promise<number | null>
}

const running = new Set<ChildProcessWithoutNullStreams>()

afterEach(() => {
  for (const child of running) child.kill("SIGKILL")
  running.clear()
})

/** Resolves after `ms`. */
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Spawns the adapter on an export of the stream fixture and waits for its ready line. */
const start = async (exportName: string): Promise<Agent> => {
  const child = spawn(process.execPath, [adapterPath, `${streamFixture}:${exportName}`], { stdio: "pipe" })
  running.add(child)
  const lines: Array<string> = []
  let wake: (() => void) | undefined
  let rest = ""
  let err = ""
  let exitCode: number | null | undefined = undefined
  child.stdout.setEncoding("utf8")
  child.stderr.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    const parts = (rest + chunk).split("\n")
    rest = parts.pop()!
    for (const line of parts) lines.push(line)
    wake?.()
  })
  child.stderr.on("data", (chunk: string) => {
    err += chunk
  })
  child.stdin.on("error", () => {})
  child.on("close", (code) => {
    exitCode = code
    running.delete(child)
    wake?.()
  })
  /** Waits until `ready` holds, polled whenever something arrives (and every 10 ms for stderr). */
  const waitFor = async <A>(ready: () => A | undefined, timeoutMs: number, what: string): Promise<A> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const value = ready()
      if (value !== undefined) return value
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr:\n${err}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 10)
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      wake = undefined
    }
  }
  let read = 0
  const next = async (timeoutMs = LINE_TIMEOUT_MS): Promise<Message> => {
    const line = await waitFor(
      () => {
        if (read < lines.length) return lines[read++]
        if (exitCode !== undefined) throw new Error(`the adapter exited (code ${exitCode}); stderr:\n${err}`)
        return undefined
      },
      timeoutMs,
      "a stdout line"
    )
    return JSON.parse(line)
  }
  const agent: Agent = {
    child,
    send: (...messages) => child.stdin.write(messages.map((message) => JSON.stringify(message) + "\n").join("")),
    next,
    take: async (count, timeoutMs) => {
      const messages: Array<Message> = []
      for (let i = 0; i < count; i++) messages.push(await next(timeoutMs))
      return messages
    },
    until: async (done, timeoutMs) => {
      const messages: Array<Message> = []
      for (;;) {
        const message = await next(timeoutMs)
        messages.push(message)
        if (done(message)) return messages
      }
    },
    stderr: () => err,
    waitForStderr: (pattern, timeoutMs = LINE_TIMEOUT_MS) =>
      waitFor(() => err.match(pattern) ?? undefined, timeoutMs, `stderr to match ${pattern}`),
    exited: (timeoutMs = LINE_TIMEOUT_MS) =>
      waitFor(() => exitCode === undefined ? undefined : { exitCode }, timeoutMs, "the exit").then((e) => e.exitCode)
  }
  assert.deepStrictEqual(await agent.next(), READY)
  return agent
}

/** The chunk lines of request `id`. */
const chunk = (id: string, data: unknown): Message => ({ id, type: "chunk", data })

/** Whether a message is the final response of request `id`. */
const isFinal = (id: string) => (message: Message): boolean => message.id === id && "status" in message

/** The resident memory of a process in MiB, from /proc (Linux). */
const rssMiB = (pid: number): number => {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return Number(match![1]) / 1024
}

describe.sequential("Adapter/node protocol 1.1", () => {
  describe.sequential("streams", () => {
    it("announces its features in ready, then streams an async generator's values and its return value", async () => {
      const agent = await start("default")
      agent.send({ id: "7", type: "task", payload: { items: ["Hel", "lo", { n: 1 }], ms: 5 }, stream: true })
      assert.deepStrictEqual(await agent.take(4), [
        chunk("7", "Hel"),
        chunk("7", "lo"),
        chunk("7", { n: 1 }),
        { id: "7", status: "ok", result: { count: 3 } }
      ])
    })

    it("streams an async iterable returned from an async function, and a sync generator", async () => {
      const iterable = await start("iterable")
      iterable.send({ id: "i", type: "task", payload: { count: 3 }, stream: true })
      assert.deepStrictEqual(await iterable.take(4), [
        chunk("i", "piece 0"),
        chunk("i", "piece 1"),
        chunk("i", "piece 2"),
        { id: "i", status: "ok", result: "end" }
      ])
      const sync = await start("sync")
      sync.send({ id: "s", type: "task", payload: { count: 2 }, stream: true })
      assert.deepStrictEqual(await sync.take(3), [
        chunk("s", { i: 0 }),
        chunk("s", { i: 1 }),
        { id: "s", status: "ok", result: "sync done" }
      ])
    })

    it("answers a generator that returns nothing with null, and an array result without chunks", async () => {
      const silent = await start("silent")
      silent.send({ id: "q", type: "task", payload: null, stream: true })
      assert.deepStrictEqual(await silent.take(2), [chunk("q", "only"), { id: "q", status: "ok", result: null }])
      const array = await start("array")
      array.send({ id: "a", type: "task", payload: null, stream: true })
      assert.deepStrictEqual(await array.next(), { id: "a", status: "ok", result: ["not", "a", "stream"] })
    })

    it("collects the values into an array for a task sent without stream", async () => {
      const generator = await start("default")
      generator.send({ id: "v1", type: "task", payload: { items: ["a", "b", 3] } })
      assert.deepStrictEqual(await generator.next(), { id: "v1", status: "ok", result: ["a", "b", 3] })
      // Past the adapter's collect slice (1,024 values between two turns of the event loop)
      const many = Array.from({ length: 2_500 }, (_, i) => i)
      generator.send({ id: "v1-many", type: "task", payload: { items: many } })
      assert.deepStrictEqual(await generator.next(), { id: "v1-many", status: "ok", result: many })
      const iterable = await start("iterable")
      iterable.send({ id: "v1-i", type: "task", payload: { count: 2 } })
      assert.deepStrictEqual(await iterable.next(), { id: "v1-i", status: "ok", result: ["piece 0", "piece 1"] })
    })

    it("fails the stream after its chunks when the generator throws or yields what JSON cannot encode", async () => {
      const fails = await start("fails")
      fails.send({ id: "f", type: "task", payload: null, stream: true })
      const [one, two, failure] = await fails.take(3)
      assert.deepStrictEqual([one, two], [chunk("f", 1), chunk("f", 2)])
      assert.strictEqual(failure.status, "error")
      assert.strictEqual(failure.error.type, "RangeError")
      assert.strictEqual(failure.error.message, "failed after two chunks")
      const unencodable = await start("unencodable")
      unencodable.send({ id: "u", type: "task", payload: null, stream: true })
      const [fine, refused] = await unencodable.take(2)
      assert.deepStrictEqual(fine, chunk("u", "fine"))
      assert.strictEqual(refused.status, "error")
      assert.strictEqual(refused.error.type, "SerializationError")
      assert.include(refused.error.message, "a chunk cannot be encoded as JSON")
      // The generator was closed: its finally ran, and "never" was never sent
      await unencodable.waitForStderr(/finally u/)
      unencodable.send({ id: "p", type: "ping" })
      assert.strictEqual((await unencodable.next()).id, "p")
    })

    it("fails the stream with an uncaught error of its code, and closes the generator", async () => {
      const agent = await start("uncaught")
      agent.send({ id: "x", type: "task", payload: null, stream: true })
      const [one, failure] = await agent.take(2)
      assert.deepStrictEqual(one, chunk("x", 1))
      assert.strictEqual(failure.status, "error")
      assert.strictEqual(failure.error.type, "TypeError")
      assert.strictEqual(failure.error.message, "timer failure")
      await agent.waitForStderr(/finally x/)
      agent.send({ id: "p", type: "ping" })
      assert.strictEqual((await agent.next()).id, "p")
    })

    for (const ignoreSignal of [false, true]) {
      it(
        `on cancel stops the stream, runs the generator's finally and sends nothing more (a generator that ${
          ignoreSignal ? "ignores" : "honours"
        } its signal)`,
        async () => {
          const agent = await start("endless")
          agent.send({ id: "s", type: "task", payload: { ms: 20, ignoreSignal }, stream: true })
          assert.deepStrictEqual(await agent.take(2), [chunk("s", 0), chunk("s", 1)])
          agent.send({ id: "s", type: "cancel" })
          const [, yielded] = await agent.waitForStderr(/finally s after (\d+)/)
          // Chunks already on their way when the cancel was read may arrive; the ping's answer comes after them
          agent.send({ id: "p1", type: "ping" })
          const before = await agent.until((message) => message.id === "p1")
          for (const message of before.slice(0, -1)) assert.strictEqual(message.type, "chunk")
          assert.isAtMost(2 + before.length - 1, Number(yielded))
          // Well past the generator's pace: nothing more for "s", and never a final response
          await sleep(200)
          agent.send({ id: "p2", type: "ping" })
          assert.strictEqual((await agent.next()).id, "p2")
          // The adapter goes on: a new stream under the same id
          agent.send({ id: "s", type: "task", payload: { ms: 1 }, stream: true })
          assert.deepStrictEqual(await agent.next(), chunk("s", 0))
        }
      )
    }

    it("serves pings and other tasks while a stream runs", async () => {
      const agent = await start("mixed")
      agent.send({ id: "s", type: "task", payload: { op: "endless", ms: 20 }, stream: true })
      assert.deepStrictEqual(await agent.next(), chunk("s", 0))
      agent.send({ id: "p", type: "ping" }, { id: "e", type: "task", payload: { op: "echo", value: "beside" } })
      const between = await agent.until((message) => message.id === "e")
      const pong = between.find((message) => message.id === "p")!
      assert.strictEqual(pong.result.health.total_requests, 1)
      assert.deepStrictEqual(between.at(-1), { id: "e", status: "ok", result: "beside" })
      // The stream goes on after them, in order
      const numbers = [...between, ...(await agent.take(2))].filter((m) => m.id === "s").map((m) => m.data)
      assert.deepStrictEqual(numbers, numbers.map((_, i) => i + 1))
      assert.isAtLeast(numbers.length, 2)
    })

    it("finishes a stream in flight on shutdown, then exits 0", async () => {
      const agent = await start("default")
      agent.send(
        { id: "s", type: "task", payload: { items: [1, 2, 3], ms: 50 }, stream: true },
        { type: "shutdown" }
      )
      assert.deepStrictEqual(await agent.take(4), [
        chunk("s", 1),
        chunk("s", 2),
        chunk("s", 3),
        { id: "s", status: "ok", result: { count: 3 } }
      ])
      assert.strictEqual(await agent.exited(), 0)
    })

    it("closes a stream on stdin EOF without shutdown and exits 4", async () => {
      const agent = await start("endless")
      agent.send({ id: "s", type: "task", payload: { ms: 20, ignoreSignal: true }, stream: true })
      assert.deepStrictEqual(await agent.next(), chunk("s", 0))
      agent.child.stdin.end()
      assert.strictEqual(await agent.exited(), 4)
      assert.match(agent.stderr(), /finally s after \d+/)
    })

    it("holds a fast generator back while stdout is not read, then delivers its 100,000 chunks in order", async () => {
      const agent = await start("fast")
      const pid = agent.child.pid!
      const count = 100_000
      // The supervisor stops reading: the pipe fills, and the generator must be held back
      agent.child.stdout.pause()
      agent.send({ id: "big", type: "task", payload: { count, report: 1_000 }, stream: true })
      const produced = (): number =>
        Math.max(...[...agent.stderr().matchAll(/produced (\d+)/g)].map((m) => Number(m[1])))
      await agent.waitForStderr(/produced 1000\b/)
      // Until the count stands still (or it would have run to the end long since, unchecked)
      let last = -1
      const deadline = Date.now() + 10_000
      while (produced() !== last && Date.now() < deadline) {
        last = produced()
        await sleep(300)
      }
      // In flight: our read buffer, the pipe, stdout's buffer and the adapter's batch, about 256 KiB of 40-byte lines
      assert.isBelow(produced(), 25_000, "the generator was not held back")
      // A sanity bound: unchecked, these 100,000 chunks take the adapter from about 50 MiB to about 100
      assert.isBelow(rssMiB(pid), 150)
      agent.child.stdout.resume()
      const messages = await agent.take(count + 1, 30_000)
      for (let i = 0; i < count; i++) {
        if (messages[i].data !== i) assert.deepStrictEqual(messages[i], chunk("big", i), `chunk ${i}`)
      }
      assert.deepStrictEqual(messages[count], { id: "big", status: "ok", result: { count } })
    }, 60_000)
  })

  describe.sequential("checkpoints and restore", () => {
    it("sends a task's checkpoint with its id and the agent's without, in order with the chunks", async () => {
      const agent = await start("checkpoints")
      agent.send({ id: "c", type: "task", payload: { page: 3 }, stream: true })
      assert.deepStrictEqual(await agent.take(4), [
        { type: "checkpoint", id: "c", data: { page: 3 } },
        chunk("c", "after the task checkpoint"),
        { type: "checkpoint", data: { processed: 1200 } },
        // What JSON cannot encode is refused with a TypeError at the call
        { id: "c", status: "ok", result: { id: "c", restored: null, restoredRequests: null, thrown: "TypeError" } }
      ])
    })

    it("drops a task's checkpoint sent after its response, not the agent's", async () => {
      const agent = await start("mixed")
      agent.send({ id: "l", type: "task", payload: { op: "late-checkpoint" } })
      assert.deepStrictEqual(await agent.take(2), [
        { id: "l", status: "ok", result: "answered" },
        { type: "checkpoint", data: "agent's" }
      ])
    })

    it("gives the first task the restore sent right after ready", async () => {
      const agent = await start("mixed")
      // In one write with the task, as a supervisor sends them
      agent.send(
        { type: "restore", data: { processed: 1200 }, requests: { "old-7": { page: 3 } } },
        { id: "1", type: "task", payload: { op: "context" } }
      )
      assert.deepStrictEqual(await agent.next(), {
        id: "1",
        status: "ok",
        result: { restored: { processed: 1200 }, restoredRequests: { "old-7": { page: 3 } }, stream: false }
      })
      agent.send({ id: "2", type: "task", payload: { op: "checkpoints", page: 4 }, stream: true })
      const final = (await agent.until(isFinal("2"))).at(-1)!
      assert.deepStrictEqual(final.result.restored, { processed: 1200 })
      assert.deepStrictEqual(final.result.restoredRequests, { "old-7": { page: 3 } })
    })

    it("gives undefined for a restore without requests, nothing restored before any, and the stream flag", async () => {
      const agent = await start("mixed")
      agent.send({ id: "0", type: "task", payload: { op: "context" } })
      assert.deepStrictEqual(await agent.next(), {
        id: "0",
        status: "ok",
        result: { restored: null, restoredRequests: null, stream: false }
      })
      // `stream` in the context says whether the caller takes chunks
      agent.send({ type: "restore", data: [1, 2] }, { id: "1", type: "task", payload: { op: "context" }, stream: true })
      assert.deepStrictEqual(await agent.next(), {
        id: "1",
        status: "ok",
        result: { restored: [1, 2], restoredRequests: null, stream: true }
      })
    })
  })

  describe.sequential("unknown messages", () => {
    it("ignores message types it does not know, with one warning per type", async () => {
      const agent = await start("mixed")
      agent.send(
        { type: "future-feature", data: 1 },
        { id: "x", type: "future-feature", data: 2 },
        { id: "y", type: "bogus" },
        { id: "1", type: "task", payload: { op: "echo", value: "still here" } }
      )
      assert.deepStrictEqual(await agent.next(), { id: "1", status: "ok", result: "still here" })
      agent.send({ id: "p", type: "ping" })
      assert.strictEqual((await agent.next()).id, "p")
      assert.strictEqual(agent.stderr().match(/"future-feature"/g)?.length, 1)
      assert.include(agent.stderr(), `"bogus"`)
    })
  })
})

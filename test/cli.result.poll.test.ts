/**
 * `agent-supervisor result TASK --wait D` asks the admin API to wait a minute at a time (Node's fetch gives up on
 * an answer after 300 s): a longer wait is several requests. Here with a poll of 100 ms against a real tree and its
 * admin API over real HTTP, through a proxy that keeps each request's `wait`: a task that ends once a second
 * request has begun is seen to end by a later request than the first, and a task that does not end is given back pending once the whole wait is
 * over; no request asks for more than a poll.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import * as Adapters from "../src/Adapters.js"
import { awaitTask } from "../src/internal/cli/work.js"
import * as Supervisor from "../src/Supervisor.js"
import { post, serve } from "./fixtures/admin/harness.js"
import { eventually, fixture, tempDir } from "./support.js"

const POLL = 100

/**
 * A proxy in front of `target` that passes each request on as it came and keeps the `wait` of each `GET
 * /api/tasks/ID` (milliseconds); closed with the scope.
 */
const recording = (target: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly waits: Array<number>; readonly server: http.Server }>((resume) => {
      const waits: Array<number> = []
      const server = http.createServer((request, response) => {
        const url = new URL(request.url ?? "/", target)
        if (url.pathname.startsWith("/api/tasks/")) waits.push(Number(url.searchParams.get("wait")))
        const upstream = http.request(url, { method: request.method, headers: request.headers }, (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(response)
        })
        upstream.on("error", () => response.destroy())
        request.pipe(upstream)
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { readonly port: number }
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, waits, server }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/** `sleeper` takes the topic `slow`: it answers `value` after `ms` (60 s by default) or once the file `until` is. */
const children = [
  Supervisor.agent({
    id: "sleeper",
    topics: ["slow"],
    config: {
      name: "poll-sleeper",
      ...Adapters.nodeCallback(fixture("node", "sleeper.mjs")),
      startupTimeout: "20 seconds",
      restartBackoff: 0
    }
  })
]

describe("result: a wait longer than a poll is several requests", () => {
  it.scopedLive("a task that ends after the first poll is seen ending; one that does not is pending after the wait", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const proxy = yield* recording(served.url)
      const address = { url: proxy.url, token: Option.some(served.token) }
      const publish = (payload: unknown) =>
        Effect.map(
          post(served, "/api/topics/slow/publish", {
            body: JSON.stringify({ payload }),
            headers: { "content-type": "application/json" }
          }),
          (raw) => {
            assert.strictEqual(raw.status, 200, raw.text)
            return raw.json().taskId as string
          }
        )

      // The task ends once a second request has begun (the first came back pending), whatever the machine's speed
      const gate = path.join(yield* tempDir("poll-gate-"), "go")
      const later = yield* publish({ until: gate, value: "done" })
      const waiting = yield* Effect.fork(awaitTask(address, later, 60_000, POLL))
      yield* eventually("a second request", () => proxy.waits.length >= 2, "60 seconds")
      fs.writeFileSync(gate, "")
      const ended = yield* Fiber.join(waiting)
      assert.deepStrictEqual(ended, { taskId: later, status: "succeeded", result: "done" })
      const asked = proxy.waits.splice(0)
      assert.isAtLeast(asked.length, 2, `several requests: ${asked}`)
      for (const wait of asked) assert.isAtMost(wait, POLL, `each asks for a poll at most: ${asked}`)

      const stuck = yield* publish({ value: "never" })
      const start = yield* Clock.currentTimeMillis
      const pending = yield* awaitTask(address, stuck, 3.5 * POLL, POLL)
      const took = (yield* Clock.currentTimeMillis) - start
      assert.deepStrictEqual(pending, { taskId: stuck, status: "pending" })
      // As many requests as the time allows: three or four here, fewer where a request outlasts its wait (a busy
      // machine); the first part checked that a wait goes on past a pending answer
      assert.isAtLeast(proxy.waits.length, 1, `the wait of 350 ms in polls of 100: ${proxy.waits}`)
      for (const wait of proxy.waits) assert.isAtMost(wait, POLL, `each asks for a poll at most: ${proxy.waits}`)
      // One request waits a poll at most (100 ms): only the loop waits 350 ms (a timer may end a millisecond early)
      assert.isAtLeast(took, 3 * POLL, "pending only once the whole wait is over")
    }).pipe(Effect.provide(NodeContext.layer)))
})

/**
 * Sending work to a running tree over the admin API (from a new user's trial: nothing could): `POST
 * /api/children/ID/call` calls an agent, a nested agent or a pool as `Supervisor.call` does and answers `{ result }`;
 * `POST /api/topics/NAME/publish` publishes a task and answers `{ taskId }`. Their refusals, each a JSON error with
 * its status and never a stack: the agent's own error 502, a crash 502, a timeout 504 within its bound, a supervisor
 * 400, a stopped child 409, an unknown one 404, bad bodies 400, a full topic 503. Each is logged, never its payload.
 * A real tree of real Node callback agents and raw agents, over real HTTP.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Adapters from "../src/Adapters.js"
import * as AdminApi from "../src/AdminApi.js"
import { Routes } from "../src/internal/admin/api.js"
import { PUBLISH_WAIT_MILLIS } from "../src/internal/admin/work.js"
import * as Store from "../src/Store/Store.js"
import * as Supervisor from "../src/Supervisor.js"
import type * as Topic from "../src/Topic.js"
import {
  client,
  type Frame,
  http,
  post,
  type Raw,
  seg,
  serve as serveDefault,
  type Served,
  sse
} from "./fixtures/admin/harness.js"
import { agentConfig, eventually, fixture } from "./support.js"

const SECRET = "s3cret-payload-0b1c"

/** A Node callback agent of `test/fixtures/node/FILE`. */
const callback = (id: string, file: string, topics: ReadonlyArray<string> = []) =>
  Supervisor.agent({
    id,
    topics,
    config: {
      name: `work-${id.replace("/", "-")}`,
      ...Adapters.nodeCallback(fixture("node", file)),
      startupTimeout: "20 seconds",
      restartBackoff: 0
    }
  })

/**
 * `echo` (answers its payload; takes `jobs` and `news`), `refuses` (its error repeats the payload; takes `doomed`,
 * tried twice), `sleeper` (says
 * `started ID` on stderr, answers after `ms`, `aborted ID` on a cancel), `raw` (the raw test agent: `{ crash: N }`),
 * `workers/echo` (takes `nested`), and the pool `pool` of 2 raw agents (`{ whoami: true }`) that takes `news`.
 */
const children: ReadonlyArray<Supervisor.ChildSpec> = [
  callback("echo", "echo.mjs", ["jobs", "news"]),
  callback("refuses", "refuses.mjs", ["doomed"]),
  callback("sleeper", "sleeper.mjs"),
  Supervisor.agent({ id: "raw", config: agentConfig("echo", { name: "work-raw", restartBackoff: 0 }) }),
  Supervisor.supervisor({ id: "workers", children: [callback("echo", "echo.mjs", ["nested"])] }),
  Supervisor.pool({
    id: "pool",
    size: 2,
    topics: ["news"],
    config: agentConfig("echo", { name: "work-member", restartBackoff: 0 })
  })
]

const topics: Readonly<Record<string, Topic.TopicOptions>> = {
  later: { maxQueued: 1 },
  doomed: { retry: Schedule.recurs(1) },
  held: { maxQueued: 1, backpressure: true }
}

interface Logged {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** The tree and its admin API, every log line at Info and above kept in `logged`. */
const serve = Effect.gen(function*() {
  const logged: Array<Logged> = []
  const capture = Logger.make(({ annotations, logLevel, message }) => {
    logged.push({
      level: logLevel.label,
      message: [message].flat().map(String).join(" "),
      annotations: Object.fromEntries(annotations)
    })
  })
  const layer = AdminApi.layer().pipe(
    Layer.provideMerge(Supervisor.layer({ name: "root", children, topics })),
    Layer.provide(Layer.mergeAll(
      NodeContext.layer,
      Store.layerMemory,
      Logger.replace(Logger.defaultLogger, capture),
      Logger.minimumLogLevel(LogLevel.Info)
    ))
  )
  const context = yield* Layer.build(layer).pipe(Effect.orDie)
  const server = context.unsafeMap.get(AdminApi.AdminServer.key) as AdminApi.AdminServer["Type"]
  const root = context.unsafeMap.get(Supervisor.RootSupervisor.key) as Supervisor.Supervisor
  const served: Served = { root, server, url: server.url, token: Redacted.value(server.token) }
  /** The admin API's own lines, from the operations. */
  const operations = () => logged.filter((line) => line.message.startsWith("admin API: "))
  return { served, logged, operations }
})

const json = (body: unknown): RequestInit => ({
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" }
})

const callOf = (served: Served, id: string, body: unknown) => post(served, `/api/children/${seg(id)}/call`, json(body))
const publishOf = (served: Served, topic: string, body: unknown) =>
  post(served, `/api/topics/${seg(topic)}/publish`, json(body))

/** A JSON error body with this status and tag, never a stack; the body. */
const errorOf = (raw: Raw, status: number, tag: string): any => {
  assert.strictEqual(raw.status, status, raw.text)
  assert.strictEqual(raw.headers.get("content-type"), "application/json", raw.text)
  const body = raw.json()
  assert.strictEqual(body._tag, tag, raw.text)
  assert.notMatch(raw.text, /\n\s+at /, "no stack")
  return body
}

const pidOf = (supervisor: Supervisor.Supervisor, id: string) =>
  Effect.map(supervisor.whichChildren, (infos) => Option.getOrNull(infos.find((c) => c.id === id)!.pid))

const line = (text: string) => (frame: Frame) => frame.data !== undefined && JSON.parse(frame.data).line === text

describe.sequential("AdminApi: call and publish", () => {
  it.scopedLive(
    "POST call: { result } from an agent, a nested agent, a pool's member, the typed client; a payload over 64 KiB; " +
      "logged once done, never the payload",
    () =>
      Effect.gen(function*() {
        const { operations, served } = yield* serve
        const payload = { text: "héllo ✓", n: [1, 2.5, null, true], secret: SECRET }
        const answered = yield* callOf(served, "echo", { payload })
        assert.strictEqual(answered.status, 200, answered.text)
        assert.deepStrictEqual(answered.json(), { result: payload })
        // Any JSON: null, a string, an array, a negative number
        for (const value of [null, "text", [1, "two"], -1]) {
          assert.deepStrictEqual((yield* callOf(served, "workers/echo", { payload: value })).json(), { result: value })
        }
        // A pool: one of its members answers
        const pool = yield* Effect.orDie(served.root.childSupervisor("pool"))
        const members = [yield* pidOf(pool, "0"), yield* pidOf(pool, "1")]
        const pooled = yield* callOf(served, "pool", { payload: { whoami: true }, timeout: "10 seconds" })
        assert.strictEqual(pooled.status, 200, pooled.text)
        assert.include(members, pooled.json().result.pid)
        // A member by its path, with a timeout in milliseconds
        const member = yield* callOf(served, "pool/1", { payload: { whoami: true }, timeout: 10_000 })
        assert.deepStrictEqual(member.json(), { result: { pid: members[1] } })
        // Larger than the 64 KiB of the other calls' bodies
        const large = "x".repeat(200 * 1024)
        assert.deepStrictEqual((yield* callOf(served, "echo", { payload: large })).json(), { result: large })
        // The typed client
        const api = yield* client(served)
        assert.deepStrictEqual(yield* api.work.call({ path: { id: "echo" }, payload: { payload: { a: 1 } } }), {
          result: { a: 1 }
        })

        const done = operations()
        assert.strictEqual(done.length, 9, JSON.stringify(done))
        assert.isTrue(done.every((entry) => entry.level === "INFO"))
        assert.match(done[0].message, /^admin API: called "echo": answered in \d+ ms$/)
        assert.deepStrictEqual(done[0].annotations, { operation: "call", child: "echo" })
        assert.deepStrictEqual(done.map((entry) => entry.annotations.child), [
          "echo",
          "workers/echo",
          "workers/echo",
          "workers/echo",
          "workers/echo",
          "pool",
          "pool/1",
          "echo",
          "echo"
        ])
        assert.notInclude(JSON.stringify(done), SECRET)
      }),
    120_000
  )

  it.scopedLive(
    "POST call refused: the agent's error 502, a crash 502, a timeout 504 (the agent sent a cancel), a supervisor " +
      "400, a stopped child 409, an unknown one 404; each a warning without the payload",
    () =>
      Effect.gen(function*() {
        const { operations, served } = yield* serve
        // The agent's own error answer: its type and message in the answer, its type alone in the log
        const refused = errorOf(yield* callOf(served, "refuses", { payload: { secret: SECRET } }), 502, "CallFailed")
        assert.strictEqual(refused.errorType, "RangeError")
        assert.include(refused.message, `Could not call "refuses": agent "work-refuses" answered with an error:`)
        assert.include(refused.message, `RangeError: cannot take {"secret":"${SECRET}"}`)

        // A crash while it handled the call; the tree restarts it
        const rawPid = yield* pidOf(served.root, "raw")
        const crashed = errorOf(yield* callOf(served, "raw", { payload: { crash: 3 } }), 502, "CallFailed")
        assert.strictEqual(
          crashed.message,
          `Could not call "raw": agent "work-raw" (pid ${rawPid}) exited with code 3 while it handled the call ` +
            `(its last stderr lines: agent-supervisor logs raw)`
        )

        // A timeout: answered once it passes, and the agent is sent a cancel
        const stderr = yield* sse(`${served.url}${Routes.stderrFollow("sleeper")}`)
        yield* stderr.until((frame) => frame.comment === "connected")
        const started = Date.now()
        const late = errorOf(
          yield* callOf(served, "sleeper", { payload: { ms: 60_000 }, timeout: "300 millis" }),
          504,
          "CallTimedOut"
        )
        const took = Date.now() - started
        assert.isAtLeast(took, 290)
        assert.isBelow(took, 20_000, "bounded by the call's timeout")
        assert.strictEqual(late.timeoutMillis, 300)
        assert.include(late.message, `Could not call "sleeper": `)
        const begun = yield* stderr.until((frame) =>
          frame.data !== undefined && /^started /.test(JSON.parse(frame.data).line)
        )
        const id = JSON.parse(begun.data!).line.slice("started ".length)
        yield* stderr.until(line(`aborted ${id}`))

        // What takes no call, what is not there, what does not run
        const supervisor = errorOf(yield* callOf(served, "workers", { payload: 1 }), 400, "BadRequest")
        assert.strictEqual(
          supervisor.message,
          `Could not call "workers": it is a supervisor; only an agent or a pool takes a call; call one below it, ` +
            `e.g. "workers/echo"`
        )
        assert.include(errorOf(yield* callOf(served, "nope", { payload: 1 }), 404, "ChildNotFound").message, `"nope"`)
        assert.strictEqual((yield* post(served, "/api/children/echo/stop")).status, 200)
        const stopped = errorOf(yield* callOf(served, "echo", { payload: { secret: SECRET } }), 409, "OperationFailed")
        assert.strictEqual(
          stopped.message,
          `Could not call "echo": it is stopped; start it first (POST /api/children/echo/start, or agent-supervisor ` +
            "start echo)"
        )
        assert.strictEqual((yield* post(served, "/api/children/echo/start")).status, 200)
        assert.strictEqual((yield* callOf(served, "echo", { payload: 2 })).status, 200)
        // A stopped pool: the same
        assert.strictEqual((yield* post(served, "/api/children/pool/stop")).status, 200)
        const stoppedPool = errorOf(yield* callOf(served, "pool", { payload: 1 }), 409, "OperationFailed")
        assert.include(stoppedPool.message, `Could not call "pool": it is stopped; start it first`)

        const calls = operations().filter((entry) => entry.annotations.operation === "call")
        assert.deepStrictEqual(calls.map((entry) => [entry.level, entry.annotations.child]), [
          ["WARN", "refuses"],
          ["WARN", "raw"],
          ["WARN", "sleeper"],
          ["WARN", "workers"],
          ["WARN", "nope"],
          ["WARN", "echo"],
          ["INFO", "echo"],
          ["WARN", "pool"]
        ])
        assert.strictEqual(
          calls[0].message,
          `admin API: Could not call "refuses": agent "work-refuses" answered with an error (RangeError)`
        )
        assert.strictEqual(calls[1].message, `admin API: ${crashed.message}`)
        assert.strictEqual(calls[2].message, `admin API: ${late.message}`)
        assert.notInclude(JSON.stringify(operations()), SECRET)
      }),
    120_000
  )

  it.scopedLive(
    "POST call: a caller that goes away gives the call up, and the agent is sent a cancel",
    () =>
      Effect.gen(function*() {
        const { operations, served } = yield* serve
        const stderr = yield* sse(`${served.url}${Routes.stderrFollow("sleeper")}`)
        yield* stderr.until((frame) => frame.comment === "connected")
        const controller = new AbortController()
        const pending = fetch(`${served.url}/api/children/sleeper/call`, {
          method: "POST",
          signal: controller.signal,
          ...json({ payload: { ms: 60_000 } }),
          headers: { "content-type": "application/json", authorization: `Bearer ${served.token}` }
        }).catch((error: Error) => error.name)
        const begun = yield* stderr.until((frame) =>
          frame.data !== undefined && /^started /.test(JSON.parse(frame.data).line)
        )
        controller.abort()
        assert.strictEqual(yield* Effect.promise(() => pending), "AbortError")
        const id = JSON.parse(begun.data!).line.slice("started ".length)
        yield* stderr.until(line(`aborted ${id}`))
        const given = operations().find((entry) => entry.annotations.child === "sleeper")
        assert.strictEqual(
          given?.message,
          `admin API: call to "sleeper" given up: its client went away, or the admin API is closing (the agent ` +
            "was sent a cancel)"
        )
      }),
    120_000
  )

  // A new user's finding: a call whose agent was restarted by hand meanwhile was a 409 that neither the README nor
  // its message explained.
  it.scopedLive(
    "POST call: an agent restarted while it handles the call answers 409, saying so and to call again",
    () =>
      Effect.gen(function*() {
        const { served } = yield* serve
        const stderr = yield* sse(`${served.url}${Routes.stderrFollow("sleeper")}`)
        yield* stderr.until((frame) => frame.comment === "connected")
        const call = yield* Effect.fork(callOf(served, "sleeper", { payload: { ms: 60_000 }, timeout: "90 seconds" }))
        yield* stderr.until((frame) => frame.data !== undefined && /^started /.test(JSON.parse(frame.data).line))
        assert.strictEqual((yield* post(served, "/api/children/sleeper/restart")).status, 200)
        const refused = errorOf(yield* Fiber.join(call), 409, "OperationFailed")
        assert.strictEqual(
          refused.message,
          `Could not call "sleeper": Agent "work-sleeper" was stopped before it could answer (a stop or restart came ` +
            "first); call again"
        )
        // and it runs again: the next call is answered
        assert.strictEqual((yield* callOf(served, "sleeper", { payload: { ms: 1 } })).status, 200)
      }),
    120_000
  )

  it.scopedLive(
    "POST call and publish: bodies that are not one 400, no token 401, text 415, GET 405; nothing reaches an agent; " +
      "each refusal logged without the body",
    () =>
      Effect.gen(function*() {
        const { logged, operations, served } = yield* serve
        const bad = (raw: Raw) => errorOf(raw, 400, "BadRequest").message as string
        assert.include(bad(yield* callOf(served, "echo", {})), "payload: is missing")
        assert.include(bad(yield* callOf(served, "echo", { payload: 1, timeout: "5 secs" })), "timeout")
        assert.include(bad(yield* callOf(served, "echo", { payload: 1, timeout: -1 })), "timeout")
        assert.include(bad(yield* callOf(served, "echo", { payload: 1, timeout: 0 })), "timeout")
        assert.include(bad(yield* callOf(served, "echo", { payload: 1, timeot: "1 second" })), "timeot")
        assert.include(bad(yield* callOf(served, "echo", [1])), `call takes a JSON body { "payload": ...`)
        assert.include(bad(yield* post(served, "/api/children/echo/call")), `call takes a JSON body`)
        assert.include(bad(yield* publishOf(served, "jobs", { payload: 1, fanout: "yes" })), "fanout")
        const both = bad(yield* publishOf(served, "jobs", { data: 1 }))
        assert.include(both, "payload: is missing")
        assert.include(both, "data: is unexpected")
        const unauthorized = yield* http(served, "/api/children/echo/call", { method: "POST", ...json({ payload: 1 }) })
        errorOf(unauthorized, 401, "Unauthorized")
        const text = yield* post(served, "/api/topics/jobs/publish", {
          body: "1",
          headers: { "content-type": "text/plain" }
        })
        errorOf(text, 415, "UnsupportedMediaType")
        for (const path of ["/api/children/echo/call", "/api/topics/jobs/publish"]) {
          const get = yield* http(served, path)
          assert.strictEqual(get.status, 405, get.text)
          assert.strictEqual(get.headers.get("allow"), "POST")
        }
        const huge = yield* callOf(served, "echo", { payload: "x".repeat(17 * 1024 * 1024) })
        assert.include(bad(huge), "send large data to an agent by reference")
        // JSON that does not parse: the answer quotes it (the parser's message), the log does not
        const cut = yield* post(served, "/api/children/echo/call", {
          body: `{"payload": "${SECRET}"`,
          headers: { "content-type": "application/json" }
        })
        assert.include(bad(cut), "The request body is not valid JSON")
        // a wrong token, and a request for another host (a DNS-rebound page): refused, logged (a GET too, then)
        const guess = "guessed-token-5f2a"
        const wrong = yield* http(served, "/api/children/echo/call", {
          method: "POST",
          ...json({ payload: 1 }),
          headers: { "content-type": "application/json", authorization: `Bearer ${guess}` }
        })
        errorOf(wrong, 401, "Unauthorized")
        const rebound = yield* Effect.async<number>((resume) => {
          Http.get(`${served.url}/api/tree`, { headers: { host: "evil.example" } }, (response) => {
            response.resume()
            resume(Effect.succeed(response.statusCode!))
          }).on("error", (error) => resume(Effect.die(error)))
        })
        assert.strictEqual(rebound, 403)
        // a key the body should not have: named in the answer, counted in the log (a body's keys are the client's)
        assert.include(bad(yield* callOf(served, "echo", { payload: 1, [`Bearer ${guess}`]: 1 })), "is unexpected")
        // the read of a task's outcome takes the token too, a GET though it is
        errorOf(
          yield* http(served, "/api/tasks/t-1", { headers: { authorization: `Bearer ${guess}` } }),
          401,
          "Unauthorized"
        )
        // Each refusal in the log, what was asked and why (a GET is refused unlogged: it changes nothing); never a
        // body's content
        const call = "admin API: refused POST /api/children/echo/call"
        const publish = "admin API: refused POST /api/topics/jobs/publish"
        assert.deepStrictEqual(operations().map((line) => line.message), [
          `${call} (400): it does not decode (payload)`,
          ...Array.from({ length: 3 }, () => `${call} (400): it does not decode (timeout)`),
          `${call} (400): it does not decode (1 unknown key)`,
          `${call} (400): it does not decode (its body)`,
          `${call} (400): it does not decode (its body)`,
          `${publish} (400): it does not decode (fanout)`,
          `${publish} (400): it does not decode (payload, 1 unknown key)`,
          `${call} (401): this call needs the admin token: send "Authorization: Bearer <token>"`,
          `${publish} (415): its body is text/plain, not JSON`,
          `${call} (400): its body is over 16777216 bytes`,
          `${call} (400): its body is not valid JSON`,
          `${call} (401): the token is not the admin token`,
          `admin API: refused GET /api/tree (403): it is for host "evil.example"`,
          `${call} (400): it does not decode (1 unknown key)`,
          `admin API: refused GET /api/tasks/t-1 (401): the token is not the admin token`
        ])
        assert.notInclude(JSON.stringify(logged), SECRET)
        assert.notInclude(JSON.stringify(logged), guess)
        assert.isTrue(operations().every((line) => line.level === "WARN"))
        // and where each came from, as sshd says where a refused login came from
        assert.isTrue(operations().every((line) => line.annotations.client === "127.0.0.1"), JSON.stringify(logged))
      }),
    120_000
  )

  it.scopedLive("refusals are logged 20 a minute at most: a page that POSTs without end does not fill the log", () =>
    Effect.gen(function*() {
      const { operations, served } = yield* serve
      for (let i = 0; i < 30; i++) {
        errorOf(yield* http(served, "/api/children/echo/stop", { method: "POST" }), 401, "Unauthorized")
      }
      assert.strictEqual(operations().length, 20)
      assert.isTrue(operations().every((line) => line.message.startsWith("admin API: refused POST /api/children/")))
    }))

  it.scopedLive("a body the client gives up sending is logged as unread, not as too large", () =>
    Effect.gen(function*() {
      const { operations, served } = yield* serve
      const url = new URL(served.url)
      const socket = Net.connect(Number(url.port), url.hostname)
      yield* Effect.async<void>((resume) => void socket.once("connect", () => resume(Effect.void)))
      // The server says "100 Continue" once it has read the headers and hands the request on (Node's http server);
      // then part of the body, and the client is gone
      const continued = Effect.async<void>((resume) =>
        void socket.once("data", (data) => {
          assert.match(String(data), /^HTTP\/1\.1 100 Continue/)
          resume(Effect.void)
        })
      )
      socket.write(
        `POST /api/children/echo/call HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${served.token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n`
      )
      yield* continued
      socket.write(`{"payload": `)
      socket.destroy()
      yield* eventually("the refusal logged", () => operations().length > 0)
      assert.deepStrictEqual(operations().map((line) => line.message), [
        "admin API: refused POST /api/children/echo/call (400): its body could not be read (the client went away?)"
      ])
    }))

  it.scopedLive(
    "POST publish: { taskId } at once, delivered (fanout to each subscriber); a full topic 503 TopicFull, a " +
      "backpressure topic after a bounded wait; logged without the payload",
    () =>
      Effect.gen(function*() {
        const { operations, served } = yield* serve
        const published = yield* publishOf(served, "jobs", { payload: { job: 1, secret: SECRET } })
        assert.strictEqual(published.status, 200, published.text)
        const { taskId } = published.json()
        assert.isString(taskId)
        assert.deepStrictEqual(yield* served.root.awaitResult(taskId), { job: 1, secret: SECRET })
        // Fanout: the agent and the pool, each its own result
        const fanned = (yield* publishOf(served, "news", { payload: { whoami: true }, fanout: true })).json()
        const outcome = (yield* served.root.awaitResult(fanned.taskId)) as Record<string, unknown>
        assert.deepStrictEqual(Object.keys(outcome).sort(), ["root/echo", "root/pool"])
        assert.deepStrictEqual(outcome["root/echo"], { whoami: true })
        // The typed client
        const api = yield* client(served)
        const typed = yield* api.work.publish({ path: { name: "jobs" }, payload: { payload: 7 } })
        assert.strictEqual(yield* served.root.awaitResult(typed.taskId), 7)

        // A topic no child takes keeps its tasks, up to its maxQueued: then 503, nothing published
        assert.strictEqual((yield* publishOf(served, "later", { payload: 1 })).status, 200)
        const full = errorOf(yield* publishOf(served, "later", { payload: { secret: SECRET } }), 503, "TopicFull")
        assert.include(full.message, `Could not publish to "later": `)
        assert.include(full.message, "nothing was published")
        // With backpressure the publish waits for room, but not for ever
        assert.strictEqual((yield* publishOf(served, "held", { payload: 1 })).status, 200)
        const started = Date.now()
        const held = errorOf(yield* publishOf(served, "held", { payload: 2 }), 503, "TopicFull")
        assert.isAtLeast(Date.now() - started, PUBLISH_WAIT_MILLIS - 50)
        assert.include(held.message, `no room came within ${PUBLISH_WAIT_MILLIS / 1000} seconds`)

        const logged = operations().filter((entry) => entry.annotations.operation === "publish")
        assert.deepStrictEqual(logged.map((entry) => [entry.level, entry.annotations.topic]), [
          ["INFO", "jobs"],
          ["INFO", "news"],
          ["INFO", "jobs"],
          ["INFO", "later"],
          ["WARN", "later"],
          ["INFO", "held"],
          ["WARN", "held"]
        ])
        assert.strictEqual(logged[0].message, `admin API: published to "jobs": task ${taskId}`)
        assert.strictEqual(logged[4].message, `admin API: ${full.message}`)
        assert.notInclude(JSON.stringify(operations()), SECRET)
      }),
    120_000
  )

  it.scopedLive(
    "GET /api/topics lists the tree's topics; a publish to a name that is none is a 404 TopicNotFound, the one meant " +
      "named, nothing published",
    () =>
      Effect.gen(function*() {
        const { operations, served } = yield* serve
        const listed = yield* http(served, "/api/topics")
        assert.strictEqual(listed.status, 200, listed.text)
        // subscribers by their paths below the root, as call, logs and the other routes take them
        assert.deepStrictEqual(listed.json().map((t: any) => [t.name, t.declared, t.subscribers, t.queued]), [
          ["doomed", true, ["refuses"], 0],
          ["held", true, [], 0],
          ["jobs", false, ["echo"], 0],
          ["later", true, [], 0],
          ["nested", false, ["workers/echo"], 0],
          ["news", false, ["echo", "pool"], 0]
        ])
        const misspelt = errorOf(
          yield* publishOf(served, "jbos", { payload: { secret: SECRET } }),
          404,
          "TopicNotFound"
        )
        assert.strictEqual(
          misspelt.message,
          `Could not publish to "jbos": the tree has no such topic (did you mean "jobs"?); its topics are "doomed", ` +
            `"held", "jobs", "later", "nested", "news" (declared in its topics, or taken by a child); nothing was ` +
            "published"
        )
        // nothing published: still the same topics, none queued
        const typed = yield* Effect.flatMap(client(served), (api) => api.work.topics())
        assert.deepStrictEqual(typed.map((t) => t.name), ["doomed", "held", "jobs", "later", "nested", "news"])
        assert.isTrue(typed.every((t) => t.queued === 0))
        const warned = operations().filter((entry) => entry.annotations.operation === "publish")
        assert.deepStrictEqual(warned.map((entry) => [entry.level, entry.annotations.topic]), [["WARN", "jbos"]])
        assert.notInclude(JSON.stringify(operations()), SECRET)
        // a tree with no topic at all: said so, with how to give it one
        const bare = yield* serveDefault()
        assert.deepStrictEqual((yield* http(bare, "/api/topics")).json(), [])
        assert.strictEqual(
          errorOf(yield* publishOf(bare, "jobs", { payload: 1 }), 404, "TopicNotFound").message,
          `Could not publish to "jobs": the tree has no topics: declare one under "topics:" or give a child ` +
            `"topics: [...]"; nothing was published`
        )
      }),
    120_000
  )

  it.scopedLive(
    "GET /api/tasks/ID: a published task's outcome (succeeded, dead-lettered, pending once ?wait= passed), with the " +
      "token only; 404 for an unknown id, 400 for a bad wait",
    () =>
      Effect.gen(function*() {
        const { operations, served } = yield* serve
        const taskOf = (id: string, query = "", token = served.token) =>
          http(served, `/api/tasks/${seg(id)}${query}`, { headers: { authorization: `Bearer ${token}` } })
        // succeeded: the subscriber's answer (waited for: the publish answers at once)
        const done = (yield* publishOf(served, "jobs", { payload: { job: 2, secret: SECRET } })).json().taskId
        const succeeded = yield* taskOf(done, "?wait=20000")
        assert.strictEqual(succeeded.status, 200, succeeded.text)
        assert.deepStrictEqual(succeeded.json(), {
          taskId: done,
          status: "succeeded",
          result: { job: 2, secret: SECRET }
        })
        // read again at once, without a wait: kept
        assert.deepStrictEqual((yield* taskOf(done)).json().result, { job: 2, secret: SECRET })
        // dead-lettered after its two attempts: each attempt's error, the child that failed it by its path below the
        // root, as the routes take it
        const doomed = (yield* publishOf(served, "doomed", { payload: 1 })).json().taskId
        const dead = (yield* taskOf(doomed, "?wait=20%20seconds")).json()
        assert.deepStrictEqual([dead.taskId, dead.status, dead.attempts], [doomed, "dead_lettered", 2], dead)
        assert.deepStrictEqual(dead.errors.map((e: any) => [e.attempt, e.child]), [[1, "refuses"], [2, "refuses"]])
        assert.include(dead.message, `Task ${doomed} of topic "doomed" failed 2 time(s) and was dead-lettered`)
        assert.include(dead.message, "; last: refuses: ")
        // pending: a topic no child takes keeps it; no wait answers at once, a wait answers once it has passed
        const waiting = (yield* publishOf(served, "later", { payload: 1 })).json().taskId
        assert.deepStrictEqual((yield* taskOf(waiting)).json(), { taskId: waiting, status: "pending" })
        assert.deepStrictEqual((yield* taskOf(waiting, "?wait=50")).json(), { taskId: waiting, status: "pending" })
        // the typed client
        const api = yield* client(served)
        assert.strictEqual((yield* api.work.task({ path: { id: done }, urlParams: {} })).status, "succeeded")
        // refusals
        const unknown = errorOf(yield* taskOf("no-such-task"), 404, "TaskNotFound")
        assert.strictEqual(
          unknown.message,
          `No task "no-such-task": neither in flight nor in the store (the store keeps the last 10,000 outcomes by ` +
            "default, its maxTasks; a SQL store also drops those older than its maxTaskAge, 7 days by default)"
        )
        // the parameter named once
        const waits = [
          ["soon", `must be milliseconds or a duration ("30 seconds", "30s"), not "soon"`],
          ["1%20hour", "at most 4 minutes"],
          ["-5", `must be milliseconds or a duration ("30 seconds", "30s"), not "-5"`]
        ]
        for (const [query, problem] of waits) {
          const bad = errorOf(yield* taskOf(done, `?wait=${query}`), 400, "BadRequest")
          assert.strictEqual(bad.message, `Bad request: wait: ${problem}`, query)
        }
        // an agent's answer: read with the token only, as a call's, on every path the router takes for it
        errorOf(yield* taskOf(done, "", "wrong"), 401, "Unauthorized")
        errorOf(yield* http(served, `/api/tasks/${seg(done)}`), 401, "Unauthorized")
        for (
          const variant of [`/API/TASKS/${done}`, `/api/Tasks/${done}`, `//api/tasks/${done}`, `/api/%74asks/${done}`]
        ) {
          const raw = yield* http(served, variant)
          assert.notStrictEqual(raw.status, 200, `${variant}: ${raw.text}`)
          assert.notInclude(raw.text, SECRET, variant)
        }
        // a read: nothing logged at Info, no result anywhere in the log
        assert.deepStrictEqual(operations().filter((entry) => entry.annotations.operation === "task"), [])
        assert.notInclude(JSON.stringify(operations()), SECRET)
      }),
    120_000
  )

  it.scopedLive(
    "the OpenAPI document: the routes under bearer, their bodies and their errors",
    () =>
      Effect.gen(function*() {
        const { served } = yield* serve
        const doc = (yield* http(served, "/api/openapi.json")).json()
        const call = doc.paths["/api/children/{id}/call"].post
        const publish = doc.paths["/api/topics/{name}/publish"].post
        for (const operation of [call, publish]) {
          assert.deepStrictEqual(operation.security, [{ bearer: [] }])
          assert.isTrue(operation.requestBody.required)
          assert.isString(operation.requestBody.description)
        }
        assert.deepStrictEqual(Object.keys(call.responses).sort(), [
          "200",
          "400",
          "401",
          "404",
          "409",
          "415",
          "502",
          "504"
        ])
        assert.deepStrictEqual(Object.keys(publish.responses).sort(), ["200", "400", "401", "404", "409", "415", "503"])
        // a task's outcome: a read, with the token too
        const task = doc.paths["/api/tasks/{id}"].get
        assert.deepStrictEqual(task.security, [{ bearer: [] }])
        assert.includeMembers(Object.keys(task.responses), ["200", "400", "401", "404"])
        assert.deepStrictEqual(task.parameters.find((p: any) => p.in === "query")?.name, "wait")
        assert.deepStrictEqual(doc.components.schemas.CallBody.required, ["payload"])
        assert.deepStrictEqual(doc.components.schemas.PublishBody.required, ["payload"])
        assert.includeDeepMembers(doc.tags, [{ name: "work" }])
      }),
    120_000
  )
})

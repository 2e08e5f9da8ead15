/**
 * The admin API over real HTTP, against a real tree of real agents (issue 11, "Admin API"): its views, its
 * operations, its errors (a JSON body, never a stack), the token, its defaults, its state file, its other routes.
 * Server-Sent Events are in `AdminApi.sse.test.ts`; the Prometheus rendering and the token's comparison in
 * `AdminApi.units.test.ts`.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServer from "@effect/platform/HttpServer"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as Http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import * as AdminApi from "../src/AdminApi.js"
import type * as Health from "../src/Agent/Health.js"
import { page } from "../src/internal/admin/dashboard.js"
import * as Supervisor from "../src/Supervisor.js"
import {
  appLayer,
  client,
  defaultChildren,
  echo,
  http,
  post,
  type Raw,
  seg,
  serve,
  type Served
} from "./fixtures/admin/harness.js"
import {
  agentConfig,
  closeableScope,
  eventually,
  eventuallyEffect,
  failureOf,
  fixture,
  freePort,
  isAlive,
  takeUntil,
  tempDir,
  TestLive
} from "./support.js"

/** The pid of the child `id` of `sup`. */
const pidOf = (sup: Supervisor.Supervisor, id: string) =>
  Effect.map(sup.whichChildren, (children) => Option.getOrNull(children.find((c) => c.id === id)!.pid))

const workers = (served: Served) => Effect.orDie(served.root.childSupervisor("workers"))

/** A JSON error body: the tag and message the contract promises, and nothing of a stack. */
const assertError = (raw: Raw, status: number, tag: string) => {
  assert.strictEqual(raw.status, status, raw.text)
  assert.match(raw.headers.get("content-type") ?? "", /^application\/json/)
  const body = raw.json()
  assert.strictEqual(body._tag, tag)
  assert.isString(body.message)
  assert.isAbove(body.message.length, 0)
  assert.notProperty(body, "stack")
  assert.notMatch(raw.text, /\n\s+at /)
  return body as { readonly _tag: string; readonly message: string }
}

describe.sequential("AdminApi: reading the tree", () => {
  it.scopedLive("GET /api/tree: every child with its path, kind, state and the pid the tree reports, in start order", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const tree = yield* Effect.flatMap(client(served), (api) => api.tree.tree())
      assert.strictEqual(tree.name, "root")
      assert.deepStrictEqual(tree.children.map((c) => [c.id, c.name, c.kind, c.state, c.status, c.parked]), [
        ["echo", "admin-echo", "worker", "RUNNING", "running", false],
        ["workers", "root/workers", "supervisor", "RUNNING", "running", false]
      ])
      const [agent, sup] = tree.children
      assert.strictEqual(agent.pid, yield* pidOf(served.root, "echo"))
      assert.isTrue(agent.startedAt !== null && agent.startedAt <= tree.now)
      assert.deepStrictEqual([sup.pid, sup.startedAt, sup.restarts], [null, null, 0])
      assert.deepStrictEqual(sup.children.map((c) => [c.id, c.name, c.state]), [
        ["workers/echo", "admin-workers-echo", "RUNNING"]
      ])
      assert.strictEqual(sup.children[0].pid, yield* pidOf(yield* workers(served), "echo"))
    }))

  it.scopedLive("an agent's limits: the mode in force and why, sizes in bytes; null for a supervisor", () =>
    Effect.gen(function*() {
      const served = yield* serve({
        children: [
          echo("limited", "admin-limited", { limits: { memory: "256 MiB", cpu: 0.5, enforce: "soft" } }),
          echo("free", "admin-free")
        ]
      })
      const tree = yield* Effect.flatMap(client(served), (api) => api.tree.tree())
      assert.deepStrictEqual(tree.children.map((child) => child.limits), [
        { mode: "polling", why: `enforce is "soft"`, memory: 256 * 1024 * 1024, cpu: 0.5, pids: null },
        { mode: "none", why: "no limits asked for", memory: null, cpu: null, pids: null }
      ])
    }))

  it.scopedLive("an agent's health is its last heartbeat's reading, Options as values or null", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [echo("beat", "admin-beat", { heartbeatInterval: "100 millis" })] })
      const api = yield* client(served)
      const agent = yield* Effect.orDie(served.root.child("beat"))
      let read: readonly [AdminApi.ChildView["health"], Option.Option<Health.HealthSample>] = [null, Option.none()]
      // A view and a reading of the agent's metadata of the same beat (beats come every 100 ms).
      yield* eventuallyEffect(
        "a heartbeat in the view",
        Effect.gen(function*() {
          read = [(yield* api.tree.child({ path: { id: "beat" } })).health, (yield* agent.metadata).lastHealth]
          return read[0] !== null && Option.isSome(read[1]) && read[1].value.timestamp === read[0].timestamp
        })
      )
      const sample = Option.getOrThrow(read[1])
      assert.deepStrictEqual(read[0], {
        latencyMillis: sample.latencyMillis,
        cpuPercent: Option.getOrNull(sample.cpuPercent),
        memoryMb: Option.getOrNull(sample.memoryMb),
        processes: sample.processes,
        timestamp: sample.timestamp
      })
    }))

  // A new user's finding: memory showed nothing until the first heartbeat (30 s after the start by default).
  it.scopedLive("a running agent's resources are its group's reading of /proc now, whatever its heartbeat", () =>
    Effect.gen(function*() {
      // No beat while the test runs (the first falls at the incarnation's phase of the interval: see dashboard.test)
      const served = yield* serve({ children: [echo("quiet", "admin-quiet", { heartbeatInterval: "1000 days" })] })
      const api = yield* client(served)
      const pid = yield* pidOf(served.root, "quiet")
      const rssOfLeader = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024
      // The first read may come before a scan saw the agent's group (it is younger than the table): null until then.
      let view: AdminApi.ChildView | undefined
      yield* eventuallyEffect(
        "the group's reading in the view",
        Effect.map(api.tree.child({ path: { id: "quiet" } }), (read) => (view = read).resources !== null)
      )
      if (view === undefined) return assert.fail("no view")
      assert.isNull(view.health)
      assert.isAtLeast(view.resources!.processes, 1)
      // The group's RSS: the leader's and its descendants' (the same order as the leader's alone)
      assert.isAbove(view.resources!.memoryMb, rssOfLeader / 2)
      assert.isBelow(view.resources!.memoryMb, rssOfLeader * 10)
      assert.isAtMost(Math.abs(Date.now() - view.resources!.timestamp), 10_000)
      // A stopped agent has none
      yield* api.control.stop({ path: { id: "quiet" } })
      assert.isNull((yield* api.tree.child({ path: { id: "quiet" } })).resources)
    }))

  it.scopedLive("GET /api/children/:id takes a path below the root as one encoded segment", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const api = yield* client(served)
      const nested = yield* api.tree.child({ path: { id: seg("workers/echo") } })
      assert.deepStrictEqual([nested.id, nested.name, nested.kind], ["workers/echo", "admin-workers-echo", "worker"])
      assert.strictEqual(nested.pid, yield* pidOf(yield* workers(served), "echo"))
      const raw = yield* http(served, "/api/children/workers%2Fecho")
      assert.strictEqual(raw.status, 200)
      // The same view but for the heartbeat's reading and the group's, which may change between the two reads
      const { health: _rawHealth, resources: _rawResources, ...rawView } = raw.json()
      const { health: _health, resources: _resources, ...view } = nested
      assert.deepStrictEqual(rawView, view)
      const sup = yield* api.tree.child({ path: { id: "workers" } })
      assert.deepStrictEqual(sup.children.map((c) => c.id), ["workers/echo"])
    }))

  it.scopedLive("an unknown child is a 404 ChildNotFound on every route that takes one", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      for (const id of ["nope", "workers/nope", "echo/below-an-agent", "workers/"]) {
        const body = assertError(yield* http(served, `/api/children/${seg(id)}`), 404, "ChildNotFound")
        assert.include(body.message, `"${id}"`)
        assert.match(
          body.message,
          / \(a path is ids joined by "\/", as agent-supervisor status and GET \/api\/tree list them\)$/
        )
        assertError(yield* http(served, `/api/children/${seg(id)}/stderr`), 404, "ChildNotFound")
        for (const operation of ["start", "stop", "restart"]) {
          assertError(yield* post(served, `/api/children/${seg(id)}/${operation}`), 404, "ChildNotFound")
        }
      }
      assertError(yield* http(served, "/api/history?child=nope"), 404, "ChildNotFound")
      const error = yield* Effect.flip(Effect.flatMap(client(served), (api) => api.tree.child({ path: { id: "x" } })))
      assert.strictEqual(error._tag, "ChildNotFound")
    }))

  it.scopedLive("an unknown child's 404 names what is there: the children where the path went astray, an agent, the root", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const notFound = (id: string) =>
        Effect.map(
          http(served, `/api/children/${seg(id)}`),
          (answer) => assertError(answer, 404, "ChildNotFound").message
        )
      const said = {
        nope: yield* notFound("nope"),
        nested: yield* notFound("workers/nope"),
        belowAgent: yield* notFound("workers/echo/x"),
        slash: yield* notFound("workers/"),
        root: yield* notFound("root"),
        rootPrefixed: yield* notFound("root/workers/echo")
      }
      assert.include(
        said.nope,
        `No child "nope" in the tree "root": the root has no child "nope"; its children: "echo", "workers" (`
      )
      assert.include(said.nested, `: "workers" has no child "nope"; its children: "workers/echo" (`)
      assert.include(said.belowAgent, `: "workers/echo" is an agent: nothing is below it (`)
      assert.include(said.slash, `: nothing follows "workers/"; its children: "workers/echo" (`)
      assert.include(
        said.root,
        `: the root has no child "root"; its children: "echo", "workers"; "root" is the tree's root, `
      )
      assert.include(said.root, `not a child of it: a path starts below the root (`)
      assert.include(said.rootPrefixed, `: a path starts below the root ("workers/echo") (`)
      // A typo, or a leading "/": the child meant
      assert.include(yield* notFound("workers/ech"), `"workers" has no child "ech" (did you mean "workers/echo"?);`)
      assert.include(yield* notFound("/workers"), `the root has no child "/workers" (did you mean "workers"?);`)
      assert.include(yield* notFound("/workers/echo"), `(did you mean "workers/echo"?)`)
      assert.include(yield* notFound("Wrkers/echo"), `(did you mean "workers/echo"?)`)
      assert.notInclude(yield* notFound("nope"), "did you mean")
      // Nothing for a step of fewer than 3 characters (a pool's member 5 of 3 is no other member)
      assert.notInclude(yield* notFound("ec"), "did you mean")
      // The path below the root's name is suggested only where it names a child
      const rootNope = yield* notFound("root/nope")
      assert.include(rootNope, `: a path starts below the root (a path is`)
      for (const message of Object.values(said)) {
        assert.match(
          message,
          / \(a path is ids joined by "\/", as agent-supervisor status and GET \/api\/tree list them\)$/
        )
      }
      // A path not encoded as one segment: no route, and the 404 says how to write it
      const unencoded = assertError(yield* http(served, "/api/children/workers/echo"), 404, "NotFound").message
      assert.include(
        unencoded,
        `a child's path is one segment of the URL, its "/" encoded: /api/children/workers%2Fecho`
      )
      // Through a nested supervisor that is stopped: it is there, to be started first
      assert.strictEqual((yield* post(served, "/api/children/workers/stop")).status, 200)
      assert.strictEqual(
        yield* notFound("workers/echo"),
        `Cannot reach "workers/echo" in the tree "root": the supervisor "workers" on its way is not running (start ` +
          `it first: agent-supervisor start workers, or POST /api/children/workers/start)`
      )

      // Many children: the first ten in start order, and how many more; a supervisor with none says so
      const many = yield* serve({
        children: Array.from({ length: 12 }, (_, i) => Supervisor.supervisor({ id: `s${i}`, children: [] }))
      })
      const listed = assertError(yield* http(many, "/api/children/x"), 404, "ChildNotFound").message
      const ten = Array.from({ length: 10 }, (_, i) => `"s${i}"`).join(", ")
      assert.include(listed, `the root has no child "x"; its children: ${ten}, and 2 more (`)
      const empty = assertError(yield* http(many, `/api/children/${seg("s3/x")}`), 404, "ChildNotFound").message
      assert.include(empty, `No child "s3/x" in the tree "root": "s3" has no children (`)
    }))

  it.scopedLive("ids that hold a \"/\": a supervisor \"a/b\" beside an agent \"a\" is found by the path a/b/c", () =>
    Effect.gen(function*() {
      // (beside a supervisor "a", the id "a/b" is refused: test/Supervisor.paths.test.ts)
      const served = yield* serve({
        children: [
          echo("a", "admin-slash-a"),
          Supervisor.supervisor({ id: "a/b", children: [echo("c", "admin-slash-bc")] })
        ]
      })
      const found = yield* http(served, `/api/children/${seg("a/b/c")}`)
      assert.strictEqual(found.status, 200, found.text)
      assert.strictEqual(JSON.parse(found.text).kind, "worker")
    }))

  it.scopedLive("GET stderr: an agent's last lines (?lines=N the last N); bad params and a supervisor are 400s", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const api = yield* client(served)
      yield* Effect.orDie(served.root.call("echo", { stderr: { lines: 3, length: 1 } }))
      const pid = yield* pidOf(served.root, "echo")
      yield* eventuallyEffect(
        "three stderr lines",
        Effect.map(api.tree.stderr({ path: { id: "echo" }, urlParams: {} }), (lines) => lines.length === 3)
      )
      const all = yield* api.tree.stderr({ path: { id: "echo" }, urlParams: {} })
      assert.deepStrictEqual(all.map((l) => [l.pid, l.line]), [[pid, "0:e"], [pid, "1:e"], [pid, "2:e"]])
      assert.isTrue(all.every((l) => l.timestamp > 0))
      const last = yield* api.tree.stderr({ path: { id: "echo" }, urlParams: { lines: 2 } })
      assert.deepStrictEqual(last.map((l) => l.line), ["1:e", "2:e"])
      for (const bad of ["abc", "0", "-1", "1.5"]) {
        const body = assertError(yield* http(served, `/api/children/echo/stderr?lines=${bad}`), 400, "BadRequest")
        assert.strictEqual(body.message, "Bad request: lines: must be a whole number of 1 or more", bad)
      }
      const sup = assertError(yield* http(served, "/api/children/workers/stderr"), 400, "BadRequest")
      assert.strictEqual(
        sup.message,
        `"workers" is a supervisor: only an agent has stderr; give one of its agents, e.g. "workers/echo"`
      )
    }))

  it.scopedLive("GET /api/history: the whole tree's restarts newest first, with paths; ?child= one child's", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const api = yield* client(served)
      yield* Effect.exit(served.root.call("echo", { crash: 1 }))
      yield* eventuallyEffect(
        "the root's restart",
        Effect.map(api.tree.history({ urlParams: {} }), (h) => h.length === 1)
      )
      yield* Effect.exit(Effect.flatMap(workers(served), (sup) => sup.call("echo", { crash: 1 })))
      yield* eventuallyEffect(
        "the nested restart",
        Effect.map(api.tree.history({ urlParams: {} }), (h) => h.length === 2)
      )
      const history = yield* api.tree.history({ urlParams: {} })
      assert.deepStrictEqual(history.map((r) => [r.child, r.affected]), [
        ["workers/echo", ["workers/echo"]],
        ["echo", ["echo"]]
      ])
      assert.isAtLeast(history[0].timestamp, history[1].timestamp)
      // How each process ended: the crash's code (the agent exits with the code it was asked to)
      assert.deepStrictEqual(history.map((r) => [r.reason, r.exitCode, r.signal]), [["exit", 1, null], [
        "exit",
        1,
        null
      ]])
      const nested = yield* api.tree.history({ urlParams: { child: "workers/echo" } })
      assert.deepStrictEqual(nested, [history[0]])
      // A nested supervisor's: those of the children below it
      assert.deepStrictEqual(yield* api.tree.history({ urlParams: { child: "workers" } }), [history[0]])
    }))
})

describe.sequential("AdminApi: start, stop, restart", () => {
  it.scopedLive("POST restart: a new process, the old one gone, answered with the child as it is now", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const api = yield* client(served)
      const before = (yield* pidOf(served.root, "echo"))!
      const view = yield* api.control.restart({ path: { id: "echo" } })
      assert.deepStrictEqual([view.id, view.state, view.status], ["echo", "RUNNING", "running"])
      assert.notStrictEqual(view.pid, before)
      assert.strictEqual(view.pid, yield* pidOf(served.root, "echo"))
      assert.deepStrictEqual([view.lastExit?.pid, view.lastExit?.requested], [before, true])
      yield* eventually("the old process is gone", () => !isAlive(before))
      const nestedBefore = yield* pidOf(yield* workers(served), "echo")
      const nested = yield* api.control.restart({ path: { id: seg("workers/echo") } })
      assert.notStrictEqual(nested.pid, nestedBefore)
      assert.strictEqual(nested.pid, yield* pidOf(yield* workers(served), "echo"))
    }))

  it.scopedLive("POST stop, then start, of a nested agent: on its own supervisor, which keeps its books", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const api = yield* client(served)
      const sup = yield* workers(served)
      const before = (yield* pidOf(sup, "echo"))!
      const stopped = yield* api.control.stop({ path: { id: seg("workers/echo") } })
      assert.deepStrictEqual([stopped.state, stopped.status, stopped.pid], ["STOPPED", "stopped", null])
      assert.strictEqual(stopped.lastExit?.pid, before)
      assert.isFalse(isAlive(before))
      const info = (yield* sup.whichChildren).find((c) => c.id === "echo")!
      assert.strictEqual(info.status, "stopped")
      assert.deepStrictEqual(yield* api.tree.child({ path: { id: seg("workers/echo") } }), stopped)
      const started = yield* api.control.start({ path: { id: seg("workers/echo") } })
      assert.deepStrictEqual([started.state, started.status], ["RUNNING", "running"])
      assert.strictEqual(started.pid, yield* pidOf(sup, "echo"))
      // A running child is left as it is.
      const again = yield* api.control.start({ path: { id: seg("workers/echo") } })
      assert.strictEqual(again.pid, started.pid)
    }))

  it.scopedLive("POST restart of a nested supervisor restarts its subtree", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const before = yield* pidOf(yield* workers(served), "echo")
      const view = yield* Effect.flatMap(client(served), (api) => api.control.restart({ path: { id: "workers" } }))
      assert.deepStrictEqual([view.kind, view.state, view.status], ["supervisor", "RUNNING", "running"])
      const after = yield* pidOf(yield* workers(served), "echo")
      assert.notStrictEqual(after, before)
      assert.strictEqual(view.children[0].pid, after)
    }))

  it.scopedLive("a start that fails is a 409 OperationFailed with the startup error's message; the child stays stopped", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("admin-flaky")
      const needed = path.join(dir, "needed")
      fs.writeFileSync(needed, "")
      const config = agentConfig("fail-start-unless", {
        name: "admin-flaky",
        args: [fixture("agents", "agent.mjs"), "fail-start-unless", needed]
      })
      const served = yield* serve({ children: [Supervisor.agent({ id: "flaky", config })] })
      assert.strictEqual((yield* post(served, "/api/children/flaky/stop")).status, 200)
      fs.rmSync(needed)
      const body = assertError(yield* post(served, "/api/children/flaky/start"), 409, "OperationFailed")
      assert.include(body.message, `Could not start "flaky"`)
      assert.include(body.message, `Agent "admin-flaky"`)
      assert.include(body.message, `before it sent "ready"`)
      const error = yield* Effect.flip(
        Effect.flatMap(client(served), (api) => api.control.start({ path: { id: "flaky" } }))
      )
      assert.strictEqual(error._tag, "OperationFailed")
      const view = (yield* http(served, "/api/children/flaky")).json()
      assert.deepStrictEqual([view.status, view.pid], ["stopped", null])
    }))

  it.scopedLive("a caller that goes away in the middle of a restart does not leave it half-done", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const before = yield* pidOf(served.root, "echo")
      const events = yield* served.root.subscribe
      const controller = new AbortController()
      const request = fetch(`${served.url}/api/children/echo/restart`, {
        method: "POST",
        headers: { authorization: `Bearer ${served.token}` },
        signal: controller.signal
      }).catch(() => undefined)
      yield* takeUntil(events, (e) => e._tag === "ChildStopped" && e.child === "echo")
      controller.abort()
      yield* takeUntil(events, (e) => e._tag === "ChildStarted" && e.child === "echo").pipe(
        Effect.timeoutFail({
          duration: "10 seconds",
          onTimeout: () => new Error("the restart was left half-done: the child never started again")
        })
      )
      yield* Effect.promise(() => request)
      const info = (yield* served.root.whichChildren).find((c) => c.id === "echo")!
      assert.deepStrictEqual([info.status, info.state], ["running", "RUNNING"])
      assert.notStrictEqual(Option.getOrNull(info.pid), before)
    }))
})

describe.sequential("AdminApi: the token and bad requests", () => {
  it.scopedLive("every POST needs the token: none, another, or another scheme is a 401 and changes nothing", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const before = yield* pidOf(served.root, "echo")
      const refused: Array<Record<string, string>> = [
        {},
        { authorization: "Bearer not-the-token-at-all" },
        { authorization: `Bearer ${served.token}x` },
        { authorization: `Basic ${served.token}` },
        { authorization: served.token }
      ]
      for (const headers of refused) {
        for (const operation of ["start", "stop", "restart"]) {
          const raw = yield* http(served, `/api/children/echo/${operation}`, { method: "POST", headers })
          assertError(raw, 401, "Unauthorized")
          assert.match(raw.headers.get("www-authenticate") ?? "", /^Bearer /)
        }
        // Unknown routes too: a POST without the token learns nothing.
        assertError(yield* http(served, "/api/nope", { method: "POST", headers }), 401, "Unauthorized")
      }
      assert.strictEqual(yield* pidOf(served.root, "echo"), before)
      assert.strictEqual((yield* http(served, "/api/tree")).status, 200)
      const error = yield* Effect.flip(
        Effect.flatMap(
          client({ ...served, token: "wrong-token-of-some-length" }),
          (api) => api.control.restart({ path: { id: "echo" } })
        )
      )
      assert.strictEqual(error._tag, "Unauthorized")
      // The scheme is case-insensitive (RFC 7235).
      assert.strictEqual(
        (yield* post(served, "/api/children/echo/start", {
          headers: { authorization: `bearer ${served.token}` }
        })).status,
        200
      )
    }))

  it.scopedLive("a body that is not JSON, or too large, is a 400 BadRequest, and nothing happens; a JSON body is ignored", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const before = yield* pidOf(served.root, "echo")
      for (const body of ["{not json", "restart please"]) {
        const raw = yield* post(served, "/api/children/echo/restart", {
          body,
          headers: { "content-type": "application/json" }
        })
        assert.include(assertError(raw, 400, "BadRequest").message, "not valid JSON")
      }
      const huge = yield* post(served, "/api/children/echo/restart", { body: `"${"x".repeat(100 * 1024)}"` })
      assert.include(assertError(huge, 400, "BadRequest").message, "over 65536 bytes")
      assert.strictEqual(yield* pidOf(served.root, "echo"), before)
      const ok = yield* post(served, "/api/children/echo/restart", {
        body: "{}",
        headers: { "content-type": "application/json" }
      })
      assert.strictEqual(ok.status, 200)
      assert.notStrictEqual(ok.json().pid, before)
    }))

  it.scopedLive("on loopback, a request for another host (a DNS-rebound page in a browser) is a 403", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [] })
      const get = (host: string) =>
        Effect.async<{ readonly status: number; readonly body: string }>((resume) => {
          const request = Http.get(`${served.url}/api/tree`, { headers: { host } }, (response) => {
            let body = ""
            response.setEncoding("utf8")
            response.on("data", (chunk: string) => (body += chunk))
            response.on("end", () => resume(Effect.succeed({ status: response.statusCode!, body })))
          })
          request.on("error", (error) => resume(Effect.die(error)))
        })
      const rebound = yield* get("evil.example")
      assert.strictEqual(rebound.status, 403)
      assert.strictEqual(JSON.parse(rebound.body)._tag, "Forbidden")
      assert.strictEqual((yield* get(`localhost:${served.server.port}`)).status, 200)
    }))

  it.scopedLive("an unknown route is a 404 with a JSON body", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      for (const route of ["/nope", "/api/children/echo/nope", "/api"]) {
        assert.include(assertError(yield* http(served, route), 404, "NotFound").message, route)
      }
      assertError(yield* post(served, "/api/nope"), 404, "NotFound")
    }))
})

describe.sequential("AdminApi: other routes", () => {
  it.scopedLive("GET /api/openapi.json: every route but the page (event streams, /metrics too), POSTs under bearer", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [] })
      const raw = yield* http(served, "/api/openapi.json")
      assert.strictEqual(raw.status, 200)
      const doc = raw.json()
      assert.strictEqual(doc.openapi, "3.1.0")
      for (const route of ["/api/tree", "/api/children/{id}", "/api/history", "/api/children/{id}/stderr"]) {
        assert.property(doc.paths[route], "get", route)
      }
      for (const operation of ["restart", "stop", "start"]) {
        const post = doc.paths[`/api/children/{id}/${operation}`].post
        assert.deepStrictEqual(post.security, [{ bearer: [] }])
      }
      assert.strictEqual(doc.components.securitySchemes.bearer.scheme, "bearer")
      assert.property(doc.components.schemas, "ChildView")
      // The routes outside the HttpApi: their media types, no token (they only read), their errors
      const events = doc.paths["/api/events"].get
      const follow = doc.paths["/api/children/{id}/stderr/follow"].get
      const metrics = doc.paths["/metrics"].get
      for (const stream of [events, follow]) {
        assert.deepStrictEqual(Object.keys(stream.responses["200"].content), ["text/event-stream"])
        assert.strictEqual(
          stream.responses["503"].content["application/json"].schema.$ref,
          "#/components/schemas/TooManyStreams"
        )
      }
      assert.deepStrictEqual(Object.keys(metrics.responses["200"].content), ["text/plain"])
      assert.include(metrics.responses["200"].description, "0.0.4")
      for (const operation of [events, follow, metrics]) assert.deepStrictEqual(operation.security, [])
      assert.deepStrictEqual(follow.parameters.map((p: any) => [p.name, p.in, p.required]), [["id", "path", true]])
      assert.deepStrictEqual(Object.keys(follow.responses).sort(), ["200", "400", "404", "503"])
      assert.strictEqual(
        follow.responses["404"].content["application/json"].schema.$ref,
        "#/components/schemas/ChildNotFound"
      )
      assert.property(doc.components.schemas, "TooManyStreams")
      assert.includeDeepMembers(doc.tags, [{ name: "tree" }, { name: "control" }, { name: "metrics" }])
      // Every operation is named once, and every reference resolves
      const operations = Object.values(doc.paths).flatMap((item: any) => Object.values(item)) as Array<any>
      const ids = operations.map((operation) => operation.operationId)
      assert.strictEqual(new Set(ids).size, ids.length, ids.join(", "))
      for (const ref of raw.text.match(/"#\/components\/schemas\/[^"]+"/g) ?? []) {
        assert.property(doc.components.schemas, JSON.parse(ref).split("/").pop(), ref)
      }
      // As the routes answer (the event streams' media type is checked in AdminApi.sse.test.ts)
      const scrape = yield* http(served, "/metrics")
      assert.strictEqual(
        scrape.headers.get("content-type")?.split(";")[0],
        Object.keys(metrics.responses["200"].content)[0]
      )
      assertError(yield* http(served, "/api/children/nope/stderr/follow"), 404, "ChildNotFound")
    }))

  it.scopedLive("GET / is the dashboard page, as HTML that no other site may frame", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [] })
      const raw = yield* http(served, "/")
      assert.strictEqual(raw.status, 200)
      assert.match(raw.headers.get("content-type") ?? "", /^text\/html/)
      assert.strictEqual(raw.text, page())
      assert.strictEqual(raw.headers.get("x-frame-options"), "DENY")
      assert.strictEqual(raw.headers.get("content-security-policy"), "frame-ancestors 'none'")
    }))

  it.scopedLive("GET /metrics: the process's Effect metrics in valid Prometheus text", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [] })
      const requests = Metric.counter("admin_test_requests", { incremental: true, description: "requests seen" })
      yield* Metric.incrementBy(Metric.tagged(requests, "route", "/a\"b"), 3)
      yield* Metric.set(Metric.gauge("admin.test-gauge"), 1.5)
      const raw = yield* http(served, "/metrics")
      assert.strictEqual(raw.status, 200)
      assert.strictEqual(raw.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
      const lines = raw.text.trimEnd().split("\n")
      const types = new Map<string, string>()
      for (const line of lines) {
        const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
        if (type !== null) {
          assert.isFalse(types.has(type[1]), `one TYPE line for ${type[1]}`)
          types.set(type[1], type[2])
          continue
        }
        if (line.startsWith("# HELP ")) continue
        const sample =
          /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (\S+)$/
            .exec(line)
        assert.isNotNull(sample, `a sample line: ${line}`)
        const family = sample![1].replace(/_(bucket|sum|count)$/, "")
        assert.isTrue(types.has(sample![1]) || types.has(family), `declared before: ${line}`)
        assert.isFalse(Number.isNaN(Number(sample![3].replace("+Inf", "Infinity"))) && sample![3] !== "NaN", line)
      }
      assert.include(lines, "# HELP admin_test_requests requests seen")
      assert.include(lines, "# TYPE admin_test_requests counter")
      assert.include(lines, "admin_test_requests{route=\"/a\\\"b\"} 3")
      assert.include(lines, "admin_test_gauge 1.5")
    }))
})

describe.sequential("AdminApi: beside an application's own HttpApi", () => {
  class Hello
    extends HttpApiGroup.make("hello").add(HttpApiEndpoint.get("hello", "/hello").addSuccess(Schema.String))
  {}
  class AppApi extends HttpApi.make("app").add(Hello) {}
  const AppHttp = HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(AppApi)),
    Layer.provide(
      HttpApiBuilder.group(AppApi, "hello", (handlers) => handlers.handle("hello", () => Effect.succeed("hi")))
    ),
    Layer.provideMerge(NodeHttpServer.layer(Http.createServer, { port: 0, host: "127.0.0.1" }))
  )

  it.scopedLive("in one layer, each server has its own routes: none of the one is served by the other", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(Layer.merge(AppHttp, appLayer({ children: [] })))
      const admin = Context.get(context, AdminApi.AdminServer)
      const address = Context.get(context, HttpServer.HttpServer).address
      const app = { url: `http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}` }
      assert.strictEqual((yield* http(app, "/hello")).text, "\"hi\"")
      assert.strictEqual((yield* http(app, "/api/tree")).status, 404)
      assert.strictEqual((yield* http(admin, "/api/tree")).status, 200)
      assert.strictEqual((yield* http(admin, "/hello")).status, 404)
    }))
})

describe.sequential("AdminApi: safe defaults and options", () => {
  it.scopedLive("by default: 127.0.0.1, a free port, a generated token (base64url, 256 bits) unlike the next one", () =>
    Effect.gen(function*() {
      const first = yield* serve({ children: [] })
      const second = yield* serve({ children: [] })
      assert.strictEqual(first.server.host, "127.0.0.1")
      assert.isAbove(first.server.port, 0)
      assert.strictEqual(first.url, `http://127.0.0.1:${first.server.port}`)
      assert.notStrictEqual(first.server.port, second.server.port)
      assert.match(first.token, /^[A-Za-z0-9_-]{43}$/)
      assert.notStrictEqual(first.token, second.token)
      assert.isUndefined(first.server.stateFile)
      // Listening on loopback only: another address of this machine does not answer.
      const outside = Object.values(os.networkInterfaces()).flat()
        .find((a) => a !== undefined && a.family === "IPv4" && !a.internal)
      if (outside !== undefined) {
        const exit = yield* Effect.exit(http({ url: `http://${outside.address}:${first.server.port}` }, "/api/tree"))
        assert.isTrue(Exit.isFailure(exit), "not reachable from another address")
      }
    }))

  it.scopedLive("a token given (a string or Redacted) is the one; host and port given are the ones", () =>
    Effect.gen(function*() {
      const token = "a-given-token-0123456789"
      const served = yield* serve({ children: defaultChildren.slice(0, 1), admin: { token, host: "localhost" } })
      assert.strictEqual(served.token, token)
      assert.strictEqual(served.server.url, `http://localhost:${served.server.port}`)
      assert.strictEqual((yield* post(served, "/api/children/echo/start")).status, 200)
      // A port given is the one it listens on: a free one, picked again if another process took it meanwhile (the
      // port after the first server's was taken by a neighbour once: EADDRINUSE).
      const given = yield* Effect.gen(function*() {
        const port = yield* Effect.promise(freePort)
        const context = yield* Layer.build(appLayer({ children: [], admin: { token: Redacted.make(token), port } }))
        return { port, server: context.unsafeMap.get(AdminApi.AdminServer.key) as AdminApi.AdminServer["Type"] }
      }).pipe(
        Effect.retry({ times: 5, while: (error) => error._tag === "AdminApiError" && error.reason === "listen_failed" })
      )
      assert.deepStrictEqual([Redacted.value(given.server.token), given.server.port], [token, given.port])
      assert.strictEqual((yield* http(given.server, "/api/tree")).status, 200)
    }))

  it.scopedLive("a host that is not loopback: a warning of who can read what (none on loopback); it listens there", () =>
    Effect.gen(function*() {
      const logged: Array<{ readonly level: string; readonly message: string }> = []
      const capture = Logger.make(({ logLevel, message }) => {
        logged.push({ level: logLevel.label, message: [message].flat().map(String).join(" ") })
      })
      const root = yield* Supervisor.make({ children: [] })
      const start = (options: AdminApi.Options) =>
        AdminApi.make(options).pipe(
          Effect.provideService(Supervisor.RootSupervisor, root),
          Effect.provide(Logger.replace(Logger.defaultLogger, capture)),
          Logger.withMinimumLogLevel(LogLevel.Info),
          Effect.orDie
        )
      yield* start({ port: 0 })
      yield* start({ port: 0, host: "localhost" })
      assert.deepStrictEqual(logged, [])
      const wide = yield* start({ port: 0, host: "0.0.0.0" })
      assert.deepStrictEqual(logged, [{
        level: "WARN",
        message:
          `The admin API listens on 0.0.0.0:${wide.port}: whoever reaches it can read the tree, its events and ` +
          "stderr lines (state-changing calls need the token)"
      }])
      assert.strictEqual(wide.url, `http://127.0.0.1:${wide.port}`)
      assert.strictEqual((yield* http(wide, "/api/tree")).status, 200)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("bad options are one ConfigError naming each, the token never shown", () =>
    Effect.gen(function*() {
      const secret = "short secret"
      const layer = AdminApi.layer({ port: 70000, token: secret, host: "", keepAlive: 0 }).pipe(
        Layer.provide(Supervisor.layer({ children: [] })),
        Layer.provide(TestLive)
      )
      const error = failureOf(yield* Effect.exit(Layer.build(layer)))
      assert.strictEqual(error._tag, "ConfigError")
      const fields = (error as { readonly problems: ReadonlyArray<{ readonly field: string }> }).problems.map((p) =>
        p.field
      )
      assert.sameMembers(fields, ["port", "token", "host", "keepAlive"])
      assert.notInclude((error as Error).message, secret)
    }))

  it.scopedLive("a port in use is an AdminApiError naming it, with what to do", () =>
    Effect.gen(function*() {
      const first = yield* serve({ children: [] })
      const layer = AdminApi.layer({ port: first.server.port }).pipe(
        Layer.provide(Supervisor.layer({ children: [] })),
        Layer.provide(TestLive)
      )
      const error = failureOf(yield* Effect.exit(Layer.build(layer)))
      assert.isTrue(AdminApi.isAdminApiError(error))
      const e = error as AdminApi.AdminApiError
      assert.deepStrictEqual([e.reason, e.code, e.port], ["listen_failed", "EADDRINUSE", first.server.port])
      assert.include(e.message, `127.0.0.1:${first.server.port}`)
      assert.include(e.remediation, "another port")
    }))

  it.scopedLive("the state file: { url, token, pid } with mode 0600 while serving (a stale one replaced), gone after", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("admin-state")
      const stateFile = path.join(dir, ".tree.yaml.admin.json")
      fs.writeFileSync(stateFile, "{\"stale\": true}", { mode: 0o644 })
      const scope = yield* closeableScope
      const served = yield* serve({ children: [], admin: { stateFile } }).pipe(Scope.extend(scope))
      assert.strictEqual(served.server.stateFile, stateFile)
      assert.strictEqual(fs.statSync(stateFile).mode & 0o777, 0o600)
      assert.deepStrictEqual(JSON.parse(fs.readFileSync(stateFile, "utf8")), {
        url: served.url,
        token: served.token,
        pid: process.pid
      })
      assert.deepStrictEqual(fs.readdirSync(dir), [".tree.yaml.admin.json"])
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(fs.existsSync(stateFile))
    }))

  it.scopedLive("a state file that cannot be written is an AdminApiError", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("admin-state")
      const stateFile = path.join(dir, "missing-dir", "state.json")
      const layer = AdminApi.layer({ stateFile }).pipe(
        Layer.provide(Supervisor.layer({ children: [] })),
        Layer.provide(TestLive)
      )
      const error = failureOf(yield* Effect.exit(Layer.build(layer))) as AdminApi.AdminApiError
      assert.deepStrictEqual([error._tag, error.reason, error.path, error.code], [
        "AdminApiError",
        "state_file_failed",
        stateFile,
        "ENOENT"
      ])
    }))
})

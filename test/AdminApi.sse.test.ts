/**
 * The admin API's Server-Sent Events over real HTTP: the tree's events (errors and Options serialised as plain
 * JSON), an agent's stderr followed over restarts, keep-alives, and streams that end when their client goes away
 * and when the API closes (a client that stays never holds the application's shutdown).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import { Routes } from "../src/internal/admin/api.js"
import { MAX_STREAMS } from "../src/internal/admin/routes.js"
import * as Supervisor from "../src/Supervisor.js"
import { echo, type Frame, http, post, serve, sse } from "./fixtures/admin/harness.js"
import { closeableScope, eventuallyEffect } from "./support.js"

const named = (event: string, match: (data: any) => boolean = () => true) => (frame: Frame) =>
  frame.event === event && match(JSON.parse(frame.data!))

const connected = (frame: Frame) => frame.comment === "connected"

describe.sequential("AdminApi: events", () => {
  it.scopedLive("GET /api/events: every event of the tree from the connection on, `event: <_tag>`, JSON data", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const events = yield* sse(`${served.url}${Routes.events}`)
      assert.strictEqual(events.status, 200)
      assert.match(events.headers.get("content-type") ?? "", /^text\/event-stream/)
      assert.strictEqual(events.headers.get("cache-control"), "no-cache")
      yield* events.until(connected)
      assert.strictEqual((yield* post(served, "/api/children/workers%2Fecho/restart")).status, 200)
      const stopped = yield* events.until(named("ChildStopped"))
      assert.deepStrictEqual(JSON.parse(stopped.data!), {
        ...JSON.parse(stopped.data!),
        _tag: "ChildStopped",
        supervisor: "root/workers",
        child: "echo",
        why: "manual"
      })
      const spawned = yield* events.until(named("Agent", (data) => data.event._tag === "Spawned"))
      assert.strictEqual(JSON.parse(spawned.data!).event.agent, "admin-workers-echo")
      yield* events.until(named("ChildStarted", (data) => data.supervisor === "root/workers" && data.child === "echo"))
    }))

  it.scopedLive("an escalation's error is plain JSON: its fields, message and remediation, no stack", () =>
    Effect.gen(function*() {
      const served = yield* serve({
        children: [
          Supervisor.supervisor({
            id: "fragile",
            intensity: { maxRestarts: 0, window: "1 minute" },
            children: [echo("a", "admin-fragile-a")]
          })
        ],
        quiet: true
      })
      const events = yield* sse(`${served.url}${Routes.events}`)
      yield* events.until(connected)
      const fragile = yield* Effect.orDie(served.root.childSupervisor("fragile"))
      yield* Effect.exit(fragile.call("a", { crash: 1 }))
      const escalated = JSON.parse((yield* events.until(named("Escalated"))).data!)
      assert.strictEqual(escalated.supervisor, "root/fragile")
      const { error } = escalated
      assert.deepStrictEqual(
        [error._tag, error.supervisor, error.maxRestarts, error.windowMillis, error.lastChild],
        ["SupervisorIntensityError", "root/fragile", 0, 60000, "a"]
      )
      assert.isString(error.message)
      assert.include(error.message, "root/fragile")
      assert.isString(error.remediation)
      assert.notProperty(error, "stack")
    }))

  it.scopedLive("a heartbeat's sample is plain JSON: its Options as values or null", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [echo("beat", "admin-sse-beat", { heartbeatInterval: "100 millis" })] })
      const events = yield* sse(`${served.url}${Routes.events}`)
      const frame = yield* events.until(named("Agent", (data) => data.event._tag === "HealthChecked"))
      const { sample } = JSON.parse(frame.data!).event
      assert.strictEqual(sample.agent, "admin-sse-beat")
      assert.deepStrictEqual(sample.report, { ...sample.report, memory_mb: 30, cpu_percent: 1 })
      assert.isTrue(sample.memoryMb === null || typeof sample.memoryMb === "number")
      assert.isTrue(sample.cpuPercent === null || typeof sample.cpuPercent === "number")
    }))

  it.scopedLive("an idle stream sends a comment every keepAlive", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [], admin: { keepAlive: "50 millis" } })
      const events = yield* sse(`${served.url}${Routes.events}`)
      yield* events.until(connected)
      yield* events.until((frame) => frame.comment === "keep-alive")
      yield* events.until((frame) => frame.comment === "keep-alive")
    }))
})

describe.sequential("AdminApi: stderr follow", () => {
  it.scopedLive("GET stderr/follow: an agent's lines as they come (`data: <StderrLine>`), over a restart", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const follow = yield* sse(`${served.url}${Routes.stderrFollow("workers/echo")}`)
      assert.strictEqual(follow.status, 200)
      assert.match(follow.headers.get("content-type") ?? "", /^text\/event-stream/)
      yield* follow.until(connected)
      // Subscribed before the response started: one line written right after the opening comment arrives.
      const workers = yield* Effect.orDie(served.root.childSupervisor("workers"))
      yield* Effect.orDie(workers.call("echo", { stderr: { lines: 1, length: 1 } }))
      const first = yield* follow.until((frame) => frame.data !== undefined).pipe(
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the line written was lost") })
      )
      const line = JSON.parse(first.data!)
      const pid = (yield* workers.whichChildren)[0].pid
      assert.deepStrictEqual([first.event, line.line, line.pid], [
        undefined,
        "0:e",
        pid._tag === "Some" ? pid.value : -1
      ])
      assert.isAbove(line.timestamp, 0)
      const restarted = (yield* post(served, "/api/children/workers%2Fecho/restart")).json()
      yield* Effect.orDie(workers.call("echo", { stderr: { lines: 2, length: 1 } }))
      const after = yield* follow.until((frame) => frame.data !== undefined && JSON.parse(frame.data).line === "1:e")
      assert.strictEqual(JSON.parse(after.data!).pid, restarted.pid)
    }))

  it.scopedLive("stderr/follow of no such child is a 404, of a supervisor a 400, both JSON", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const missing = yield* http(served, Routes.stderrFollow("workers/nope"))
      assert.deepStrictEqual([missing.status, missing.json()._tag], [404, "ChildNotFound"])
      const sup = yield* http(served, Routes.stderrFollow("workers"))
      assert.deepStrictEqual([sup.status, sup.json()._tag], [400, "BadRequest"])
    }))
})

describe.sequential("AdminApi: streams are bounded", () => {
  it.scopedLive("past MAX_STREAMS open at once, a new one is a 503 with a JSON body; once one closes, it is served", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const open = yield* Effect.forEach(
        Array.from({ length: MAX_STREAMS }),
        () => sse(`${served.url}${Routes.events}`)
      )
      for (const stream of open) yield* stream.until(connected)
      yield* eventuallyEffect("all open", Effect.map(served.server.streams, (n) => n === MAX_STREAMS))
      const refused = yield* http(served, Routes.stderrFollow("echo"))
      assert.deepStrictEqual([refused.status, refused.json()._tag], [503, "TooManyStreams"])
      yield* open[0].abort
      yield* eventuallyEffect("one closed", Effect.map(served.server.streams, (n) => n === MAX_STREAMS - 1))
      const served2 = yield* sse(`${served.url}${Routes.events}`)
      assert.strictEqual(served2.status, 200)
    }))
})

describe.sequential("AdminApi: streams end", () => {
  it.scopedLive("when their client goes away", () =>
    Effect.gen(function*() {
      const served = yield* serve()
      const events = yield* sse(`${served.url}${Routes.events}`)
      const follow = yield* sse(`${served.url}${Routes.stderrFollow("echo")}`)
      yield* events.until(connected)
      yield* follow.until(connected)
      yield* eventuallyEffect("two streams open", Effect.map(served.server.streams, (n) => n === 2))
      yield* events.abort
      yield* eventuallyEffect("one stream open", Effect.map(served.server.streams, (n) => n === 1))
      yield* follow.abort
      yield* eventuallyEffect("no stream open", Effect.map(served.server.streams, (n) => n === 0))
    }))

  it.scopedLive("when the API closes, which never waits for the clients; with an end event", () =>
    Effect.gen(function*() {
      const scope = yield* closeableScope
      const served = yield* serve().pipe(Scope.extend(scope))
      const events = yield* sse(`${served.url}${Routes.events}`)
      const follow = yield* sse(`${served.url}${Routes.stderrFollow("echo")}`)
      yield* events.until(connected)
      yield* follow.until(connected)
      // A keep-alive connection left idle by an ordinary request, too.
      assert.strictEqual((yield* http(served, "/api/tree")).status, 200)
      // Forked: a close is uninterruptible, and a hung one must fail the test with this message, not time it out.
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* Fiber.join(closing).pipe(
        Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the close waited for the clients") })
      )
      // Each ends with the `end` event, which tells a client the server closed from a connection lost
      for (const stream of [events, follow]) {
        const last = (yield* stream.end).at(-1)
        assert.strictEqual(last?.event, "end", JSON.stringify(last))
        assert.deepStrictEqual(JSON.parse(last!.data!), { reason: "closing" })
      }
      const exit = yield* Effect.exit(http(served, "/api/tree"))
      assert.isTrue(Exit.isFailure(exit), "nothing listens any more")
    }))
})

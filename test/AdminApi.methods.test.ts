/**
 * The admin API's answers to a request in the wrong form, over real HTTP against a real tree (from a new user's
 * trial): a known path with a method it does not take is a 405 with `Allow` (RFC 9110), not a 404; a body that is not
 * JSON is a 415 on every call that takes one, a JSON body that does not parse a 400 that says so, not a decoding
 * problem of the route ("size: is missing"). What works without a body (the CLI's calls, the dashboard's buttons)
 * still does, and none of the refused calls changes the tree.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Supervisor from "../src/Supervisor.js"
import { client, echo, http, post, type Raw, serve, type Served } from "./fixtures/admin/harness.js"
import { agentConfig } from "./support.js"

/** `root`: the agent `echo` and the pool `pool` of 1. */
const children: ReadonlyArray<Supervisor.ChildSpec> = [
  echo("echo", "methods-echo"),
  Supervisor.pool({ id: "pool", size: 1, config: agentConfig("echo", { name: "methods-member", restartBackoff: 0 }) })
]

/** The calls that change the tree: each is a POST, and only a POST. */
const OPERATIONS = ["restart", "stop", "start", "reload", "scale"] as const

/** The routes that only read: each takes GET (and so HEAD, as the platform's router answers it) only. */
const READS = [
  "/api/tree",
  "/api/children/echo",
  "/api/history",
  "/api/children/echo/stderr",
  "/api/children/echo/stderr/follow",
  "/api/cluster",
  "/api/events",
  "/metrics",
  "/api/openapi.json",
  "/"
]

/** A JSON error body with this status and tag, never a stack; its message. */
const errorOf = (raw: Raw, status: number, tag: string): string => {
  assert.strictEqual(raw.status, status, raw.text)
  assert.strictEqual(raw.headers.get("content-type"), "application/json", raw.text)
  const body = raw.json()
  assert.deepStrictEqual(Object.keys(body).sort(), ["_tag", "message"], raw.text)
  assert.strictEqual(body._tag, tag)
  assert.notMatch(raw.text, /\n\s+at /)
  return body.message
}

/** A 405 that names the methods the path takes, in its `Allow` header and in its message. */
const assertNotAllowed = (raw: Raw, allow: string, label: string) => {
  assert.strictEqual(raw.status, 405, `${label}: ${raw.text}`)
  assert.strictEqual(raw.headers.get("allow"), allow, label)
  if (raw.text !== "") assert.include(errorOf(raw, 405, "MethodNotAllowed"), allow, label)
}

/** What the refused calls must leave as it was: the agent's pid, the pool's members' pids. */
const snapshot = (served: Served) =>
  Effect.gen(function*() {
    const echoPid = Option.getOrNull((yield* served.root.whichChildren).find((c) => c.id === "echo")!.pid)
    const pool = yield* Effect.orDie(served.root.childSupervisor("pool"))
    const members = (yield* pool.whichChildren).map((m) => [m.id, Option.getOrNull(m.pid)])
    return { echoPid, members }
  })

/** A body of this type; with none, bytes (`fetch` gives a string `text/plain`). */
const body = (contentType: string | undefined, text: string): RequestInit =>
  contentType === undefined
    ? { body: new TextEncoder().encode(text) }
    : { body: text, headers: { "content-type": contentType } }

describe.sequential("AdminApi: a method a known route does not take", () => {
  it.scopedLive("is a 405 with Allow and a JSON body naming the methods; an unknown path stays a 404", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const before = yield* snapshot(served)
      for (const operation of OPERATIONS) {
        const path = `/api/children/pool/${operation}`
        assertNotAllowed(yield* http(served, path), "POST", `GET ${path}`)
        assertNotAllowed(yield* http(served, path, { method: "HEAD" }), "POST", `HEAD ${path}`)
        assertNotAllowed(yield* http(served, path, { method: "OPTIONS" }), "POST", `OPTIONS ${path}`)
        assertNotAllowed(yield* post(served, path, { method: "PUT" }), "POST", `PUT ${path}`)
      }
      for (const path of READS) {
        assertNotAllowed(yield* post(served, path), "GET, HEAD", `POST ${path}`)
        assertNotAllowed(yield* post(served, path, { method: "DELETE" }), "GET, HEAD", `DELETE ${path}`)
        assertNotAllowed(yield* http(served, path, { method: "OPTIONS" }), "GET, HEAD", `OPTIONS ${path}`)
      }
      // The message says it plainly
      assert.strictEqual(
        errorOf(yield* http(served, "/api/children/pool/scale"), 405, "MethodNotAllowed"),
        "GET is not allowed on /api/children/pool/scale: it takes POST"
      )
      // An unknown path is a 404, whatever the method
      for (const path of ["/api/nothing", "/api/children/echo/nope", "/api/children/echo/restart/now", "/api"]) {
        assert.include(errorOf(yield* http(served, path), 404, "NotFound"), path)
        assert.include(errorOf(yield* post(served, path), 404, "NotFound"), path)
      }
      // A POST without the token still learns nothing, of a path known or not
      for (const path of ["/api/tree", "/api/nothing"]) {
        errorOf(yield* http(served, path, { method: "POST" }), 401, "Unauthorized")
      }
      assert.deepStrictEqual(yield* snapshot(served), before, "nothing changed")
    }))

  it.scopedLive("what each route takes still works: GET and HEAD of the reads, POST of the operations", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      for (const path of ["/api/tree", "/api/children/echo", "/api/history", "/metrics", "/api/openapi.json", "/"]) {
        assert.strictEqual((yield* http(served, path)).status, 200, `GET ${path}`)
        const head = yield* http(served, path, { method: "HEAD" })
        assert.deepStrictEqual([head.status, head.text], [200, ""], `HEAD ${path}`)
      }
      const restarted = yield* post(served, "/api/children/echo/restart")
      assert.strictEqual(restarted.status, 200, restarted.text)
    }))
})

describe.sequential("AdminApi: a request body that is not JSON", () => {
  it.scopedLive("a Content-Type that is not JSON is a 415 on every POST, and nothing happens", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const before = yield* snapshot(served)
      const form = "application/x-www-form-urlencoded"
      // The new user's call, and what `curl -d '{"size":3}'` sends without -H
      for (const text of ["size=3", "{\"size\":3}"]) {
        const message = errorOf(
          yield* post(served, "/api/children/pool/scale", body(form, text)),
          415,
          "UnsupportedMediaType"
        )
        assert.include(message, "must be JSON")
        assert.include(message, form)
      }
      for (const operation of OPERATIONS) {
        for (const contentType of [form, "text/plain", "text/plain; charset=utf-8", "application/xml", "text/json"]) {
          const raw = yield* post(served, `/api/children/pool/${operation}`, body(contentType, "{\"size\":3}"))
          assert.include(errorOf(raw, 415, "UnsupportedMediaType"), "must be JSON", `${operation} ${contentType}`)
        }
        const multipart = new FormData()
        multipart.set("size", "3")
        const raw = yield* post(served, `/api/children/pool/${operation}`, { body: multipart })
        assert.include(errorOf(raw, 415, "UnsupportedMediaType"), "multipart/form-data", operation)
      }
      assert.deepStrictEqual(yield* snapshot(served), before, "nothing changed")
    }))

  it.scopedLive("a body that claims JSON and does not parse is a 400 that says so, and nothing happens", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const before = yield* snapshot(served)
      for (const operation of OPERATIONS) {
        for (const contentType of [undefined, "application/json", "application/merge-patch+json; charset=utf-8"]) {
          for (const text of ["size=3", "{\"size\": 3", " "]) {
            const raw = yield* post(served, `/api/children/pool/${operation}`, body(contentType, text))
            assert.match(
              errorOf(raw, 400, "BadRequest"),
              /^The request body is not valid JSON: ./,
              `${operation} ${contentType} ${JSON.stringify(text)}`
            )
          }
        }
      }
      assert.deepStrictEqual(yield* snapshot(served), before, "nothing changed")
    }))

  it.scopedLive("JSON in any of its media types is taken, with or without parameters", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const sizes = [
        ["application/json", 2],
        ["application/json; charset=utf-8", 3],
        ["Application/JSON;charset=UTF-8", 2],
        ["application/vnd.agent-supervisor+json", 1],
        ["application/merge-patch+json; charset=utf-8", 2]
      ] as const
      for (const [contentType, size] of sizes) {
        const raw = yield* post(served, "/api/children/pool/scale", {
          ...body(contentType, JSON.stringify({ size })),
          // On a +json type the route once read a body already read, and never answered
          signal: AbortSignal.timeout(15_000)
        })
        assert.strictEqual(raw.status, 200, `${contentType}: ${raw.text}`)
        assert.deepStrictEqual(raw.json().pool.size, size, contentType)
      }
      // A bad JSON body is still the route's 400, with its own message
      const bad = yield* post(served, "/api/children/pool/scale", body("application/json", "{\"size\":-1}"))
      assert.include(errorOf(bad, 400, "BadRequest"), "size: must be a whole number of 0 or more")
      // of another type: the same words, not the schema's "Expected number, actual \"x\""
      const text = yield* post(served, "/api/children/pool/scale", body("application/json", "{\"size\":\"x\"}"))
      assert.include(errorOf(text, 400, "BadRequest"), "size: must be a whole number of 0 or more")
      const reload = yield* post(served, "/api/children/echo/reload", body("application/vnd.x+json", "{}"))
      assert.strictEqual(reload.status, 200, reload.text)
    }))

  it.scopedLive("no body still works where a call takes none: the dashboard's, the CLI's, curl -X POST's", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      // The dashboard: no body and no Content-Type, but for scale's JSON
      for (const operation of ["stop", "start", "restart", "reload"]) {
        const raw = yield* post(served, `/api/children/echo/${operation}`)
        assert.strictEqual(raw.status, 200, `${operation}: ${raw.text}`)
      }
      // A Content-Type with no body: nothing to refuse
      for (const contentType of ["application/json", "application/x-www-form-urlencoded", "text/plain"]) {
        const raw = yield* post(served, "/api/children/echo/restart", body(contentType, ""))
        assert.strictEqual(raw.status, 200, `${contentType}: ${raw.text}`)
        // scale needs its body, and says so: not "size: is missing"
        const scale = yield* post(served, "/api/children/pool/scale", body(contentType, ""))
        assert.include(errorOf(scale, 400, "BadRequest"), `scale takes a JSON body { "size": N }`, contentType)
      }
      // The CLI: the typed client
      const api = yield* client(served)
      assert.strictEqual((yield* api.control.restart({ path: { id: "echo" } })).state, "RUNNING")
      assert.strictEqual((yield* api.control.reload({ path: { id: "echo" }, payload: {} })).state, "RUNNING")
      assert.deepStrictEqual((yield* api.control.scale({ path: { id: "pool" }, payload: { size: 2 } })).pool, {
        size: 2,
        maxSize: 1000,
        routing: "least-in-flight"
      })
    }))

  it.scopedLive("the OpenAPI document lists the 415 of every POST", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [] })
      const doc = (yield* http(served, "/api/openapi.json")).json()
      for (const operation of OPERATIONS) {
        const responses = doc.paths[`/api/children/{id}/${operation}`].post.responses
        assert.strictEqual(
          responses["415"]?.content["application/json"].schema.$ref,
          "#/components/schemas/UnsupportedMediaType",
          operation
        )
      }
      assert.include(doc.info.description, "405")
    }))
})

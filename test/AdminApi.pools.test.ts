/**
 * The admin API's pools and rolling reloads over real HTTP, against a real tree of real agents (issue 14): a pool in
 * the tree view (`pool: { size, routing }`, its members as its children), `POST .../reload` of an agent and of a
 * pool (new processes, the old ones gone), `POST .../scale` with `{ "size": n }`, and their errors: 400 for a bad
 * body, 401 without the token, 404 for an unknown child, 409 with the library's message for what the tree refuses.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Supervisor from "../src/Supervisor.js"
import { client, echo, http, post, type Raw, seg, serve, type Served } from "./fixtures/admin/harness.js"
import { agentConfig, eventually, isAlive } from "./support.js"

/** `root`: the agent `echo`, the pool `pool` of 2, and the plain supervisor `workers` with the agent `workers/w`. */
const children: ReadonlyArray<Supervisor.ChildSpec> = [
  echo("echo", "pools-echo"),
  Supervisor.pool({
    id: "pool",
    size: 2,
    routing: "round-robin",
    config: agentConfig("echo", { name: "pools-member", restartBackoff: 0 })
  }),
  Supervisor.supervisor({ id: "workers", children: [echo("w", "pools-w")] })
]

/** The pids of the pool's members, by member id. */
const memberPids = (served: Served) =>
  Effect.gen(function*() {
    const pool = yield* Effect.orDie(served.root.childSupervisor("pool"))
    const members = yield* pool.whichChildren
    return Object.fromEntries(members.map((m) => [m.id, Option.getOrNull(m.pid)]))
  })

const pidOf = (served: Served, id: string) =>
  Effect.map(served.root.whichChildren, (infos) => Option.getOrNull(infos.find((c) => c.id === id)!.pid))

/** A JSON error body with this status and tag; its message. */
const errorOf = (raw: Raw, status: number, tag: string): string => {
  assert.strictEqual(raw.status, status, raw.text)
  const body = raw.json()
  assert.strictEqual(body._tag, tag)
  assert.notMatch(raw.text, /\n\s+at /)
  return body.message
}

const json = (body: unknown): RequestInit => ({
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" }
})

describe.sequential("AdminApi: pools", () => {
  it.scopedLive("the tree view: a pool is a supervisor with its members as children and pool { size, routing }", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const tree = yield* Effect.flatMap(client(served), (api) => api.tree.tree())
      assert.deepStrictEqual(tree.children.map((c) => [c.id, c.kind, c.pool]), [
        ["echo", "worker", null],
        ["pool", "supervisor", { size: 2, maxSize: 1000, routing: "round-robin" }],
        ["workers", "supervisor", null]
      ])
      const pool = tree.children[1]
      assert.deepStrictEqual(pool.children.map((m) => [m.id, m.name, m.kind, m.state, m.pool]), [
        ["pool/0", "pools-member-0", "worker", "RUNNING", null],
        ["pool/1", "pools-member-1", "worker", "RUNNING", null]
      ])
      const pids = yield* memberPids(served)
      assert.deepStrictEqual(pool.children.map((m) => m.pid), [pids["0"], pids["1"]])
      // One child: the same view
      const one = (yield* http(served, "/api/children/pool")).json()
      assert.deepStrictEqual(one.pool, { size: 2, maxSize: 1000, routing: "round-robin" })
      assert.strictEqual((yield* http(served, `/api/children/${seg("pool/1")}`)).json().name, "pools-member-1")
    }))

  it.scopedLive("stderr of a pool or a supervisor is a 400 that names an agent below it to ask instead", () =>
    Effect.gen(function*() {
      const served = yield* serve({
        children: [...children, Supervisor.supervisor({ id: "empty", children: [] })]
      })
      const cases = [
        ["pool", `"pool" is a pool: only an agent has stderr; give one of its members, e.g. "pool/0"`],
        ["workers", `"workers" is a supervisor: only an agent has stderr; give one of its agents, e.g. "workers/w"`],
        ["empty", `"empty" is a supervisor: only an agent has stderr, and it has no agent below it`]
      ] as const
      for (const [id, message] of cases) {
        // the kept lines and the follow alike
        assert.strictEqual(errorOf(yield* http(served, `/api/children/${id}/stderr`), 400, "BadRequest"), message)
        assert.strictEqual(
          errorOf(yield* http(served, `/api/children/${id}/stderr/follow`), 400, "BadRequest"),
          message
        )
      }
      // a pool of no members now
      yield* post(served, "/api/children/pool/scale", json({ size: 0 }))
      assert.strictEqual(
        errorOf(yield* http(served, "/api/children/pool/stderr"), 400, "BadRequest"),
        `"pool" is a pool with no members now: only its members have stderr (agent-supervisor scale pool N adds some)`
      )
    }))

  it.scopedLive("POST scale { size }: members added and removed, answered with the pool after", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const api = yield* client(served)
      const before = yield* memberPids(served)
      const grown = yield* api.control.scale({ path: { id: "pool" }, payload: { size: 3 } })
      assert.deepStrictEqual(grown.pool, { size: 3, maxSize: 1000, routing: "round-robin" })
      assert.deepStrictEqual(grown.children.map((m) => [m.id, m.state]), [
        ["pool/0", "RUNNING"],
        ["pool/1", "RUNNING"],
        ["pool/2", "RUNNING"]
      ])
      const grownPids = yield* memberPids(served)
      assert.deepStrictEqual([grownPids["0"], grownPids["1"]], [before["0"], before["1"]], "the others untouched")
      const shrunk = yield* post(served, "/api/children/pool/scale", json({ size: 1 }))
      assert.strictEqual(shrunk.status, 200, shrunk.text)
      assert.deepStrictEqual(shrunk.json().pool, { size: 1, maxSize: 1000, routing: "round-robin" })
      assert.deepStrictEqual(shrunk.json().children.map((m: any) => m.id), ["pool/0"])
      for (const gone of [grownPids["1"]!, grownPids["2"]!]) {
        yield* eventually(`removed member ${gone} is gone`, () => !isAlive(gone))
      }
      assert.deepStrictEqual(Object.keys(yield* memberPids(served)), ["0"])
    }))

  it.scopedLive("POST scale: a bad body is a 400, an unknown child a 404, not a pool a 409 with the library's message", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const before = yield* memberPids(served)
      for (
        const body of [undefined, {}, { size: -1 }, { size: 1.5 }, { size: "2" }, [3], { sizes: 3 }, {
          size: 2,
          extra: 1
        }]
      ) {
        const raw = yield* post(served, "/api/children/pool/scale", body === undefined ? {} : json(body))
        assert.match(errorOf(raw, 400, "BadRequest"), /^Bad request: /, JSON.stringify(body))
      }
      assert.include(
        errorOf(yield* post(served, "/api/children/pool/scale", json({ size: -1 })), 400, "BadRequest"),
        "size: must be a whole number of 0 or more (got -1)"
      )
      assert.include(
        errorOf(yield* post(served, "/api/children/pool/scale", json({ size: "3" })), 400, "BadRequest"),
        `size: must be a whole number of 0 or more (got "3")`
      )
      // Above the pool's maxSize (1000 by default): refused before any member starts
      assert.include(
        errorOf(yield* post(served, "/api/children/pool/scale", json({ size: 100_000 })), 400, "BadRequest"),
        "must be at most the pool's maxSize, 1000"
      )
      assert.include(
        errorOf(yield* post(served, "/api/children/pool/scale", {}), 400, "BadRequest"),
        `scale takes a JSON body { "size": N }`
      )
      assert.include(
        errorOf(yield* post(served, "/api/children/nope/scale", json({ size: 1 })), 404, "ChildNotFound"),
        `"nope"`
      )
      for (const id of ["echo", "workers"]) {
        const message = errorOf(
          yield* post(served, `/api/children/${id}/scale`, json({ size: 2 })),
          409,
          "OperationFailed"
        )
        assert.strictEqual(message, `Could not scale "${id}": Supervisor "root" cannot scale child "${id}": not a pool`)
      }
      const refused = yield* http(served, "/api/children/pool/scale", { method: "POST", ...json({ size: 5 }) })
      assert.strictEqual(errorOf(refused, 401, "Unauthorized").length > 0, true)
      assert.deepStrictEqual(yield* memberPids(served), before, "nothing changed")
    }))
})

describe.sequential("AdminApi: reload", () => {
  it.scopedLive("POST reload of an agent: a new process in its place, the old one gone; no body or {}", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const api = yield* client(served)
      const first = (yield* pidOf(served, "echo"))!
      const view = yield* api.control.reload({ path: { id: "echo" }, payload: {} })
      assert.deepStrictEqual([view.id, view.state, view.status], ["echo", "RUNNING", "running"])
      assert.notStrictEqual(view.pid, first)
      assert.strictEqual(view.pid, yield* pidOf(served, "echo"))
      yield* eventually("the old process is gone", () => !isAlive(first))
      // No body at all, and a nested agent by its path
      const raw = yield* post(served, `/api/children/${seg("workers/w")}/reload`)
      assert.strictEqual(raw.status, 200, raw.text)
      assert.strictEqual(raw.json().state, "RUNNING")
      // The agent answers calls after it
      assert.deepStrictEqual(yield* Effect.orDie(served.root.call("echo", { echo: 1 })), 1)
    }))

  it.scopedLive("POST reload of a pool: each member a new process, one after the other; the pool stays", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const before = yield* memberPids(served)
      const raw = yield* post(served, "/api/children/pool/reload", json({}))
      assert.strictEqual(raw.status, 200, raw.text)
      const view = raw.json()
      assert.deepStrictEqual(view.pool, { size: 2, maxSize: 1000, routing: "round-robin" })
      const after = yield* memberPids(served)
      assert.deepStrictEqual(view.children.map((m: any) => m.pid), [after["0"], after["1"]])
      for (const id of ["0", "1"]) {
        assert.notStrictEqual(after[id], before[id], `member ${id}`)
        yield* eventually(`the old member ${id} is gone`, () => !isAlive(before[id]!))
      }
    }))

  it.scopedLive("POST reload: settings in the body are a 400 (no config from HTTP); 404, 409, 401 as the others", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children })
      const before = yield* pidOf(served, "echo")
      for (const body of [{ config: { name: "x", command: "y" } }, [1], "text"]) {
        const raw = yield* post(served, "/api/children/echo/reload", json(body))
        assert.include(errorOf(raw, 400, "BadRequest"), "reload takes no settings", JSON.stringify(body))
      }
      assert.include(errorOf(yield* post(served, "/api/children/nope/reload"), 404, "ChildNotFound"), `"nope"`)
      const supervisor = errorOf(yield* post(served, "/api/children/workers/reload"), 409, "OperationFailed")
      assert.strictEqual(
        supervisor,
        `Could not reload "workers": Supervisor "root" cannot reload child "workers": it is a nested supervisor, not an ` +
          "agent or a pool"
      )
      // A stopped agent: the library's refusal
      assert.strictEqual((yield* post(served, "/api/children/echo/stop")).status, 200)
      const stopped = errorOf(yield* post(served, "/api/children/echo/reload"), 409, "OperationFailed")
      assert.match(stopped, /^Could not reload "echo": Supervisor "root" cannot reload child "echo": /)
      assert.strictEqual((yield* post(served, "/api/children/echo/start")).status, 200)
      const running = yield* pidOf(served, "echo")
      errorOf(yield* http(served, "/api/children/echo/reload", { method: "POST" }), 401, "Unauthorized")
      assert.strictEqual(yield* pidOf(served, "echo"), running)
      assert.notStrictEqual(running, before)
    }))

  it.scopedLive("the OpenAPI document: reload and scale under bearer, with their bodies and errors", () =>
    Effect.gen(function*() {
      const served = yield* serve({ children: [] })
      const doc = (yield* http(served, "/api/openapi.json")).json()
      for (const operation of ["reload", "scale"]) {
        const route = doc.paths[`/api/children/{id}/${operation}`].post
        assert.deepStrictEqual(route.security, [{ bearer: [] }], operation)
        assert.includeMembers(Object.keys(route.responses), ["200", "400", "401", "404", "409"], operation)
        assert.property(route.requestBody.content, "application/json", operation)
      }
      assert.isFalse(doc.paths["/api/children/{id}/reload"].post.requestBody.required, "a reload needs no body")
      assert.isTrue(doc.paths["/api/children/{id}/scale"].post.requestBody.required)
      const scale = doc.paths["/api/children/{id}/scale"].post.requestBody.content["application/json"].schema
      assert.strictEqual(scale.$ref, "#/components/schemas/ScaleBody")
      assert.deepStrictEqual(doc.components.schemas.ScaleBody.required, ["size"])
      assert.deepStrictEqual(doc.components.schemas.PoolView.required, ["size", "routing"])
      assert.strictEqual(doc.components.schemas.PoolView.properties.maxSize.type, "number")
    }))
})

/**
 * A broken store never stops supervision: real agents on PostgreSQL that is unreachable or goes away and comes
 * back, and on a SQLite file that is read-only or locked. Each keeps running, answering, restarting; the store
 * only logs warnings, and records again once it can.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as path from "node:path"
import * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as Store from "../../src/Store/Store.js"
import { agentConfig, TestLive } from "../support.js"
import {
  captureLog,
  captureStoreWarnings,
  closedPort,
  describeWithService,
  dropTables,
  hostAndPort,
  makeReadOnly,
  outageLines,
  pgUnavailable,
  pgUrl,
  pollUntil,
  readOnlyUnavailable,
  tallyOf,
  tcpProxy,
  tempDir,
  uniquePrefix,
  withHostAndPort
} from "./services.js"

const pidOf = (agent: AgentSupervisor.AgentSupervisor) =>
  Effect.map(agent.metadata, (m) => Option.getOrElse(m.pid, () => 0))

/** Runs `body` on a real echo agent over `store`, the agent stopped before the store closes. */
const supervise = <A, E>(
  name: string,
  store: Layer.Layer<Store.Store, unknown>,
  body: (
    agent: AgentSupervisor.AgentSupervisor,
    warnings: ReadonlyArray<string>
  ) => Effect.Effect<A, E, Store.Store | Scope.Scope>
) => {
  const capture = captureStoreWarnings()
  return Effect.gen(function*() {
    const agent = yield* AgentSupervisor.make(
      agentConfig("echo", { name, heartbeatInterval: "200 millis", restartBackoff: "100 millis" })
    )
    return yield* body(agent, capture.warnings)
  }).pipe(Effect.scoped, capture.provide, Effect.provide(Layer.merge(TestLive, store)))
}

/** Requests are answered, a manual restart and a crash (SIGKILL) are handled, all promptly. */
const keepsSupervising = (agent: AgentSupervisor.AgentSupervisor) =>
  Effect.gen(function*() {
    assert.strictEqual(yield* agent.state, "RUNNING")
    assert.strictEqual(yield* agent.handleEvent({ echo: "still here" }), "still here")

    const before = yield* pidOf(agent)
    const started = performance.now()
    yield* agent.restart
    assert.isBelow(performance.now() - started, 3000, "a manual restart is not held up by the store")
    assert.notStrictEqual(yield* pidOf(agent), before)

    const events = yield* agent.subscribe
    const killed = yield* pidOf(agent)
    process.kill(killed, "SIGKILL")
    yield* Queue.take(events).pipe(
      Effect.repeat({ until: (e) => e._tag === "StateChanged" && e.to === "RUNNING" }),
      Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("no restart after a crash") })
    )
    assert.notStrictEqual(yield* pidOf(agent), killed)
    assert.strictEqual(yield* agent.handleEvent({ echo: "after a crash" }), "after a crash")
    assert.strictEqual((yield* agent.metadata).restartCount, 1)
  })

const warned = (warnings: ReadonlyArray<string>, pattern: RegExp) =>
  pollUntil(`a store warning matching ${pattern}`, Effect.sync(() => warnings.some((w) => pattern.test(w))))

const pgDown = await pgUnavailable()

/**
 * How long a state may take to reach the database. Connecting and migrating a store takes seconds on a loaded
 * machine; what these tests claim is that the state gets there, not how fast.
 */
const recordWithin = "30 seconds"

describe.sequential("a supervisor on PostgreSQL", () => {
  it.scopedLive("keeps supervising when the database is unreachable from the start", () =>
    Effect.gen(function*() {
      const url = withHostAndPort(pgUrl, "127.0.0.1", yield* closedPort())
      yield* supervise("pg-unreachable", Store.layerPg({ url: Redacted.make(url) }), (agent, warnings) =>
        Effect.gen(function*() {
          yield* keepsSupervising(agent)
          yield* warned(warnings, /Store outage started.*\w+ failed.*ECONNREFUSED/)
        }))
    }))

  describeWithService("PostgreSQL stopped, then back", pgDown, () => {
    it.scopedLive(
      "keeps supervising while it is gone, and records again once it is back",
      () =>
        Effect.gen(function*() {
          const proxy = yield* tcpProxy(hostAndPort(pgUrl))
          const tablePrefix = yield* Effect.acquireRelease(Effect.sync(uniquePrefix), dropTables)
          // The store under test goes through the proxy; the test looks at the tables directly.
          const viaProxy = Store.layerPg({
            url: Redacted.make(withHostAndPort(pgUrl, "127.0.0.1", proxy.port)),
            tablePrefix,
            retryAfter: "200 millis"
          })
          // Not resilient: no timeout turns a slow read into an empty answer; a read that fails (the two stores
          // migrating at once, say) is "not recorded yet" to a poll, and fails an assertion made once.
          const direct = Context.get(
            yield* Layer.build(Store.layerPg({ url: Redacted.make(pgUrl), tablePrefix })),
            Store.Store
          )
          const name = "pg-comes-back"
          const recorded = (pid: number) =>
            direct.getState(name).pipe(
              Effect.map((s) => Option.isSome(s) && s.value.state === "RUNNING" && s.value.pid === pid),
              Effect.orElseSucceed(() => false)
            )

          yield* supervise(name, viaProxy, (agent, warnings) =>
            Effect.gen(function*() {
              const first = yield* pidOf(agent)
              yield* pollUntil("the first state is recorded", recorded(first), recordWithin)

              yield* proxy.cut
              yield* keepsSupervising(agent)
              yield* warned(warnings, /Store outage started.*\w+ failed/)
              // Nothing reached the database meanwhile: it still holds the state from before the cut.
              assert.isTrue(yield* recorded(first))

              yield* proxy.restore
              const back = Date.now()
              yield* pollUntil(
                "health checks are recorded again",
                direct.listMetrics({ agent: name, event: "supervisor_health_check", since: back }).pipe(
                  Effect.map((m) => m.length > 0),
                  Effect.orElseSucceed(() => false)
                ),
                recordWithin
              )
              // The state reached during the outage is written once the database answers: no transition needed.
              yield* pollUntil(
                "the state reached during the outage is recorded",
                Effect.flatMap(pidOf(agent), recorded),
                recordWithin
              )
              yield* agent.restart
              yield* pollUntil(
                "the state after the restart is recorded",
                Effect.flatMap(pidOf(agent), recorded),
                recordWithin
              )
              const history = yield* direct.restartHistory(name)
              assert.isTrue(history.length <= 1, "the crash during the outage was not recorded")
            }))
        }),
      120_000
    )

    it.scopedLive("an outage is logged once when it starts, summarised while it lasts, once when it ends", () => {
      const log = captureLog()
      return Effect.gen(function*() {
        const proxy = yield* tcpProxy(hostAndPort(pgUrl))
        const tablePrefix = yield* Effect.acquireRelease(Effect.sync(uniquePrefix), dropTables)
        const backend = Context.get(
          yield* Layer.build(Store.layerPg({
            url: Redacted.make(withHostAndPort(pgUrl, "127.0.0.1", proxy.port)),
            tablePrefix,
            retryAfter: "100 millis"
          })),
          Store.Store
        )
        const interval = 300
        const store = yield* Store.resilient(backend, { summaryInterval: `${interval} millis` })
        const tick = (i: number) => ({ event: "tick", agent_name: "pg-outage", timestamp: Date.now(), i })
        const write = (i: number) => store.saveMetric(tick(i))
        // Connected before the cut (and without the wrapper, so that its timeout cannot fail this on a slow machine).
        yield* backend.saveMetric(tick(0))

        yield* proxy.cut
        const started = Date.now()
        // Hundreds of writes, as agents' health checks and transitions would make them: one warning in all.
        for (let i = 1; i <= 400; i++) {
          yield* write(i)
          if (i % 10 === 0) yield* Effect.sleep("40 millis")
        }
        const cut = outageLines(log.lines)
        assert.strictEqual(cut.started.length, 1, cut.started.join("\n"))
        assert.match(cut.started[0], /ECONNREFUSED|unavailable|terminated/)
        assert.isAtLeast(cut.summaries.length, 1)
        assert.isAtMost(cut.summaries.length, Math.floor((Date.now() - started) / interval))
        assert.strictEqual(cut.ended.length, 0)

        yield* proxy.restore
        let i = 400
        yield* pollUntil(
          "the store is back",
          Effect.map(write(++i), () => outageLines(log.lines).ended.length > 0),
          recordWithin
        )
        const elapsed = Date.now() - started
        for (let j = 0; j < 20; j++) yield* write(++i)
        const { ended, started: starts, summaries } = outageLines(log.lines)
        assert.strictEqual(starts.length, 1)
        assert.strictEqual(ended.length, 1)
        assert.isAtMost(summaries.length, Math.floor(elapsed / interval))
        // Every failure of this wrapper belongs to this outage, and all of them were writes.
        const failures = yield* store.failures
        assert.isAtLeast(failures, 400)
        assert.deepStrictEqual(tallyOf(ended[0]), { failed: failures, writes: failures, reads: 0 })
        assert.strictEqual(log.lines.length, 2 + summaries.length, log.lines.map((l) => l.message).join("\n"))
      }).pipe(log.provide)
    }, 120_000)
  })
})

const readOnlyDown = readOnlyUnavailable()

/** A SQLite file with the store's tables and one state in it, written by an earlier run. */
const preparedFile = (name: string) =>
  Effect.gen(function*() {
    const filename = path.join(yield* tempDir("sqlite"), "agents.sqlite")
    yield* Effect.flatMap(
      Store.Store,
      (store) => store.saveState({ agent_name: name, state: "STOPPED", restart_count: 4, updated_at: 1000 })
    ).pipe(Effect.provide(Store.layerSqlite({ filename })))
    return filename
  })

describe.sequential("a supervisor on SQLite", () => {
  describeWithService("a read-only file", readOnlyDown, () => {
    it.scopedLive("keeps supervising and warns; the earlier run's state still reads back", () =>
      Effect.gen(function*() {
        const name = "sqlite-read-only"
        const filename = yield* preparedFile(name)
        const readOnly = makeReadOnly(filename)
        if (typeof readOnly === "string") return assert.fail(readOnly)
        yield* Effect.addFinalizer(() => Effect.sync(readOnly.undo))

        const layer = Store.layerSqlite({ filename })
        const restored = yield* Effect.provide(Store.restore(name), Layer.merge(TestLive, layer))
        assert.deepStrictEqual(Option.map(restored.state, (s) => s.state), Option.some("STOPPED"))
        assert.strictEqual(restored.restartCount, 4)

        yield* supervise(name, layer, (agent, warnings) =>
          Effect.gen(function*() {
            yield* keepsSupervising(agent)
            yield* warned(warnings, /Store outage started.*\w+ failed.*readonly/)
          }))
      }))
  })

  it.scopedLive("a locked file: keeps supervising and warns, then records once the lock is gone", () =>
    Effect.gen(function*() {
      const name = "sqlite-locked"
      const filename = yield* preparedFile(name)
      // Another connection holds the write lock until it commits.
      const locker = yield* SqliteClient.make({ filename }).pipe(
        Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make)
      )
      yield* locker.unsafe("BEGIN EXCLUSIVE")

      yield* supervise(
        name,
        Store.layerSqlite({ filename, retryAfter: "200 millis" }),
        (agent, warnings) =>
          Effect.gen(function*() {
            yield* keepsSupervising(agent)
            yield* warned(warnings, /Store outage started.*\w+ failed.*database is locked/)

            yield* locker.unsafe("COMMIT")
            const store = yield* Store.resilient(yield* Store.Store)
            const recorded = Effect.flatMap(pidOf(agent), (pid) =>
              Effect.map(store.getState(name), (s) =>
                Option.isSome(s) && s.value.state === "RUNNING" && s.value.pid === pid))
            yield* pollUntil("the state reached while locked is recorded once the lock is gone", recorded)
            yield* agent.restart
            yield* pollUntil("the state after a restart is recorded", recorded)
          })
      )
    }))
})

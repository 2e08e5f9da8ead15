/**
 * The PostgreSQL store's client (`@effect/sql-pg`'s pool) and the gate that keeps its operations from queueing
 * in the pool.
 *
 * @internal
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import * as Store from "../Store.js"
import type { PgSettings } from "./options.js"
import * as sqlStore from "./sqlStore.js"

/**
 * A first-come first-served semaphore. Not Effect's `Semaphore`: its release wakes every waiter, each of which
 * but one goes back to wait, so with hundreds of operations waiting (an agent each) every write costs hundreds
 * of wake-ups; here a release hands the permit to the oldest waiter alone.
 */
const makeGate = (permits: number) => {
  let free = permits
  // A `Set` keeps insertion order: the first entry is the oldest waiter, and an interrupted one leaves in O(1).
  const waiting = new Set<Deferred.Deferred<void>>()
  const release = () => {
    const next = waiting.values().next()
    if (next.done === true) {
      free++
      return
    }
    waiting.delete(next.value)
    Deferred.unsafeDone(next.value, Exit.void)
  }
  const acquire = Effect.fiberIdWith((fiberId) => {
    if (free > 0) {
      free--
      return Effect.void
    }
    const turn = Deferred.unsafeMake<void>(fiberId)
    waiting.add(turn)
    return Deferred.await(turn).pipe(
      // Interrupted while waiting, or just after being handed the permit: then it goes to the next waiter.
      Effect.onInterrupt(() => Effect.sync(() => waiting.delete(turn) || release()))
    )
  })
  return <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(restore(acquire), Effect.ensuring(restore(effect), Effect.sync(release)))
    )
}

/**
 * Lets at most `permits` operations of `store` run at once; the others wait their turn, with no timeout of their
 * own (the caller bounds the wait: `Store.resilient`'s timeout).
 *
 * Why: `pg`'s pool bounds the wait for a free connection by `connectTimeout` as well, and fails the query when
 * it runs out. Hundreds of agents writing at once on a busy machine then find a healthy server "unavailable",
 * and the store holds off for `retryAfter`, dropping every write meanwhile. Each operation of the SQL store uses
 * one connection at a time, so with as many permits as the pool has connections no query waits in the pool, and
 * `connectTimeout` bounds connecting only.
 */
const gated = (store: Store.Store["Type"], permits: number): Effect.Effect<Store.Store["Type"]> =>
  Effect.sync(() => {
    const gate = makeGate(permits)
    return Store.Store.of({
      saveState: (record) => gate(store.saveState(record)),
      saveMetric: (event) => gate(store.saveMetric(event)),
      ...(store.saveMetrics !== undefined ? { saveMetrics: (events) => gate(store.saveMetrics!(events)) } : {}),
      recordRestart: (record) => gate(store.recordRestart(record)),
      getState: (agent) => gate(store.getState(agent)),
      listMetrics: (query) => gate(query === undefined ? store.listMetrics() : store.listMetrics(query)),
      restartHistory: (agent) => gate(agent === undefined ? store.restartHistory() : store.restartHistory(agent)),
      ...gatedChildren(store, gate),
      ...gatedCheckpoints(store, gate),
      ...gatedTasks(store, gate)
    })
  })

/** The child operations of `store`, those it has, behind the gate. */
const gatedChildren = (
  store: Store.Store["Type"],
  gate: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
): Pick<Store.Store["Type"], "saveChild" | "deleteChild" | "listChildren"> => {
  const { deleteChild, listChildren, saveChild } = store
  return {
    ...(saveChild !== undefined ? { saveChild: (record) => gate(saveChild(record)) } : {}),
    ...(deleteChild !== undefined ? { deleteChild: (supervisor, id) => gate(deleteChild(supervisor, id)) } : {}),
    ...(listChildren !== undefined
      ? { listChildren: (supervisor) => gate(supervisor === undefined ? listChildren() : listChildren(supervisor)) }
      : {})
  }
}

/** The checkpoint operations of `store` (and forgetting an agent), those it has, behind the gate. */
const gatedCheckpoints = (
  store: Store.Store["Type"],
  gate: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
): Pick<Store.Store["Type"], "saveCheckpoint" | "loadCheckpoint" | "deleteAgent"> => {
  const { deleteAgent, loadCheckpoint, saveCheckpoint } = store
  return {
    ...(saveCheckpoint !== undefined ? { saveCheckpoint: (record) => gate(saveCheckpoint(record)) } : {}),
    ...(loadCheckpoint !== undefined ? { loadCheckpoint: (agent) => gate(loadCheckpoint(agent)) } : {}),
    ...(deleteAgent !== undefined ? { deleteAgent: (agent) => gate(deleteAgent(agent)) } : {})
  }
}

/** The task operations of `store`, those it has, behind the gate. */
const gatedTasks = (
  store: Store.Store["Type"],
  gate: <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
): Pick<Store.Store["Type"], "saveTask" | "getTask" | "listTasks" | "deleteTask"> => {
  const { deleteTask, getTask, listTasks, saveTask } = store
  return {
    ...(saveTask !== undefined ? { saveTask: (record) => gate(saveTask(record)) } : {}),
    ...(getTask !== undefined ? { getTask: (taskId) => gate(getTask(taskId)) } : {}),
    ...(listTasks !== undefined
      ? { listTasks: (query) => gate(query === undefined ? listTasks() : listTasks(query)) }
      : {}),
    ...(deleteTask !== undefined ? { deleteTask: (taskId) => gate(deleteTask(taskId)) } : {})
  }
}

/** The PostgreSQL store on decoded settings: see `Store/Pg.ts`'s `make`. */
export const make = (settings: PgSettings): Effect.Effect<Store.Store["Type"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const acquire = PgClient.make({
      applicationName: "effect-agent-supervisor",
      ...settings.client,
      connectTimeout: settings.client.connectTimeout ?? Duration.seconds(2)
    }).pipe(Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make))
    const store = yield* sqlStore.make(acquire, settings.sql)
    return yield* gated(store, settings.maxConnections)
  })

/**
 * The PostgreSQL store: the SQL store on a PostgreSQL server, through `@effect/sql-pg`. For several
 * applications sharing one store, or a store that must outlive the machine.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Config from "effect/Config"
import type * as ConfigErrorEffect from "effect/ConfigError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { ConfigError } from "../Errors.js"
import * as Sql from "./Sql.js"
import * as Store from "./Store.js"

/**
 * Options of the PostgreSQL store: where the server is (`url`, or `host`, `port`, `database`, `username`,
 * `password`...), the pool, and the SQL store's table prefix and retention.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgOptions extends
  Sql.Options,
  // Name transforms would rename the store's own columns: not offered.
  Omit<PgClient.PgClientConfig, "transformResultNames" | "transformQueryNames" | "transformJson" | "types">
{}

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
      recordRestart: (record) => gate(store.recordRestart(record)),
      getState: (agent) => gate(store.getState(agent)),
      listMetrics: (query) => gate(query === undefined ? store.listMetrics() : store.listMetrics(query)),
      restartHistory: (agent) => gate(agent === undefined ? store.restartHistory() : store.restartHistory(agent))
    })
  })

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

/** `pg`'s own default pool size. */
const defaultMaxConnections = 10

/**
 * Makes the PostgreSQL store. The server is reached on first use and reconnected after failures by the pool;
 * `connectTimeout` (2 seconds by default) bounds each connection attempt, so a vanished server costs a write
 * that long at most. At most `maxConnections` operations (10 by default) run at once: the others wait for a
 * connection in turn rather than fail when the pool is busy.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: PgOptions): Effect.Effect<Store.Store["Type"], ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const [own, client] = Sql.splitOptions(options)
    const acquire = PgClient.make({
      applicationName: "effect-agent-supervisor",
      ...client,
      connectTimeout: client.connectTimeout ?? Duration.seconds(2)
    }).pipe(Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make))
    const store = yield* Sql.makeLazy(acquire, own)
    // `pg` takes any falsy `max` for its default.
    const maxConnections = client.maxConnections !== undefined && client.maxConnections >= 1
      ? Math.floor(client.maxConnections)
      : defaultMaxConnections
    return yield* gated(store, maxConnections)
  })

/**
 * The PostgreSQL store as a layer. Building it never connects: a server that is down shows up as warnings from
 * the supervisor's writes, never as a failure, and the store records again once the server is back.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerPg({ url: Redacted.make("postgres://app@db:5432/agents"), maxMetrics: 1_000_000 })
 * ```
 */
export const layer = (options: PgOptions): Layer.Layer<Store.Store, ConfigError> =>
  Layer.scoped(Store.Store, make(options))

/**
 * The PostgreSQL store with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const StoreLive = Store.layerPgConfig({ url: Config.redacted("DATABASE_URL") })
 * ```
 */
export const layerConfig = (
  config: Config.Config.Wrap<PgOptions>
): Layer.Layer<Store.Store, ConfigError | ConfigErrorEffect.ConfigError> =>
  Layer.scoped(Store.Store, Effect.flatMap(Config.unwrap(config), make))

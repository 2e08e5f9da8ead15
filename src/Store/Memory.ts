/**
 * The in-memory store backend: bounded, lost when the process ends. The default when no `Store` is provided.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Store from "./Store.js"

/**
 * Options of the in-memory store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How many metrics to keep; past it the oldest are dropped. 10 000 by default. */
  readonly maxMetrics?: number | undefined
  /** How many restart records to keep; past it the oldest are dropped. 1 000 by default. */
  readonly maxRestarts?: number | undefined
}

interface Contents {
  readonly states: HashMap.HashMap<string, Store.StateRecord>
  /** Oldest first, in write order. */
  readonly metrics: Chunk.Chunk<Store.MetricEvent>
  /** Oldest first, in write order. */
  readonly restarts: Chunk.Chunk<Store.RestartRecord>
}

const bound = (value: number | undefined, fallback: number): number =>
  value === undefined || Number.isNaN(value) ? fallback : Math.max(0, Math.floor(value))

const append = <A>(log: Chunk.Chunk<A>, item: A, max: number): Chunk.Chunk<A> => {
  const next = Chunk.append(log, item)
  return Chunk.size(next) > max ? Chunk.drop(next, Chunk.size(next) - max) : next
}

/** Newest first: by timestamp, descending, and among equal timestamps the later write first. */
const newestFirst = <A extends { readonly timestamp: number }>(
  log: Chunk.Chunk<A>,
  keep: (item: A) => boolean
): Array<A> => {
  const items = Chunk.toReadonlyArray(log)
  const selected: Array<A> = []
  for (let i = items.length - 1; i >= 0; i--) {
    if (keep(items[i])) selected.push(items[i])
  }
  // Stable: equal timestamps keep the later-write-first order built above.
  return selected.sort((a, b) => b.timestamp - a.timestamp)
}

/**
 * Makes an in-memory store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<Store.Store["Type"]> =>
  Effect.gen(function*() {
    const maxMetrics = bound(options?.maxMetrics, 10_000)
    const maxRestarts = bound(options?.maxRestarts, 1_000)
    const contents = yield* Ref.make<Contents>({
      states: HashMap.empty(),
      metrics: Chunk.empty(),
      restarts: Chunk.empty()
    })

    return Store.Store.of({
      saveState: (record) =>
        Ref.update(contents, (c) => ({ ...c, states: HashMap.set(c.states, record.agent_name, record) })),
      saveMetric: (event) => Ref.update(contents, (c) => ({ ...c, metrics: append(c.metrics, event, maxMetrics) })),
      recordRestart: (record) =>
        Ref.update(contents, (c) => ({ ...c, restarts: append(c.restarts, record, maxRestarts) })),
      getState: (agent) => Effect.map(Ref.get(contents), (c) => HashMap.get(c.states, agent)),
      listMetrics: (query) =>
        Effect.map(Ref.get(contents), (c) => {
          const limit = bound(query?.limit, Store.defaultMetricLimit)
          const selected = newestFirst(c.metrics, (event) =>
            (query?.agent === undefined || event.agent_name === query.agent) &&
            (query?.event === undefined || event.event === query.event) &&
            (query?.since === undefined || event.timestamp >= query.since))
          return selected.length > limit ? selected.slice(0, limit) : selected
        }),
      restartHistory: (agent) =>
        Effect.map(
          Ref.get(contents),
          (c) => newestFirst(c.restarts, (record) => agent === undefined || record.agent_name === agent)
        )
    })
  })

/**
 * The in-memory store as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Store.Store> => Layer.effect(Store.Store, make(options))

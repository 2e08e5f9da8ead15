/**
 * Metric hooks of one labelled series, resolved once in Effect's global registry and kept: for instruments updated
 * with plain calls (the store's failures, the topics' tasks), where a lookup per update would cost more than the
 * update itself.
 *
 * An agent's series (those labelled `agent`) live while the agent does: each supervised agent holds its name for its
 * life ({@link retainAgent}, {@link releaseAgent}), and when the last holder of a name lets it go, the series of
 * that name leave Effect's registry, so `/metrics` and the exporters stop serving them and a tree that starts and
 * deletes agents under new names does not grow the registry for ever (Prometheus's way for a target that is gone:
 * its series end; a counter made again starts from 0, which `rate` reads as a reset). A series asked for under a
 * name that no agent holds is a detached hook, counted nowhere.
 *
 * Effect 3's registry has no removal: this reaches its map (`MetricRegistryImpl.map`, a `MutableHashMap`), and
 * where a later Effect has none, series are kept as before (`test/Metrics.test.ts` fails then).
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import * as MutableHashMap from "effect/MutableHashMap"

type Labels = ReadonlyArray<readonly [string, string]>

const counters = new Map<string, MetricHook.MetricHook.Counter<number>>()
const gauges = new Map<string, MetricHook.MetricHook.Gauge<number>>()
const histograms = new Map<string, MetricHook.MetricHook.Histogram>()

const idOf = (name: string, labels: Labels) =>
  `${name}\u0000${labels.map(([label, value]) => `${label}=${value}`).join("\u0000")}`

const tagged = <K extends MetricKey.MetricKey.Untyped>(key: K, labels: Labels) =>
  MetricKey.taggedWithLabels(key, labels.map(([name, value]) => MetricLabel.make(name, value)))

/** The label whose value names the agent a series belongs to. */
const AGENT_LABEL = "agent"

/** A name held by live agents, and the series made under it: where each is cached, and its key in the registry. */
interface Held {
  holders: number
  readonly series: Array<{ readonly cache: Map<string, unknown>; readonly id: string; readonly key: unknown }>
}

const held = new Map<string, Held>()

/** The registry's own map, where this Effect has one (see the module's comment). */
const registryMap = ((): MutableHashMap.MutableHashMap<unknown, unknown> | undefined => {
  const map = (Metric.globalMetricRegistry as unknown as { readonly map?: unknown }).map
  return typeof map === "object" && map !== null && Symbol.for("effect/MutableHashMap") in map
    ? map as MutableHashMap.MutableHashMap<unknown, unknown>
    : undefined
})()

/**
 * The agent `agent` lives: its series are made in the registry (they are detached hooks while no agent holds its
 * name). Agents of the same name in two trees share their series, and hold the name together. @internal
 */
export const retainAgent = (agent: string): void => {
  const entry = held.get(agent)
  if (entry === undefined) held.set(agent, { holders: 1, series: [] })
  else entry.holders++
}

/** An agent named `agent` is gone for good: the last one's going takes the name's series out of the registry. @internal */
export const releaseAgent = (agent: string): void => {
  const entry = held.get(agent)
  if (entry === undefined || --entry.holders > 0) return
  held.delete(agent)
  for (const { cache, id, key } of entry.series) {
    cache.delete(id)
    if (registryMap !== undefined) MutableHashMap.remove(registryMap, key)
  }
}

/** The agents whose names are held, and how many series each has in the registry (for tests). @internal */
export const heldAgents = (): ReadonlyMap<string, number> =>
  new Map([...held].map(([agent, entry]) => [agent, entry.series.length]))

/**
 * The hook of `key` with `labels` in `cache`: made by `register` the first time, or, for an agent's series while no
 * agent holds its name, by `detach` (a hook of no registry, not cached).
 */
const cached = <K extends MetricKey.MetricKey.Untyped, H>(
  cache: Map<string, H>,
  key: K,
  labels: Labels,
  register: (key: K) => H,
  detach: (key: K) => H
): H => {
  const id = idOf(key.name, labels)
  let hook = cache.get(id)
  if (hook !== undefined) return hook
  const agent = labels.find(([label]) => label === AGENT_LABEL)?.[1]
  const owner = agent === undefined ? undefined : held.get(agent)
  const full = tagged(key, labels) as K
  if (agent !== undefined && owner === undefined) return detach(full)
  hook = register(full)
  cache.set(id, hook)
  owner?.series.push({ cache: cache as Map<string, unknown>, id, key: full })
  return hook
}

const registry = Metric.globalMetricRegistry

/** The counter `key` with `labels`. @internal */
export const counter = (
  key: MetricKey.MetricKey.Counter<number>,
  labels: Labels
): MetricHook.MetricHook.Counter<number> =>
  cached(counters, key, labels, (k) => registry.getCounter(k), MetricHook.counter)

/** The gauge `key` with `labels`. @internal */
export const gauge = (
  key: MetricKey.MetricKey.Gauge<number>,
  labels: Labels
): MetricHook.MetricHook.Gauge<number> =>
  cached(gauges, key, labels, (k) => registry.getGauge(k), (k) => MetricHook.gauge(k, 0))

/** The histogram `key` with `labels`. @internal */
export const histogram = (
  key: MetricKey.MetricKey.Histogram,
  labels: Labels
): MetricHook.MetricHook.Histogram =>
  cached(histograms, key, labels, (k) => registry.getHistogram(k), MetricHook.histogram)

/**
 * Metric hooks of one labelled series, resolved once in Effect's global registry and kept: for instruments updated
 * with plain calls (the store's failures, the topics' tasks), where a lookup per update would cost more than the
 * update itself.
 *
 * An agent's series (those labelled `agent`) live while the agent does: each supervised agent holds its name for its
 * life ({@link retainAgent}, {@link releaseAgent}), and `REMOVAL_DELAY_MILLIS` after the last holder of a name let
 * it go (unless it is held again meanwhile, as a restarted nested tree's agents are), every series tagged with that
 * name leaves Effect's registry, so `/metrics` and the exporters stop serving them and a tree that starts and
 * deletes agents under new names does not grow the registry for ever (Prometheus's way for a target that is gone:
 * its series end; a counter made again starts from 0, which `rate` reads as a reset). Series under names no agent
 * holds (a nested tree's restarts, tagged with the tree's name) are kept, as before.
 *
 * Effect 3's registry has no removal: this reaches its map (`MetricRegistryImpl.map`, a `MutableHashMap`), and
 * where a later Effect has none, series are kept as before (`test/Metrics.test.ts` fails then).
 *
 * @internal
 */
import { globalValue } from "effect/GlobalValue"
import * as Metric from "effect/Metric"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import * as MutableHashMap from "effect/MutableHashMap"

type Labels = ReadonlyArray<readonly [string, string]>

const registry = Metric.globalMetricRegistry

// Shared by every copy of this module in the process, as the registry is: one copy's removal clears the others'.
const counters = globalValue(
  Symbol.for("effect-agent-supervisor/metrics/counters"),
  () => new Map<string, MetricHook.MetricHook.Counter<number>>()
)
const gauges = globalValue(
  Symbol.for("effect-agent-supervisor/metrics/gauges"),
  () => new Map<string, MetricHook.MetricHook.Gauge<number>>()
)
const histograms = globalValue(
  Symbol.for("effect-agent-supervisor/metrics/histograms"),
  () => new Map<string, MetricHook.MetricHook.Histogram>()
)

const idOf = (name: string, labels: Labels) =>
  `${name}\u0000${labels.map(([label, value]) => `${label}=${value}`).join("\u0000")}`

const tagged = <K extends MetricKey.MetricKey.Untyped>(key: K, labels: Labels) =>
  MetricKey.taggedWithLabels(key, labels.map(([name, value]) => MetricLabel.make(name, value)))

/** The label whose value names the agent a series belongs to. */
const AGENT_LABEL = "agent"

/**
 * How long the series of a name no agent holds any more stay (milliseconds): a name held again meanwhile keeps them,
 * with their counts. A nested tree that restarts, or a reload, makes its agents again under the same names within
 * this; a child deleted for good loses its series this long after. @internal
 */
export const REMOVAL_DELAY_MILLIS = 60_000

let removalDelayMillis = REMOVAL_DELAY_MILLIS

/** Sets the delay (for tests: 0 removes at the release itself); returns the one before. @internal */
export const setRemovalDelay = (millis: number): number => {
  const before = removalDelayMillis
  removalDelayMillis = millis
  return before
}

/** A name's holders (0 once released, while its removal waits), when it was released, and the series made under it. */
interface Held {
  holders: number
  releasedAt: number
  readonly series: Array<{ readonly cache: Map<string, unknown>; readonly id: string }>
}

// Shared by every copy of this module in the process, as Effect's registry is.
const held = globalValue(Symbol.for("effect-agent-supervisor/metrics/heldAgents"), () => new Map<string, Held>())
let sweepTimer: ReturnType<typeof setTimeout> | undefined

/** The registry's own map, where this Effect has one (see the module's comment). */
const registryMap = ((): MutableHashMap.MutableHashMap<MetricKey.MetricKey.Untyped, unknown> | undefined => {
  const map = (registry as unknown as { readonly map?: unknown }).map
  return typeof map === "object" && map !== null && Symbol.for("effect/MutableHashMap") in map
    ? map as MutableHashMap.MutableHashMap<MetricKey.MetricKey.Untyped, unknown>
    : undefined
})()

/**
 * Takes out the series of the names released at least the delay ago and not held since: from the caches, and every
 * key of the registry tagged with one of them (those made through `Metric.value` too), in one pass.
 */
const sweep = (): void => {
  sweepTimer = undefined
  const now = performance.now()
  const gone = new Set<string>()
  let next = Infinity
  for (const [agent, entry] of held) {
    if (entry.holders > 0) continue
    if (now - entry.releasedAt >= removalDelayMillis) gone.add(agent)
    else next = Math.min(next, entry.releasedAt + removalDelayMillis - now)
  }
  for (const agent of gone) {
    for (const { cache, id } of held.get(agent)!.series) cache.delete(id)
    held.delete(agent)
  }
  if (gone.size > 0 && registryMap !== undefined) {
    const keys: Array<MetricKey.MetricKey.Untyped> = []
    for (const [key] of registryMap) {
      for (const tag of key.tags) {
        if (tag.key === AGENT_LABEL && gone.has(tag.value)) keys.push(key)
      }
    }
    for (const key of keys) MutableHashMap.remove(registryMap, key)
  }
  if (next !== Infinity) {
    sweepTimer = setTimeout(sweep, Math.ceil(next))
    sweepTimer.unref?.()
  }
}

/**
 * An agent named `agent` lives: its series are kept in the registry while it does (and the delay after). Agents of
 * the same name in two trees share their series, and hold the name together. @internal
 */
export const retainAgent = (agent: string): void => {
  const entry = held.get(agent)
  if (entry === undefined) held.set(agent, { holders: 1, releasedAt: 0, series: [] })
  else entry.holders++
}

/**
 * An agent named `agent` is gone: when it was the last holder of the name, the name's series leave the registry
 * after the delay, unless the name is held again before. @internal
 */
export const releaseAgent = (agent: string): void => {
  const entry = held.get(agent)
  if (entry === undefined || --entry.holders > 0) return
  entry.releasedAt = performance.now()
  if (removalDelayMillis <= 0) return sweep()
  if (sweepTimer === undefined) {
    sweepTimer = setTimeout(sweep, removalDelayMillis)
    sweepTimer.unref?.()
  }
}

/** The hook of `key` with `labels` in `cache`, made by `make` the first time (noted under its agent's name). */
const cached = <K extends MetricKey.MetricKey.Untyped, H>(
  cache: Map<string, H>,
  key: K,
  labels: Labels,
  make: (key: K) => H
): H => {
  const id = idOf(key.name, labels)
  let hook = cache.get(id)
  if (hook === undefined) {
    hook = make(tagged(key, labels) as K)
    cache.set(id, hook)
    const agent = labels.find(([label]) => label === AGENT_LABEL)?.[1]
    if (agent !== undefined) held.get(agent)?.series.push({ cache: cache as Map<string, unknown>, id })
  }
  return hook
}

/** The counter `key` with `labels`. @internal */
export const counter = (
  key: MetricKey.MetricKey.Counter<number>,
  labels: Labels
): MetricHook.MetricHook.Counter<number> => cached(counters, key, labels, (k) => registry.getCounter(k))

/** The gauge `key` with `labels`. @internal */
export const gauge = (
  key: MetricKey.MetricKey.Gauge<number>,
  labels: Labels
): MetricHook.MetricHook.Gauge<number> => cached(gauges, key, labels, (k) => registry.getGauge(k))

/** The histogram `key` with `labels`. @internal */
export const histogram = (
  key: MetricKey.MetricKey.Histogram,
  labels: Labels
): MetricHook.MetricHook.Histogram => cached(histograms, key, labels, (k) => registry.getHistogram(k))

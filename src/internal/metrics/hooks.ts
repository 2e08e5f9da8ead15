/**
 * Metric hooks of one labelled series, resolved once in Effect's global registry and kept: for instruments updated
 * with plain calls (the store's failures, the topics' tasks), where a lookup per update would cost more than the
 * update itself.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"

type Labels = ReadonlyArray<readonly [string, string]>

const counters = new Map<string, MetricHook.MetricHook.Counter<number>>()
const gauges = new Map<string, MetricHook.MetricHook.Gauge<number>>()
const histograms = new Map<string, MetricHook.MetricHook.Histogram>()

const idOf = (name: string, labels: Labels) =>
  `${name}\u0000${labels.map(([label, value]) => `${label}=${value}`).join("\u0000")}`

const tagged = <K extends MetricKey.MetricKey.Untyped>(key: K, labels: Labels) =>
  MetricKey.taggedWithLabels(key, labels.map(([name, value]) => MetricLabel.make(name, value)))

/** The hook of `key` with `labels` in `cache`, made by `make` the first time. */
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
  }
  return hook
}

/** The counter `key` with `labels`. @internal */
export const counter = (
  key: MetricKey.MetricKey.Counter<number>,
  labels: Labels
): MetricHook.MetricHook.Counter<number> =>
  cached(counters, key, labels, (tagged) => Metric.globalMetricRegistry.getCounter(tagged))

/** The gauge `key` with `labels`. @internal */
export const gauge = (
  key: MetricKey.MetricKey.Gauge<number>,
  labels: Labels
): MetricHook.MetricHook.Gauge<number> =>
  cached(gauges, key, labels, (tagged) => Metric.globalMetricRegistry.getGauge(tagged))

/** The histogram `key` with `labels`. @internal */
export const histogram = (
  key: MetricKey.MetricKey.Histogram,
  labels: Labels
): MetricHook.MetricHook.Histogram =>
  cached(histograms, key, labels, (tagged) => Metric.globalMetricRegistry.getHistogram(tagged))

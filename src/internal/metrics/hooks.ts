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

/** The counter `key` with `labels`. @internal */
export const counter = (
  key: MetricKey.MetricKey.Counter<number>,
  labels: Labels
): MetricHook.MetricHook.Counter<number> => {
  const id = idOf(key.name, labels)
  let hook = counters.get(id)
  if (hook === undefined) {
    hook = Metric.globalMetricRegistry.getCounter(tagged(key, labels))
    counters.set(id, hook)
  }
  return hook
}

/** The gauge `key` with `labels`. @internal */
export const gauge = (
  key: MetricKey.MetricKey.Gauge<number>,
  labels: Labels
): MetricHook.MetricHook.Gauge<number> => {
  const id = idOf(key.name, labels)
  let hook = gauges.get(id)
  if (hook === undefined) {
    hook = Metric.globalMetricRegistry.getGauge(tagged(key, labels))
    gauges.set(id, hook)
  }
  return hook
}

/** The histogram `key` with `labels`. @internal */
export const histogram = (
  key: MetricKey.MetricKey.Histogram,
  labels: Labels
): MetricHook.MetricHook.Histogram => {
  const id = idOf(key.name, labels)
  let hook = histograms.get(id)
  if (hook === undefined) {
    hook = Metric.globalMetricRegistry.getHistogram(tagged(key, labels))
    histograms.set(id, hook)
  }
  return hook
}

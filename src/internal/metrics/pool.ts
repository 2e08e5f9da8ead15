/**
 * A pool's gauges, tagged by the pool's path: its size (what `scale` set) and the calls in flight through it. Hooks
 * resolved once per pool in Effect's global registry, updated with plain calls on the request path.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import { keys } from "./definitions.js"

/** The gauges of the pool at `path`. @internal */
export const make = (path: string): { readonly size: (n: number) => void; readonly inFlight: (n: number) => void } => {
  const labels = [MetricLabel.make("pool", path)]
  const size = Metric.globalMetricRegistry.getGauge(MetricKey.taggedWithLabels(keys.poolSize, labels))
  const inFlight = Metric.globalMetricRegistry.getGauge(MetricKey.taggedWithLabels(keys.poolInFlight, labels))
  return { size: (n) => size.update(n), inFlight: (n) => inFlight.update(n) }
}

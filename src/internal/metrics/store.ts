/**
 * The store's instruments: failed operations (`Store.resilient`) and writes given up (the store writer). Not per
 * agent: a tree's agents share one writer and one store. Their series are few (an operation name and a reason
 * each), kept once resolved: during an outage every write fails, and a failure then costs a map lookup.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import { type DropReason, keys } from "./definitions.js"

const hooks = new Map<string, MetricHook.MetricHook.Counter<number>>()

const counter = (
  key: MetricKey.MetricKey.Counter<number>,
  labels: ReadonlyArray<readonly [string, string]>
): MetricHook.MetricHook.Counter<number> => {
  const id = `${key.name}\u0000${labels.map(([name, value]) => `${name}=${value}`).join("\u0000")}`
  let hook = hooks.get(id)
  if (hook === undefined) {
    hook = Metric.globalMetricRegistry.getCounter(
      MetricKey.taggedWithLabels(key, labels.map(([name, value]) => MetricLabel.make(name, value)))
    )
    hooks.set(id, hook)
  }
  return hook
}

/** A store operation failed (`timedOut`: it did not answer in time). @internal */
export const failed = (operation: string, timedOut: boolean): void =>
  counter(keys.storeFailures, [["operation", operation], ["reason", timedOut ? "timeout" : "failure"]]).update(1)

/** The store writer gave up on `count` writes. @internal */
export const dropped = (reason: DropReason, count: number): void => {
  if (count > 0) counter(keys.storeDrops, [["reason", reason]]).update(count)
}

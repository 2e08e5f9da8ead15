/**
 * The topics' metrics, tagged by topic: tasks published, delivered (succeeded), retried (attempts after the first),
 * dead-lettered, and the queue depth (published and not yet ended). Plain calls on hooks resolved once per series
 * in Effect's global registry, as the store's instruments are (`metrics/store.ts`).
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import { keys } from "../metrics/definitions.js"

type TaskEvent = "published" | "delivered" | "retried" | "dead_lettered"

const counters = new Map<string, MetricHook.MetricHook.Counter<number>>()
const gauges = new Map<string, MetricHook.MetricHook.Gauge<number>>()

const count = (topic: string, event: TaskEvent): void => {
  const id = `${topic}\u0000${event}`
  let hook = counters.get(id)
  if (hook === undefined) {
    hook = Metric.globalMetricRegistry.getCounter(
      MetricKey.taggedWithLabels(keys.topicTasks, [MetricLabel.make("topic", topic), MetricLabel.make("event", event)])
    )
    counters.set(id, hook)
  }
  hook.update(1)
}

/** @internal */
export const published = (topic: string): void => count(topic, "published")
/** @internal */
export const delivered = (topic: string): void => count(topic, "delivered")
/** @internal */
export const retried = (topic: string): void => count(topic, "retried")
/** @internal */
export const deadLettered = (topic: string): void => count(topic, "dead_lettered")

/** The topic's tasks published and not yet ended. @internal */
export const queued = (topic: string, depth: number): void => {
  let hook = gauges.get(topic)
  if (hook === undefined) {
    hook = Metric.globalMetricRegistry.getGauge(
      MetricKey.taggedWithLabels(keys.topicQueued, [MetricLabel.make("topic", topic)])
    )
    gauges.set(topic, hook)
  }
  hook.update(depth)
}

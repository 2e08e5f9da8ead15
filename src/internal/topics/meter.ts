/**
 * The topics' metrics, tagged by topic: tasks published, delivered (succeeded), retried (attempts after the first),
 * dead-lettered, and the queue depth (published and not yet ended). Plain calls on hooks resolved once per series
 * (`metrics/hooks.ts`).
 *
 * @internal
 */
import { keys } from "../metrics/definitions.js"
import { counter, gauge } from "../metrics/hooks.js"

type TaskEvent = "published" | "delivered" | "retried" | "dead_lettered"

const count = (topic: string, event: TaskEvent): void =>
  counter(keys.topicTasks, [["topic", topic], ["event", event]]).update(1)

/** @internal */
export const published = (topic: string): void => count(topic, "published")
/** @internal */
export const delivered = (topic: string): void => count(topic, "delivered")
/** @internal */
export const retried = (topic: string): void => count(topic, "retried")
/** @internal */
export const deadLettered = (topic: string): void => count(topic, "dead_lettered")

/** The topic's tasks published and not yet ended. @internal */
export const queued = (topic: string, depth: number): void => gauge(keys.topicQueued, [["topic", topic]]).update(depth)

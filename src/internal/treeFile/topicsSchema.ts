/**
 * The `topics` section of a tree file (`Supervisor.Options.topics`) and what agent and pool children add for topics
 * and development: the topics a child takes, and its `watch` mode. A topic's `retry` is code in the library (a
 * `Schedule`); a file writes it as data, `{ maxAttempts, backoff, factor }`, which {@link retrySchedule} turns into
 * the schedule.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Topic from "../../Topic.js"
import type * as TreeFile from "../../TreeFile.js"
import { toDuration } from "../durationText.js"
import * as Edge from "../schema.js"
import { optional, required, says } from "./storeSchema.js"

/** What a file's `retry` leaves out: the library's default retries (`Topic.TopicOptions.retry`). */
export const RETRY_DEFAULTS = { maxAttempts: 4, backoff: "100 millis", factor: 2 } as const

const whole = (min: number, message: string) =>
  Schema.Number.annotations(says(message)).pipe(
    Schema.filter((n) => Number.isSafeInteger(n) && n >= min, {
      message: () => message,
      jsonSchema: { type: "integer", minimum: min }
    })
  )

/** A duration longer than 0 (a topic's delivery timeout); editors see a duration. */
const Positive = Schema.transformOrFail(Edge.DurationInput, Schema.DurationFromSelf, {
  strict: true,
  decode: (duration, _, ast) =>
    Duration.greaterThan(duration, Duration.zero)
      ? ParseResult.succeed(duration)
      : ParseResult.fail(new ParseResult.Type(ast, duration, `must be a duration longer than 0, such as "30 seconds"`)),
  encode: ParseResult.succeed
})

const Retry = Schema.Struct({
  maxAttempts: optional(
    whole(1, "must be a whole number of 1 or more"),
    "Attempts of a task in all, the first included: maxAttempts - 1 retries (1: none). 4 by default."
  ),
  backoff: optional(Edge.DurationInput, "The delay before the first retry. 100 millis by default."),
  factor: optional(
    Schema.Number.annotations(says("must be a number of 1 or more")).pipe(
      Schema.filter((n) => Number.isFinite(n) && n >= 1, {
        message: () => "must be a number of 1 or more",
        jsonSchema: { type: "number", minimum: 1 }
      })
    ),
    "Each delay is the one before times factor (1: the same delay each time). 2 by default."
  )
}).annotations({
  title: "Retries",
  description: "When a failed delivery is tried again: after backoff, then backoff × factor, backoff × factor², ... " +
    "(Schedule.exponential(backoff, factor) for maxAttempts - 1 recurrences)."
})

const TopicSection = Schema.Struct({
  retry: optional(Retry, "When a failed delivery is tried again. 4 attempts, 100 millis apart, doubling, by default."),
  maxQueued: optional(
    whole(1, "must be a whole number of 1 or more"),
    "The most tasks published and not yet ended; past it publish fails (or waits, with backpressure). 1000 by default."
  ),
  backpressure: optional(
    Schema.Boolean.annotations(says("must be true or false")),
    "publish waits for room instead of failing when the topic is full. false by default."
  ),
  timeout: optional(Positive, "Each delivery's timeout. The subscriber's requestTimeout by default.")
}).annotations({ title: "Topic", description: "One topic's settings." })

/** `topics`: each topic's settings, by name. */
export const TopicsSection = Schema.Record({ key: Schema.String, value: TopicSection }).annotations({
  message: () => ({ message: "must be a mapping of topic names to their settings", override: false }),
  description: "Settings of the tree's topics (Supervisor.publish), by name; a topic not named has the defaults."
})

/** A child's `topics`: the topics whose tasks it takes. */
export const TopicNames = Schema.Array(
  Schema.String.pipe(Schema.minLength(1, { message: () => "must be a topic name (a non-empty string)" }))
).annotations({ message: () => ({ message: "must be a list of topic names", override: false }) })

/** A child's `watch`: development watch mode. */
export const WatchSection = Schema.Struct({
  paths: required(
    Schema.Array(Schema.String.pipe(Schema.minLength(1, { message: () => "must be a path" }))).annotations({
      message: () => ({ message: "must be a non-empty list of paths", override: false })
    }).pipe(Schema.minItems(1, { message: () => "must be a non-empty list of paths" })),
    "Files and directories (watched recursively), relative to this file's directory: a change reloads the child."
  ),
  debounce: optional(Edge.DurationInput, "The reload waits this long after the last change of a burst. 500 millis.")
}).annotations({
  title: "Watch",
  description: "Development watch mode: reload the child (Supervisor.reload) when a file under paths changes."
})

/** The fields every agent-like child (an agent of any kind, a pool) has for topics and watch mode. */
export const topicFields = {
  topics: optional(TopicNames, "The topics whose tasks this child takes (Supervisor.publish). None by default."),
  watch: optional(WatchSection, "Development watch mode: reload on a change of a file under paths. Off by default.")
}

/**
 * A file's `retry` as the `Schedule` the library runs: `Schedule.exponential(backoff, factor)` intersected with
 * `Schedule.recurs(maxAttempts - 1)`, each left out taking {@link RETRY_DEFAULTS} (the library's own default).
 */
export const retrySchedule = (retry: TreeFile.RetrySettings): Schedule.Schedule<unknown, unknown> =>
  Schedule.exponential(toDuration(retry.backoff ?? RETRY_DEFAULTS.backoff), retry.factor ?? RETRY_DEFAULTS.factor).pipe(
    Schedule.intersect(Schedule.recurs((retry.maxAttempts ?? RETRY_DEFAULTS.maxAttempts) - 1))
  )

/** A file's topic settings as `Supervisor.Options.topics` takes them. */
export const toTopicOptions = (settings: TreeFile.TopicSettings): Topic.TopicOptions => {
  const { retry, ...rest } = settings
  return retry === undefined ? rest : { ...rest, retry: retrySchedule(retry) }
}

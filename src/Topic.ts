/**
 * Topics: agents hand work to each other through the tree, with retries and a dead-letter list (OmniDaemon's event
 * bus, in process). A child spec subscribes to topics (`topics: ["document.uploaded"]`, on `Supervisor.agent` and
 * `Supervisor.pool`); `Supervisor.publish(topic, payload)` makes a task, delivers it to one subscriber (the one with
 * the fewest of the topic's tasks in flight, a RUNNING one first) or, with `fanout`, to every subscriber, and gives
 * its id; `awaitResult(id)` gives its outcome. A delivery that fails is retried on the topic's `Schedule`; after
 * the last attempt the task is dead-lettered: kept in the `Store` with each attempt's error, listed by
 * `deadLetters`, and sent again by `republish`. An agent publishes from inside its callback (protocol 1.2
 * `publish`: the adapters' `ctx.publish`), so one agent's output is another's input with no application between.
 *
 * @since 0.1.0
 */
import type * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { TypeId } from "./Errors.js"
import type { DurationInput } from "./internal/durationText.js"
import { TASK_BOUNDS } from "./Store/internal/taskBounds.js"

/**
 * A topic's settings (`Supervisor.Options.topics`); a topic not listed has the defaults.
 *
 * @since 0.1.0
 * @category models
 */
export interface TopicOptions {
  /**
   * When a failed delivery is tried again: a `Schedule` over the delivery's error (its output is ignored). 3
   * retries by default, 100 ms apart and doubling (`Schedule.exponential("100 millis")` for 3 recurrences). An
   * attempt that fails with the subscriber's `ConfigError` (a bad per-call option) is not retried.
   */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /**
   * The most tasks of the topic published and not yet ended (delivering, retrying, or waiting for a subscriber):
   * 1,000 by default. Past it `publish` fails with a `TopicError` (`full`), or, with `backpressure`, waits for room.
   */
  readonly maxQueued?: number | undefined
  /** `publish` waits for room instead of failing when the topic is full. `false` by default. */
  readonly backpressure?: boolean | undefined
  /** Each delivery's timeout: the subscriber's `requestTimeout` by default. */
  readonly timeout?: DurationInput | undefined
}

/**
 * A topic of a tree as `Supervisor.topics` lists it.
 *
 * @since 0.1.0
 * @category models
 */
export interface TopicInfo {
  readonly name: string
  /** Declared in the tree's `topics` (its settings given), as opposed to known only from its children or tasks. */
  readonly declared: boolean
  /** The paths of the children that take it (`"root/workers/summarizer"`), running or not, in the order added. */
  readonly subscribers: ReadonlyArray<string>
  /** Its tasks published and not yet ended (delivering, retrying, or waiting for a subscriber). */
  readonly queued: number
}

/**
 * Options of one `publish`.
 *
 * @since 0.1.0
 * @category models
 */
export interface PublishOptions {
  /**
   * Deliver to every subscriber (each retried on its own) instead of one: the task succeeds with an object of each
   * subscriber's result by its path once all succeed, and is dead-lettered once one is out of attempts.
   */
  readonly fanout?: boolean | undefined
  /** This task's retries, instead of the topic's. */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
  /** This task's delivery timeout, instead of the topic's. */
  readonly timeout?: DurationInput | undefined
}

/**
 * How a task ended, as `results` streams them.
 *
 * @since 0.1.0
 * @category models
 */
export type TaskOutcome =
  | {
    readonly _tag: "Succeeded"
    readonly taskId: string
    readonly topic: string
    readonly result: unknown
    readonly attempts: number
  }
  | {
    readonly _tag: "DeadLettered"
    readonly taskId: string
    readonly topic: string
    readonly attempts: number
    readonly errors: ReadonlyArray<TaskAttemptError>
  }

/**
 * One failed attempt of a task: which (1-based), when (epoch milliseconds), the subscriber that failed it (its
 * path), and the error's tag and message.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskAttemptError {
  readonly attempt: number
  readonly at: number
  readonly child: string
  readonly tag: string
  readonly message: string
}

/**
 * `awaitResult`'s failure for a task that was dead-lettered: its attempts and their errors (`republish` sends it
 * again).
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskFailedError extends Schema.TaggedError<TaskFailedError>("effect-agent-supervisor/TaskFailedError")(
  "TaskFailedError",
  {
    taskId: Schema.String,
    topic: Schema.String,
    attempts: Schema.Number,
    errors: Schema.Array(Schema.Struct({
      attempt: Schema.Number,
      at: Schema.Number,
      child: Schema.String,
      tag: Schema.String,
      message: Schema.String
    }))
  }
) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    const last = this.errors[this.errors.length - 1]
    return `Task ${this.taskId} of topic "${this.topic}" failed ${this.attempts} time(s) and was dead-lettered` +
      (last === undefined ? "" : `; last: ${last.child}: ${last.tag}: ${last.message}`)
  }
  /** @since 0.1.0 */
  get remediation(): string {
    return "Read each attempt's error (errors); fix the subscriber or the payload, then republish the task " +
      "(republish reads it from the store: every built-in store keeps task records)."
  }
}

/**
 * A topic operation refused: `full` (the topic holds `maxQueued` tasks), `not_found` (no task of that id in flight
 * or in the store: it never was, or its record was pruned; its `topic` is `""`, unknown), `not_dead` (`republish`
 * of a task that is not in the dead letters), `stopped` (the tree has stopped), `unencodable` (`publish` of a
 * payload JSON cannot encode, a BigInt or a cycle, say: no subscriber could be sent it nor the store keep it;
 * `detail` says why).
 *
 * @since 0.1.0
 * @category errors
 */
export class TopicError extends Schema.TaggedError<TopicError>("effect-agent-supervisor/TopicError")("TopicError", {
  topic: Schema.String,
  reason: Schema.Literal("full", "not_found", "not_dead", "stopped", "unencodable"),
  taskId: Schema.optionalWith(Schema.String, { exact: true }),
  maxQueued: Schema.optionalWith(Schema.Number, { exact: true }),
  detail: Schema.optionalWith(Schema.String, { exact: true })
}) {
  /** @since 0.1.0 */
  readonly [TypeId]: TypeId = TypeId
  /** @since 0.1.0 */
  get message(): string {
    switch (this.reason) {
      case "full":
        return `Topic "${this.topic}" is full: ${this.maxQueued} tasks published and not yet ended`
      case "not_found":
        return `No task ${this.taskId}${
          this.topic === "" ? "" : ` of topic "${this.topic}"`
        }: neither in flight nor in the store`
      case "not_dead":
        return `Task ${this.taskId} is not in the dead letters`
      case "stopped":
        return `The tree has stopped: topic "${this.topic}" takes no task`
      case "unencodable":
        return `Topic "${this.topic}" takes no task whose payload cannot be sent as JSON: ${this.detail}`
    }
  }
  /** @since 0.1.0 */
  get remediation(): string {
    switch (this.reason) {
      case "full":
        return "Publish more slowly, raise the topic's maxQueued, add subscribers, or set backpressure to wait."
      case "not_found":
        return `Check the id; ${TASK_BOUNDS}.`
      case "not_dead":
        return "Only a dead-lettered task is republished; awaitResult tells how a task ended."
      case "stopped":
        return "Publish to a running tree."
      case "unencodable":
        return "Publish a payload JSON can encode: no BigInt (send it as a string), no cycle, no function."
    }
  }
}

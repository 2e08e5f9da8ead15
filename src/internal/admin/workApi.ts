/**
 * The admin API's contract for sending work to a running tree (`POST /api/children/ID/call`, `POST
 * /api/topics/NAME/publish`): the bodies, the answers, and the errors of a call that only these two have (the agent's
 * own error answer, a timeout, a full topic). The group itself is in `api.ts`, with the errors every route shares.
 *
 * @internal
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { TASK_BOUNDS } from "../../Store/internal/taskBounds.js"
import type { TopicInfo } from "../../Topic.js"
import { DURATION_TEXT_PATTERN, fromTyped } from "../durationText.js"
import { decodeDurationInput } from "../schema.js"

/**
 * The largest body of a call or a publish, whose payload goes to an agent: the protocol's longest line by default
 * (an agent's `maxMessageBytes`, 16 MiB), which no larger payload would pass. The other calls take 64 KiB.
 */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024

/** What a duration given as text or milliseconds must be, with what was given (`not "soon"`). */
export const notADuration = (input: unknown): string =>
  `must be milliseconds or a duration ("30 seconds", "30s"), not ${JSON.stringify(input)}`

/** Why `input` is no timeout (the library's rules for a duration, and more than 0), or `undefined`. */
export const timeoutProblem = (input: unknown): string | undefined => {
  const decoded = decodeDurationInput(input)
  if (Either.isLeft(decoded)) return notADuration(input)
  return Duration.toMillis(decoded.right) > 0 ? undefined : "must be longer than 0"
}

/** A timeout of a decoded body (its filter has checked it) as the library takes it. */
export const durationOf = (input: string | number): Duration.Duration =>
  Either.getOrElse(decodeDurationInput(input), () => Duration.zero)

/** A call's timeout as JSON holds it: milliseconds, or a duration as text (`"30 seconds"`). */
const Timeout = Schema.Union(Schema.Number, Schema.String).pipe(
  Schema.filter((input) => timeoutProblem(input) ?? true, {
    jsonSchema: {
      description: `Milliseconds, or a duration as text ("30 seconds", "500 millis", "30s", "500ms"): the agent's ` +
        "requestTimeout by default",
      anyOf: [{ type: "number", exclusiveMinimum: 0 }, { type: "string", pattern: DURATION_TEXT_PATTERN }]
    }
  })
)

/** Any JSON value, and there: a body without `payload` is refused (it would send the agent `undefined`). */
const Payload = Schema.Unknown.pipe(
  // (a plain boolean: as a type guard, TypeScript would narrow the payload to `{} | null`)
  Schema.filter((value): boolean => value !== undefined, {
    message: () => "is missing: send the agent's payload as \"payload\" (null if it takes none)",
    jsonSchema: { description: "Any JSON value: the task's payload, given to the agent's callback as it is" }
  })
)

/** The body of `POST /api/children/ID/call`: the payload, and the call's timeout when not the agent's own. */
export const CallBody = Schema.Struct({
  payload: Payload,
  timeout: Schema.optional(Timeout)
}).annotations({
  identifier: "CallBody",
  message: () => ({
    message: `call takes a JSON body { "payload": ..., "timeout"?: "30 seconds" or milliseconds }`,
    override: false
  }),
  parseOptions: { onExcessProperty: "error", errors: "all" }
})
export type CallBody = typeof CallBody.Type

/** What a call answers: the agent's result, as it answered it (JSON). */
export const CallResult = Schema.Struct({
  result: Schema.Unknown.annotations({ jsonSchema: { description: "The agent's answer, any JSON value" } })
}).annotations({ identifier: "CallResult" })
export type CallResult = typeof CallResult.Type

/** The body of `POST /api/topics/NAME/publish`: the task's payload, and whether every subscriber takes it. */
export const PublishBody = Schema.Struct({
  payload: Payload,
  fanout: Schema.optional(Schema.Boolean)
}).annotations({
  identifier: "PublishBody",
  message: () => ({ message: `publish takes a JSON body { "payload": ..., "fanout"?: true }`, override: false }),
  parseOptions: { onExcessProperty: "error", errors: "all" }
})
export type PublishBody = typeof PublishBody.Type

/** What a publish answers: the task's id (its outcome is the tree's: `Supervisor.awaitResult`, the store). */
export const Published = Schema.Struct({ taskId: Schema.String }).annotations({ identifier: "Published" })
export type Published = typeof Published.Type

/**
 * The agent answered the call with an error of its own (its callback raised: `errorType`), or crashed or broke the
 * protocol while it handled it (502: the API is the gateway, the agent the server that failed).
 */
export class CallFailed extends Schema.TaggedError<CallFailed>()(
  "CallFailed",
  {
    message: Schema.String,
    /** The error's type as the agent named it (`ValueError`, `TypeError`), for its own error answer. */
    errorType: Schema.optional(Schema.String)
  },
  HttpApiSchema.annotations({ status: 502 })
) {}

/** The call got no answer within its timeout: the agent was sent a `cancel` (504). */
export class CallTimedOut extends Schema.TaggedError<CallTimedOut>()(
  "CallTimedOut",
  { message: Schema.String, timeoutMillis: Schema.Number },
  HttpApiSchema.annotations({ status: 504 })
) {}

/** The topic holds as many tasks not yet ended as its `maxQueued`: nothing was published; try later (503). */
export class TopicFull extends Schema.TaggedError<TopicFull>()(
  "TopicFull",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

/**
 * How long `GET /api/tasks/ID` waits for the task's outcome at most, whatever `wait` asks: under the 300 seconds a
 * Node client (`fetch`) waits for an answer's headers.
 */
export const MAX_TASK_WAIT_MILLIS = 4 * 60_000

/** Why `text` is no wait for a task (0 or more, at most `maxMillis`: the API's bound by default), or `undefined`. */
export const waitProblem = (text: string, maxMillis = MAX_TASK_WAIT_MILLIS): string | undefined => {
  const decoded = decodeDurationInput(fromTyped(text))
  if (Either.isLeft(decoded)) return notADuration(text)
  return Duration.toMillis(decoded.right) <= maxMillis ? undefined : `at most ${maxMillis / 60_000} minutes`
}

/** `?wait=`: how long to wait for the task's outcome (milliseconds, or a duration as text); none waits not at all. */
export const TaskParams = Schema.Struct({
  wait: Schema.optional(
    Schema.String.pipe(
      // (the problem alone: the error names the parameter, `wait: ...`)
      Schema.filter((input) => waitProblem(input) ?? true)
    )
  )
})

/** A `wait` that `TaskParams` has checked, in milliseconds (0 without one). */
export const waitMillisOf = (input: string | undefined): number =>
  input === undefined ? 0 : Duration.toMillis(durationOf(fromTyped(input)))

/** An attempt of a task that failed, as the tree kept it (`TaskFailedError.errors`). */
const TaskAttemptError = Schema.Struct({
  attempt: Schema.Number,
  /** Epoch milliseconds. */
  at: Schema.Number,
  /** The child that failed it, by its path below the root (`workers/summarizer`). */
  child: Schema.String,
  tag: Schema.String,
  message: Schema.String
})

/**
 * A published task as `GET /api/tasks/ID` reads it: `pending` until it ends (delivered or waiting for a
 * subscriber, retries included), then `succeeded` with the subscriber's `result`, or `dead_lettered` with every
 * attempt's error.
 */
export const TaskView = Schema.Struct({
  taskId: Schema.String,
  status: Schema.Literal("pending", "succeeded", "dead_lettered"),
  /** What the subscriber answered (`succeeded` only). */
  result: Schema.optional(Schema.Unknown),
  /** Why it was dead-lettered (`dead_lettered` only). */
  message: Schema.optional(Schema.String),
  attempts: Schema.optional(Schema.Number),
  errors: Schema.optional(Schema.Array(TaskAttemptError))
}).annotations({ identifier: "TaskView" })
export type TaskView = typeof TaskView.Type

/** No task of that id is in flight, nor kept (in memory the last 1,000 outcomes; in the store, its bounds) (404). */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()(
  "TaskNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * `TaskNotFound` for `taskId`, in one sentence: what is kept is the built-in stores' task records (`maxTasks`, and
 * `maxTaskAge` in the SQL ones), which outlast the 1,000 outcomes the tree keeps in memory.
 */
export const taskNotFound = (taskId: string): TaskNotFound =>
  new TaskNotFound({
    message: `No task "${taskId}": neither in flight nor in the store (${TASK_BOUNDS})`
  })

/** A topic of the tree as `GET /api/topics` lists it (`Supervisor.topics`). */
export const TopicView = Schema.Struct({
  name: Schema.String,
  /** Declared in the tree's `topics` (a tree file's `topics` section), as opposed to known from its children only. */
  declared: Schema.Boolean,
  /**
   * The children that take it, running or not, by their paths below the root as the other routes take them
   * (`workers/summarizer`).
   */
  subscribers: Schema.Array(Schema.String),
  /** Its tasks published and not yet ended: waiting for a subscriber, being handled, or waiting for a retry. */
  queued: Schema.Number
}).annotations({ identifier: "TopicView" })
export type TopicView = typeof TopicView.Type

/**
 * A child's path as the library gives it, from the root's name (`"root/workers/summarizer"`), as the API's routes take
 * it: below the root (`"workers/summarizer"`).
 */
export const belowRoot = (root: string, path: string): string =>
  path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path

/**
 * A topic of the tree named `root` as the API shows it: its subscribers' paths below the root (`Supervisor.topics`
 * gives them from the root, `"root/workers/summarizer"`), so that they can be given to the other routes and commands.
 */
export const topicView = (root: string, info: TopicInfo): TopicView => ({
  name: info.name,
  declared: info.declared,
  subscribers: info.subscribers.map((path) => belowRoot(root, path)),
  queued: info.queued
})

/**
 * No such topic in the tree: none declared in its `topics`, none of its children takes it, no task of it in flight
 * (404). `Supervisor.publish` keeps a task for a topic no child takes yet; over the API, where nothing adds a child
 * that could take it, such a topic is a misspelt name.
 */
export class TopicNotFound extends Schema.TaggedError<TopicNotFound>()(
  "TopicNotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/** What a publish to `topic` is refused with on a tree that has no topic at all. */
export const noTopics = (topic: string): TopicNotFound =>
  new TopicNotFound({
    message: `Could not publish to "${topic}": the tree has no topics: declare one under "topics:" or give a ` +
      `child "topics: [...]"; nothing was published`
  })

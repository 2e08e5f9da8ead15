/**
 * Work sent to the tree from outside: a call to an agent or a pool child (the child's supervisor's `call`, as
 * `Supervisor.call` routes it: a pool to one of its members), a task published to a topic (the root's `publish`),
 * and a published task's outcome read by its id (the root's `awaitResult`).
 *
 * Each is logged as the control operations are (`control.ts`): Info once done (`admin API: called "echo": answered
 * in 12 ms`), Warning when refused, annotated with the operation and the child or topic. Never the payload, nor what
 * could repeat it (the agent's error message, its stderr, a protocol line): payloads may hold secrets, and the log
 * is read by more people than the caller. The caller gets the whole story in the answer.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type {
  AgentStoppedError,
  ConfigError,
  RequestError,
  SupervisorChildError,
  SupervisorIntensityError
} from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import { TaskFailedError, type TaskOutcome, type TopicError } from "../../Topic.js"
import { describeExit } from "../errors/format.js"
import { closest } from "../suggest.js"
import { BadRequest, type ChildNotFound, OperationFailed } from "./api.js"
import { callableBelow, locate } from "./locate.js"
import {
  belowRoot,
  type CallBody,
  CallFailed,
  type CallResult,
  CallTimedOut,
  durationOf,
  noTopics,
  type PublishBody,
  type Published,
  type TaskNotFound,
  taskNotFound,
  type TaskView,
  TopicFull,
  TopicNotFound,
  waitMillisOf
} from "./workApi.js"

/** What a call can fail with, from the library. */
type CallError = RequestError | SupervisorChildError | SupervisorIntensityError

/** An error of the API, and what the log says of it (nothing of the payload). */
interface Refusal<E> {
  readonly error: E
  readonly log: string
}

type CallRefusal = Refusal<BadRequest | ChildNotFound | OperationFailed | CallFailed | CallTimedOut>

const refused = <E>(error: E, log: string): Refusal<E> => ({ error, log })

/** The same words for the answer and the log. */
const plainly = <E extends { readonly message: string }>(make: (message: string) => E, message: string) =>
  refused(make(message), message)

/**
 * A child that could not take the call because it does not run, as the tree sees it now: gone from the tree (404),
 * or stopped, parked or waiting for its restart (409), which the tree is asked again (the library's refusal,
 * `stopped` or `restarting`, or `AgentStoppedError` for an agent stopped during the call, may be older).
 */
const notRunning = (root: Supervisor.Supervisor, path: string, error: SupervisorChildError | AgentStoppedError) =>
  locate(root, path).pipe(
    Effect.map(({ info }): CallRefusal => {
      const could = `Could not call "${path}"`
      if (info.status === "stopped") {
        const parked = info.parked ? " (parked: it crashed too often and its circuit breaker is open)" : ""
        return plainly(
          (message) => new OperationFailed({ message }),
          `${could}: it is stopped${parked}; start it first (POST /api/children/${
            encodeURIComponent(path)
          }/start, or agent-supervisor start ${path})`
        )
      }
      if (info.status === "restarting") {
        return plainly(
          (message) => new OperationFailed({ message }),
          `${could}: it is waiting for its restart; call again once it runs`
        )
      }
      // Running (again): stopped while it handled the call (a restart, a stop or a reload asked for meanwhile).
      return plainly(
        (message) => new OperationFailed({ message }),
        `${could}: ${error.message}` +
          (error._tag === "AgentStoppedError" ? " (a stop or restart came first); call again" : "")
      )
    }),
    Effect.catchTag("ChildNotFound", (gone): Effect.Effect<CallRefusal> => Effect.succeed(refused(gone, gone.message)))
  )

/** A refusal that the tree's stop caused: the child is not to be started again, nor the call made again here. */
const cutByStop = (error: CallError): boolean =>
  error._tag === "AgentStoppedError" ||
  (error._tag === "SupervisorChildError" && error.reason !== "not_an_agent" && error.reason !== "not_a_pool")

/** A call's failure as the API answers it, and as the log says it. */
const callRefusal = (
  root: Supervisor.Supervisor,
  path: string,
  error: CallError,
  stopping: boolean
): Effect.Effect<CallRefusal> => {
  const could = `Could not call "${path}"`
  if (stopping && cutByStop(error)) {
    return Effect.succeed(plainly(
      (message) => new OperationFailed({ message }),
      `${could}: the tree is stopping (its host is shutting down), and the call did not get its answer`
    ))
  }
  switch (error._tag) {
    case "AgentTaskError":
      return Effect.succeed(refused(
        new CallFailed({
          message: `${could}: agent "${error.agent}" answered with an error: ${error.errorType}: ${error.errorMessage}`,
          errorType: error.errorType
        }),
        `${could}: agent "${error.agent}" answered with an error (${error.errorType})`
      ))
    case "AgentTimeoutError":
      return Effect.succeed(plainly(
        (message) => new CallTimedOut({ message, timeoutMillis: error.timeoutMillis }),
        `${could}: ${error.message}`
      ))
    case "AgentCrashError": {
      if (error.reason === "circuit_open") {
        return Effect.succeed(plainly(
          (message) => new OperationFailed({ message }),
          `${could}: agent "${error.agent}" is parked (it crashed too often and its circuit breaker is open); start ` +
            `it again (agent-supervisor start ${path})`
        ))
      }
      if (error.reason === "start_failed") {
        return Effect.succeed(plainly(
          (message) => new OperationFailed({ message }),
          `${could}: agent "${error.agent}" is not running: its start failed: ${error.startup ?? "(no detail)"}; ` +
            `fix that and start it again (agent-supervisor start ${path})`
        ))
      }
      // Without the stderr lines the library's message ends with: a stack among them is the agent's, and they may
      // repeat the payload. They are a `logs` away.
      return Effect.succeed(plainly(
        (message) => new CallFailed({ message }),
        `${could}: agent "${error.agent}"${error.pid === undefined ? "" : ` (pid ${error.pid})`} ` +
          `${describeExit(error)} while it handled the call ` +
          `(its last stderr lines: agent-supervisor logs ${path})`
      ))
    }
    case "ProtocolError":
      return Effect.succeed(refused(
        new CallFailed({ message: `${could}: ${error.message}` }),
        `${could}: agent "${error.agent}" broke the protocol (${error.reason})`
      ))
    case "ConfigError":
      return Effect.succeed(plainly((message) => new BadRequest({ message }), `${could}: ${error.message}`))
    case "SupervisorChildError":
      if (error.reason === "not_found" || error.reason === "stopped" || error.reason === "restarting") {
        return notRunning(root, path, error)
      }
      if (error.reason === "not_an_agent") {
        return Effect.map(callableBelow(root, path), (below) =>
          plainly(
            (message) => new BadRequest({ message }),
            `${could}: it is a supervisor; only an agent or a pool takes a call` +
              (below === undefined ? ", and it has none below it" : `; call one below it, e.g. "${below}"`)
          ))
      }
      return Effect.succeed(plainly((message) => new OperationFailed({ message }), `${could}: ${error.message}`))
    case "AgentStoppedError":
      return notRunning(root, path, error)
    case "SupervisorIntensityError":
      return Effect.succeed(plainly((message) => new OperationFailed({ message }), `${could}: ${error.message}`))
  }
}

/** Logs the refusal as a warning, and fails with its error. */
const refuse = <E>(refusal: Refusal<E>): Effect.Effect<never, E> =>
  Effect.zipRight(Effect.logWarning(`admin API: ${refusal.log}`), Effect.fail(refusal.error))

/**
 * Calls the agent or pool child at `path` with the body's payload (and timeout), as its supervisor's `call` does,
 * and answers with the agent's result. Bounded by the call's timeout (the agent's `requestTimeout` unless the body
 * gives one), a wait for a restart included; a caller that goes away interrupts it, and the agent is sent a `cancel`.
 */
export const call = (
  root: Supervisor.Supervisor,
  path: string,
  body: CallBody,
  /** Done when the tree begins to stop while the API serves (`Sse.Streams.stopping`). */
  stopping: Deferred.Deferred<void>
): Effect.Effect<CallResult, BadRequest | ChildNotFound | OperationFailed | CallFailed | CallTimedOut> =>
  Effect.gen(function*() {
    const located = yield* locate(root, path).pipe(Effect.catchAll((gone) => refuse(refused(gone, gone.message))))
    const started = yield* Clock.currentTimeMillis
    const result = yield* located.parent.call(
      located.info.id,
      body.payload,
      body.timeout === undefined ? undefined : { timeout: durationOf(body.timeout) }
    ).pipe(
      Effect.catchAll((error) =>
        Effect.flatMap(
          Effect.flatMap(Deferred.isDone(stopping), (stops) => callRefusal(root, path, error, stops)),
          refuse
        )
      ),
      Effect.onInterrupt(() =>
        Effect.logInfo(
          `admin API: call to "${path}" given up: its client went away, or the admin API is closing (the agent ` +
            "was sent a cancel)"
        )
      )
    )
    const took = (yield* Clock.currentTimeMillis) - started
    yield* Effect.logInfo(`admin API: called "${path}": answered in ${took} ms`)
    // `undefined` is no JSON: an answer without a result is null
    return { result: result === undefined ? null : result }
  }).pipe(Effect.annotateLogs({ operation: "call", child: path }))

/** How long a publish waits for room in a full topic with `backpressure` before it answers 503. */
export const PUBLISH_WAIT_MILLIS = 10_000

const publishRefusal = (
  topic: string,
  error: TopicError | ConfigError
): Refusal<BadRequest | OperationFailed | TopicFull> => {
  const could = `Could not publish to "${topic}"`
  if (error._tag === "ConfigError") {
    return plainly((message) => new BadRequest({ message }), `${could}: ${error.message}`)
  }
  if (error.reason === "full") {
    return plainly(
      (message) => new TopicFull({ message }),
      `${could}: ${error.message}; nothing was published, try again once its subscribers have caught up`
    )
  }
  return plainly((message) => new OperationFailed({ message }), `${could}: ${error.message}`)
}

/**
 * Publishes the body's payload to `topic` (with `fanout`, to every subscriber) and answers with the task's id, at
 * once: its delivery, retries and outcome are the tree's. A topic of the tree (declared in its `topics`, taken by a
 * child, or with tasks in flight) that no child takes now keeps its tasks until one does (as `Supervisor.publish`
 * does); another name is refused (404 `TopicNotFound`, with the name meant when one is close). A full topic with
 * `backpressure` is waited on for {@link PUBLISH_WAIT_MILLIS} at most.
 */
export const publish = (
  root: Supervisor.Supervisor,
  topic: string,
  body: PublishBody
): Effect.Effect<Published, BadRequest | OperationFailed | TopicFull | TopicNotFound> =>
  Effect.gen(function*() {
    const known = (yield* root.topics).map((info) => info.name)
    if (known.length === 0) {
      const none = noTopics(topic)
      return yield* refuse(refused(none, none.message))
    }
    if (!known.includes(topic)) {
      const meant = closest(topic, known)
      return yield* refuse(plainly(
        (message) => new TopicNotFound({ message }),
        `Could not publish to "${topic}": the tree has no such topic${
          meant === undefined ? "" : ` (did you mean "${meant}"?)`
        }; its topics are ${known.map((name) => `"${name}"`).join(", ")} (declared ` +
          "in its topics, or taken by a child); nothing was published"
      ))
    }
    const published = yield* root.publish(
      topic,
      body.payload,
      body.fanout === undefined ? undefined : { fanout: body.fanout }
    ).pipe(
      Effect.timeoutOption(PUBLISH_WAIT_MILLIS),
      Effect.catchAll((error) => refuse(publishRefusal(topic, error)))
    )
    if (Option.isNone(published)) {
      return yield* refuse(plainly(
        (message) => new TopicFull({ message }),
        `Could not publish to "${topic}": it is full, and no room came within ${PUBLISH_WAIT_MILLIS / 1000} seconds; ` +
          "nothing was published, try again once its subscribers have caught up"
      ))
    }
    yield* Effect.logInfo(`admin API: published to "${topic}": task ${published.value}`)
    return { taskId: published.value }
  }).pipe(Effect.annotateLogs({ operation: "publish", topic }))

export type { TaskView }

/** What reading a task can fail with. */
export type TaskError = TaskNotFound | OperationFailed

/** A task's outcome as the API shows it. */
const viewOf = (root: string, outcome: TaskOutcome): TaskView => {
  if (outcome._tag === "Succeeded") {
    return { taskId: outcome.taskId, status: "succeeded", result: outcome.result === undefined ? null : outcome.result }
  }
  // Each failing child by its path below the root, as the routes take it
  const errors = outcome.errors.map((error) => ({ ...error, child: belowRoot(root, error.child) }))
  return {
    taskId: outcome.taskId,
    status: "dead_lettered",
    message: new TaskFailedError({ ...outcome, errors }).message,
    attempts: outcome.attempts,
    errors
  }
}

/**
 * A published task's outcome: `succeeded` with its result, `dead_lettered` with its attempts' errors, or `pending`
 * while it is in flight, once `wait` (milliseconds, or a duration as text; none by default) has passed. Where it is
 * (in flight, ended in memory or in the store, unknown) is known before any wait, so an unknown task is a 404 at
 * once and a kept one is answered whatever the wait; a tree that has stopped, a 409. Read-only: logged at Debug,
 * without the result.
 */
export const task = (
  root: Supervisor.Supervisor,
  taskId: string,
  wait: string | undefined
): Effect.Effect<TaskView, TaskError> =>
  Effect.gen(function*() {
    const now = yield* root.taskOutcome(taskId)
    if (Option.isSome(now)) return viewOf(root.name, now.value)
    const pending: TaskView = { taskId, status: "pending" }
    const waitMillis = waitMillisOf(wait)
    if (waitMillis === 0) return pending
    return yield* root.awaitResult(taskId).pipe(
      Effect.map((result): TaskView => ({ taskId, status: "succeeded", result: result === undefined ? null : result })),
      Effect.catchTag("TaskFailedError", (error) =>
        Effect.succeed(viewOf(root.name, {
          _tag: "DeadLettered",
          taskId: error.taskId,
          topic: error.topic,
          attempts: error.attempts,
          errors: error.errors
        }))),
      Effect.timeoutTo({ duration: waitMillis, onTimeout: () => pending, onSuccess: (view) => view })
    )
  }).pipe(
    Effect.catchTag("TopicError", (error): Effect.Effect<never, TaskError> =>
      error.reason === "not_found"
        ? Effect.fail(taskNotFound(taskId))
        : Effect.fail(new OperationFailed({ message: `Could not read task "${taskId}": ${error.message}` }))),
    Effect.tap((view) => Effect.logDebug(`admin API: task ${taskId} read: ${view.status}`)),
    Effect.annotateLogs({ operation: "task" })
  )

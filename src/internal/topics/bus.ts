/**
 * The topics of one tree (`Topic.ts`): subscribers registered by the tree as children with `topics` come and go,
 * tasks delivered to them with retries, outcomes kept in memory while awaited and in the store for later, the
 * dead letters listed and republished. One bus per tree, shared by its nested supervisors.
 *
 * A task counts toward its topic's `maxQueued` from its publish to its outcome, waiting for a subscriber included
 * (a topic no child takes yet keeps its tasks until one comes, within that bound). Delivery is a call to the
 * subscriber (an agent's `handleEvent`, a pool's router), so the subscriber's own bounds (`maxInFlight`, its
 * timeout, its restarts) apply as to any call.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ConfigError } from "../../Errors.js"
import type * as Store from "../../Store/Store.js"
import { type PublishOptions, TaskFailedError, type TaskOutcome, TopicError, type TopicInfo } from "../../Topic.js"
import type { Forker } from "../forker.js"
import * as StrictJson from "../standalone/strictJson.js"
import { closest } from "../suggest.js"
import * as Delivery from "./delivery.js"
import * as Meter from "./meter.js"
import * as Settings from "./settings.js"

export type { Subscriber } from "./delivery.js"
import type { Subscriber } from "./delivery.js"

/** Where outcomes are kept for later (`Store`'s optional task operations, through the resilient wrapper). */
export interface TaskStore {
  readonly save: (record: Store.TaskRecord) => Effect.Effect<void>
  readonly get: (taskId: string) => Effect.Effect<Option.Option<Store.TaskRecord>>
  readonly list: (query: Store.TaskQuery) => Effect.Effect<ReadonlyArray<Store.TaskRecord>>
  readonly delete: (taskId: string) => Effect.Effect<void>
}

/** A resilient store's task operations, as the bus reads and writes outcomes. */
export const taskStoreOf = (store: Store.ResilientStore): TaskStore => ({
  save: store.saveTask,
  get: store.getTask,
  list: store.listTasks,
  delete: store.deleteTask
})

/** The bus's operations, as `Supervisor` exposes them. */
export interface Bus {
  /** Adds a subscriber; the returned function removes it (idempotent). */
  readonly register: (subscriber: Subscriber) => () => void
  readonly publish: (
    topic: string,
    payload: unknown,
    options?: PublishOptions
  ) => Effect.Effect<string, TopicError | ConfigError>
  readonly awaitResult: (taskId: string) => Effect.Effect<unknown, TaskFailedError | TopicError>
  /** A task's outcome once it ended, `None` while it is in flight, at once (see `Supervisor.taskOutcome`). */
  readonly outcome: (taskId: string) => Effect.Effect<Option.Option<TaskOutcome>, TopicError>
  readonly results: Stream.Stream<TaskOutcome>
  readonly subscribeResults: Effect.Effect<Queue.Dequeue<TaskOutcome>, never, Scope.Scope>
  readonly deadLetters: (query?: { readonly topic?: string; readonly limit?: number }) => Effect.Effect<
    ReadonlyArray<Store.TaskRecord>
  >
  readonly republish: (taskId: string) => Effect.Effect<string, TopicError | ConfigError>
  /** An agent's `publish` message (protocol 1.2): published with the topic's defaults, from outside any fiber. */
  readonly fromAgent: (agent: string, topic: string, payload: unknown) => void
  /** A subscriber may have come back (a child with topics started): tasks waiting for one look again. */
  readonly touch: () => void
  /** The tree's topics: declared, taken by a child, or with tasks; by name. */
  readonly topics: () => ReadonlyArray<TopicInfo>
}

interface Pending {
  readonly topic: string
  readonly done: Deferred.Deferred<unknown, TaskFailedError | TopicError>
}

/** How many outcomes are kept in memory for `awaitResult` after they end (the store keeps them longer). */
const RECENT_OUTCOMES = 1000

/**
 * `Bus.topics`: the topics `declared`, those with tasks (`active`), those a subscriber took (`taken`: a child
 * stopped with its nested supervisor, or deleted, takes them no more, but they stay the tree's); by name.
 */
const topicInfos = (
  declared: Settings.DecodedTopics,
  active: ReadonlyMap<string, Delivery.Topic>,
  taken: ReadonlySet<string>,
  registry: Delivery.Registry
): ReadonlyArray<TopicInfo> => {
  const names = new Set([...declared.keys(), ...active.keys(), ...taken])
  return [...names].sort().map((name) => ({
    name,
    declared: declared.has(name),
    subscribers: [...registry.subscribers].filter((s) => s.topics.includes(name)).map((s) => s.path),
    queued: active.get(name)?.queued ?? 0
  }))
}

/**
 * `Bus.outcome`: `None` while the task is in flight; its outcome once ended, in memory (the last ones) or in the
 * store; `stopped` for a task the tree's stop cut, `not_found` for none.
 */
const outcomeOf = (
  kept: {
    readonly pending: ReadonlyMap<string, Pending>
    readonly recent: ReadonlyMap<string, TaskOutcome>
    readonly unfinished: ReadonlyMap<string, string>
    readonly store: TaskStore
  },
  taskId: string
): Effect.Effect<Option.Option<TaskOutcome>, TopicError> =>
  Effect.suspend((): Effect.Effect<Option.Option<TaskOutcome>, TopicError> => {
    if (kept.pending.has(taskId)) return Effect.succeed(Option.none())
    const known = kept.recent.get(taskId)
    if (known !== undefined) return Effect.succeed(Option.some(known))
    const cut = kept.unfinished.get(taskId)
    if (cut !== undefined) return Effect.fail(new TopicError({ topic: cut, reason: "stopped", taskId }))
    return Effect.flatMap(kept.store.get(taskId), (record) =>
      Option.isSome(record)
        ? Effect.succeed(Option.some(outcomeOfRecord(record.value)))
        : kept.pending.has(taskId) // published while the store was read: in flight
        ? Effect.succeed(Option.none())
        : Effect.fail(new TopicError({ topic: "", reason: "not_found", taskId })))
  })

/**
 * A task dead-lettered, said in the tree's log (as a refusal is): which, after how many attempts, where it failed
 * last; never its payload nor the error's text (`result` gives those to whoever asks).
 */
const warnDead = (
  taskId: string,
  topic: string,
  attempts: number,
  errors: ReadonlyArray<{ readonly child: string; readonly tag: string }>
): Effect.Effect<void> => {
  const last = errors[errors.length - 1]
  return Effect.logWarning(
    `task ${taskId} of topic "${topic}" was dead-lettered after ${attempts} attempt(s)` +
      (last === undefined ? "" : `, the last failed by "${last.child}" (${last.tag})`)
  )
}

/**
 * Waits until `topic` holds fewer than its `maxQueued` tasks, in line with the other publishers (with
 * `backpressure`), or fails `full` at once (without).
 */
const roomIn = (topic: Delivery.Topic, name: string): Effect.Effect<void, TopicError> =>
  Effect.gen(function*() {
    while (topic.queued >= topic.settings.maxQueued) {
      if (!topic.settings.backpressure) {
        return yield* new TopicError({ topic: name, reason: "full", maxQueued: topic.settings.maxQueued })
      }
      const waiter = yield* Deferred.make<void, TopicError>()
      topic.room.push(waiter)
      yield* Deferred.await(waiter).pipe(
        // A publisher that gives up leaves the line; one woken as it gave up passes the room on.
        Effect.onInterrupt(() =>
          Effect.suspend(() => {
            const at = topic.room.indexOf(waiter)
            if (at >= 0) {
              topic.room.splice(at, 1)
              return Effect.void
            }
            const next = topic.room.shift()
            return next === undefined ? Effect.void : Deferred.succeed(next, void 0)
          })
        )
      )
    }
  })

/**
 * The first publish to a name the tree knows nothing of (not declared in its `topics`, never taken by a child) that
 * queues a task, said once: likely a misspelt topic, whose tasks would wait for a subscriber that never comes.
 */
const unknownTopic = (name: string, known: ReadonlyArray<string>): string => {
  const meant = closest(name, known)
  return `published to "${name}", a topic neither declared in the tree's topics nor taken by any child` +
    (meant === undefined ? "" : ` (did you mean "${meant}"?)`) +
    "; its tasks wait, within its maxQueued, for a child that takes it (declare the topic to say that is meant)"
}

/** The bus of one tree. */
export const make = (options: {
  readonly topics: Settings.DecodedTopics
  readonly store: TaskStore
  readonly fork: Forker
}): Effect.Effect<Bus, never, Scope.Scope> =>
  Effect.gen(function*() {
    const registry = yield* Delivery.makeRegistry
    const topics = new Map<string, Delivery.Topic>()
    // Every topic a subscriber ever took (`topics`)
    const taken = new Set<string>()
    // The topics neither declared nor taken that a publish was warned of (`unknownTopic`)
    const warned = new Set<string>()
    const pending = new Map<string, Pending>()
    const recent = new Map<string, TaskOutcome>()
    /** The tasks the tree's stop left without an outcome, by id: their topic. */
    const unfinished = new Map<string, string>()
    const outcomes = yield* PubSub.unbounded<TaskOutcome>()
    let sequence = 0
    let stopped = false
    // The tree has stopped (its children first): no task ends any more. Whoever waits is told, none hangs.
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(Effect.sync(() => (stopped = true)), settleAll({ pending, unfinished, topics, outcomes }))
    )

    const topicOf = (name: string): Delivery.Topic => {
      let topic = topics.get(name)
      if (topic === undefined) {
        topic = { settings: Settings.of(options.topics, name), queued: 0, loads: new Map(), room: [] }
        topics.set(name, topic)
      }
      return topic
    }

    const end = (taskId: string, topic: Delivery.Topic, name: string, outcome: TaskOutcome, record: Store.TaskRecord) =>
      Effect.gen(function*() {
        topic.queued--
        Meter.queued(name, topic.queued)
        const waiter = topic.room.shift()
        if (waiter !== undefined) yield* Deferred.succeed(waiter, void 0)
        recent.set(taskId, outcome)
        if (recent.size > RECENT_OUTCOMES) recent.delete(recent.keys().next().value!)
        const waiting = pending.get(taskId)
        pending.delete(taskId)
        if (waiting !== undefined) {
          yield* outcome._tag === "Succeeded"
            ? Deferred.succeed(waiting.done, outcome.result)
            : Deferred.fail(waiting.done, failedError(outcome))
        }
        yield* PubSub.publish(outcomes, outcome)
        yield* options.fork(options.store.save(record))
      })

    const run = (taskId: string, name: string, payload: unknown, settings: Settings.ForTask, createdAt: number) =>
      Effect.gen(function*() {
        const topic = topicOf(name)
        const { attempts, errors, ok, result } = yield* Delivery.deliverTask(
          registry,
          topic,
          name,
          payload,
          settings,
          () => stopped
        )
        // Ended by the tree's stop, which has settled the task (a task fiber may miss its interruption: fork.ts).
        if (stopped) return
        const at = yield* Clock.currentTimeMillis
        const base = {
          task_id: taskId,
          topic: name,
          payload,
          attempts,
          errors,
          created_at: createdAt,
          updated_at: at
        }
        if (ok) {
          Meter.delivered(name)
          yield* end(
            taskId,
            topic,
            name,
            { _tag: "Succeeded", taskId, topic: name, result, attempts },
            {
              ...base,
              status: "succeeded",
              result
            }
          )
        } else {
          Meter.deadLettered(name)
          yield* warnDead(taskId, name, attempts, errors)
          yield* end(taskId, topic, name, {
            _tag: "DeadLettered",
            taskId,
            topic: name,
            attempts,
            errors
          }, {
            ...base,
            status: "dead"
          })
        }
      })

    const publish = (name: string, payload: unknown, publishOptions?: PublishOptions) =>
      Effect.gen(function*() {
        if (stopped) {
          return yield* new TopicError({ topic: name, reason: "stopped" })
        }
        const unencodable = notJson(payload)
        if (unencodable !== undefined) {
          return yield* new TopicError({ topic: name, reason: "unencodable", detail: unencodable })
        }
        const topic = topicOf(name)
        const settings = yield* Settings.forPublish(topic.settings, publishOptions)
        yield* roomIn(topic, name)
        // Said of the first task queued (a publish refused queues none), once per name
        if (!options.topics.has(name) && !taken.has(name) && !warned.has(name)) {
          warned.add(name)
          yield* Effect.logWarning(unknownTopic(name, [...options.topics.keys(), ...taken]))
        }
        topic.queued++
        Meter.published(name)
        Meter.queued(name, topic.queued)
        const createdAt = yield* Clock.currentTimeMillis
        const taskId = `${createdAt.toString(36)}-${(sequence++).toString(36)}-${
          Math.random().toString(36).slice(2, 8)
        }`
        pending.set(taskId, { topic: name, done: yield* Deferred.make<unknown, TaskFailedError | TopicError>() })
        yield* options.fork(run(taskId, name, payload, settings, createdAt))
        return taskId
      })

    const outcome = (taskId: string) => outcomeOf({ pending, recent, unfinished, store: options.store }, taskId)

    const awaitResult = (taskId: string): Effect.Effect<unknown, TaskFailedError | TopicError> =>
      Effect.suspend((): Effect.Effect<unknown, TaskFailedError | TopicError> => {
        const waiting = pending.get(taskId)
        if (waiting !== undefined) return Deferred.await(waiting.done)
        return Effect.flatMap(outcome(taskId), Option.match({ onNone: () => awaitResult(taskId), onSome: fromOutcome }))
      })

    const republish = (taskId: string): Effect.Effect<string, TopicError | ConfigError> =>
      Effect.gen(function*() {
        const record = yield* options.store.get(taskId)
        if (Option.isNone(record) || record.value.status !== "dead") {
          return yield* new TopicError({
            topic: Option.isSome(record) ? record.value.topic : "",
            reason: Option.isNone(record) ? "not_found" : "not_dead",
            taskId
          })
        }
        const again = yield* publish(record.value.topic, record.value.payload)
        yield* options.store.delete(taskId)
        recent.delete(taskId)
        return again
      })

    const bus: Bus = {
      register: (subscriber) => {
        for (const name of subscriber.topics) taken.add(name)
        return Delivery.register(registry)(subscriber)
      },
      publish,
      awaitResult,
      outcome,
      results: Stream.fromPubSub(outcomes),
      subscribeResults: PubSub.subscribe(outcomes),
      deadLetters: (query) =>
        options.store.list({
          status: "dead",
          ...(query?.topic !== undefined ? { topic: query.topic } : {}),
          ...(query?.limit !== undefined ? { limit: query.limit } : {})
        }),
      republish,
      fromAgent: (agent, topic, payload) => {
        // Outside any fiber (the agent's stdout reader): published in a fiber of the tree's (the forker's: it ends
        // with the tree, outside any span).
        Effect.runFork(options.fork(
          publish(topic, payload).pipe(
            Effect.catchAll((error) => Effect.logWarning(`agent "${agent}" published to "${topic}": ${error.message}`))
          )
        ))
      },
      touch: () => Delivery.touch(registry),
      topics: () => topicInfos(options.topics, topics, taken, registry)
    }
    return bus
  })

/**
 * Why a payload cannot be sent as JSON (a BigInt, a cycle, a function, a Map...), or `undefined`: the rules of the
 * encoder that sends a task to a subscriber (`Message.encodeTask`), so a payload published is one every delivery
 * can send.
 */
const notJson = (payload: unknown): string | undefined => StrictJson.problemOf(payload, "payload")

const failedError = (outcome: Extract<TaskOutcome, { _tag: "DeadLettered" }>) =>
  new TaskFailedError({
    taskId: outcome.taskId,
    topic: outcome.topic,
    attempts: outcome.attempts,
    errors: outcome.errors
  })

const fromOutcome = (outcome: TaskOutcome): Effect.Effect<unknown, TaskFailedError> =>
  outcome._tag === "Succeeded" ? Effect.succeed(outcome.result) : Effect.fail(failedError(outcome))

const outcomeOfRecord = (record: Store.TaskRecord): TaskOutcome =>
  record.status === "succeeded"
    ? {
      _tag: "Succeeded",
      taskId: record.task_id,
      topic: record.topic,
      result: record.result,
      attempts: record.attempts
    }
    : {
      _tag: "DeadLettered",
      taskId: record.task_id,
      topic: record.topic,
      attempts: record.attempts,
      errors: record.errors
    }

/** At the tree's stop: every task still pending and every publisher waiting for room fails `stopped`. */
const settleAll = (state: {
  readonly pending: Map<string, Pending>
  readonly unfinished: Map<string, string>
  readonly topics: ReadonlyMap<string, Delivery.Topic>
  readonly outcomes: PubSub.PubSub<TaskOutcome>
}): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (const [taskId, waiting] of state.pending) {
      state.unfinished.set(taskId, waiting.topic)
      yield* Deferred.fail(waiting.done, new TopicError({ topic: waiting.topic, reason: "stopped", taskId }))
    }
    state.pending.clear()
    for (const [name, topic] of state.topics) {
      for (const waiter of topic.room.splice(0)) {
        yield* Deferred.fail(waiter, new TopicError({ topic: name, reason: "stopped" }))
      }
    }
    yield* PubSub.shutdown(state.outcomes)
  })

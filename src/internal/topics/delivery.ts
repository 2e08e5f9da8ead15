/**
 * The topics' subscribers and the delivery of one task to one of them (`bus.ts` runs the tasks): the registry the
 * tree keeps as children with `topics` come and go, the choice of the least loaded subscriber (a RUNNING one
 * first, ties in turn), the wait for a first subscriber, and the attempts of a delivery retried on its `Schedule`,
 * each failure written down.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import type * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { HandleOptions } from "../../Agent/AgentSupervisor.js"
import type { TaskAttemptError, TopicError } from "../../Topic.js"
import { messageOf } from "../standalone/messageOf.js"
import * as Meter from "./meter.js"
import type * as Settings from "./settings.js"

/** What takes a delivery: an agent or a pool, found when it is needed (it may be restarting, or gone). */
export interface Subscriber {
  /** Its path in the tree (`"root/workers/summarizer"`), as errors and fanout results name it. */
  readonly path: string
  readonly topics: ReadonlyArray<string>
  /** Its call, or `undefined` while it cannot take one (its supervisor stopped, its runtime gone). */
  readonly target: () =>
    | {
      readonly handleEvent: (payload: unknown, options?: HandleOptions) => Effect.Effect<unknown, unknown>
      readonly running: boolean
    }
    | undefined
}

/** One topic's state. */
export interface Topic {
  readonly settings: Settings.Decoded
  /** Tasks published and not yet ended. */
  queued: number
  /** Deliveries in flight, by subscriber path: the work queue's "least loaded". */
  readonly loads: Map<string, number>
  /** Publishers waiting for room (backpressure), woken one by one. */
  readonly room: Array<Deferred.Deferred<void, TopicError>>
}

/** The subscribers of a tree's topics. */
export interface Registry {
  readonly subscribers: Set<Subscriber>
  /** Bumped on every change of the subscribers: a task waiting for one looks again. */
  readonly generation: SubscriptionRef.SubscriptionRef<number>
  turn: number
}

/** An empty registry. */
export const makeRegistry: Effect.Effect<Registry> = Effect.map(
  SubscriptionRef.make(0),
  (generation) => ({ subscribers: new Set(), generation, turn: 0 })
)

const changed = (registry: Registry) => Effect.runFork(SubscriptionRef.update(registry.generation, (n) => n + 1))

/** A subscriber may be able to take calls again (it restarted): tasks waiting for one look again. */
export const touch = (registry: Registry): void => {
  changed(registry)
}

/** Adds a subscriber; the returned function removes it (idempotent). */
export const register = (registry: Registry) => (subscriber: Subscriber): () => void => {
  registry.subscribers.add(subscriber)
  changed(registry)
  let removed = false
  return () => {
    if (removed) return
    removed = true
    registry.subscribers.delete(subscriber)
    changed(registry)
  }
}

/** The subscribers of `topic` that can take a call now or soon, with whether each runs now (its target read once). */
const liveSubscribers = (
  registry: Registry,
  topic: string
): Array<{ readonly subscriber: Subscriber; readonly running: boolean }> => {
  const live: Array<{ readonly subscriber: Subscriber; readonly running: boolean }> = []
  for (const subscriber of registry.subscribers) {
    if (!subscriber.topics.includes(topic)) continue
    const target = subscriber.target()
    if (target !== undefined) live.push({ subscriber, running: target.running })
  }
  return live
}

/** The subscribers of `topic` that can take a call now or soon. */
export const subscribersOf = (registry: Registry, topic: string): Array<Subscriber> =>
  liveSubscribers(registry, topic).map(({ subscriber }) => subscriber)

/** The least loaded subscriber of `topic`, a RUNNING one first; ties in turn. */
const pick = (registry: Registry, topic: Topic, name: string): Subscriber | undefined => {
  const candidates = liveSubscribers(registry, name)
  let best: Subscriber | undefined
  let bestScore = Number.POSITIVE_INFINITY
  for (let k = 0; k < candidates.length; k++) {
    const { running, subscriber } = candidates[(registry.turn + k) % candidates.length]
    const score = (running ? 0 : 1e9) + (topic.loads.get(subscriber.path) ?? 0)
    if (score < bestScore) {
      best = subscriber
      bestScore = score
    }
  }
  registry.turn++
  return best
}

/** A subscriber for `topic`, waiting for one to register when there is none. */
const awaitSubscriber = (registry: Registry, topic: Topic, name: string): Effect.Effect<Subscriber> =>
  Effect.suspend(() => {
    const found = pick(registry, topic, name)
    if (found !== undefined) return Effect.succeed(found)
    return registry.generation.changes.pipe(
      Stream.map(() => pick(registry, topic, name)),
      Stream.filter((s): s is Subscriber => s !== undefined),
      Stream.take(1),
      Stream.runHead,
      Effect.map(Option.getOrThrow)
    )
  })

const describe = (error: unknown): { readonly tag: string; readonly message: string } => {
  const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "Error"
  const message = messageOf(error)
  return { tag, message }
}

const isConfigError = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "ConfigError"

/**
 * One delivery to `fixed` (fanout) or to whichever subscriber is least loaded at each attempt, retried on
 * `schedule`; each failure is added to `errors` and each attempt counted in `attempts`. Fails with `"dead"` after
 * the last attempt (or at once for a `ConfigError`: a bad per-call option fails every attempt the same way).
 */
export const deliver = (
  registry: Registry,
  topic: Topic,
  name: string,
  payload: unknown,
  fixed: Subscriber | undefined,
  schedule: Schedule.Schedule<unknown, unknown>,
  timeout: Duration.Duration | undefined,
  errors: Array<TaskAttemptError>,
  attempts: { count: number },
  stopped: () => boolean
): Effect.Effect<unknown, "dead"> => {
  const once = Effect.gen(function*() {
    const subscriber = fixed ?? (yield* awaitSubscriber(registry, topic, name))
    const target = subscriber.target()
    attempts.count++
    const attempt = attempts.count
    if (attempt > 1) Meter.retried(name)
    if (target === undefined) {
      const at = yield* Clock.currentTimeMillis
      errors.push({ attempt, at, child: subscriber.path, tag: "Gone", message: "the subscriber is gone" })
      return yield* Effect.fail("retry" as const)
    }
    topic.loads.set(subscriber.path, (topic.loads.get(subscriber.path) ?? 0) + 1)
    const options: HandleOptions | undefined = timeout === undefined ? undefined : { timeout }
    return yield* target.handleEvent(payload, options).pipe(
      Effect.ensuring(Effect.sync(() => {
        const left = (topic.loads.get(subscriber.path) ?? 1) - 1
        if (left > 0) topic.loads.set(subscriber.path, left)
        else topic.loads.delete(subscriber.path)
      })),
      Effect.catchAll((error) =>
        Effect.flatMap(Clock.currentTimeMillis, (at) => {
          errors.push({ attempt, at, child: subscriber.path, ...describe(error) })
          return Effect.fail(isConfigError(error) ? "final" as const : "retry" as const)
        })
      )
    )
  })
  return once.pipe(
    // No attempt after the tree's stop, whose interruption a task fiber may have missed (`fork.ts`).
    Effect.retry({ schedule, while: (why) => why === "retry" && !stopped() }),
    Effect.mapError(() => "dead" as const)
  )
}

/** How a task's deliveries ended: `result` (fanout: each subscriber's by path) when `ok`, every attempt's error. */
export interface Delivered {
  readonly ok: boolean
  readonly result: unknown
  readonly attempts: number
  readonly errors: ReadonlyArray<TaskAttemptError>
}

/**
 * A task's deliveries: to one subscriber, or with `fanout` to each subscriber of the topic now (each retried on its
 * own; the task is `ok` once all are).
 */
export const deliverTask = (
  registry: Registry,
  topic: Topic,
  name: string,
  payload: unknown,
  settings: Settings.ForTask,
  stopped: () => boolean
): Effect.Effect<Delivered> =>
  Effect.gen(function*() {
    const errors: Array<TaskAttemptError> = []
    const attempts = { count: 0 }
    const one = (fixed: Subscriber | undefined) =>
      Effect.exit(
        deliver(registry, topic, name, payload, fixed, settings.retry, settings.timeout, errors, attempts, stopped)
      )
    if (!settings.fanout) {
      const exit = yield* one(undefined)
      const ok = exit._tag === "Success"
      return { ok, result: ok ? exit.value : undefined, attempts: attempts.count, errors }
    }
    const results: Record<string, unknown> = {}
    // At least one: a topic no child takes keeps its tasks until one does, fanout ones too.
    yield* awaitSubscriber(registry, topic, name)
    const exits = yield* Effect.forEach(
      subscribersOf(registry, name),
      (subscriber) =>
        Effect.tap(one(subscriber), (exit) =>
          Effect.sync(() => {
            if (exit._tag === "Success") results[subscriber.path] = exit.value
          })),
      { concurrency: "unbounded" }
    )
    return { ok: exits.every((exit) => exit._tag === "Success"), result: results, attempts: attempts.count, errors }
  })

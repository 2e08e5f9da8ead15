/**
 * The client of agents across the cluster: every call has a timeout (the cluster retries a call to a runner that is
 * gone for ever, and waits for ever when no runner is left), transport hiccups are retried within it, and the
 * cluster's errors become ours (`AgentUnavailableError`).
 */
import type { AlreadyProcessingMessage, MailboxFull, PersistenceError } from "@effect/cluster/ClusterError"
import * as EntityAddress from "@effect/cluster/EntityAddress"
import * as EntityId from "@effect/cluster/EntityId"
import * as MessageStorage from "@effect/cluster/MessageStorage"
import * as Sharding from "@effect/cluster/Sharding"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import type { StreamEvent } from "../../Agent/StreamEvent.js"
import {
  type AgentStartupError,
  type AgentStreamError,
  AgentUnavailableError,
  ConfigError,
  type RequestError
} from "../../Errors.js"
import type { DurationInput } from "../durationText.js"
import { decodeDuration } from "../schema.js"
import * as StrictJson from "../standalone/strictJson.js"
import { defect, streamDefect } from "./defects.js"
import { AgentEntity, type AgentStatus } from "./protocol.js"
import * as TaskRef from "./taskRef.js"
import * as Topology from "./topology.js"

/** Options of a call through the cluster. */
export interface CallOptions {
  /** Bounds the whole call, retries and failover included. Required: the cluster itself never gives up. */
  readonly timeout: DurationInput
  /**
   * Sends the call as a persisted task under this key: stored before it runs, re-run on another runner if its
   * runner dies, and answered once per key (the same key again gets the first reply, or waits for it). The task runs
   * under the agent's `requestTimeout`; `timeout` bounds only how long this caller waits, and a caller that gives up
   * leaves the task running (call again with the key for its answer).
   */
  readonly idempotencyKey?: string | undefined
}

/** Options of a status or restart through the cluster. */
export interface ControlOptions {
  /** 10 seconds by default (a restart: 60 seconds). */
  readonly timeout?: DurationInput | undefined
}

/** Options of a publish through the cluster. */
export interface PublishOptions {
  /** Deliver to every subscriber (a pool: one member) instead of one, in turn. */
  readonly fanout?: boolean | undefined
  /** Bounds storing the task (not running it): 10 seconds by default. */
  readonly timeout?: DurationInput | undefined
}

/** What a call through the cluster fails with. */
export type CallError = RequestError | AgentStartupError | AgentUnavailableError

/** Sends to agents wherever they run. */
export interface AgentClientService {
  /** Calls an agent, or a member of a pool (`routingKey` or `idempotencyKey` picks it in a `sticky` pool). */
  readonly call: (
    agentId: string,
    input: unknown,
    options: CallOptions & { readonly routingKey?: string | undefined }
  ) => Effect.Effect<unknown, CallError>
  /**
   * Publishes a task to a topic's subscribers (one in turn, or all with `fanout`) as persisted tasks, and answers
   * once they are stored, with the task's id: the task survives the loss of the runner that holds it.
   */
  readonly publish: (
    topic: string,
    payload: unknown,
    options?: PublishOptions
  ) => Effect.Effect<string, AgentUnavailableError | ConfigError>
  /** A published task's result (with `fanout`: each subscriber's, by name), waiting for it within `timeout`. */
  readonly awaitResult: (
    taskId: string,
    options: { readonly timeout: DurationInput }
  ) => Effect.Effect<unknown, CallError>
  /** Stores a task (persisted, keyed) and returns once it is stored; its result: `call` with the same key. */
  readonly send: (
    agentId: string,
    input: unknown,
    options: { readonly idempotencyKey: string; readonly timeout?: DurationInput | undefined }
  ) => Effect.Effect<void, AgentUnavailableError | ConfigError>
  readonly stream: (
    agentId: string,
    input: unknown,
    options: { readonly timeout: DurationInput }
  ) => Stream.Stream<StreamEvent, CallError | AgentStreamError>
  readonly status: (agentId: string, options?: ControlOptions) => Effect.Effect<AgentStatus, CallError>
  readonly restart: (agentId: string, options?: ControlOptions) => Effect.Effect<void, CallError>
}

/** The client's tag. */
export class AgentClient extends Context.Tag("effect-agent-supervisor/Cluster/AgentClient")<
  AgentClient,
  AgentClientService
>() {}

type AgentStatus = typeof AgentStatus.Type

/** The agent's own timeout fires this much before the caller's, so that its `AgentTimeoutError` comes first. */
const innerTimeoutMillis = (millis: number): number => Math.max(1, millis - Math.min(250, millis / 4))

const checkId = (agentId: unknown): Either.Either<string, ConfigError> =>
  typeof agentId === "string" && agentId.trim() === agentId && agentId.length > 0 && agentId.length <= 255
    ? Either.right(agentId)
    : Either.left(
      new ConfigError({
        field: "agentId",
        rule: "must be a non-empty agent name of at most 255 characters, without surrounding spaces",
        value: String(agentId)
      })
    )

const checkKey = (key: unknown): Either.Either<string, ConfigError> =>
  typeof key === "string" && key.length > 0
    ? Either.right(key)
    : Either.left(new ConfigError({ field: "idempotencyKey", rule: "must be a non-empty string", value: String(key) }))

/**
 * A payload JSON cannot carry as it is (`StrictJson`: a Map, NaN, a BigInt...), refused before it goes: the runner's
 * agent would refuse it, or, stored as a task in the cluster's message storage, it would be changed without a word.
 */
const checkPayload = (input: unknown): Either.Either<unknown, ConfigError> => {
  const problem = StrictJson.problemOf(input, "payload")
  return problem === undefined
    ? Either.right(input)
    : Either.left(new ConfigError({ field: "payload", rule: `cannot be sent as JSON as it is: ${problem}` }))
}

const unavailable = (agent: string, reason: AgentUnavailableError["reason"], detail: string) =>
  new AgentUnavailableError({ agent, reason, detail })

type ClusterFailure = MailboxFull | AlreadyProcessingMessage | PersistenceError
type Mapped<E> =
  | Exclude<E, ClusterFailure>
  | ([Extract<E, ClusterFailure>] extends [never] ? never : AgentUnavailableError)

const clusterTags = new Set(["MailboxFull", "AlreadyProcessingMessage", "PersistenceError"])

/** The cluster's own failures become `AgentUnavailableError`; ours pass as they are. */
const mapClusterError = (agent: string) => <E>(e: E): Effect.Effect<never, Mapped<E>> => {
  const tag = (e as { readonly _tag?: unknown })._tag
  if (typeof tag === "string" && clusterTags.has(tag)) {
    const reason = tag === "PersistenceError" ? "persistence" : "mailbox_full"
    return Effect.fail(unavailable(agent, reason, String((e as { message?: unknown }).message ?? tag))) as any
  }
  return Effect.fail(e) as any
}

/**
 * Worth sending again: a full mailbox, a task key another caller is running now, an agent stopped under a volatile
 * call (in a cluster its entity closing or a restart stops an agent; the next attempt reaches its next incarnation), and
 * a transport defect, at most {@link MAX_DEFECT_RETRIES} times (then it is the `defect` it is).
 */
const retriable = (keyed: boolean): (cause: Cause.Cause<unknown>) => boolean => {
  let defects = 0
  return (cause) =>
    // The runner's side interrupted it (its entity moved to another runner in a rebalance, or stopped with its
    // runner): sent again, it reaches the entity where it is now (a task's key gets the answer once). The caller's
    // own interruption never gets here: an interrupted fiber runs no error handler.
    Cause.isInterruptedOnly(cause) ?
      true :
      Cause.isDie(cause) ?
      ++defects <= MAX_DEFECT_RETRIES :
      Option.exists(Cause.failureOption(cause), (e) => {
        const tag = (e as { readonly _tag?: unknown })._tag
        // a task's answer is stored for its key: sending it again would get the same answer
        return tag === "MailboxFull" || tag === "AlreadyProcessingMessage" || (!keyed && tag === "AgentStoppedError")
      })
}

const MAX_DEFECT_RETRIES = 3

const backoff = Schedule.exponential("50 millis").pipe(Schedule.either(Schedule.spaced("1 second")))

/**
 * Runs one send within `millis`: retried while retriable, then mapped to our errors. A caller that gives up on a
 * persisted task (`keyed`) only stops waiting: `Task` is uninterruptible from the client, so the cluster never
 * cancels it for that. An interruption from the runner's side is retried: it never reaches the caller as its own
 * (its fiber ended "interrupted without errors" when a rebalance moved the entity under a call).
 *
 * @internal
 */
export const bounded = <A, E>(
  agent: string,
  millis: number,
  once: Effect.Effect<A, E>,
  options?: { readonly keyed: boolean }
) => {
  let last = "no answer"
  return once.pipe(
    Effect.sandbox,
    Effect.tapError((cause) => Effect.sync(() => void (last = Cause.pretty(cause)))),
    Effect.retry({ while: retriable(options?.keyed === true), schedule: backoff }),
    Effect.unsandbox,
    Effect.catchAllDefect(defect(agent)),
    Effect.timeoutFail({
      duration: Duration.millis(millis),
      onTimeout: () => unavailable(agent, "timeout", `no answer within ${millis} ms (last: ${last.slice(0, 500)})`)
    }),
    Effect.catchAll(mapClusterError(agent))
  )
}

const millisOf = (field: string, input: unknown) =>
  Either.map(decodeDuration(field, input), (d) => Duration.toMillis(d))

/** The client, on this process's `Sharding` (a runner's, or a client-only one's). */
export const make = Effect.gen(function*() {
  const clientFor = yield* AgentEntity.client
  const sharding = yield* Sharding.Sharding
  const storage = yield* MessageStorage.MessageStorage
  /** Whose turn it is, per pool and per topic. */
  const turns = new Map<string, number>()
  const nextTurn = (of: string) => {
    const turn = turns.get(of) ?? 0
    turns.set(of, turn + 1)
    return turn
  }
  /**
   * A pool's id to one of its members (when the caller's context has the topology); any other id as it is. A task's
   * key always picks the same member (so that the key is answered once), a routing key in a sticky pool too; else
   * the members take turns.
   */
  const route = (id: string, routingKey: string | undefined, taskKey?: string) =>
    Effect.map(Effect.serviceOption(Topology.TopologyTag), (topology) => {
      const pool = Option.isSome(topology) ? topology.value.pools.get(id) : undefined
      if (pool === undefined) return id
      const key = taskKey ?? (pool.sticky ? routingKey : undefined)
      const index = key !== undefined ? hashOf(key) : nextTurn(`pool:${id}`)
      return pool.members[index % pool.members.length]
    })
  /** Whether a task of this key was ever stored for this agent. */
  const stored = (agent: string, key: string) => {
    const entityId = EntityId.make(agent)
    const address = EntityAddress.make({
      shardId: sharding.getShardId(entityId, "default"),
      entityType: AgentEntity.type,
      entityId
    })
    return Effect.map(storage.requestIdForPrimaryKey({ address, tag: "Task", id: key }), Option.isSome)
  }
  const publish: AgentClientService["publish"] = (topic, payload, options) =>
    Effect.gen(function*() {
      const topology = yield* Effect.serviceOption(Topology.TopologyTag)
      const subscribers = Option.isSome(topology) ? topology.value.topics.get(topic) ?? [] : []
      if (subscribers.length === 0) {
        return yield* new ConfigError({
          field: "topic",
          rule: Option.isSome(topology)
            ? "no agent or pool of the cluster's topology subscribes to it"
            : "needs the cluster's topology (Cluster.layerAgents or Cluster.layerTopology) to find its subscribers",
          value: topic
        })
      }
      const millis = yield* millisOf("timeout", options?.timeout ?? "10 seconds")
      yield* checkPayload(payload)
      const task = crypto.randomUUID()
      const chosen = options?.fanout === true
        ? subscribers
        : [subscribers[nextTurn(`topic:${topic}`) % subscribers.length]]
      const [first, ...rest] = yield* Effect.forEach(chosen, (id) => route(id, undefined))
      const targets = [first, ...rest] as const
      yield* Effect.forEach(targets, (target) =>
        bounded(
          target,
          millis,
          clientFor(target).Task({ input: payload, timeoutMillis: 0, key: `${task}#${target}` }, { discard: true })
        ), { concurrency: "unbounded", discard: true })
      return TaskRef.encode({ task, targets, fanout: options?.fanout === true })
    })
  const awaitResult: AgentClientService["awaitResult"] = (taskId, options) =>
    Effect.gen(function*() {
      const ref = yield* TaskRef.decode(taskId)
      const millis = yield* millisOf("timeout", options.timeout)
      const results = yield* Effect.forEach(ref.targets, (target) =>
        Effect.gen(function*() {
          const key = `${ref.task}#${target}`
          const known = yield* bounded(target, millis, stored(target, key))
          if (!known) {
            return yield* new ConfigError({
              field: "taskId",
              rule: "names no task published to the cluster",
              value: taskId
            })
          }
          // the same key again: the stored reply, or the first delivery's when it ends (never a second run)
          const result = yield* bounded(
            target,
            millis,
            clientFor(target).Task({ input: null, timeoutMillis: 0, key }),
            { keyed: true }
          )
          return [target, result] as const
        }), { concurrency: "unbounded" })
      return ref.fanout ? Object.fromEntries(results) : results[0][1]
    })
  const service: AgentClientService = {
    publish,
    awaitResult,
    call: (agentId, input, options) =>
      Effect.gen(function*() {
        const id = yield* route(yield* checkId(agentId), options.routingKey, options.idempotencyKey)
        const millis = yield* millisOf("timeout", options.timeout)
        yield* checkPayload(input)
        const timeoutMillis = innerTimeoutMillis(millis)
        const client = clientFor(id)
        if (options.idempotencyKey === undefined) {
          return yield* bounded(id, millis, client.Call({ input, timeoutMillis }))
        }
        const key = yield* checkKey(options.idempotencyKey)
        // a task runs under the agent's own requestTimeout: the caller's timeout bounds its wait, not the task
        return yield* bounded(id, millis, client.Task({ input, timeoutMillis: 0, key }), { keyed: true })
      }),
    send: (agentId, input, options) =>
      Effect.gen(function*() {
        const id = yield* route(yield* checkId(agentId), undefined, options.idempotencyKey)
        const key = yield* checkKey(options.idempotencyKey)
        const millis = yield* millisOf("timeout", options.timeout ?? "10 seconds")
        yield* checkPayload(input)
        yield* bounded(id, millis, clientFor(id).Task({ input, timeoutMillis: 0, key }, { discard: true }))
      }),
    stream: (agentId, input, options) =>
      Stream.unwrap(Effect.gen(function*() {
        const id = yield* route(yield* checkId(agentId), undefined)
        const millis = yield* millisOf("timeout", options.timeout)
        yield* checkPayload(input)
        const timedOut = Effect.zipRight(
          Effect.sleep(Duration.millis(millis)),
          Effect.fail(unavailable(id, "timeout", `the stream did not end within ${millis} ms`))
        )
        return clientFor(id).Stream({ input, timeoutMillis: innerTimeoutMillis(millis) }).pipe(
          Stream.catchAll((e) => Stream.fromEffect(mapClusterError(id)(e))),
          Stream.catchAllCause(streamDefect(id)),
          Stream.interruptWhen(timedOut)
        )
      })),
    status: (agentId, options) =>
      Effect.gen(function*() {
        const id = yield* checkId(agentId)
        const millis = yield* millisOf("timeout", options?.timeout ?? "10 seconds")
        return yield* bounded(id, millis, clientFor(id).Status())
      }),
    restart: (agentId, options) =>
      Effect.gen(function*() {
        const id = yield* checkId(agentId)
        const millis = yield* millisOf("timeout", options?.timeout ?? "60 seconds")
        yield* bounded(id, millis, clientFor(id).Restart())
      })
  }
  return service
})

/** The client's layer, on the cluster layer's `Sharding` and message storage. */
export const layer: Layer.Layer<AgentClient, never, Sharding.Sharding | MessageStorage.MessageStorage> = Layer.effect(
  AgentClient,
  make
)

/** A stable hash of a routing key (FNV-1a, 32 bits). */
const hashOf = (key: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/**
 * The agent entity's behaviour: an `AgentSupervisor` in the entity's `Scope`, so passivation, a shard moving to
 * another runner and the runner's shutdown all run its 3-phase stop. The agent starts at the first message and,
 * once up, is restarted by its own `RestartPolicy` (backoff, breaker): the cluster never restarts it. A first start
 * that fails fails that message with `AgentStartupError`, and the next message tries again.
 */
import * as Entity from "@effect/cluster/Entity"
import type * as Sharding from "@effect/cluster/Sharding"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SynchronizedRef from "effect/SynchronizedRef"
import * as AgentSupervisor from "../../Agent/AgentSupervisor.js"
import { ConfigError } from "../../Errors.js"
import type * as Store from "../../Store/Store.js"
import { AgentCatalog } from "./catalog.js"
import { defect, streamDefect } from "./defects.js"
import { Placement } from "./placement.js"
import { AgentEntity } from "./protocol.js"

/** How a task waits out its agent's restart: every 100 ms, for at most 30 s. */
const restarting = Schedule.spaced("100 millis").pipe(Schedule.upTo("30 seconds"))

/** A message's `timeoutMillis`: 0 means the agent's own `requestTimeout` (a task sent to run later). */
const timeoutOf = (millis: number) => millis > 0 ? { timeout: Duration.millis(millis) } : {}

const unknownAgent = (agentId: string) =>
  new ConfigError({ field: "agent", rule: "must name an agent of the cluster's catalog", value: agentId })

/** The handlers of an entity id that names no agent: every message fails with `ConfigError`, nothing spawns. */
const unknownHandlers = (agentId: string) => {
  const error = unknownAgent(agentId)
  return AgentEntity.of({
    Call: () => Effect.fail(error),
    Task: () => Effect.fail(error),
    Stream: () => Stream.fail(error),
    Status: () => Effect.fail(error),
    Restart: () => Effect.fail(error)
  })
}

/** Whether `cause` holds nothing but an `AgentStoppedError`, as a failure or as a defect. */
const stoppedOnly = (cause: Cause.Cause<unknown>): boolean => {
  const reasons = [...Chunk.toReadonlyArray(Cause.failures(cause)), ...Chunk.toReadonlyArray(Cause.defects(cause))]
  return reasons.length > 0 &&
    reasons.every((reason) => (reason as { readonly _tag?: unknown } | null)?._tag === "AgentStoppedError")
}

const build = Effect.gen(function*() {
  const address = yield* Entity.CurrentAddress
  const runner = yield* Entity.CurrentRunnerAddress
  const agentId = address.entityId
  const found = (yield* AgentCatalog).lookup(agentId)
  if (Option.isNone(found)) return unknownHandlers(agentId)
  const config = found.value
  const scope = yield* Effect.scope
  const context = yield* Effect.context<Store.Store>()
  const runnerName = `${runner.host}:${runner.port}`
  const placement = yield* Effect.serviceOption(Placement)
  if (Option.isSome(placement)) {
    yield* placement.value.claim(agentId, runnerName, address.shardId.toString())
    yield* Scope.addFinalizer(scope, placement.value.release(agentId, runnerName))
  }
  // None until the first start succeeds; a failed first start leaves it None, and the next message tries again.
  const slot = yield* SynchronizedRef.make(Option.none<AgentSupervisor.AgentSupervisor>())
  // Set as the entity's scope starts to close, before the agent stops (finalizers run last added first).
  let closing = false
  const agent = SynchronizedRef.modifyEffect(
    slot,
    (current) =>
      Option.isSome(current) ? Effect.succeed([current.value, current] as const) : AgentSupervisor.make(config).pipe(
        Scope.extend(scope),
        Effect.provide(context),
        // Stopped during its start: only the entity's scope closing stops it then (a shard moving in a rebalance,
        // passivation, shutdown). Not the message's failure: interrupted, it is sent again (by the client, or by the
        // cluster for a persisted task) and reaches the entity where it is next. As a failure it reached a caller
        // as a defect (CI: "agent-0 was stopped before it could answer" while a runner joined).
        Effect.catchAllCause((cause) => stoppedOnly(cause) ? Effect.interrupt : Effect.failCause(cause)),
        Effect.tap(() => Scope.addFinalizer(scope, Effect.sync(() => void (closing = true)))),
        Effect.map((started) => [started, Option.some(started)] as const)
      )
  )
  /**
   * The agent, running: an agent that stopped for good (it exited 0 under `restart: "transient"`, or was `temporary`)
   * is started again by the next message, as the entity's first message started it. The entity closing stops it for
   * the last time: then messages find it stopped.
   */
  const running = Effect.flatMap(
    agent,
    (a) =>
      Effect.flatMap(a.state, (state) => state === "STOPPED" && !closing ? Effect.as(a.start, a) : Effect.succeed(a))
  )
  const name = config.name
  const call = (input: unknown, timeoutMillis: number, idempotencyKey?: string) =>
    Effect.flatMap(running, (a) => a.handleEvent(input, { ...timeoutOf(timeoutMillis), idempotencyKey })).pipe(
      Effect.catchAllDefect(defect(name))
    )
  return AgentEntity.of({
    Call: ({ payload }) => call(payload.input, payload.timeoutMillis),
    // A task whose agent was stopped under it is never answered with that: its answer is stored for its key for
    // ever. A restart stopped it: it runs again on the new incarnation (at least once). The entity closing stopped it
    // (passivation, a shard moving, shutdown): it is not answered, and the cluster, which ignores an interrupted
    // persisted message while an entity shuts down, delivers it again to the entity's next incarnation.
    Task: ({ payload }) =>
      call(payload.input, payload.timeoutMillis, payload.key).pipe(
        Effect.retry({ while: (e) => e._tag === "AgentStoppedError" && !closing, schedule: restarting }),
        Effect.catchTag("AgentStoppedError", (e) => closing ? Effect.interrupt : Effect.fail(e))
      ),
    Stream: ({ payload }) =>
      Stream.unwrap(Effect.map(running, (a) => a.handleEventStream(payload.input, timeoutOf(payload.timeoutMillis))))
        .pipe(
          Stream.catchAllCause(streamDefect(name))
        ),
    Status: () =>
      Effect.flatMap(agent, (a) => a.metadata).pipe(
        Effect.map((m) => ({
          agent: m.name,
          state: m.state,
          pid: m.pid,
          restartCount: m.restartCount,
          incarnations: m.incarnations,
          inFlight: m.inFlight,
          runner: runnerName
        }))
      ),
    Restart: () => Effect.flatMap(agent, (a) => a.restart)
  })
})

/**
 * The entity layer: registers the agent entity on this runner's `Sharding`. Calls run concurrently (the agent's own
 * `maxInFlight` bounds them); a handler's defect fails that message and never rebuilds the entity (which would stop
 * the agent and re-send every message in flight); the cluster's retry of a failed build is a constant 1 s, which,
 * unlike its default, does not slow down for good after a burst of failures. Passivation (`entityMaxIdleTime`) and
 * the mailbox's size (`entityMailboxCapacity`) are the `ShardingConfig`'s.
 */
export const layer: Layer.Layer<never, never, AgentCatalog | Store.Store | Sharding.Sharding> = AgentEntity.toLayer(
  build,
  { concurrency: "unbounded", disableFatalDefects: true, defectRetryPolicy: Schedule.spaced("1 second") }
)

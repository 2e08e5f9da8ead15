/**
 * A pool at run time (`Supervisor.pool`): a one-for-one supervisor whose children are `size` members made from one
 * agent spec, with a router in front. The router sends each call to one RUNNING member (least calls in flight
 * through the pool, ties in turn; or each in turn), waits for one within the call's timeout while none runs (a
 * call still waiting when the pool stops fails `AgentStoppedError`), and counts what it sent to each member, so that
 * `scale` can drain a member before it stops it.
 *
 * What is counted is what went through the pool: a call made to a member directly (`childSupervisor(pool).call`)
 * is not, and a member's stop fails such calls as any agent's stop does.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as AgentSupervisor from "../../Agent/AgentSupervisor.js"
import type { HandleOptions, HandleStreamOptions } from "../../Agent/AgentSupervisor.js"
import * as Config from "../../Agent/Config.js"
import * as Calls from "../../Agent/internal/calls.js"
import type { StreamEvent } from "../../Agent/StreamEvent.js"
import {
  AgentStoppedError,
  AgentTimeoutError,
  type RequestError,
  type StreamRequestError,
  type SupervisorChildError
} from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import { memberName } from "../memberName.js"
import * as PoolMeter from "../metrics/pool.js"
import { sizeRefusal } from "../poolSize.js"
import * as Autoscale from "./autoscale.js"
import * as Operations from "./operations.js"
import * as Replace from "./replace.js"
import * as Routers from "./routers.js"
import type { Router } from "./routers.js"
import type { AgentSpec, PoolSettings } from "./spec.js"
import type { Instance } from "./state.js"

/** Member `index` of a pool: the agent child `"<index>"`, named `"<name>-<index>"`. */
export const memberSpec = (pool: PoolSettings, index: number): AgentSpec => {
  const config = new Config.AgentConfig({ ...pool.member.config, name: memberName(pool.member.config.name, index) })
  return { ...pool.member, id: String(index), config, settings: config }
}

/** The members a pool starts with: `0` to `size - 1`. */
export const members = (pool: PoolSettings): Array<AgentSpec> =>
  Array.from({ length: pool.size }, (_, index) => memberSpec(pool, index))

/** Makes the router of a pool supervisor and ties it to its handle. */
export const register = (self: Instance, pool: PoolSettings, handle: Supervisor.Supervisor): void => {
  Routers.set(handle, make(self, pool))
}

interface Member {
  readonly id: string
  readonly agent: AgentSupervisor.AgentSupervisor
}

/** A call of the pool `name` that found none of its `members` running within `timeoutMillis`: it was not sent. */
const noMember = (name: string, timeoutMillis: number, members: number): AgentTimeoutError =>
  new AgentTimeoutError({
    agent: name,
    requestId: "(not sent)",
    operation: "start",
    timeoutMillis,
    waitedForStartMillis: timeoutMillis,
    poolMembers: members
  })

/** The keys a streaming call through the pool takes, and why `handleEvent`'s others are none of them. */
const STREAM_OPTIONS = [Calls.HANDLE_STREAM_OPTIONS, Calls.NOT_FOR_STREAMS] as const

const make = (self: Instance, pool: PoolSettings): Router => {
  const requestTimeoutMillis = Duration.toMillis(pool.member.config.requestTimeout)
  const loads = new Map<string, number>()
  const draining = new Set<string>()
  /** Members being drained, completed when their last call through the pool ends. */
  const idle = new Map<string, Deferred.Deferred<void>>()
  let turn = 0

  const pick = (): Member | undefined => {
    const children = self.children
    const count = children.length
    let best: Member | undefined
    let bestLoad = Number.POSITIVE_INFINITY
    for (let k = 0; k < count; k++) {
      const child = children[(turn + k) % count]
      const runtime = child.runtime
      if (runtime?._tag !== "Agent" || draining.has(child.spec.id) || runtime.agent.peekState() !== "RUNNING") {
        continue
      }
      const load = loads.get(child.spec.id) ?? 0
      if (pool.routing === "round-robin" || load === 0) {
        turn = (turn + k + 1) % count
        return { id: child.spec.id, agent: runtime.agent }
      }
      if (load < bestLoad) {
        best = { id: child.spec.id, agent: runtime.agent }
        bestLoad = load
      }
    }
    if (count > 0) turn = (turn + 1) % count
    return best
  }

  const meter = PoolMeter.make(self.name)
  meter.size(pool.size)
  let inFlight = 0
  const begin = (id: string) => {
    loads.set(id, (loads.get(id) ?? 0) + 1)
    meter.inFlight(++inFlight)
  }
  const end = (id: string) =>
    Effect.suspend(() => {
      meter.inFlight(--inFlight)
      const left = (loads.get(id) ?? 1) - 1
      if (left > 0) {
        loads.set(id, left)
        return Effect.void
      }
      loads.delete(id)
      const waiter = idle.get(id)
      return waiter === undefined ? Effect.void : Deferred.succeed(waiter, void 0)
    })

  /**
   * A RUNNING member, waiting for one (any event of the pool may be one becoming RUNNING) at most `timeoutMillis`
   * from `since`; the member and what is left of the timeout.
   */
  const member = (
    timeoutMillis: number,
    since: number
  ): Effect.Effect<{ readonly member: Member; readonly left: number }, AgentTimeoutError | AgentStoppedError> => {
    const now = pick()
    if (now !== undefined) return Effect.succeed({ member: now, left: timeoutMillis - (performance.now() - since) })
    const stopped = new AgentStoppedError({ agent: self.name })
    return Effect.scoped(Effect.gen(function*() {
      if (self.terminating) return yield* stopped
      // Subscribed before the next look: an event between the look and the wait is not missed.
      const events = yield* self.events.subscribe
      while (true) {
        const found = pick()
        const left = timeoutMillis - (performance.now() - since)
        if (found !== undefined) return { member: found, left }
        if (self.terminating) return yield* stopped
        if (left <= 0) {
          return yield* noMember(self.name, timeoutMillis, self.children.length)
        }
        yield* Queue.take(events).pipe(Effect.timeoutOption(Duration.millis(left)))
      }
    })).pipe(
      // The pool's stop shuts its events down: a subscription or a take under way is interrupted by it
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) && self.terminating ? Effect.fail(stopped) : Effect.failCause(cause)
      )
    )
  }

  const handleEvent = (payload: unknown, options?: HandleOptions): Effect.Effect<unknown, RequestError> =>
    Effect.suspend(() => {
      const timeoutMillis = Calls.callTimeoutMillis(options, requestTimeoutMillis, Calls.HANDLE_OPTIONS)
      if (typeof timeoutMillis !== "number") return Effect.fail(timeoutMillis)
      return Effect.flatMap(member(timeoutMillis, performance.now()), ({ left, member }) => {
        begin(member.id)
        return member.agent.handleEvent(payload, { ...options, timeout: Duration.millis(Math.max(left, 1)) }).pipe(
          Effect.ensuring(end(member.id))
        )
      })
    })

  const handleEventStream = (
    payload: unknown,
    options?: HandleStreamOptions
  ): Stream.Stream<StreamEvent, StreamRequestError> =>
    Stream.unwrapScoped(Effect.suspend((): Effect.Effect<
      Stream.Stream<StreamEvent, StreamRequestError>,
      StreamRequestError,
      Scope.Scope
    > => {
      const timeoutMillis = Calls.callTimeoutMillis(options, requestTimeoutMillis, ...STREAM_OPTIONS)
      if (typeof timeoutMillis !== "number") return Effect.fail(timeoutMillis)
      return Effect.flatMap(member(timeoutMillis, performance.now()), ({ left, member }) => {
        begin(member.id)
        return Effect.as(
          Effect.addFinalizer(() => end(member.id)),
          member.agent.handleEventStream(payload, { ...options, timeout: Duration.millis(Math.max(left, 1)) })
        )
      })
    }))

  /** Waits until no call through the pool is in flight to `id`, at most its graceful timeout. */
  const drain = (id: string, within: Duration.Duration) =>
    Effect.gen(function*() {
      if ((loads.get(id) ?? 0) === 0) return
      const waiter = yield* Deferred.make<void>()
      idle.set(id, waiter)
      yield* Deferred.await(waiter).pipe(
        Effect.timeoutOption(within),
        Effect.ensuring(Effect.sync(() => idle.delete(id)))
      )
    })

  const scaling = Effect.unsafeMakeSemaphore(1)

  /** The pool to `size` members, under the scaling permit; as the pool's own, whoever asks (its members log so). */
  const resize = (size: number) =>
    Effect.gen(function*() {
      pool.size = size
      meter.size(size)
      yield* grow(self, pool, size)
      yield* shrink(self, size, { draining, loads, drain })
    })

  /** When a scale by hand last began (the `Clock`'s epoch ms): the autoscaler leaves it its cool-down. */
  let scaledByHand: number | undefined

  const scale = (size: number): Effect.Effect<void, Supervisor.StartError | SupervisorChildError> =>
    Effect.suspend(() => {
      const refused = sizeRefusal(size, pool.maxSize, pool.autoscale)
      if (refused !== undefined) return Effect.fail(refused)
      return self.asOwn(
        scaling.withPermits(1)(
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            scaledByHand = now
            return resize(size)
          })
        )
      )
    })

  // The autoscaler's decision, unless a scale by hand began since it was made
  const autoscaleTo = (size: number, decidedAt: number) =>
    self.asOwn(
      scaling.withPermits(1)(Effect.suspend(() =>
        scaledByHand !== undefined && scaledByHand >= decidedAt ? Effect.succeed(false) : Effect.as(resize(size), true)
      ))
    )

  if (pool.autoscale !== undefined) {
    startAutoscale(self, pool.autoscale, loads, () => scaledByHand, autoscaleTo)
  }

  return {
    handleEvent,
    handleEventStream,
    scale,
    inFlight: (id) => loads.get(id) ?? 0,
    info: () => infoOf(self, pool, loads, draining),
    reload: (member) =>
      scaling.withPermits(1)(Effect.suspend(() => {
        const running = { ...pool, member: pool.member }
        const next = { ...pool, member }
        // The pool's spec only once every member runs it: a failed reload leaves the pool as it was.
        return Replace.reloadMembers(self, (index) => memberSpec(next, index), (index) => memberSpec(running, index))
          .pipe(Effect.tap(() => Effect.sync(() => (pool.member = member))))
      }))
  }
}

/** Members added from the lowest free number until the pool has `size` (under its lock). */
const grow = (self: Instance, pool: PoolSettings, size: number) =>
  self.locked(Effect.gen(function*() {
    const taken = new Set(self.children.map((child) => child.spec.id))
    for (let index = 0; self.children.length < size; index++) {
      if (taken.has(String(index))) continue
      yield* Operations.addChild(self, memberSpec(pool, index)).pipe(
        Effect.tapError(() => Effect.sync(() => (pool.size = self.children.length)))
      )
    }
  }))

/** The highest-numbered members beyond `size` drained (their calls through the pool end), stopped and removed. */
const shrink = (
  self: Instance,
  size: number,
  router: {
    readonly draining: Set<string>
    readonly loads: Map<string, number>
    readonly drain: (id: string, within: Duration.Duration) => Effect.Effect<void>
  }
) =>
  Effect.gen(function*() {
    const { drain, draining, loads } = router
    const victims = [...self.children].sort((a, b) => Number(b.spec.id) - Number(a.spec.id))
      .slice(0, Math.max(0, self.children.length - size))
    for (const child of victims) draining.add(child.spec.id)
    yield* Effect.forEach(victims, (child) => {
      const within = child.spec._tag === "Agent" ? child.spec.config.gracefulTimeout : Duration.zero
      return drain(child.spec.id, within).pipe(
        Effect.zipRight(Operations.terminateChild(self, child.spec.id)),
        Effect.zipRight(Operations.deleteChild(self, child.spec.id)),
        // Gone already (the pool stopping, say): nothing left to remove.
        Effect.catchTag("SupervisorChildError", () => Effect.void),
        Effect.ensuring(Effect.sync(() => {
          draining.delete(child.spec.id)
          loads.delete(child.spec.id)
        }))
      )
    }, { concurrency: "unbounded", discard: true })
  })

/** The pool as `Supervisor.poolInfo` reports it. */
const infoOf = (
  self: Instance,
  pool: PoolSettings,
  loads: ReadonlyMap<string, number>,
  draining: ReadonlySet<string>
): Supervisor.PoolInfo => ({
  name: self.name,
  size: pool.size,
  maxSize: pool.maxSize,
  routing: pool.routing,
  members: [...self.children].sort((a, b) => Number(a.spec.id) - Number(b.spec.id)).map((child) => {
    const agent = child.runtime?._tag === "Agent" ? child.runtime.agent.peek() : undefined
    return {
      id: child.spec.id,
      name: child.spec._tag === "Agent" ? child.spec.config.name : child.spec.tree.name,
      state: agent?.state ?? "STOPPED",
      pid: agent?.pid === undefined ? Option.none() : Option.some(agent.pid),
      inFlight: loads.get(child.spec.id) ?? 0,
      draining: draining.has(child.spec.id)
    }
  })
})

/** The pool's autoscaling loop, in the pool's scope (`autoscale.ts`). */
const startAutoscale = (
  self: Instance,
  settings: NonNullable<PoolSettings["autoscale"]>,
  loads: ReadonlyMap<string, number>,
  scaledByHand: () => number | undefined,
  scale: (size: number, decidedAt: number) => Effect.Effect<boolean, unknown>
): void => {
  Effect.runFork(self.fork(Autoscale.run(
    settings,
    () => ({
      scaledByHand: scaledByHand(),
      size: self.children.length,
      members: self.children.map((child) => ({
        inFlight: loads.get(child.spec.id) ?? 0,
        maxInFlight: child.spec._tag === "Agent" ? child.spec.config.maxInFlight : 1
      }))
    }),
    scale,
    () => self.terminating
  )))
}

/**
 * Manual operations: start, stop and restart. They are never counted as failures, close an open circuit, and
 * cancel whatever the owner had pending (a backoff, a restart under way).
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { type AgentStartupError, AgentStoppedError } from "../../../Errors.js"
import {
  type Core,
  leftBehindOf,
  now,
  setRoute,
  settleStartWaiters,
  STOPPED,
  stoppedError,
  transition
} from "./core.js"
import type { Controls } from "./owner.js"
import { beginStart } from "./starting.js"

/** Interrupts the owner's decision and the start under way, if any. */
const cancelPending = (core: Core): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (core.ownerFiber !== undefined) {
      const fiber = core.ownerFiber
      core.ownerFiber = undefined
      yield* Fiber.interrupt(fiber)
    }
    if (core.startFiber !== undefined) {
      const fiber = core.startFiber
      core.startFiber = undefined
      yield* Fiber.interrupt(fiber)
    }
  })

/**
 * Stops the agent, to be run under the lock. Idempotent, and uninterruptible (the phases are bounded): a stop is
 * never left half-done by an interrupted caller, and a second stop finds STOPPED and returns.
 */
export const stopLocked = (core: Core): Effect.Effect<void> =>
  Effect.uninterruptible(Effect.gen(function*() {
    if (core.state === "STOPPED" || core.state === "IDLE") return
    // STOPPING from the start: ending a start under way (its process spawned, not yet ready) takes the stop's
    // phases too, and the views say so meanwhile.
    if (core.state !== "STOPPING") yield* transition(core, "STOPPING")
    yield* cancelPending(core)
    yield* setRoute(core, STOPPED)
    const current = core.incarnation
    core.incarnation = undefined
    if (current !== undefined) {
      yield* Scope.close(current.scope, Exit.void)
      // How the stop ended (graceful exit, SIGTERM or SIGKILL) is worth seeing: record it like any exit.
      const info = yield* current.process.exitInfo
      if (Option.isSome(info)) {
        core.lastExit = info.value
        if (info.value.leftBehind === true) core.metrics.leftBehind()
        yield* core.publish({
          _tag: "Exited",
          agent: core.name,
          pid: info.value.pid,
          exitCode: info.value.exitCode,
          signal: info.value.signal,
          exitClass: "shutdown",
          reason: "exit",
          ...leftBehindOf(info.value),
          timestamp: yield* now
        })
      }
    }
    core.circuitOpen = false
    core.failures = 0
    yield* transition(core, "STOPPED")
    yield* settleStartWaiters(core, Exit.fail(stoppedError(core, "start")))
  }))

/**
 * Starts the agent unless it runs, to be run under the lock; answers with the wait for the start (joining one
 * under way), to be run after the lock is released.
 */
export const startLocked = (
  core: Core,
  controls: Controls,
  kind: "first" | "manual"
): Effect.Effect<Effect.Effect<void, AgentStartupError | AgentStoppedError>> =>
  Effect.uninterruptible(Effect.gen(function*() {
    // Its scope has closed: nothing could run the start (its fibers' scope is closed), which would wait for ever
    if (core.closed) return Effect.fail(stoppedError(core, "start"))
    const waiter = yield* Deferred.make<void, AgentStartupError | AgentStoppedError>()
    if (core.state === "RUNNING") return Effect.void
    core.startWaiters.push(waiter)
    if (core.state !== "STARTING") {
      yield* cancelPending(core)
      core.circuitOpen = false
      core.failures = 0
      yield* beginStart(core, controls, kind)
    }
    return Deferred.await(waiter)
  }))

/** The manual operations of one agent, each traced with the agent's name. */
export interface Operations {
  readonly start: Effect.Effect<void, AgentStartupError | AgentStoppedError>
  readonly stop: Effect.Effect<void>
  readonly restart: Effect.Effect<void, AgentStartupError | AgentStoppedError>
}

/**
 * The manual operations of `core`; made once per agent. Each operation's effect is built on its first run (a
 * thousand agents started together would build three each, for operations most of them never run). Their spans
 * capture no stack trace: its call site would be this module's, not the caller's, and the trace's `Error` keeps
 * the frames' functions and what they close over for as long as the span is reachable (see `instance.ts`).
 */
export const make = (core: Core, controls: Controls): Operations => {
  const attributes = { attributes: { agent: core.name }, captureStackTrace: false }
  const stop = stopLocked(core)
  const start = startLocked(core, controls, "manual")
  return {
    start: lazily(() => Effect.flatten(core.locked(start)).pipe(Effect.withSpan("AgentSupervisor.start", attributes))),
    stop: lazily(() => core.locked(stop).pipe(Effect.withSpan("AgentSupervisor.stop", attributes))),
    restart: lazily(() =>
      Effect.flatten(core.locked(Effect.zipRight(stop, start))).pipe(
        Effect.withSpan("AgentSupervisor.restart", attributes)
      )
    )
  }
}

/** An effect made on its first run and kept. */
const lazily = <A, E>(make: () => Effect.Effect<A, E>): Effect.Effect<A, E> => {
  let made: Effect.Effect<A, E> | undefined
  return Effect.suspend(() => made ??= make())
}

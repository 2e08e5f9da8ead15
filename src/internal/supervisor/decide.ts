/**
 * Decisions: what follows an exit a supervisor did not ask for (remove, stop, park, restart a set, escalate,
 * shut itself down), and the restart of a set after its backoff. Every decision runs under the supervisor's lock
 * in a fiber of the supervisor's own, never in a child's, so it may stop any child, itself included.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as AgentSupervisor from "../../Agent/AgentSupervisor.js"
import type * as Owned from "../../Agent/internal/owned.js"
import * as RestartPolicy from "../../Agent/RestartPolicy.js"
import { SupervisorIntensityError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import * as AgentMetrics from "../metrics/instruments.js"
import {
  currentFiber,
  interruptPending,
  publishStarted,
  removeChild,
  startRuntime,
  stopAll,
  stopRuntime
} from "./children.js"
import * as Keeper from "./keeper.js"
import * as Plan from "./plan.js"
import { type Child, type ChildExitInfo, HISTORY_LIMIT, type Instance, now, publish } from "./state.js"

/** A decision about a child runs in a fiber of this supervisor, so it may stop the child it is about. */
export const decideLater = (self: Instance, child: Child, exit: ChildExitInfo): Effect.Effect<void> =>
  Effect.asVoid(self.fork(self.locked(Effect.uninterruptible(decideExit(self, child, exit)))))

/** Decides what follows an exit of `child` (DESIGN "Restart decision"), under the lock. */
export const decideExit = (self: Instance, child: Child, exit: ChildExitInfo): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (self.terminating || child.status !== "running" || !self.children.includes(child)) return
    yield* publish(self, {
      _tag: "ChildExited",
      supervisor: self.name,
      child: child.spec.id,
      exitClass: exit.exitClass,
      reason: exit.reason,
      timestamp: yield* now
    })
    const controls = child.runtime?._tag === "Agent" ? child.runtime.controls : undefined
    const settings = child.spec.settings
    const before = RestartPolicy.failuresAfterRun(settings, child.failures, exit.uptimeMillis)
    const decision = RestartPolicy.decide(settings, exit.exitClass, before)
    switch (decision._tag) {
      case "Remove": {
        yield* removeChild(self, child)
        return yield* checkAutoShutdown(self, child)
      }
      case "Stop": {
        child.status = "stopped"
        if (controls !== undefined) yield* controls.finish(exit.exitClass)
        else if (child.runtime?._tag === "Supervisor") yield* stopRuntime(self, child, "shutdown")
        return yield* checkAutoShutdown(self, child)
      }
      case "Park": {
        child.failures = decision.failures
        child.status = "stopped"
        yield* Keeper.park(self, child)
        if (controls !== undefined) yield* controls.park(decision.failures)
        else yield* stopRuntime(self, child, "shutdown")
        yield* publish(self, {
          _tag: "ChildParked",
          supervisor: self.name,
          child: child.spec.id,
          timestamp: yield* now
        })
        return
      }
      case "Restart": {
        child.failures = decision.failures
        if (yield* self.intensity.record) return yield* escalate(self, child.spec.id)
        return yield* scheduleRestart(self, child, exit, controls, decision.failures)
      }
    }
  })

const REASONS: ReadonlySet<string> = new Set<AgentSupervisor.ExitReason>([
  "start_failed",
  "heartbeat",
  "memory_limit",
  "cpu_limit",
  "pids_limit"
])

const reasonOf = (exit: ChildExitInfo): AgentSupervisor.ExitReason =>
  REASONS.has(exit.reason) ? exit.reason as AgentSupervisor.ExitReason : "exit"

/**
 * A restart within intensity: stops the bystanders of the plan, records the decision, and forks the restart of
 * the set after the crashed child's backoff.
 */
const scheduleRestart = (
  self: Instance,
  child: Child,
  exit: ChildExitInfo,
  controls: Owned.Controls | undefined,
  failures: number
): Effect.Effect<void> =>
  Effect.gen(function*() {
    // A nested supervisor that escalated has stopped its children; close it before building it anew.
    if (child.runtime?._tag === "Supervisor") yield* stopRuntime(self, child, "shutdown")
    const plan = Plan.plan(self.children, self.tree.strategy, child)
    // A group restart subsumes restarts already pending for its members: counted once.
    for (const member of plan.members) member.skip = false
    yield* interruptPending(plan.members)
    for (const member of plan.stop) {
      if (member.status !== "stopped" || member.runtime !== undefined) {
        yield* stopRuntime(self, member, "bystander")
      }
      if (plan.remove.includes(member)) {
        yield* removeChild(self, member)
        continue
      }
      member.status = "restarting"
      yield* Keeper.unpark(self, member)
    }
    const delay = yield* RestartPolicy.delay(child.spec.settings, failures)
    const delayMillis = Duration.toMillis(delay)
    if (controls !== undefined) {
      yield* controls.scheduleRestart({ attempt: failures, delayMillis, reason: reasonOf(exit) })
    }
    child.status = "restarting"
    const record: Supervisor.RestartRecord = {
      child: child.spec.id,
      timestamp: yield* now,
      reason: exit.reason,
      attempt: failures,
      delayMillis,
      affected: plan.start.map((c) => c.spec.id),
      ...(exit.exitCode !== undefined ? { exitCode: exit.exitCode } : {}),
      ...(exit.signal !== undefined ? { signal: exit.signal } : {}),
      ...(exit.leftBehind === true ? { leftBehind: true as const } : {})
    }
    self.history.unshift(record)
    if (self.history.length > HISTORY_LIMIT) self.history.pop()
    AgentMetrics.restarted(
      child.spec._tag === "Agent" ? child.spec.config.name : child.spec.tree.name,
      exit.exitClass,
      exit.reason
    )
    yield* publish(self, { _tag: "RestartScheduled", supervisor: self.name, record })
    // One restart, one record, under the child's path in the tree (its agent records none of its own).
    yield* self.writer.recordRestart({
      agent_name: `${self.name}/${child.spec.id}`,
      timestamp: record.timestamp,
      reason: exit.reason,
      attempt: record.attempt,
      delay_ms: delayMillis,
      ...(record.exitCode !== undefined ? { exit_code: record.exitCode } : {}),
      ...(record.signal !== undefined ? { signal: record.signal } : {}),
      ...(record.leftBehind === true ? { left_behind: true as const } : {})
    })
    const fiber = yield* self.fork(Effect.zipRight(Effect.sleep(delay), runRestart(self, plan.start, child)))
    for (const member of plan.start) member.pending = fiber
  })

/**
 * Starts the affected set again in start order; a start that fails is an abnormal exit of that child. Each
 * member keeps this fiber as its `pending` restart until its own start is over, so that `terminateChild` and
 * shutdown can interrupt a start that hangs. The lock is held to decide and to commit, never while a process
 * comes up: independent restarts proceed at once, each at its own pace (a group keeps its order, member by
 * member, in this one fiber).
 */
const runRestart = (self: Instance, set: ReadonlyArray<Child>, crashed: Child): Effect.Effect<void> =>
  Effect.gen(function*() {
    const fiber = yield* currentFiber
    for (const member of set) {
      if (!(yield* self.locked(Effect.sync(() => claim(self, member, fiber))))) continue
      const result = yield* Effect.either(restartMember(self, member, crashed))
      const failed = result._tag === "Left" ? result.left : undefined
      const goOn = yield* self.locked(Effect.uninterruptible(commit(self, member, fiber, failed)))
      if (!goOn) return
    }
  })

/** Whether this restart still covers `member`; if so, it is running from here (an exit of it is decided). */
const claim = (self: Instance, member: Child, fiber: unknown): boolean => {
  if (self.terminating || !self.children.includes(member) || member.pending !== fiber) return false
  if (member.skip) {
    member.skip = false
    member.pending = undefined
    return false
  }
  member.status = "running"
  member.parked = false
  return true
}

/** The crashed agent restarts through its own controls (its incarnation goes on); anything else starts anew. */
const restartMember = (self: Instance, member: Child, crashed: Child): Effect.Effect<void, Supervisor.StartError> => {
  const runtime = member.runtime
  return member === crashed && runtime?._tag === "Agent" && runtime.controls !== undefined
    ? runtime.controls.restartNow.pipe(
      Effect.zipRight(publishStarted(self, member)),
      Effect.catchTag("AgentStoppedError", () =>
        // Stopped by hand in the meantime: start it as a stopped child would be, unless it is being terminated.
        member.skip ? Effect.void : startRuntime(self, member))
    )
    : startRuntime(self, member)
}

/**
 * After a member's start: whether the restart goes on with the rest of the set. A start that failed is decided as an
 * abnormal exit, with how its process ended when it did (an agent that exited before `ready`).
 */
const commit = (
  self: Instance,
  member: Child,
  fiber: unknown,
  failed: Supervisor.StartError | undefined
): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    if (member.pending === fiber) member.pending = undefined
    if (member.skip) {
      // terminateChild stopped it while it was starting: it is the terminator's now.
      member.skip = false
      return true
    }
    if (self.terminating) return false
    if (failed !== undefined) {
      const ended = failed._tag === "AgentStartupError" && (failed.exitCode != null || failed.signal != null)
        ? { exitCode: failed.exitCode ?? null, signal: failed.signal ?? null }
        : {}
      yield* decideExit(self, member, { exitClass: "abnormal", reason: "start_failed", uptimeMillis: 0, ...ended })
      // A new restart took over the rest of the set, or the supervisor is going down: done here. After a
      // decision that parks or stops the failed child, the rest of the set still starts.
      if (self.terminating) return false
    }
    return true
  })

/** More restarts than the intensity allows: every child stops, and the supervisor fails to its parent. */
const escalate = (self: Instance, lastChild: string): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { maxRestarts, window } = self.tree.intensity
    const windowMillis = Duration.toMillis(window)
    const error = new SupervisorIntensityError({ supervisor: self.name, maxRestarts, windowMillis, lastChild })
    yield* Effect.logError(error.message)
    // Before the children stop: a request to an agent being stopped fails with this, not with AgentStoppedError.
    self.escalated = error
    yield* stopAll(self, "escalation")
    const timestamp = yield* now
    yield* publish(self, { _tag: "Escalated", supervisor: self.name, error, timestamp })
    yield* self.writer.saveMetric({
      event: "supervisor_escalation",
      agent_name: self.name,
      timestamp,
      last_child: lastChild,
      max_restarts: maxRestarts,
      window_ms: windowMillis
    })
    yield* Deferred.fail(self.done, error)
  })

/** A significant child ended for good: the supervisor may shut itself down (OTP's `auto_shutdown`). */
const checkAutoShutdown = (self: Instance, ended: Child): Effect.Effect<void> =>
  Effect.gen(function*() {
    const autoShutdown = self.tree.autoShutdown
    if (!ended.spec.significant || autoShutdown === "never") return
    const remaining = self.children.some((c) => c.spec.significant && c.status !== "stopped")
    if (autoShutdown === "all-significant" && remaining) return
    yield* stopAll(self, "shutdown")
    yield* publish(self, { _tag: "AutoShutdown", supervisor: self.name, timestamp: yield* now })
    yield* Deferred.succeed(self.done, void 0)
  })

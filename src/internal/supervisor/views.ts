/**
 * Views of a supervisor's children (`whichChildren`, `countChildren`) and the lookups behind `call`, `child` and
 * `childSupervisor`. They read the state without the lock: each child is read in one step.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as AgentSupervisor from "../../Agent/AgentSupervisor.js"
import type * as Owned from "../../Agent/internal/owned.js"
import { SupervisorChildError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import { OPERATION_AGENT_OF } from "../errors/supervision.js"
import * as Routers from "./routers.js"
import { type Child, childError, find, type Instance } from "./state.js"

/**
 * One child as `whichChildren` reports it, read in one synchronous step: the supervisor's own view and the agent's
 * state and pid, never its full metadata (1,000 children in well under a millisecond).
 */
const infoOf = (child: Child): Supervisor.ChildInfo => {
  const { parked, runtime, spec, status } = child
  const agent = agentOf(child)
  if (agent !== undefined) {
    const { pid, state } = agent.peek()
    return {
      id: spec.id,
      kind: "worker",
      name: runtime?._tag === "Agent" ? runtime.agent.name : spec._tag === "Agent" ? spec.config.name : spec.tree.name,
      state,
      status,
      parked,
      pid: pid === undefined ? Option.none() : Option.some(pid)
    }
  }
  return {
    id: spec.id,
    kind: spec._tag === "Agent" ? "worker" : "supervisor",
    name: spec._tag === "Agent" ? spec.config.name : spec.tree.name,
    state: stateOf(child),
    status,
    parked,
    pid: Option.none()
  }
}

/** The agent of an agent child: its runtime's, or the one its start is making (`Child.starting`). */
const agentOf = (child: Child): Pick<Owned.OwnedAgent, "peek" | "peekState"> | undefined =>
  child.runtime?._tag === "Agent" ? child.runtime.agent : child.starting?.agent

/** A child's state as `whichChildren` reports it: its agent's, or, without one, the supervisor's view of it. */
const stateOf = (child: Child): Supervisor.ChildInfo["state"] => {
  const { runtime, status } = child
  const agent = agentOf(child)
  if (agent !== undefined) return agent.peekState()
  return status === "running"
    ? runtime === undefined ? "STARTING" : "RUNNING"
    : status === "restarting"
    ? "RESTARTING"
    : "STOPPED"
}

/** Children, newest first. */
export const whichChildren = (self: Instance): Effect.Effect<ReadonlyArray<Supervisor.ChildInfo>> =>
  Effect.sync(() => {
    const infos: Array<Supervisor.ChildInfo> = []
    for (let i = self.children.length - 1; i >= 0; i--) infos.push(infoOf(self.children[i]))
    return infos
  })

/** OTP's `count_children`: `active` counts the children running now (an agent in RUNNING, a nested supervisor). */
export const countChildren = (self: Instance): Effect.Effect<Supervisor.ChildCounts> =>
  Effect.sync(() => {
    let active = 0
    let supervisors = 0
    for (const child of self.children) {
      if (child.spec._tag === "Supervisor") supervisors++
      if (stateOf(child) === "RUNNING") active++
    }
    return { specs: self.children.length, active, supervisors, workers: self.children.length - supervisors }
  })

/** What takes a call: an agent child's agent, or a pool child's router. */
export type Target = Pick<AgentSupervisor.AgentSupervisor, "handleEvent" | "handleEventStream">

/**
 * Why a child of the tree has nothing running to take an operation: its restart is pending (`restarting`), or it
 * is stopped (terminated, parked, or restored from the store and failed to start). It is listed by
 * `whichChildren`, so never `not_found`.
 */
const notRunning = (self: Instance, child: Child, operation: string): SupervisorChildError =>
  self.terminating
    ? stoppedChild(self, child, operation)
    : childError(self, child.spec.id, operation, child.status === "restarting" ? "restarting" : "stopped")

/**
 * No child `id`: `not_found`, or `supervisor_stopped` once the supervisor stops (a stopped tree knows no child to
 * operate on, as OTP's `noproc`: before, a call of an unknown id after the stop said `not_found`).
 */
export const missing = (self: Instance, id: string, operation: string): SupervisorChildError =>
  childError(self, id, operation, self.terminating ? "supervisor_stopped" : "not_found")

/** The agent of an agent child, or the router of a running pool child (on the request path: no span). */
export const callTarget = (self: Instance, id: string): Effect.Effect<Target, SupervisorChildError> =>
  Effect.suspend((): Effect.Effect<Target, SupervisorChildError> => {
    const child = find(self, id)
    if (child === undefined) return Effect.fail(missing(self, id, "call"))
    // The tree stopping or stopped takes no new call, whatever the child (a parked one, one its stop has not reached
    // yet), as every other operation on its children: `supervisor_stopped`
    if (self.terminating) return Effect.fail(stoppedChild(self, child, "call"))
    const runtime = child.runtime
    if (runtime?._tag === "Agent") {
      // Stopped for the tree (terminateChild, a transient child done, a restored one that did not start): refused
      // as a stopped pool is, not sent to an agent no one will start. A parked agent answers for itself: its
      // circuit, and how to close it.
      if (child.status === "stopped" && !child.parked) return Effect.fail(stoppedChild(self, child, "call"))
      return Effect.succeed(runtime.agent)
    }
    // Its first start under way: the call waits for it, as a call to any STARTING agent does
    if (child.starting !== undefined) return Effect.succeed(child.starting.agent)
    if (child.spec._tag === "Supervisor" && child.spec.tree.pool === undefined) {
      return Effect.fail(childError(self, id, "call", "not_an_agent"))
    }
    const router = runtime?._tag === "Supervisor" ? Routers.routerOf(runtime.instance) : undefined
    if (router !== undefined) return Effect.succeed(router)
    return Effect.fail(notRunning(self, child, "call"))
  })

/** A child stopped with the tree's stop (`supervisor_stopped`), or on its own (`stopped`). */
const stoppedChild = (self: Instance, child: Child, operation: string): SupervisorChildError =>
  childError(self, child.spec.id, operation, self.terminating ? "supervisor_stopped" : "stopped")

/**
 * The pool child `id` and its router while it has one (`undefined` for a pool that is not running: stopped, parked,
 * restarting), or why there is none to `operation` (`not_found`, `supervisor_stopped`, `not_a_pool`).
 */
const poolOf = (self: Instance, id: string, operation: string) => {
  const child = find(self, id)
  if (child === undefined) return missing(self, id, operation)
  const { runtime, spec } = child
  if (spec._tag !== "Supervisor" || spec.tree.pool === undefined) return childError(self, id, operation, "not_a_pool")
  const router = runtime?._tag === "Supervisor" ? Routers.routerOf(runtime.instance) : undefined
  return { child, tree: spec.tree, pool: spec.tree.pool, router }
}

/** The router of a running pool child, for `scale`. */
export const poolChild = (
  self: Instance,
  id: string,
  operation = "scale"
): Effect.Effect<Routers.Router, SupervisorChildError> =>
  Effect.suspend(() => {
    const found = poolOf(self, id, operation)
    if (found instanceof SupervisorChildError) return Effect.fail(found)
    // A pool that is not running (stopped, parked, restarting) is still the tree's: not "not found"
    if (found.router !== undefined && !self.terminating) return Effect.succeed(found.router)
    return Effect.fail(notRunning(self, found.child, operation))
  })

/**
 * `poolInfo`, a view as `whichChildren` is: the pool's members and calls in flight while its router runs (the tree's
 * stop included, until it reaches the pool); for a pool that is not running (stopped, parked, restarting, the tree
 * stopped), its size and routing as its spec holds them (a `scale` included) and no members.
 */
export const poolInfo = (self: Instance, id: string): Effect.Effect<Supervisor.PoolInfo, SupervisorChildError> =>
  Effect.suspend(() => {
    const found = poolOf(self, id, "read the pool")
    if (found instanceof SupervisorChildError) return Effect.fail(found)
    const { pool: { maxSize, routing, size }, router, tree } = found
    if (router !== undefined) return Effect.sync(() => router.info())
    return Effect.succeed({ name: tree.name, size, maxSize, routing, members: [] })
  })

/**
 * The agent of an agent child (on the request path: no span); once the start that makes it has ended, when one is
 * under way (its first, `startChild`'s).
 */
export const agentChild = (
  self: Instance,
  id: string
): Effect.Effect<AgentSupervisor.AgentSupervisor, SupervisorChildError> =>
  Effect.suspend((): Effect.Effect<AgentSupervisor.AgentSupervisor, SupervisorChildError> => {
    const child = find(self, id)
    if (child === undefined) return Effect.fail(missing(self, id, OPERATION_AGENT_OF))
    const { runtime, spec, starting } = child
    if (spec._tag !== "Agent") {
      const kind = spec.tree.pool === undefined ? "supervisor" : "pool"
      return Effect.fail(childError(self, id, OPERATION_AGENT_OF, "not_an_agent", kind))
    }
    if (starting !== undefined) return Effect.zipRight(Deferred.await(starting.started), agentChild(self, id))
    if (runtime?._tag !== "Agent" || self.terminating) return Effect.fail(notRunning(self, child, OPERATION_AGENT_OF))
    return Effect.succeed(runtime.agent)
  })

/** The running nested supervisor of a supervisor child. */
export const supervisorChild = (
  self: Instance,
  id: string
): Effect.Effect<Supervisor.Supervisor, SupervisorChildError> =>
  Effect.suspend(() => {
    const child = find(self, id)
    const runtime = child?.runtime
    if (runtime?._tag === "Supervisor" && !self.terminating) return Effect.succeed(runtime.instance)
    return Effect.fail(
      child === undefined
        ? missing(self, id, "find supervisor")
        : child.spec._tag === "Supervisor"
        ? notRunning(self, child, "find supervisor")
        : childError(self, id, "find supervisor", "not_a_supervisor")
    )
  })

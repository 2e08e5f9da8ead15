/**
 * Views of a supervisor's children (`whichChildren`, `countChildren`) and the lookups behind `call`, `child` and
 * `childSupervisor`. They read the state without the lock: each child is read in one step.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as AgentSupervisor from "../../Agent/AgentSupervisor.js"
import type { SupervisorChildError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import { type Child, childError, find, type Instance } from "./state.js"

/** One child as `whichChildren` reports it. */
const infoOf = (child: Child): Effect.Effect<Supervisor.ChildInfo> =>
  Effect.suspend(() => {
    // The supervisor's own view first, in one step: what restartChild would answer now.
    const { parked, runtime, status } = child
    const spec = child.spec
    if (runtime?._tag === "Agent") {
      return Effect.map(runtime.agent.metadata, (meta): Supervisor.ChildInfo => ({
        id: spec.id,
        kind: "worker",
        name: meta.name,
        state: meta.state,
        status,
        parked,
        pid: meta.pid
      }))
    }
    return Effect.succeed<Supervisor.ChildInfo>({
      id: spec.id,
      kind: spec._tag === "Agent" ? "worker" : "supervisor",
      name: spec._tag === "Agent" ? spec.config.name : spec.tree.name,
      state: status === "running"
        ? runtime === undefined ? "STARTING" : "RUNNING"
        : status === "restarting"
        ? "RESTARTING"
        : "STOPPED",
      status,
      parked,
      pid: Option.none()
    })
  })

/** Children, newest first. */
export const whichChildren = (self: Instance): Effect.Effect<ReadonlyArray<Supervisor.ChildInfo>> =>
  Effect.suspend(() => Effect.forEach([...self.children].reverse(), infoOf))

/** OTP's `count_children`. */
export const countChildren = (self: Instance): Effect.Effect<Supervisor.ChildCounts> =>
  Effect.gen(function*() {
    const infos = yield* Effect.forEach(self.children, infoOf)
    return {
      specs: infos.length,
      active: infos.filter((i) => i.state === "RUNNING").length,
      supervisors: infos.filter((i) => i.kind === "supervisor").length,
      workers: infos.filter((i) => i.kind === "worker").length
    }
  })

/** The agent of an agent child (on the request path: no span). */
export const agentChild = (
  self: Instance,
  id: string
): Effect.Effect<AgentSupervisor.AgentSupervisor, SupervisorChildError> =>
  Effect.suspend(() => {
    const child = find(self, id)
    if (child === undefined) return Effect.fail(childError(self, id, "call", "not_found"))
    const runtime = child.runtime
    if (child.spec._tag !== "Agent") return Effect.fail(childError(self, id, "call", "not_an_agent"))
    if (runtime?._tag !== "Agent") return Effect.fail(childError(self, id, "call", "not_found"))
    return Effect.succeed(runtime.agent)
  })

/** The running nested supervisor of a supervisor child. */
export const supervisorChild = (
  self: Instance,
  id: string
): Effect.Effect<Supervisor.Supervisor, SupervisorChildError> =>
  Effect.suspend(() => {
    const runtime = find(self, id)?.runtime
    return runtime?._tag === "Supervisor"
      ? Effect.succeed(runtime.instance)
      : Effect.fail(childError(self, id, "find supervisor", "not_found"))
  })

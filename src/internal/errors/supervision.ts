/**
 * The text of the errors a supervisor fails with: too many restarts (`SupervisorIntensityError`), and a child
 * administration call that OTP refuses (`SupervisorChildError`), with what to do for each refusal.
 *
 * Plain fields in, strings out: this module knows nothing of the error classes (`Errors.ts` imports it, never
 * the other way round).
 *
 * @internal
 */
import * as Schema from "effect/Schema"

/**
 * The fields of `Errors.SupervisorChildError`.
 *
 * @internal
 */
export const childFields = {
  supervisor: Schema.String,
  child: Schema.String,
  operation: Schema.String,
  reason: Schema.Literal(
    "already_present",
    "already_started",
    "running",
    "restarting",
    "not_found",
    "not_an_agent",
    "not_a_pool",
    "not_a_supervisor",
    "stopped",
    "reloading",
    "supervisor_stopped"
  ),
  /** What the child is, where the reason depends on it (`not_an_agent`: a pool or a nested supervisor). */
  kind: Schema.optional(Schema.Literal("agent", "pool", "supervisor"))
}

/**
 * The message of a `SupervisorIntensityError`.
 *
 * @internal
 */
export const intensityMessage = (e: {
  readonly supervisor: string
  readonly maxRestarts: number
  readonly windowMillis: number
  readonly lastChild?: string | undefined
}): string =>
  `Supervisor "${e.supervisor}" exceeded ${e.maxRestarts} restarts in ${e.windowMillis} ms` +
  (e.lastChild ? ` (last failing child: ${e.lastChild})` : "")

/**
 * The facts of a refused child administration call (the fields of `Errors.SupervisorChildError`).
 *
 * @internal
 */
export interface ChildFacts extends Schema.Struct.Type<typeof childFields> {}

/**
 * The operation of `child(id)`: `cannot get the agent of child "x"`.
 *
 * @internal
 */
export const OPERATION_AGENT_OF = "get the agent of"

/**
 * The message of a `SupervisorChildError`.
 *
 * @internal
 */
export const childMessage = (e: ChildFacts): string =>
  `Supervisor "${e.supervisor}" cannot ${e.operation} child "${e.child}": ` +
  // a call and a reload take a pool too: "not an agent" alone read as if an agent were the only kind
  (e.reason === "not_an_agent"
    ? e.kind === "pool"
      ? "it is a pool, not an agent"
      : e.operation === OPERATION_AGENT_OF
      ? "it is a nested supervisor, not an agent"
      : "it is a nested supervisor, not an agent or a pool"
    : e.reason === "not_a_supervisor"
    ? "it is an agent, not a nested supervisor or a pool"
    : e.reason.replace(/_/g, " "))

/**
 * What to do about a `SupervisorChildError`, by its reason.
 *
 * @internal
 */
export const childRemediation = (e: ChildFacts): string => {
  switch (e.reason) {
    case "already_present":
      return "The spec is kept but stopped: restartChild it, or deleteChild it before adding a new spec."
    case "already_started":
      return "The child runs already; give a new child a unique id."
    case "running":
      return "terminateChild it first."
    case "restarting":
      // a restart or delete waits for no restart; a call, a scale or a look at its agent only needs it to run
      return e.operation === "restart" || e.operation === "delete"
        ? "terminateChild it first."
        : "Its supervisor starts it again after its restart backoff: try again once whichChildren shows it running."
    case "not_found":
      return "Check the id against whichChildren: the ids of this supervisor's own children (a nested " +
        "supervisor's children through childSupervisor(id))."
    case "not_an_agent":
      if (e.operation === OPERATION_AGENT_OF) {
        return e.kind === "pool"
          ? "A pool's members are its agents: call(id, ...) routes to one of them; childSupervisor(id) gives the " +
            "pool, whose whichChildren and child(memberId) reach each."
          : "childSupervisor(id) gives the nested supervisor; its child(id) gives each of its agents."
      }
      return e.operation === "reload"
        ? "Reload agent or pool children; a nested supervisor's children are reloaded through childSupervisor(id)."
        : "Route calls to agent or pool children; a nested supervisor has no callback."
    case "not_a_supervisor":
      return "The child is an agent: child(id) gives its interface; childSupervisor takes a nested supervisor or a pool."
    case "not_a_pool":
      return "Only a pool child (Supervisor.pool) has a size to scale and members to show."
    case "stopped":
      return "The child is stopped: restartChild it (with the new configuration, deleteChild and startChild)."
    case "reloading":
      return "A reload of this child is under way: wait for it (one reload of a child at a time)."
    case "supervisor_stopped":
      // An escalation answers with the supervisor's SupervisorIntensityError instead: not said here
      return "The supervisor has stopped, or is stopping: its scope closed, or it shut itself down (autoShutdown, once its " +
        "significant children ended). Start a new supervisor, or let its parent restart it."
  }
}

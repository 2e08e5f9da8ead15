/**
 * The lifecycle states of an agent and the table of legal transitions between them.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category schemas
 */
export const AgentState = Schema.Literal(
  "IDLE",
  "STARTING",
  "RUNNING",
  "STOPPING",
  "STOPPED",
  "CRASHED",
  "RESTARTING"
)

/**
 * @since 0.1.0
 * @category models
 */
export type AgentState = typeof AgentState.Type

/**
 * Every legal transition (DESIGN "Lifecycle"). STOPPED may start again (a manual start); CRASHED may go to
 * STARTING directly for a manual restart that closes an open circuit, and RESTARTING may be cut short by one.
 *
 * @since 0.1.0
 * @category transitions
 */
export const transitions: { readonly [From in AgentState]: ReadonlyArray<AgentState> } = {
  IDLE: ["STARTING"],
  STARTING: ["RUNNING", "CRASHED", "STOPPING"],
  RUNNING: ["STOPPING", "CRASHED"],
  STOPPING: ["STOPPED"],
  STOPPED: ["STARTING"],
  CRASHED: ["RESTARTING", "STOPPING", "STARTING"],
  RESTARTING: ["STARTING", "STOPPING"]
}

/**
 * Tells whether `from -> to` is in the table.
 *
 * @since 0.1.0
 * @category transitions
 */
export const canTransition = (from: AgentState, to: AgentState): boolean => transitions[from].includes(to)

/**
 * States in which the agent has a live process or is about to have one.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isActive = (state: AgentState): boolean =>
  state === "STARTING" || state === "RUNNING" || state === "RESTARTING"

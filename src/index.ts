/**
 * effect-agent-supervisor: run AI agents as child processes and keep them alive, the way OTP keeps processes
 * alive.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Agent from "./Agent.js"

/**
 * @since 0.1.0
 */
export * as Errors from "./Errors.js"

/**
 * @since 0.1.0
 */
export * as Protocol from "./Protocol.js"

/**
 * @since 0.1.0
 */
export * as AgentSupervisor from "./Agent/AgentSupervisor.js"

/**
 * @since 0.1.0
 */
export * as Store from "./Store/Store.js"

/**
 * @since 0.1.0
 */
export * as Supervisor from "./Supervisor.js"

/**
 * @since 0.1.0
 */
export * as Adapters from "./Adapters.js"

/**
 * @since 0.1.0
 */
export * as TreeFile from "./TreeFile.js"

/**
 * @since 0.1.0
 */
export * as AdminApi from "./AdminApi.js"

/**
 * @since 0.1.0
 */
export * as Metrics from "./Metrics.js"

/**
 * @since 0.1.0
 */
export * as LogFiles from "./LogFiles.js"

/**
 * The protocol conformance kit: checks any agent program against the protocol (docs/CONFORMANCE.md).
 *
 * @since 0.1.0
 */
export * as Conformance from "./Conformance.js"

/**
 * Typed handles: a `Schema` on each side of an agent's requests and replies.
 *
 * @since 0.1.0
 */
export * as Typed from "./Typed.js"

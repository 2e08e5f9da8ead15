/**
 * The agent namespace: its configuration and one incarnation of its process.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Config from "./Agent/Config.js"

/**
 * @since 0.1.0
 */
export * as Process from "./Agent/Process.js"

/**
 * @since 0.1.0
 */
export * as State from "./Agent/State.js"

/**
 * @since 0.1.0
 */
export * as RestartPolicy from "./Agent/RestartPolicy.js"

/**
 * @since 0.1.0
 */
export * as Health from "./Agent/Health.js"

/**
 * @since 0.1.0
 */
export * as Directory from "./Agent/Directory.js"

/**
 * @since 0.2.0
 */
export * as StreamEvent from "./Agent/StreamEvent.js"

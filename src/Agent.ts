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
 * @since 0.1.0
 */
export * as StreamEvent from "./Agent/StreamEvent.js"

/**
 * Memory and CPU of a process group from one shared scan of `/proc` (what the heartbeat's samples use).
 *
 * @since 0.1.0
 */
export * as ProcessTree from "./Agent/ProcessTree.js"

/**
 * @since 0.1.0
 */
export * as ForkServer from "./Agent/ForkServer.js"

/**
 * Wire protocol v1: message schemas and line framing, shared with the adapters.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Message from "./Protocol/Message.js"

/**
 * @since 0.1.0
 */
export * as Ndjson from "./Protocol/Ndjson.js"

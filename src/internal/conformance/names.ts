/**
 * The conformance kit's check names and default timeouts, in a module of their own: the command line's help lists
 * them without loading the kit (`cli/conformance.ts` loads it only to run).
 *
 * @internal
 */
import * as Duration from "effect/Duration"

/** The checks, in the order a report lists them. */
export const CHECK_NAMES = [
  "ready",
  "echo",
  "concurrent-requests",
  "ping-while-busy",
  "cancel",
  "error-response",
  "shutdown-drains",
  "exit-on-eof",
  "stdout-print",
  "stdout-child",
  "large-payload",
  "multibyte-text",
  "stream",
  "checkpoint",
  "publish"
] as const

export type CheckName = typeof CHECK_NAMES[number]

export const DEFAULT_STARTUP_TIMEOUT = Duration.seconds(10)
export const DEFAULT_REQUEST_TIMEOUT = Duration.seconds(10)
export const DEFAULT_PING_TIMEOUT = Duration.seconds(1)
export const DEFAULT_CANCEL_TIMEOUT = Duration.seconds(2)
export const DEFAULT_EXIT_TIMEOUT = Duration.seconds(5)

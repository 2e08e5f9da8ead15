/**
 * What the command line prints when a command fails: each error's message (every typed error of this library
 * says what happened and what to do), never a stack; a defect, which is a bug, with its stack.
 *
 * @internal
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Option from "effect/Option"

/**
 * The text to print for a failed command, or nothing: an interruption (a signal) is no failure, and the command
 * line's own errors (an unknown option, a missing file) @effect/cli has printed with the usage.
 */
export const report = (cause: Cause.Cause<unknown>): string | undefined =>
  Cause.isInterruptedOnly(cause) ? undefined : Option.match(Cause.failureOption(cause), {
    onSome: (error) => {
      if (ValidationError.isValidationError(error)) return undefined
      const { _tag, message, remediation } = (error ?? {}) as {
        readonly _tag?: unknown
        readonly message?: unknown
        readonly remediation?: unknown
      }
      const text = `error: ${typeof message === "string" && message !== "" ? message : String(error)}`
      // Every typed error of this library says what to do about it too; a ConfigError's message says it already
      // (each setting and its rule: its remediation would say them again)
      return typeof remediation === "string" && remediation !== "" && _tag !== "ConfigError"
        ? `${text}\n${remediation}`
        : text
    },
    onNone: () => `agent-supervisor failed unexpectedly (a bug: please report it):\n${Cause.pretty(cause)}`
  })

/**
 * `startChildren`'s arguments decoded at the edge: an array of specs and a `concurrency`; JavaScript callers get a
 * `ConfigError`, never a throw.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { ConfigError } from "../../Errors.js"
import * as Edge from "../schema.js"

/** `startChildren`'s `concurrency` when it is not given. */
export const DEFAULT_START_CONCURRENCY = 16

/**
 * `startChildren`'s arguments: an array of specs, and options whose only key is `concurrency`, a whole number >= 1
 * (16 when it is not given). JavaScript callers get a `ConfigError`, never a throw.
 */
export const decodeBatch = (
  specs: unknown,
  options: { readonly concurrency?: unknown } | undefined
): Effect.Effect<number, ConfigError> => {
  if (!Array.isArray(specs)) {
    return Effect.fail(Edge.configError([{
      field: "startChildren",
      rule: "takes an array of child specs (made with Supervisor.agent, Supervisor.supervisor or Supervisor.pool)",
      value: Edge.show(specs) ?? "undefined"
    }]))
  }
  // `{ concurency: 2 }` started 16 at once without a word
  const unknown = Edge.unknownKeysError(options, ["concurrency"], undefined)
  if (unknown !== undefined) return Effect.fail(unknown)
  const concurrency = options?.concurrency
  if (concurrency === undefined) return Effect.succeed(DEFAULT_START_CONCURRENCY)
  if (typeof concurrency === "number" && Number.isInteger(concurrency) && concurrency >= 1) {
    return Effect.succeed(concurrency)
  }
  return Effect.fail(Edge.configError([{
    field: "concurrency",
    rule: `must be a whole number of 1 or more: the most children starting at once (${DEFAULT_START_CONCURRENCY} ` +
      `when it is not given)`,
    value: Edge.show(concurrency) ?? String(concurrency)
  }]))
}

/**
 * A decoded child spec as the store keeps it (JSON text), and back to what `startChild` takes. What is kept is the
 * spec as decoded, every default applied (an agent's `restart` and `shutdown` already in its configuration), so a
 * restored child runs as it ran, even if a later version changes a default; decoding it again gives the same spec.
 *
 * Every field of a decoded spec is data (strings, numbers, booleans, durations; a nested supervisor's children
 * likewise): there is no function in a spec to lose. Durations are written `{ "$duration": "1500 millis" }` (or
 * `"<n> nanos"`, `"infinity"`, which a JSON number cannot say), in the unit they were made with.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { DEFAULT_MAX_POOL_SIZE } from "../poolSize.js"
import { messageOf } from "../standalone/messageOf.js"
import type * as Spec from "./spec.js"

/** The version of the text written; another is not read back (its child is reported and skipped). */
const FORMAT = 1

/** A duration as the text in its marker, its unit kept (so that it reads back `Equal` to what was written). */
const durationText = (duration: Duration.Duration): string => {
  switch (duration.value._tag) {
    case "Millis":
      return `${duration.value.millis} millis`
    case "Nanos":
      return `${duration.value.nanos} nanos`
    case "Infinity":
      return "infinity"
  }
}

const durationOf = (text: string): Duration.Duration | undefined => {
  if (text === "infinity") return Duration.infinity
  const [amount, unit] = text.split(" ")
  if (unit === "nanos" && /^\d+$/.test(amount)) return Duration.nanos(BigInt(amount))
  const millis = Number(amount)
  return unit === "millis" && amount !== "" && Number.isFinite(millis) && millis >= 0
    ? Duration.millis(millis)
    : undefined
}

const toJson = (value: unknown): unknown => {
  if (Duration.isDuration(value)) return { $duration: durationText(value) }
  if (Array.isArray(value)) return value.map(toJson)
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, toJson(field)]))
  }
  return value
}

const fromJson = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(fromJson)
  if (typeof value !== "object" || value === null) return value
  const entries = Object.entries(value)
  if (entries.length === 1 && entries[0][0] === "$duration" && typeof entries[0][1] === "string") {
    const duration = durationOf(entries[0][1])
    if (duration !== undefined) return duration
  }
  return Object.fromEntries(entries.map(([key, field]) => [key, fromJson(field)]))
}

/** The spec in the input form `startChild` takes, every value explicit. */
const asInput = (spec: Spec.ChildSpec): Record<string, unknown> =>
  spec._tag === "Agent"
    ? {
      _tag: "Agent",
      id: spec.id,
      significant: spec.significant,
      topics: spec.topics,
      ...(spec.watch !== undefined ? { watch: spec.watch } : {}),
      config: { ...spec.config }
    }
    : spec.tree.pool !== undefined
    ? {
      _tag: "Pool",
      id: spec.id,
      restart: spec.restart,
      significant: spec.significant,
      // The size when written: at its addition, then after each `scale` (`Keeper.respecified`).
      size: spec.tree.pool.size,
      maxSize: spec.tree.pool.maxSize,
      routing: spec.tree.pool.routing,
      ...(spec.tree.pool.autoscale !== undefined ? { autoscale: spec.tree.pool.autoscale } : {}),
      topics: spec.topics,
      ...(spec.watch !== undefined ? { watch: spec.watch } : {}),
      ...(spec.tree.pool.sharesIntensity ? {} : { intensity: spec.tree.intensity }),
      config: { ...spec.tree.pool.member.config }
    }
    : {
      _tag: "Supervisor",
      id: spec.id,
      restart: spec.restart,
      significant: spec.significant,
      strategy: spec.tree.strategy,
      intensity: spec.tree.intensity,
      autoShutdown: spec.tree.autoShutdown,
      children: spec.tree.children.map(asInput)
    }

/** The text the store keeps for a decoded spec. */
export const encode = (spec: Spec.ChildSpec): string => JSON.stringify({ format: FORMAT, spec: toJson(asInput(spec)) })

/** The spec input in a text `encode` wrote, for `startChild`'s decoding; why not, when it is no such text. */
export const decode = (text: string): Either.Either<unknown, string> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return Either.left(`it is not JSON (${messageOf(error)})`)
  }
  if (typeof parsed !== "object" || parsed === null || !("spec" in parsed)) {
    return Either.left("it is not a stored spec ({ format, spec })")
  }
  if ((parsed as { format?: unknown }).format !== FORMAT) {
    return Either.left(`its format is ${JSON.stringify((parsed as { format?: unknown }).format)}, not ${FORMAT}`)
  }
  return Either.right(withMaxSize(fromJson(parsed.spec)))
}

/**
 * A pool written before pools had a `maxSize` (and any pool nested in a stored supervisor) is given one that takes
 * what it was written with: at least the default, its size and its autoscale's max. Its record decodes as it did.
 */
const withMaxSize = (spec: unknown): unknown => {
  if (typeof spec !== "object" || spec === null) return spec
  const input = spec as Record<string, unknown>
  if (input._tag === "Supervisor" && Array.isArray(input.children)) {
    return { ...input, children: input.children.map(withMaxSize) }
  }
  if (input._tag !== "Pool" || input.maxSize !== undefined) return spec
  const sizes = [DEFAULT_MAX_POOL_SIZE, input.size, (input.autoscale as { max?: unknown } | undefined)?.max]
  return { ...input, maxSize: Math.max(...sizes.filter((n): n is number => Number.isSafeInteger(n))) }
}

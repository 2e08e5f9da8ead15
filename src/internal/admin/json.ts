/**
 * Values of the library (events, errors, samples) as plain JSON: an `Option` is its value or `null`, an error its
 * fields with its `message` and `remediation` (never its stack), a bigint a number.
 *
 * @internal
 */
import * as Option from "effect/Option"

/** `value` with every `Option`, error and bigint in it made plain. */
export const plain = (value: unknown): unknown => {
  if (typeof value === "bigint") return Number(value)
  if (typeof value !== "object" || value === null) return value
  if (Option.isOption(value)) return Option.isSome(value) ? plain(value.value) : null
  if (Array.isArray(value)) return value.map(plain)
  const out: Record<string, unknown> = {}
  for (const [key, field] of Object.entries(value)) {
    if (key !== "stack") out[key] = plain(field)
  }
  if (value instanceof Error) {
    out.message = value.message
    const remediation = (value as { readonly remediation?: unknown }).remediation
    if (typeof remediation === "string") out.remediation = remediation
  }
  return out
}

/** `value` as one line of JSON. */
export const stringify = (value: unknown): string => JSON.stringify(plain(value)) ?? "null"

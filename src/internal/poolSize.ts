/**
 * A pool's sizes: its bound on its members (`maxSize`, shared by a tree's pools and a cluster's), the checks of a
 * spec's sizes, and of the size a `scale` asks for.
 *
 * @internal
 */
import { ConfigError } from "../Errors.js"
import type { Problem } from "./schema.js"

/** A pool's `maxSize` when its spec gives none: the most members `size`, `scale` and `autoscale.max` may ask for. */
export const DEFAULT_MAX_POOL_SIZE = 1000

/** The rule a size above a pool's `maxSize` breaks. */
const maxSizeRule = (maxSize: number): string =>
  `must be at most the pool's maxSize, ${maxSize} (each member is a process; give the pool a larger maxSize to run ` +
  `more)`

/**
 * A pool's sizes that do not fit, as problems at `at` (the pool's path): `size` or `autoscale.max` beyond its
 * `maxSize`, and an `autoscale` whose `min <= size <= max` does not hold.
 */
export const sizeProblems = (
  own: {
    readonly size: number
    readonly maxSize: number
    readonly autoscale?: { readonly min: number; readonly max: number } | undefined
  },
  at: string
): Array<Problem> => {
  const problems: Array<Problem> = []
  const { autoscale, maxSize, size } = own
  for (const [field, value] of [[`${at}.size`, size], [`${at}.autoscale.max`, autoscale?.max]] as const) {
    if (value !== undefined && value > maxSize) {
      problems.push({ field, rule: maxSizeRule(maxSize), value: String(value) })
    }
  }
  if (autoscale !== undefined && (autoscale.min > autoscale.max || size < autoscale.min || size > autoscale.max)) {
    problems.push({
      field: `${at}.autoscale`,
      rule: `needs min <= size <= max (the size is where it starts), got min ${autoscale.min}, size ${size}, ` +
        `max ${autoscale.max}`
    })
  }
  return problems
}

/**
 * Why `scale` refuses a size: not a whole number >= 0, above the pool's `maxSize`, or outside its autoscale's
 * `min`..`max` (the autoscaler would undo it at its next decision).
 */
export const sizeRefusal = (
  size: number,
  maxSize: number,
  autoscale: { readonly min: number; readonly max: number } | undefined
): ConfigError | undefined =>
  !Number.isSafeInteger(size) || size < 0
    ? new ConfigError({ field: "size", rule: "must be a whole number of 0 or more", value: String(size) })
    : size > maxSize
    ? new ConfigError({ field: "size", rule: maxSizeRule(maxSize), value: String(size) })
    : autoscale !== undefined && (size < autoscale.min || size > autoscale.max)
    ? new ConfigError({
      field: "size",
      rule: `must be within the pool's autoscale, ${autoscale.min} to ${autoscale.max} (a scale by hand holds for ` +
        `its coolDown, then the autoscaler decides again)`,
      value: String(size)
    })
    : undefined

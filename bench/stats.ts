/**
 * The order statistics the bench sections report: one definition, so that a p99 or a median means the same in
 * every section.
 */

/** The value at fraction `q` (0-1) of the ascending `sorted`: index `floor(q * n)`, the last for `q` = 1. */
export const quantile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]

/** {@link quantile} of `values` in any order (not changed); `null` when there are none. */
export const percentile = (values: ReadonlyArray<number>, q: number): number | null =>
  values.length === 0 ? null : quantile([...values].sort((a, b) => a - b), q)

/** The median of `values` in any order (the upper one of an even count), which must not be empty. */
export const median = (values: ReadonlyArray<number>): number => percentile(values, 0.5)!

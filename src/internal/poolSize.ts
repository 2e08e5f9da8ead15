/**
 * A pool's bound on its members (`maxSize`), shared by a tree's pools and a cluster's.
 *
 * @internal
 */

/** A pool's `maxSize` when its spec gives none: the most members `size`, `scale` and `autoscale.max` may ask for. */
export const DEFAULT_MAX_POOL_SIZE = 1000

/** The rule a size above a pool's `maxSize` breaks. */
export const maxSizeRule = (maxSize: number): string =>
  `must be at most the pool's maxSize, ${maxSize} (each member is a process; give the pool a larger maxSize to run ` +
  `more)`

/**
 * The bounded logs of the in-memory store (`Store.makeMemory`).
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"

/** A bound as given (`undefined` or `NaN`: `fallback`), made a whole number of 0 or more. */
export const bound = (value: number | undefined, fallback: number): number =>
  value === undefined || Number.isNaN(value) ? fallback : Math.max(0, Math.floor(value))

/** Appends `item`, dropping the oldest items past `max`. */
export const append = <A>(log: Chunk.Chunk<A>, item: A, max: number): Chunk.Chunk<A> => {
  const next = Chunk.append(log, item)
  return Chunk.size(next) > max ? Chunk.drop(next, Chunk.size(next) - max) : next
}

/** Newest first: by timestamp, descending, and among equal timestamps the later write first. */
export const newestFirst = <A extends { readonly timestamp: number }>(
  log: Chunk.Chunk<A>,
  keep: (item: A) => boolean
): Array<A> => {
  const items = Chunk.toReadonlyArray(log)
  const selected: Array<A> = []
  for (let i = items.length - 1; i >= 0; i--) {
    if (keep(items[i])) selected.push(items[i])
  }
  // Stable: equal timestamps keep the later-write-first order built above.
  return selected.sort((a, b) => b.timestamp - a.timestamp)
}

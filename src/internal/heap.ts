/**
 * A binary min-heap of items ordered by a number each was pushed with: the earliest deadline, the next beat.
 * The keys live in an array of their own, read directly by the sift loops: a key function called per comparison
 * boxed every `Clock` millisecond it returned (they are beyond the small-integer range), a dozen allocations per
 * push and per pop, a thousand beats a second. No class and no allocation beyond the arrays' own growth.
 *
 * @internal
 */

/** A min-heap: `items[0]` is the item of the least key, `keys[0]`. @internal */
export interface Heap<A> {
  readonly items: Array<A>
  readonly keys: Array<number>
}

/** An empty heap. @internal */
export const make = <A>(): Heap<A> => ({ items: [], keys: [] })

/** Adds `item` with `key`. @internal */
export const push = <A>(heap: Heap<A>, item: A, key: number): void => {
  const { items, keys } = heap
  let i = items.length
  items.push(item)
  keys.push(key)
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (keys[parent] <= key) break
    items[i] = items[parent]
    keys[i] = keys[parent]
    i = parent
  }
  items[i] = item
  keys[i] = key
}

/** Removes the least item of a non-empty heap (`items[0]`). @internal */
export const pop = <A>(heap: Heap<A>): void => {
  const { items, keys } = heap
  const item = items.pop()!
  const key = keys.pop()!
  const size = items.length
  if (size === 0) return
  let i = 0
  while (true) {
    const left = 2 * i + 1
    if (left >= size) break
    const right = left + 1
    const least = right < size && keys[right] < keys[left] ? right : left
    if (keys[least] >= key) break
    items[i] = items[least]
    keys[i] = keys[least]
    i = least
  }
  items[i] = item
  keys[i] = key
}

/** Empties the heap. @internal */
export const clear = <A>(heap: Heap<A>): void => {
  heap.items.length = 0
  heap.keys.length = 0
}

/**
 * A binary min-heap in a plain array, ordered by a number each item gives (`keyOf`): the earliest deadline, the
 * next beat. `heap[0]` is the least. No class and no allocation beyond the array's own growth.
 *
 * @internal
 */

/** Adds `item` to the min-heap `heap`. */
export const push = <A>(heap: Array<A>, item: A, keyOf: (item: A) => number): void => {
  heap.push(item)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (keyOf(heap[parent]) <= keyOf(heap[i])) break
    ;[heap[parent], heap[i]] = [heap[i], heap[parent]]
    i = parent
  }
}

/** Removes the least item of the non-empty min-heap `heap` (it is `heap[0]`). */
export const pop = <A>(heap: Array<A>, keyOf: (item: A) => number): void => {
  const last = heap.pop()!
  if (heap.length === 0) return
  heap[0] = last
  let i = 0
  while (true) {
    const left = 2 * i + 1
    const right = left + 1
    let least = i
    if (left < heap.length && keyOf(heap[left]) < keyOf(heap[least])) least = left
    if (right < heap.length && keyOf(heap[right]) < keyOf(heap[least])) least = right
    if (least === i) return
    ;[heap[least], heap[i]] = [heap[i], heap[least]]
    i = least
  }
}

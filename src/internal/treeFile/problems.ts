/**
 * The problems of a file from each check, as one list: one problem per place (a later check's problem at or
 * inside, or around, a place an earlier check already reported is the same mistake seen again), in the order the
 * places appear in the file.
 *
 * @internal
 */
import * as Edge from "../schema.js"

/** A field's path as a file's problems write it (`topics["doc.uploaded"].maxQueued`): see `Edge.pathOf`. */
export const fieldOf = (path: ReadonlyArray<PropertyKey>): string => Edge.pathOf(undefined, path)

/** Whether one path is the other or inside it (`children[1]` and `children[1].config.name`). */
const related = (a: string, b: string): boolean => {
  const inside = (outer: string, inner: string) =>
    inner === outer || inner.startsWith(`${outer}.`) || inner.startsWith(`${outer}[`)
  return inside(a, b) || inside(b, a)
}

/** The position of every place in `value` in the order the file writes them (keys keep their order). */
const places = (value: unknown): Map<string, number> => {
  const order = new Map<string, number>()
  const go = (node: unknown, path: ReadonlyArray<PropertyKey>): void => {
    order.set(fieldOf(path), order.size)
    if (Array.isArray(node)) node.forEach((item, i) => go(item, [...path, i]))
    else if (typeof node === "object" && node !== null) {
      for (const [key, item] of Object.entries(node)) go(item, [...path, key])
    }
  }
  go(value, [])
  return order
}

const PARENT = /(?:\.[^.[\]]+|\[\d+\]|\["(?:[^"\\]|\\.)*"\])$/

/** Where a problem's place is in the file: its own position, else its nearest written parent's. */
const positionOf = (order: Map<string, number>, field: string): number => {
  for (let path = field;; path = path.replace(PARENT, "")) {
    const found = order.get(path)
    if (found !== undefined) return found
    if (!PARENT.test(path)) return -1
  }
}

/**
 * The problems of `checks`, earlier checks first where two report the same place, sorted by their place in
 * `value` (stable: the problems of one place keep their order).
 */
export const merge = (value: unknown, checks: ReadonlyArray<ReadonlyArray<Edge.Problem>>): Array<Edge.Problem> => {
  const kept: Array<Edge.Problem> = []
  for (const problems of checks) {
    const before = kept.slice()
    for (const problem of problems) {
      if (!before.some((earlier) => related(earlier.field, problem.field))) kept.push(problem)
    }
  }
  const order = places(value)
  return kept
    .map((problem, index) => ({ problem, index, position: positionOf(order, problem.field) }))
    .sort((a, b) => a.position - b.position || a.index - b.index)
    .map(({ problem }) => problem)
}

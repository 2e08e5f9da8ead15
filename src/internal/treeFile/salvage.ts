/**
 * A file with problems, made checkable for what comes after its schema (`validate`'s look at programs, callbacks
 * and optional peers): each child with a problem is replaced by an empty supervisor where it was (so every other
 * child keeps its path), and each other top-level section with a problem is left out (its default applies). What is
 * left is checked again; only a file that then decodes whole is used.
 *
 * @internal
 */
import type * as Edge from "../schema.js"

/** The child a problem's field is in (`children[2].children[0]` of `children[2].children[0].config.command`). */
const CHILD = /^children\[\d+\](?:\.children\[\d+\])*/

/** An empty supervisor in a broken child's place: it starts nothing and is checked for nothing. */
const placeholder = (n: number) => ({ type: "supervisor", id: `(a child with problems ${n})`, children: [] })

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * `value` (a parsed file, references replaced) without the places of `problems`: a copy, or `undefined` when a
 * problem is at the file as a whole or at its list of children (nothing is left to check).
 */
export const salvaged = (value: unknown, problems: ReadonlyArray<Edge.Problem>): unknown => {
  if (!isRecord(value)) return undefined
  const copy: Record<string, unknown> = structuredClone(value)
  let replaced = 0
  for (const { field } of problems) {
    const child = CHILD.exec(field)?.[0]
    if (child !== undefined) {
      const indices = [...child.matchAll(/\[(\d+)\]/g)].map((match) => Number(match[1]))
      let list: unknown = copy.children
      for (const index of indices.slice(0, -1)) {
        const node: unknown = Array.isArray(list) ? list[index] : undefined
        list = isRecord(node) ? node.children : undefined
      }
      if (!Array.isArray(list)) return undefined
      list[indices[indices.length - 1]] = placeholder(++replaced)
      continue
    }
    const key = /^[^.[]+/.exec(field)?.[0]
    if (key === undefined || key === "children" || !(key in copy)) return undefined
    delete copy[key]
  }
  return copy
}

/**
 * A file with problems, made checkable for what comes after its schema (`validate`'s look at programs, callbacks
 * and optional peers). A problem in a child's own optional field (a supervisor's `strategy`, a pool's `routing`, an
 * unknown key) takes that field out; a problem anywhere else in a child sets the child aside: an empty supervisor
 * stands in its place (so every other child keeps its path); a problem in a top-level section takes the section
 * out (its default applies). What is left is checked again; only a file that then decodes whole is used.
 *
 * @internal
 */
import * as Edge from "../schema.js"

/** A field's path as steps (`children[2].config["a.b"]`: `children`, 2, `config`, `a.b`), or none if unreadable. */
const stepsOf = (field: string): Array<string | number> | undefined => {
  const step = /(?:^([^.[\]"]+))|(?:\.([^.[\]"]+))|(?:\[(\d+)\])|(?:\["((?:[^"\\]|\\.)*)"\])/y
  const steps: Array<string | number> = []
  while (step.lastIndex < field.length) {
    const match = step.exec(field)
    if (match === null) return undefined
    const [, first, name, index, quoted] = match
    steps.push(
      index !== undefined ? Number(index) : quoted !== undefined ? JSON.parse(`"${quoted}"`) as string : first ?? name
    )
  }
  return steps.length === 0 ? undefined : steps
}

/** The fields of a child that it cannot be without, or that name it: a problem there sets the child aside. */
const ESSENTIAL = new Set(["id", "type", "children", "config", "size"])

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * `value` (a parsed file, references replaced) without the places of `problems`: a copy, or `undefined` when a
 * problem is at the file as a whole, at its list of children, or at a place it cannot read.
 */
export const salvaged = (value: unknown, problems: ReadonlyArray<Edge.Problem>): unknown => {
  if (!isRecord(value)) return undefined
  const copy: Record<string, unknown> = structuredClone(value)
  const setAside = new Set<string>()
  // The fields taken out so far, by path (a field with two problems is taken out at the first)
  const leftOut = new Set<string>()
  for (const { field } of problems) {
    const steps = stepsOf(field)
    if (steps === undefined) return undefined
    // The innermost child the field is in: children[i].children[j]...
    let depth = 0
    while (steps[depth] === "children" && typeof steps[depth + 1] === "number") depth += 2
    if (depth === 0) {
      const key = steps[0]
      if (leftOut.has(String(key))) continue
      if (typeof key !== "string" || key === "children" || !(key in copy)) return undefined
      delete copy[key]
      leftOut.add(key)
      continue
    }
    const at = steps.slice(0, depth)
    // Inside a child already set aside: gone with it
    if (at.some((_, i) => i % 2 === 1 && setAside.has(at.slice(0, i + 1).join(".")))) continue
    let list: unknown = copy.children
    for (let i = 1; i < depth - 1; i += 2) {
      const node: unknown = Array.isArray(list) ? list[steps[i] as number] : undefined
      list = isRecord(node) ? node.children : undefined
    }
    const index = steps[depth - 1] as number
    if (!Array.isArray(list) || index >= list.length) return undefined
    const child: unknown = list[index]
    const own = steps[depth]
    const ownPath = [...at, own].join(".")
    if (leftOut.has(ownPath)) continue
    if (isRecord(child) && typeof own === "string" && !ESSENTIAL.has(own) && own in child) {
      delete child[own]
      leftOut.add(ownPath)
      continue
    }
    list[index] = { type: "supervisor", id: `(set aside: ${Edge.pathOf(undefined, at)})`, children: [] }
    setAside.add(at.join("."))
  }
  return copy
}

/**
 * Child ids whose paths clash. An id may hold a "/" (`"x/y"`), and a path below the root is ids joined by "/" (the
 * admin API and the CLI address children so): `"x/y"` beside a supervisor or pool `"x"` is a path that would name
 * both that child and x's child `"y"` (there now, or added later), and only one of them could be reached. Such an
 * id is refused where the tree is decoded (`Supervisor.make`, a tree file) and where a child is added
 * (`startChild`, `startChildren`).
 *
 * @internal
 */
import type { Problem } from "../schema.js"

/** A child of one supervisor: its id, whether it has children of its own (a supervisor, a pool), where written. */
export interface Sibling {
  readonly id: string
  readonly nests: boolean
  /** Where the spec is written (`children[2]`); none for a child already in the running tree. */
  readonly at?: string | undefined
}

const kindOf = (sibling: Sibling): string => sibling.nests ? "a supervisor or pool" : "a child"

/**
 * One problem per clash among `siblings` (the children of one supervisor), at the child being decoded: the id that
 * starts with a nesting sibling's id and "/", or, when only the nesting one is new, that one.
 */
export const pathClashes = (siblings: ReadonlyArray<Sibling>): Array<Problem> => {
  const nesting = siblings.filter((sibling) => sibling.nests)
  if (nesting.length === 0) return []
  const problems: Array<Problem> = []
  for (const child of siblings) {
    if (!child.id.includes("/")) continue
    for (const parent of nesting) {
      if (parent === child || !child.id.startsWith(`${parent.id}/`)) continue
      const below = child.id.slice(parent.id.length + 1)
      if (child.at !== undefined) {
        problems.push({
          field: `${child.at}.id`,
          rule: `must not start with "${parent.id}/": "${parent.id}" beside it (${parent.at ?? "in the tree"}) is ` +
            `${kindOf(parent)}, and the path "${child.id}" would name both this child and its child "${below}"`,
          value: JSON.stringify(child.id)
        })
      } else if (parent.at !== undefined) {
        problems.push({
          field: `${parent.at}.id`,
          rule: `clashes with the child "${child.id}" beside it: as ${kindOf(parent)}, its child "${below}" would ` +
            `have the path "${child.id}" too`,
          value: JSON.stringify(parent.id)
        })
      }
    }
  }
  return problems
}

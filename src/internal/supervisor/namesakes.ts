/**
 * The warning of agents of one name in a tree (README "Configuration": an agent's `name`): the store keeps one last
 * state and checkpoint per name, a `logs` directory one file, the metrics one series, so namesakes overwrite each
 * other's. Read from a decoded tree, each agent named by where it is written (`children[2].children[0]`) and by its
 * path below the root; and, for children added to a running tree, against the names already in it.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { atMost } from "../atMost.js"
import * as Edge from "../schema.js"
import { parkedIn, pathBelow, warnedChildren, warnParked } from "./parked.js"
import type { ChildSpec, Tree } from "./spec.js"
import { forEachAgent } from "./specAgents.js"

/** An agent: its name, and where it is (`children[0] ("echo")`). */
interface Placed {
  readonly name: string
  readonly where: string
}

/** The agents of `child`, the `index`th of `tree`'s children (from `at` in the file): each with where it is. */
const agentsOf = (tree: Tree, child: ChildSpec, index: number, into: Array<Placed>): void =>
  forEachAgent(child, ({ ids, indices, name }) => {
    const at = Edge.pathOf(undefined, [index, ...indices].flatMap((i) => ["children", i]))
    into.push({ name, where: `${at} ("${pathBelow(tree.path, ids.join("/"))}")` })
  })

/**
 * One entry per name that more than one agent has, of `placed` and of those already in the tree (`inTree`, each
 * with where it is): the name, then where each is.
 */
const shared = (placed: ReadonlyArray<Placed>, inTree: ReadonlyMap<string, string>): Array<Shared> => {
  const byName = new Map<string, Array<string>>()
  for (const { name, where } of placed) byName.set(name, [...(byName.get(name) ?? []), where])
  for (const [name, wheres] of byName) {
    const there = inTree.get(name)
    if (there !== undefined) wheres.push(`"${there}" already in the tree`)
  }
  return [...byName].filter(([, wheres]) => wheres.length > 1).map(([name, wheres]) => ({ name, wheres }))
}

/** A name that more than one agent has, and where each of them is. */
interface Shared {
  readonly name: string
  readonly wheres: ReadonlyArray<string>
}

/**
 * Warns, once, of the names that more than one agent has: as many names as the parked warning names children
 * (`warnedChildren`: ten where a tree logs it, every one for `TreeFile.warnings`), five places of each there.
 */
const warnNamesakes = (supervisor: string, found: ReadonlyArray<Shared>): Effect.Effect<void> =>
  found.length === 0 ? Effect.void : Effect.flatMap(FiberRef.get(warnedChildren), (max) => {
    const places = max === Infinity ? Infinity : 5
    const lines = found.map(({ name, wheres }) =>
      `"${name}": ${atMost(wheres, places, (count) => `and ${count} more`).join(", ")}`
    )
    return Effect.logWarning(
      `Agents of one name share one last state and checkpoint in the store, one log file and one metric series, ` +
        `each overwriting the other's:\n  ${atMost(lines, max, (count) => `and ${count} more names`).join("\n  ")}\n` +
        `Give each agent a name of its own (README "Configuration").`
    ).pipe(Effect.annotateLogs({ supervisor }))
  })

/** The warnings of a decoded tree as it starts: children that would be parked, agents of one name. */
export const warnTree = (name: string, tree: Tree): Effect.Effect<void> =>
  Effect.zipRight(
    warnParked(name, parkedIn(tree, undefined)),
    Effect.suspend(() => {
      const placed: Array<Placed> = []
      tree.children.forEach((child, index) => agentsOf(tree, child, index, placed))
      return warnNamesakes(name, shared(placed, new Map()))
    })
  )

/**
 * The warning of children added to a running supervisor (`startChild`, `startChildren`, at `count` on) whose agents
 * take a name that an agent of the tree (`inTree`, with where it is) or another of them has.
 */
export const warnAdded = (
  tree: Tree,
  count: number,
  children: ReadonlyArray<ChildSpec>,
  inTree: ReadonlyMap<string, string>
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const placed: Array<Placed> = []
    children.forEach((child, index) => agentsOf(tree, child, count + index, placed))
    return warnNamesakes(tree.name, shared(placed, inTree))
  })

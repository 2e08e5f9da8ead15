/**
 * The agents a child spec holds as written: itself, a nested supervisor's to any depth, or a pool's members as it
 * starts (as many as its size, each named `<name>-<i>`). One walk for what the store may forget when a child leaves
 * for good (`agentNames.ts`) and for the warning of namesakes (`namesakes.ts`).
 *
 * @internal
 */
import { memberName } from "../memberName.js"
import type { ChildSpec } from "./spec.js"

/** One agent of a spec. @internal */
export interface SpecAgent {
  readonly name: string
  /**
   * Where its spec is written below the one walked: the index in each `children` on the way (`[2, 0]`: the walked
   * spec's `children[2]`, then that one's `children[0]`); a pool's member has its pool's.
   */
  readonly indices: ReadonlyArray<number>
  /** Its ids from the walked spec's down (`["workers", "echo"]`; a pool member's last id is its index). */
  readonly ids: ReadonlyArray<string>
}

/** Calls `visit` with each agent of `spec`, in the order they are written (a pool's members by index). @internal */
export const forEachAgent = (
  spec: ChildSpec,
  visit: (agent: SpecAgent) => void,
  indices: ReadonlyArray<number> = [],
  above: ReadonlyArray<string> = []
): void => {
  const ids = [...above, spec.id]
  if (spec._tag === "Agent") return visit({ name: spec.config.name, indices, ids })
  const pool = spec.tree.pool
  if (pool === undefined) {
    spec.tree.children.forEach((child, index) => forEachAgent(child, visit, [...indices, index], ids))
    return
  }
  for (let index = 0; index < pool.size; index++) {
    visit({ name: memberName(pool.member.config.name, index), indices, ids: [...ids, String(index)] })
  }
}

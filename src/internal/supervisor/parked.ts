/**
 * The warning of a tree in which a child that never starts would be parked by its circuit breaker rather than make
 * its supervisor escalate (README "Configuration"): read from the decoded tree, logged once. Each child is named by
 * where it is written (`children[1].children[0]`) and by its path below the root, as `status` and the admin API name
 * it (`workers/echo`; a pool's members `inference/0`, `inference/1`...), and the intensity by whose it is.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as RestartPolicy from "../../Agent/RestartPolicy.js"
import { atMost } from "../atMost.js"
import { plural } from "../errors/format.js"
import * as Edge from "../schema.js"
import type { ChildSpec, Tree } from "./spec.js"

/** The path of the child `id` below the root, from its supervisor's (`""` for the root): `workers/echo`. */
export const pathBelow = (path: string | undefined, id: string): string =>
  path === undefined || path === "" ? id : `${path}/${id}`

/** The name (`"root/workers"`) and the path below the root (`"workers"`) of the nested supervisor or pool `id`. */
export const nestedIn = (parent: Pick<Tree, "name" | "path">, id: string): Pick<Tree, "name" | "path"> => ({
  name: `${parent.name}/${id}`,
  path: pathBelow(parent.path, id)
})

/**
 * Why an agent of `settings` would be parked before it restarts often enough to exceed `intensity`, if it would;
 * `whose` names the intensity (`the intensity of "root"`).
 */
const why = (settings: RestartPolicy.Settings, intensity: Tree["intensity"], whose: string): Array<string> => {
  const { maxRestarts, window } = intensity
  const limit = `${plural(maxRestarts, "restart", "restarts")} in ${Duration.format(window)}`
  const reach = RestartPolicy.reach(settings, intensity)
  switch (reach._tag) {
    case "ParkedFirst":
      return [
        `its circuit opens after ${reach.restarts} restarts in a row (maxRestartAttempts), but ${reach.needed} are ` +
        `needed to exceed ${whose} (${limit})`
      ]
    case "TooSlow":
      return [
        `its backoff spreads the ${reach.needed} restarts that exceed ${whose} (${limit}) over more than ` +
        Duration.format(Duration.millis(reach.spanMillis))
      ]
    default:
      return []
  }
}

/** A pool's members by their paths: the first two, and an ellipsis for any more (its size changes as it runs). */
const members = (pool: string, size: number): string => {
  const shown = Array.from({ length: Math.max(1, Math.min(size, 2)) }, (_, i) => `"${pathBelow(pool, String(i))}"`)
  return [...shown, ...(size === shown.length ? [] : ["..."])].join(", ")
}

/** Why `child` of `tree` (written at `at`) would be parked rather than escalate; none when it would not. */
export const parkedChild = (tree: Tree, child: ChildSpec, at: string): Array<string> => {
  const path = pathBelow(tree.path, child.id)
  if (child._tag === "Agent") {
    return why(child.settings, tree.intensity, `the intensity of "${tree.name}"`).map((line) =>
      `${at} ("${path}"): ${line}`
    )
  }
  const pool = child.tree.pool
  if (pool === undefined) return parkedIn(child.tree, at)
  // A pool's members share one spec: one line for them all, at the pool's place. Without an intensity of its own,
  // the pool counts their restarts in its supervisor's.
  const whose = pool.sharesIntensity ? `the intensity the pool shares with "${tree.name}"` : "the pool's own intensity"
  return why(pool.member.settings, child.tree.intensity, whose).map((line) =>
    `${at} (pool "${path}", each member: ${members(path, pool.size)}): ${line}`
  )
}

/** The same for every child of `tree`, nested supervisors' children included. */
export const parkedIn = (tree: Tree, at: string | undefined): Array<string> =>
  tree.children.flatMap((child, index) => parkedChild(tree, child, Edge.pathOf(at, ["children", index])))

/**
 * How many children the warning names, the rest counted: 10 where a tree logs it (a batch of 1,000 children would
 * make a line of each); every one for `TreeFile.warnings`, which `validate` prints.
 */
export const warnedChildren = FiberRef.unsafeMake(10)

/** Warns, once, of the children that a supervisor would park rather than escalate for (see `warnedChildren`). */
export const warnParked = (supervisor: string, lines: ReadonlyArray<string>): Effect.Effect<void> =>
  lines.length === 0 ? Effect.void : Effect.flatMap(FiberRef.get(warnedChildren), (max) =>
    Effect.logWarning(
      `A child that never starts would be parked, and its supervisor would not escalate:\n  ${
        atMost(lines, max, (count) => `and ${count} more children alike`).join("\n  ")
      }\n` +
        `Raise maxRestartAttempts, lower the intensity's maxRestarts, shorten restartBackoff, or widen the intensity's window (README "Configuration").`
    ).pipe(Effect.annotateLogs({ supervisor })))

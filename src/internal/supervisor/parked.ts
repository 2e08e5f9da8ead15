/**
 * The warning of a tree in which a child that never starts would be parked by its circuit breaker rather than make
 * its supervisor escalate (README "Configuration"): read from the decoded tree, logged once.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as RestartPolicy from "../../Agent/RestartPolicy.js"
import { plural } from "../errors/format.js"
import * as Edge from "../schema.js"
import type { ChildSpec, Tree } from "./spec.js"

/** Why `child` of `tree` (written at `path`) would be parked rather than escalate; none when it would not. */
export const parkedChild = (tree: Tree, child: ChildSpec, path: string): Array<string> => {
  if (child._tag === "Supervisor") {
    // A pool's members share one spec: one line for them all, at the pool's path.
    return child.tree.pool === undefined
      ? parkedIn(child.tree, path)
      : parkedChild(child.tree, child.tree.pool.member, path)
  }
  const { maxRestarts, window } = tree.intensity
  const intensity = `${plural(maxRestarts, "restart", "restarts")} in ${Duration.format(window)}`
  const reach = RestartPolicy.reach(child.settings, tree.intensity)
  switch (reach._tag) {
    case "ParkedFirst":
      return [
        `${path} ("${child.id}"): its circuit opens after ${reach.restarts} restarts in a row (maxRestartAttempts), ` +
        `but ${reach.needed} are needed to exceed the intensity of "${tree.name}" (${intensity})`
      ]
    case "TooSlow":
      return [
        `${path} ("${child.id}"): its backoff spreads the ${reach.needed} restarts that exceed the intensity of ` +
        `"${tree.name}" (${intensity}) over more than ${Duration.format(Duration.millis(reach.spanMillis))}`
      ]
    default:
      return []
  }
}

/** The same for every child of `tree`, nested supervisors' children included. */
export const parkedIn = (tree: Tree, at: string | undefined): Array<string> =>
  tree.children.flatMap((child, index) => parkedChild(tree, child, Edge.pathOf(at, ["children", index])))

/** Warns, once, of the children that a supervisor would park rather than escalate for. */
export const warnParked = (supervisor: string, lines: ReadonlyArray<string>): Effect.Effect<void> =>
  lines.length === 0 ? Effect.void : Effect.logWarning(
    `A child that never starts would be parked, and its supervisor would not escalate:\n  ${lines.join("\n  ")}\n` +
      `Raise maxRestartAttempts, shorten restartBackoff, or widen the intensity's window (README "Configuration").`
  ).pipe(Effect.annotateLogs({ supervisor }))

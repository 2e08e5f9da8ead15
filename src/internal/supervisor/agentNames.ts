/**
 * Which agent names a subtree, or the whole tree, holds: what the store may forget when a child leaves the tree for
 * good (`removeChild`), and what it must not (an agent of the same name still in the tree keeps its state).
 *
 * @internal
 */
import type * as Supervisor from "../../Supervisor.js"
import { pathBelow } from "./parked.js"
import { forEachAgent } from "./specAgents.js"
import type { Child, Instance, Shared } from "./state.js"

/** The running supervisor behind each handle a nested child's runtime holds. */
const instances = new WeakMap<Supervisor.Supervisor, Instance>()

/** Records the supervisor behind `handle` (once it has started). */
export const register = (handle: Supervisor.Supervisor, instance: Instance): void => {
  instances.set(handle, instance)
}

/**
 * The names of every agent in `child`'s subtree: its own, or, for a nested supervisor or pool that runs, those of
 * its children as they are (dynamic children and a pool's members as scaled); for one that does not, those of its
 * spec and those it had when it stopped (`Child.agentsAtStop`). A name may come more than once.
 */
export const agentNamesBelow = (child: Child, into: Array<string> = []): Array<string> => {
  const runtime = child.runtime
  const running = runtime?._tag === "Supervisor" ? instances.get(runtime.instance) : undefined
  if (running !== undefined) {
    for (const below of running.children) agentNamesBelow(below, into)
    return into
  }
  if (child.agentsAtStop !== undefined) into.push(...child.agentsAtStop)
  forEachAgent(child.spec, (agent) => into.push(agent.name))
  return into
}

/**
 * Every agent name in the tree now: the agent children of each supervisor that runs (running, restarting or
 * stopped), and those of each nested supervisor or pool that does not run now (stopped, or between two
 * incarnations): its spec's and those it had when it stopped.
 */
export const namesInTree = (shared: Shared): ReadonlySet<string> => new Set(placesInTree(shared).keys())

/**
 * The same, each name with where an agent of it is: its path below the root (`workers/echo`), or, for one of a
 * nested supervisor that does not run now, that supervisor's path and `/...`.
 */
export const placesInTree = (shared: Shared): ReadonlyMap<string, string> => {
  const places = new Map<string, string>()
  for (const instance of shared.instances) {
    for (const child of instance.children) {
      const path = pathBelow(instance.tree.path, child.spec.id)
      if (child.spec._tag === "Agent") {
        if (!places.has(child.spec.config.name)) places.set(child.spec.config.name, path)
      } else if (child.runtime === undefined) {
        for (const name of agentNamesBelow(child)) if (!places.has(name)) places.set(name, `${path}/...`)
      }
    }
  }
  return places
}

/** Keeps what a nested supervisor or pool has as it stops, with what it had kept from a start that did not finish. */
export const keepAtStop = (child: Child): void => {
  const now = agentNamesBelow(child)
  child.agentsAtStop = child.agentsAtStop === undefined ? now : [...new Set([...child.agentsAtStop, ...now])]
}

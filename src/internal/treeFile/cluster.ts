/**
 * A tree file's agents as a cluster's topology: every agent of the tree, at any depth, is one entity whose id is its
 * name, with its topics; a pool of `size` members is `size` entities named `<name>-<i>` (as its members are named in
 * a tree), called by the pool's id in turn. The tree's structure (supervisors, strategies) is not carried over: each
 * agent is held by one runner and restarted by its own policy.
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import type * as Directory from "../../Agent/Directory.js"
import type * as ChildSpec from "../../ChildSpec.js"
import type * as Cluster from "../../Cluster.js"
import type * as TreeFile from "../../TreeFile.js"
import { memberName } from "../memberName.js"
import * as Edge from "../schema.js"
import * as BareMillis from "./bareMillis.js"
import { toOptions } from "./run.js"

/** The entity ids a file's children become, each with the field of the file that names it. */
export const entityNames = (
  children: ReadonlyArray<TreeFile.Child>,
  at?: string
): Array<{ readonly name: string; readonly field: string }> =>
  children.flatMap((child, i) => {
    const here = Edge.pathOf(at, ["children", i])
    switch (child.type) {
      case "agent":
      case "callback":
        return [{ name: child.config.name, field: `${here}.config.name` }]
      case "directory":
        return [{ name: child.config.agentName, field: `${here}.config.agentName` }]
      case "pool": {
        // its id too: a call to the pool's id goes to a member
        const config = child.config
        const [name, field] = "agentName" in config ? [config.agentName, "agentName"] : [config.name, "name"]
        return [
          { name: child.id, field: `${here}.id` },
          ...Array.from({ length: child.size }, (_, m) => ({
            name: memberName(name, m),
            field: `${here}.config.${field}`
          }))
        ]
      }
      case "supervisor":
        return entityNames(child.children ?? [], here)
    }
  })

/** Two children that would be one entity: a cluster tells its agents apart by name alone. */
export const nameProblems = (file: TreeFile.TreeFile): Array<Edge.Problem> => {
  if (file.cluster === undefined) return []
  const first = new Map<string, string>()
  const problems: Array<Edge.Problem> = []
  for (const { field, name } of entityNames(file.children)) {
    const earlier = first.get(name)
    if (earlier === undefined) first.set(name, field)
    else {
      problems.push({
        field,
        rule: `must be unique in a cluster, where an agent's name (a pool member's: <name>-<i>) is its id: ` +
          `${earlier} names "${name}" too`,
        value: name
      })
    }
  }
  return problems
}

/** A tree's specs as a cluster's topology: its agents (with their topics) and pools, at any depth. */
const topologyOf = (
  specs: ReadonlyArray<ChildSpec.ChildSpec>,
  into: { agents: Array<Cluster.AgentEntry>; pools: Array<Cluster.PoolEntry> }
): Cluster.TopologyInput => {
  for (const spec of specs) {
    switch (spec._tag) {
      case "Agent":
        into.agents.push({ config: spec.config, topics: spec.topics })
        break
      case "Pool":
        into.pools.push({
          id: spec.id,
          size: spec.size,
          maxSize: spec.maxSize,
          config: spec.config,
          topics: spec.topics,
          routing: "round-robin"
        })
        break
      case "Supervisor":
        topologyOf(spec.children ?? [], into)
    }
  }
  return into
}

/** See `TreeFile/Cluster.topology`. */
export const clusterTopology: (
  file: TreeFile.TreeFile
) => Effect.Effect<
  Cluster.TopologyInput,
  Directory.DirectoryError,
  FileSystem.FileSystem | Path.Path
> = Effect.fn("TreeFileCluster.topology")(function*(file: TreeFile.TreeFile) {
  return topologyOf((yield* toOptions(file)).children ?? [], { agents: [], pools: [] })
})

/**
 * What runs differently when a file's tree is hosted on a cluster, as lines for the log: strategies other than
 * one-for-one, topics and a pool's routing and autoscale do not span machines.
 */
export const clusterWarnings = (file: TreeFile.TreeFile): Array<string> => {
  const warnings: Array<string> = BareMillis.warnings(file)
  const strategies = new Set<string>()
  let pools = false
  const walk = (children: ReadonlyArray<TreeFile.Child>, strategy: string | undefined) => {
    if (strategy !== undefined && strategy !== "one-for-one") strategies.add(strategy)
    for (const child of children) {
      if (child.type === "supervisor") walk(child.children ?? [], child.strategy)
      else {
        if (child.type === "pool") pools = true
      }
    }
  }
  walk(file.children, file.strategy)
  if (strategies.size > 0) {
    warnings.push(
      `cluster: the strategy ${[...strategies].map((s) => `"${s}"`).join(", ")} does not span machines: each agent ` +
        `is its own entity, restarted by its own policy alone (one-for-one)`
    )
  }
  if (Object.keys(file.topics ?? {}).length > 0) {
    warnings.push(
      "cluster: a topic's settings (retry, maxQueued, backpressure, timeout) do not apply: a task published through " +
        "Cluster.AgentClient is stored and delivered at least once, and its failure is its result"
    )
  }
  if (pools) {
    warnings.push(
      "cluster: a pool is its members, each an agent <name>-<i> of its own, and callers route to them in turn " +
        "(runners share no view of load): no least-in-flight routing, no autoscale, no scale"
    )
  }
  return warnings
}

/**
 * `agent-supervisor validate FILE`: the file checked whole, no agent started (no store opened, no dependency
 * installed): what it describes, its warnings, or every problem with its path; an optional peer the file needs and
 * that is not installed is one too (`treeFile/peers.ts`), and so are an agent's program that is not there and a
 * callback whose module does not load (`treeFile/programs.ts`).
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type { ConfigError } from "../../Errors.js"
import * as TreeFile from "../../TreeFile.js"
import * as TreeFileCluster from "../../TreeFile/Cluster.js"
import * as Edge from "../schema.js"
import * as Load from "../treeFile/load.js"
import * as Peers from "../treeFile/peers.js"
import * as Programs from "../treeFile/programs.js"

interface Counts {
  readonly agents: number
  readonly directories: number
  readonly pools: number
  readonly supervisors: number
}

const count = (children: ReadonlyArray<TreeFile.Child>): Counts =>
  children.reduce((total: Counts, child): Counts => {
    switch (child.type) {
      case "supervisor": {
        const inner = count(child.children ?? [])
        return {
          agents: total.agents + inner.agents,
          directories: total.directories + inner.directories,
          pools: total.pools + inner.pools,
          supervisors: total.supervisors + 1 + inner.supervisors
        }
      }
      case "pool":
        return { ...total, pools: total.pools + 1 }
      case "directory":
        return { ...total, directories: total.directories + 1 }
      default:
        return { ...total, agents: total.agents + 1 }
    }
  }, { agents: 0, directories: 0, pools: 0, supervisors: 0 })

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`

/** A one-line summary of a checked file. */
export const summary = (path: string, file: TreeFile.TreeFile): string => {
  const { agents, directories, pools, supervisors } = count(file.children)
  const topics = Object.keys(file.topics ?? {}).length
  const parts = [
    plural(agents + directories, "agent"),
    ...(directories > 0 ? [`${directories} from a directory`] : []),
    ...(pools > 0 ? [plural(pools, "pool")] : []),
    plural(supervisors, "nested supervisor"),
    ...(topics > 0 ? [plural(topics, "topic")] : [])
  ]
  return `${path}: OK. Tree "${file.name ?? "root"}": ${parts.join(", ")}; store: ${file.store.type}` +
    `${file.forkServer === true ? "; spawned through a fork server" : ""}` +
    `${file.cluster === undefined ? "" : `; ${clusterSummary(file.cluster)}`}.`
}

/** What `up` does with a cluster section, in a few words: `cluster: runner at 10.0.0.5:34431 (sqlite)`. */
const clusterSummary = (cluster: TreeFileCluster.Settings): string => {
  const at = cluster.address === undefined ? "" : ` at ${cluster.address.host}:${cluster.address.port}`
  return `cluster: ${cluster.role}${cluster.role === "client" ? "" : at} (${cluster.database.type})`
}

export const validate = (
  path: string
): Effect.Effect<void, ConfigError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    // The file's problems, and what is left of it to look at further: the rest is checked too (every problem)
    const { file, problems } = yield* Load.loadSalvaging(path)
    if (file === undefined) return yield* Edge.configError(problems as [Edge.Problem])
    // What `up` would find missing only when it loads it (the store's driver, the OTLP exporter, the cluster)
    const absent = Peers.missing(file)
    // A program that is not there, a callback that does not load: what `up` would find as an agent that does not start
    const programs = yield* Programs.check(file)
    // Warnings only of a file read whole (what is left of one with problems has stand-ins in their places)
    const warnings = problems.length > 0 ? [] : [
      ...(file.cluster === undefined ? yield* TreeFile.warnings(file) : TreeFileCluster.warnings(file)),
      ...programs.warnings
    ]
    const all = [...problems, ...(absent?.problems ?? []), ...programs.problems]
    // The warnings of a file that fails too, on stderr before its problems: a fix of those need not uncover them.
    const say = all.length > 0 ? Console.error : Console.log
    if (all.length === 0) yield* Console.log(summary(path, file))
    for (const warning of warnings) yield* say(`warning: ${warning}`)
    if (all.length > 0) return yield* Edge.configError(all as [Edge.Problem])
  })

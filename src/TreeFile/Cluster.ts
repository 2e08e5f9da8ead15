/**
 * A tree file's `cluster` section: scale out on `@effect/cluster`. `agent-supervisor up` hosts the file's agents as
 * cluster entities, each held by one runner at a time (see `effect-agent-supervisor/Cluster`).
 *
 * ```yaml
 * store: { type: postgres, url: "${DATABASE_URL}" }   # the cluster's database too, unless it names its own
 * cluster:
 *   role: runner                                      # runner (the default), local or client
 *   address: { host: 10.0.0.5, port: 34431 }         # where the others reach this runner
 *   timing: fast
 * children:
 *   - { type: agent, id: summarizer, config: { name: summarizer, command: python3, args: [summarize.py] } }
 * ```
 *
 * Every agent of the tree, at any depth, is one entity whose id is its name; a pool of `size` is `size` entities
 * `<name>-<i>`. The tree's structure does not span machines: supervisors and their strategies, a pool's routing and
 * autoscale, and topics are not carried over (each agent is restarted by its own policy); `up` warns of each.
 * `TreeFile.parse` refuses a file with a cluster where two agents would have one name.
 *
 * Reached as `effect-agent-supervisor/TreeFile/Cluster` (not from the index).
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type * as Directory from "../Agent/Directory.js"
import type * as Cluster from "../Cluster.js"
import * as internal from "../internal/treeFile/cluster.js"
import type * as TreeFile from "../TreeFile.js"

/**
 * A file's `cluster` section, checked: `Cluster.ClusterOptions` as the file writes them (`Cluster.layerRunner` and
 * the others decode them again, with their defaults), `role` (`"runner"` when the file says none) and `database`
 * (the store's when the file says none; a SQLite `filename` resolved against the file's directory).
 *
 * - `"runner"`: hosts the file's agents among the cluster's runners (`Cluster.layerRunner`): the others reach it at
 *   `address`, which it must have (`up --runner-host/--runner-port` give or override it);
 * - `"local"`: hosts them alone (`Cluster.layerLocal`), its messages in the database (on an in-memory store and
 *   without a database of its own: an in-memory SQLite database);
 * - `"client"`: hosts none (`Cluster.layerClient`); `up` serves the cluster's placements (`GET /api/cluster`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings extends Cluster.ClusterOptions {
  readonly role: "runner" | "client" | "local"
  readonly database: Database
}

/**
 * The SQL database of a cluster: a SQLite file (one file serves the runners of one host only), or a PostgreSQL
 * server (`url`; in the file `url`, usually `"${DATABASE_URL}"`, or `urlEnv`, the name of the variable that holds
 * it), as a store's.
 *
 * @since 0.1.0
 * @category models
 */
export type Database =
  | { readonly type: "sqlite"; readonly filename: string }
  | { readonly type: "postgres"; readonly url: Redacted.Redacted<string>; readonly maxConnections?: number | undefined }

/**
 * What a file's cluster hosts, as `Cluster.layerAgents` and `Cluster.layerTopology` take it: every agent of the tree
 * at any depth with its topics (directory agents resolved, callback agents' command lines made, as
 * `TreeFile.toOptions` makes them), and each pool (its `size` members named `<name>-<i>`, called in turn by the
 * pool's id).
 *
 * @since 0.1.0
 * @category constructors
 * @example
 * ```ts
 * const file = yield* TreeFile.load("tree.yaml")
 * const hosted = Cluster.layerAgents(yield* TreeFileCluster.topology(file))
 * ```
 */
export const topology: (
  file: TreeFile.TreeFile
) => Effect.Effect<
  Cluster.TopologyInput,
  Directory.DirectoryError,
  FileSystem.FileSystem | Path.Path
> = internal.clusterTopology

/**
 * What runs differently when a file's tree is hosted on a cluster, as lines for a log: strategies other than
 * one-for-one, a topic's settings, and a pool's least-in-flight routing, autoscale and scale do not span machines;
 * first, the durations written as a bare number under a second, as `TreeFile.warnings` says them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const warnings: (file: TreeFile.TreeFile) => ReadonlyArray<string> = internal.clusterWarnings

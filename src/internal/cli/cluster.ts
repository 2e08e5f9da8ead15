/**
 * `agent-supervisor up FILE` for a file with a `cluster` section: the file's agents hosted as cluster entities
 * (`TreeFileCluster.topology`: every agent at any depth, a pool as its members `<name>-<i>`) on a runner of the
 * cluster (`role: runner`, reached at `cluster.address` or `--runner-host`/`--runner-port`), on a runner alone
 * (`local`), or none (`client`), with the cluster's tables in the file's `cluster.database` (the store's by default).
 * The admin API serves `/api/cluster` from the cluster's placements, and an empty tree of the file's name at
 * `/api/tree` (the agents are the cluster's, not a local tree's). SIGTERM stops the runner, and its agents with it.
 *
 * Loaded by `up` with `import()` only for such a file: this module loads `@effect/cluster`, which no other file
 * needs.
 *
 * @internal
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as nodePath from "node:path"
import { ClusterPlacements } from "../../AdminApi.js"
import * as Directory from "../../Agent/Directory.js"
import * as Cluster from "../../Cluster.js"
import { ConfigError, StoreError } from "../../Errors.js"
import * as Driver from "../../Store/internal/driver.js"
import * as Supervisor from "../../Supervisor.js"
import * as TreeFile from "../../TreeFile.js"
import * as TreeFileCluster from "../../TreeFile/Cluster.js"
import * as Placements from "../admin/clusterPlacements.js"
import * as Settings from "../cluster/config.js"
import * as Migrate from "../cluster/migrate.js"
import { makeDirectorySync } from "../makeDirectory.js"
import { messageOf } from "../standalone/messageOf.js"
import { spawningLayer } from "../treeFile/run.js"

/** `--runner-host` and `--runner-port`: over the file's `cluster.address`. */
export interface RunnerFlags {
  readonly host: Option.Option<string>
  readonly port: Option.Option<number>
}

/**
 * The cluster's options: the file's, with the flags over `address`. A flag given alone takes the other half of the
 * address from the file; where the file has none, it is a `ConfigError` naming the flag that is missing.
 */
export const optionsOf = (
  cluster: TreeFileCluster.Settings,
  flags: RunnerFlags
): Either.Either<Cluster.ClusterOptions, ConfigError> => {
  const { database: _database, role: _role, ...options } = cluster
  if (Option.isNone(flags.host) && Option.isNone(flags.port)) return Either.right(options)
  const host = Option.getOrUndefined(Option.orElse(flags.host, () => Option.fromNullable(cluster.address?.host)))
  const port = Option.getOrUndefined(Option.orElse(flags.port, () => Option.fromNullable(cluster.address?.port)))
  if (host === undefined || port === undefined) {
    return Either.left(
      new ConfigError({
        field: host === undefined ? "--runner-host" : "--runner-port",
        rule: `is needed with ${host === undefined ? "--runner-port" : "--runner-host"}: the file's ` +
          "cluster.address has no host and port to complete it"
      })
    )
  }
  return Either.right({ ...options, address: { host, port } })
}

const opened = (what: string) => (cause: unknown) =>
  new StoreError({
    operation: "clusterOpen",
    reason: "failure",
    detail: `could not open the cluster's database ${what}: ${messageOf(cause)}`
  })

/** The client of the cluster's database; its driver loaded only now (a missing one is a `StoreError` to act on). */
export const sqlLayer = (database: TreeFileCluster.Database): Layer.Layer<SqlClient.SqlClient, StoreError> => {
  if (database.type === "sqlite") {
    const { filename } = database
    const isFile = filename !== ":memory:" && filename !== "" && !filename.startsWith("file:")
    return Layer.unwrapEffect(Effect.gen(function*() {
      const SqliteClient = yield* Effect.tryPromise({
        try: () => import("@effect/sql-sqlite-node/SqliteClient"),
        catch: (error) => Driver.unavailable("load", Driver.sqlite, error)
      })
      if (isFile) {
        yield* Effect.try({
          // Not Node's recursive mkdir: it never ends under a pseudo filesystem such as /proc.
          try: () => makeDirectorySync(nodePath.dirname(filename)),
          catch: (error) => Driver.unusable(filename, `cannot create the directory of ${filename}`, error)
        })
      }
      return SqliteClient.layer({ filename }).pipe(
        Layer.catchAllCause((cause) => Layer.fail(opened(filename)(cause)))
      )
    }))
  }
  return Layer.unwrapEffect(Effect.gen(function*() {
    const PgClient = yield* Effect.tryPromise({
      try: () => import("@effect/sql-pg/PgClient"),
      catch: (error) => Driver.unavailable("load", Driver.pg, error)
    })
    return PgClient.layer({
      applicationName: "effect-agent-supervisor",
      url: database.url,
      // a runner holds one connection for its shard locks, and `migrate` one more for its own lock
      ...(database.maxConnections === undefined ? {} : {
        maxConnections: Math.max(Migrate.MIN_PG_CONNECTIONS, database.maxConnections)
      })
    }).pipe(Layer.catchAllCause((cause) => Layer.fail(opened("(PostgreSQL)")(cause))))
  }))
}

/** A cluster running in `up`: the empty tree the admin API shows, its placements, and what it says once up. */
export interface Running {
  readonly tree: Supervisor.Supervisor
  readonly placements: ClusterPlacements["Type"]
  /** The line `up` logs once the runner (or client) and the admin API are up. */
  readonly ready: string
}

/** Starts the file's cluster in the scope: see the module's doc. */
export const start = (
  file: TreeFile.TreeFile & { readonly cluster: TreeFileCluster.Settings },
  flags: RunnerFlags,
  progress: Directory.InstallProgress
): Effect.Effect<
  Running,
  ConfigError | StoreError | TreeFile.StartError,
  Scope.Scope | FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function*() {
    const { role } = file.cluster
    for (const warning of TreeFileCluster.warnings(file)) yield* Effect.logWarning(warning)
    const options = yield* optionsOf(file.cluster, flags)
    const settings = yield* Settings.decode(options)
    const topology = yield* TreeFileCluster.topology(file).pipe(Effect.provideService(Directory.Progress, progress))
    const cluster = role === "runner"
      ? Cluster.layerRunner(options)
      : role === "local"
      ? Cluster.layerLocal(options)
      : Cluster.layerClient(options)
    // a client hosts no agent, but routes to the file's pools and publishes to its topics
    const hosted = role === "client" ? Cluster.layerTopology(topology) : Cluster.layerAgents(topology)
    // Built in this order, closed in the reverse: the agents stop before the runner, the runner before its database
    // and the store the agents write to.
    const layer = hosted.pipe(
      Layer.provideMerge(Placements.layer.pipe(Layer.provideMerge(cluster))),
      Layer.provideMerge(TreeFile.storeLayer(file)),
      Layer.provide(sqlLayer(file.cluster.database)),
      // `forkServer: true`: the hosted agents (and any child of the tree below) spawned through a fork server,
      // which stops after them
      Layer.provideMerge(spawningLayer(file))
    )
    const context = yield* Layer.build(layer)
    const tree = yield* Supervisor.make({ name: file.name ?? "root", children: [] }).pipe(Effect.provide(context))
    const names = role === "client" ? [] : [...Context.get(context, Cluster.Topology).configs.keys()]
    const where = options.address === undefined ? "" : ` at ${options.address.host}:${options.address.port}`
    const ready = role === "client"
      ? `cluster: client of "${settings.prefix}" is up (hosts no agent)`
      : `cluster: ${role === "local" ? "local runner" : "runner"}${where} of "${settings.prefix}" is up, hosting ` +
        `${names.length} agent${names.length === 1 ? "" : "s"}${names.length === 0 ? "" : `: ${names.join(", ")}`}`
    return { tree, placements: Context.get(context, ClusterPlacements), ready }
  })

/**
 * The cluster's layers, composed from `@effect/cluster`'s parts with a complete `ShardingConfig` (its own
 * `SingleRunner.layer` and `NodeClusterSocket.layer` read the environment). Each provides `Sharding` (what the entity
 * layer and the client need), the message storage, and `Placement`.
 */
import * as MessageStorage from "@effect/cluster/MessageStorage"
import * as RunnerHealth from "@effect/cluster/RunnerHealth"
import * as Runners from "@effect/cluster/Runners"
import * as RunnerStorage from "@effect/cluster/RunnerStorage"
import * as Sharding from "@effect/cluster/Sharding"
import type * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as SocketRunner from "@effect/cluster/SocketRunner"
import * as SqlMessageStorage from "@effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "@effect/cluster/SqlRunnerStorage"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Layer from "effect/Layer"
import { ConfigError, type StoreError } from "../../Errors.js"
import { messageOf } from "../standalone/messageOf.js"
import * as Config from "./config.js"
import { MIGRATE_TIMEOUT, migrateWithin } from "./migrate.js"
import * as Placement from "./placement.js"

/** What every cluster layer provides. */
export type Provided =
  | Sharding.Sharding
  | RunnerStorage.RunnerStorage
  | MessageStorage.MessageStorage
  | Placement.Placement
  | ShardingConfig.ShardingConfig

/** One process, all in memory: persisted messages work but do not survive it. For tests and trials. */
export const layerMemory = (settings: Config.ClusterSettings): Layer.Layer<Provided> =>
  Sharding.layer.pipe(
    Layer.provideMerge(Runners.layerNoop),
    Layer.provideMerge(MessageStorage.layerMemory),
    Layer.provideMerge(RunnerStorage.layerMemory),
    Layer.provide(RunnerHealth.layerNoop),
    Layer.provideMerge(Config.layer(settings, "local")),
    Layer.merge(Placement.layerMemory)
  )

/** The message storage (and, for runners and clients, the runner storage) in SQL, after `migrate`. */
const sqlStorage = (settings: Config.ClusterSettings, role: Config.Role) => {
  const messages = SqlMessageStorage.layerWith({ prefix: settings.prefix })
  const parts = role === "local"
    ? Layer.mergeAll(messages, RunnerStorage.layerMemory, Placement.layerSql(settings.prefix))
    : Layer.mergeAll(
      messages,
      Layer.orDie(SqlRunnerStorage.layerWith({ prefix: settings.prefix })),
      Placement.layerSql(settings.prefix)
    )
  return parts.pipe(
    Layer.provide(Config.layer(settings, role)),
    Layer.provide(Layer.effectDiscard(migrateWithin(settings.prefix, MIGRATE_TIMEOUT)))
  )
}

/** One runner, alone, with its messages in SQL (SQLite or PostgreSQL): persisted messages survive a restart. */
export const layerLocal = (
  settings: Config.ClusterSettings
): Layer.Layer<Provided, StoreError, SqlClient.SqlClient> =>
  Sharding.layer.pipe(
    Layer.provideMerge(Runners.layerNoop),
    Layer.provide(RunnerHealth.layerNoop),
    Layer.provideMerge(sqlStorage(settings, "local")),
    Layer.provideMerge(Config.layer(settings, "local"))
  )

/** A runner of several, over sockets, sharing shard locks and messages in SQL; health by ping. */
export const layerRunner = (
  settings: Config.ClusterSettings
): Layer.Layer<Provided, StoreError | ConfigError, SqlClient.SqlClient> =>
  SocketRunner.layer.pipe(
    Layer.provide([NodeClusterSocket.layerSocketServer, NodeClusterSocket.layerClientProtocol]),
    Layer.provide(
      RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(NodeClusterSocket.layerClientProtocol))
    ),
    Layer.provideMerge(sqlStorage(settings, "runner")),
    Layer.provideMerge(Config.layer(settings, "runner")),
    Layer.provide(RpcSerialization.layerMsgPack),
    Layer.mapError((e) => e._tag === "SocketServerError" ? listenError(settings, e) : e)
  )

/** A runner that cannot listen (the port is taken, the host is not this machine's) fails with `ConfigError`. */
const listenError = (settings: Config.ClusterSettings, e: { readonly cause: unknown }) => {
  const at = settings.listen ?? settings.address
  const field = settings.listen === undefined ? "cluster.address" : "cluster.listen"
  const why = messageOf(e.cause)
  return new ConfigError({ field, rule: `could not listen there: ${why}`, value: at && `${at.host}:${at.port}` })
}

/** A client: sends to the runners, hosts no agent. */
export const layerClient = (
  settings: Config.ClusterSettings
): Layer.Layer<Provided, StoreError, SqlClient.SqlClient> =>
  SocketRunner.layerClientOnly.pipe(
    Layer.provide(NodeClusterSocket.layerClientProtocol),
    Layer.provideMerge(sqlStorage(settings, "client")),
    Layer.provideMerge(Config.layer(settings, "client")),
    Layer.provide(RpcSerialization.layerMsgPack)
  )

/**
 * Agents across machines, on `@effect/cluster` (0.60, Effect 3): each agent is a sharded entity, held by one runner
 * at a time, whose behaviour is an `AgentSupervisor` in the entity's scope. When a runner dies its shards move to
 * another runner (after the shard lock expires: `timing`), which starts the agents there; passivation, a shard
 * moving away and a runner's shutdown stop an agent with its 3-phase stop. A crashed agent is restarted by its own
 * `RestartPolicy`, never by the cluster.
 *
 * Delivery is **at least once**: a call in flight on a runner that dies is sent again to the next owner, which runs
 * it again; a persisted task (`idempotencyKey`) is stored before it runs and re-run after its runner dies, and the
 * caller sees one reply per key. An agent with side effects must treat a repeated input as a repeat: put the key
 * in the input it is given (the client passes `input` as it is) and skip work already done for that key.
 *
 * Reached as `effect-agent-supervisor/Cluster` only (not from the index), so that programs without
 * `@effect/cluster` installed are not affected. Needs `@effect/cluster`, `@effect/rpc` and `@effect/workflow`.
 *
 * @since 0.1.0
 */
import type * as Sharding from "@effect/cluster/Sharding"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Config from "./Agent/Config.js"
import { ConfigError, type StoreError } from "./Errors.js"
import * as Catalog from "./internal/cluster/catalog.js"
import * as Client from "./internal/cluster/client.js"
import * as Settings from "./internal/cluster/config.js"
import * as EntityLayer from "./internal/cluster/entity.js"
import * as Layers from "./internal/cluster/layers.js"
import * as Migrate from "./internal/cluster/migrate.js"
import * as PlacementModule from "./internal/cluster/placement.js"
import * as Protocol from "./internal/cluster/protocol.js"
import * as TopologyModule from "./internal/cluster/topology.js"
import type { DurationInput } from "./internal/durationText.js"
import type * as Store from "./Store/Store.js"

/**
 * The agent entity and its messages (`Rpc`s): `Call` (volatile), `Task` (persisted, keyed by `key`), `Stream`,
 * `Status` and `Restart`. Every error is one of this library's, typed across the wire.
 *
 * @since 0.1.0
 * @category protocol
 */
export const AgentEntity = Protocol.AgentEntity

/**
 * Where an agent runs and how it is (`Status`'s answer): `runner` is `host:port`.
 *
 * @since 0.1.0
 * @category models
 */
export const AgentStatus = Protocol.AgentStatus

/**
 * @since 0.1.0
 * @category models
 */
export type AgentStatus = typeof Protocol.AgentStatus.Type

/**
 * Which agent an entity id names: every runner of a cluster holds the same catalog. `layerAgents` provides one from
 * a list of configurations; provide your own (with `layerEntity`) to build configurations on demand.
 *
 * @since 0.1.0
 * @category services
 */
export const AgentCatalog = Catalog.AgentCatalog

/**
 * @since 0.1.0
 * @category services
 */
export type AgentCatalog = Catalog.AgentCatalog

/**
 * Sends to agents wherever they run: `call(agentId, input, { timeout, idempotencyKey? })`, `send` (store a keyed
 * task and return), `stream`, `status` and `restart`. Every call is bounded by its `timeout` (required for calls:
 * `@effect/cluster` retries a call to a lost runner for ever); the cluster's own failures are
 * `AgentUnavailableError`. Every cluster layer of this module provides it.
 *
 * @since 0.1.0
 * @category services
 */
export const AgentClient = Client.AgentClient

/**
 * @since 0.1.0
 * @category services
 */
export type AgentClient = Client.AgentClient

/**
 * @since 0.1.0
 * @category models
 */
export type CallOptions = Client.CallOptions

/**
 * @since 0.1.0
 * @category errors
 */
export type CallError = Client.CallError

/**
 * Where each started agent runs (agent, runner, shard, since), read without waking a passivated agent. On SQL, one
 * table (`${prefix}_agents`) for the whole cluster.
 *
 * @since 0.1.0
 * @category services
 */
export const Placement = PlacementModule.Placement

/**
 * @since 0.1.0
 * @category services
 */
export type Placement = PlacementModule.Placement

/**
 * @since 0.1.0
 * @category models
 */
export type PlacementRow = PlacementModule.PlacementRow

/**
 * The shard-lock timings by name (`timing`): `fast` (the default; failover after a runner dies in 6-8 s),
 * `standard` (`@effect/cluster`'s defaults; about 40 s), `test` (4-5 s; for tests: a stall of ~2 s loses locks).
 *
 * @since 0.1.0
 * @category configuration
 */
export const presets = Settings.presets

/**
 * The cluster's options, as a schema (the tree file's `cluster` section uses it): `prefix` ("agent_cluster"),
 * `address` and `listen` (`{ host, port }`), `timing` (a preset or `{ shardLockExpiration,
 * shardLockRefreshInterval, refreshAssignmentsInterval, entityTerminationTimeout }`), `maxIdleTime` (5 minutes),
 * `keepAlive` (false: passivate idle agents), `mailboxCapacity` (4,096), `shardsPerGroup` (300).
 *
 * @since 0.1.0
 * @category configuration
 */
export const ClusterOptions = Settings.ClusterOptions

/**
 * @since 0.1.0
 * @category configuration
 */
export type ClusterOptions = Settings.ClusterOptionsInput

/**
 * What every cluster layer provides.
 *
 * @since 0.1.0
 * @category layers
 */
export type Provided = Layers.Provided | AgentClient

const decoded = <E, R>(
  options: ClusterOptions | undefined,
  build: (settings: Settings.ClusterSettings) => Layer.Layer<Layers.Provided, E, R>
): Layer.Layer<Provided, E | ConfigError, R> =>
  Either.match(Settings.decode(options ?? {}), {
    onLeft: (error): Layer.Layer<Provided, E | ConfigError, R> => Layer.fail(error),
    onRight: (settings) => Layer.provideMerge(Client.layer, build(settings))
  })

/**
 * A cluster in this process's memory (`@effect/cluster`'s test runner, with this module's timings): persisted tasks
 * work but do not survive the process. For tests and trials.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: ClusterOptions): Layer.Layer<Provided, ConfigError> =>
  decoded(options, Layers.layerMemory)

/**
 * One runner on its own, its messages in SQL (SQLite or PostgreSQL, from the `SqlClient` given): persisted tasks
 * survive a restart of the process. Runs `migrate` first. Fails with `ConfigError` for bad options, `StoreError` when
 * the database refuses the migration.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLocal = (
  options?: ClusterOptions
): Layer.Layer<Provided, ConfigError | StoreError, SqlClient.SqlClient> => decoded(options, Layers.layerLocal)

/**
 * A runner among several: it listens on `listen` (or `address`), is reached at `address`, and shares shard locks,
 * runners and messages with the others in SQL (PostgreSQL across hosts; one SQLite file serves runners on one host
 * only). Nothing is read from the environment: a generic `PORT` or `HOST` never moves it. Fails with `ConfigError`
 * without `address`, or when it cannot listen.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerRunner = (
  options: ClusterOptions
): Layer.Layer<Provided, ConfigError | StoreError, SqlClient.SqlClient> =>
  options?.address === undefined || options.address.port === 0
    ? Layer.fail(
      new ConfigError({
        field: options?.address === undefined ? "cluster.address" : "cluster.address.port",
        rule: "a runner must say where the others reach it: { host, port }, a port other than 0",
        ...(options?.address === undefined ? {} : { value: "0" })
      })
    )
    : decoded(options, Layers.layerRunner)

/**
 * A client: sends to the runners of the cluster in that SQL database, hosts no agent.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options?: ClusterOptions
): Layer.Layer<Provided, ConfigError | StoreError, SqlClient.SqlClient> => decoded(options, Layers.layerClient)

/**
 * The agent entity's behaviour on this runner, for the agents the `AgentCatalog` names. Most programs use
 * {@link layerAgents}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerEntity: Layer.Layer<never, never, AgentCatalog | Store.Store | Sharding.Sharding> = EntityLayer.layer

/**
 * What a cluster hosts: agents (a configuration, or `{ config, topics }`) and pools (`{ id, size, maxSize?, config,
 * topics?, routing? }`; a pool of `size` is the agents `${name}-0` ... `${name}-${size - 1}` (`name`: its
 * configuration's, as in a tree), each an entity of its own, and a call to the pool's `id` goes to one member: in
 * turn, or by its key's hash with `routing: "sticky"`; `size` at most `maxSize`, 1000 by default). Topics name the
 * agents and pools that take a published task. Every runner and client of a cluster must be given the same.
 *
 * @since 0.1.0
 * @category models
 */
export type TopologyInput = TopologyModule.TopologyInput

/**
 * @since 0.1.0
 * @category models
 */
export type PoolEntry = TopologyModule.PoolEntry

/**
 * @since 0.1.0
 * @category models
 */
export type AgentEntry = TopologyModule.AgentEntry

/**
 * The decoded topology this process was given (`layerAgents`, `layerTopology`).
 *
 * @since 0.1.0
 * @category services
 */
export const Topology = TopologyModule.TopologyTag

const catalogOf = (topology: TopologyModule.Topology) => Catalog.fromConfigs(topology.configs.values())

/**
 * Hosts these agents and pools on this runner (each agent starts at its first message, wherever the cluster assigns
 * its name) and provides the `Topology` (so `AgentClient` routes pools and topics). Takes a list of agent
 * configurations or a {@link TopologyInput}. Fails with `ConfigError` listing every bad configuration, duplicate name
 * or bad pool. Agents write to the `Store` given.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const runner = Cluster.layerAgents([summarizer, classifier]).pipe(
 *   Layer.provideMerge(Cluster.layerRunner({ address: { host: "10.0.0.5", port: 34431 }, prefix: "agents" })),
 *   Layer.provide([Store.layerMemory, PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL!) })])
 * )
 * ```
 */
export const layerAgents = (
  agents: TopologyInput | Iterable<Config.AgentConfig | Config.AgentConfigInput>
): Layer.Layer<TopologyModule.TopologyTag, ConfigError, Store.Store | Sharding.Sharding> =>
  Layer.unwrapEffect(Effect.map(TopologyModule.decode(agents), (topology) =>
    Layer.merge(
      EntityLayer.layer.pipe(Layer.provide(Layer.succeed(Catalog.AgentCatalog, catalogOf(topology)))),
      Layer.succeed(TopologyModule.TopologyTag, topology)
    )))

/**
 * The `Topology` alone, for a client process that hosts no agent but calls pools or publishes to topics.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTopology = (
  input: TopologyInput | Iterable<Config.AgentConfig | Config.AgentConfigInput>
): Layer.Layer<TopologyModule.TopologyTag, ConfigError> =>
  Layer.effect(TopologyModule.TopologyTag, TopologyModule.decode(input))

/**
 * Creates the tables of the cluster with this prefix where missing; safe to run from several runners at once (on
 * PostgreSQL under an advisory lock: concurrent first boots otherwise race on `CREATE TABLE`). Every SQL layer of
 * this module runs it first. Fails with `StoreError` when the database refuses, or after `timeout` (60 seconds by
 * default; on PostgreSQL a pool of fewer than 3 connections would wait for ever: a runner reserves one for its shard
 * locks), and with `ConfigError`, before touching the database, when `timeout` is no duration or is negative.
 *
 * @since 0.1.0
 * @category layers
 */
export const migrate: (
  prefix: string,
  timeout?: DurationInput
) => Effect.Effect<void, StoreError | ConfigError, SqlClient.SqlClient> = Migrate.migrate

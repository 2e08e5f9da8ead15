/**
 * The cluster's settings (`options.ts`) as a complete `ShardingConfig`. Every field is set here, so nothing is read
 * from the environment: `@effect/cluster`'s own runner layers read `HOST`, `PORT`, `SHARDS_PER_GROUP`... through
 * `ShardingConfig.layerFromEnv`, which would let a generic `PORT` meant for something else move a runner.
 */
import * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { type ClusterSettings, timingOf } from "./options.js"

export * from "./options.js"

/** Where this process stands: a runner hosting agents (alone, or with others over sockets), or a client hosting none. */
export type Role = "local" | "runner" | "client"

/** The complete `ShardingConfig` of these settings: every field set, nothing read from the environment. */
export const shardingConfig = (settings: ClusterSettings, role: Role): ShardingConfig.ShardingConfig["Type"] => ({
  ...ShardingConfig.defaults,
  ...timingOf(settings.timing),
  runnerAddress: role === "client"
    ? Option.none()
    : settings.address === undefined
    ? ShardingConfig.defaults.runnerAddress
    : Option.some(RunnerAddress.make(settings.address.host, settings.address.port)),
  runnerListenAddress: role === "client" || settings.listen === undefined
    ? Option.none()
    : Option.some(RunnerAddress.make(settings.listen.host, settings.listen.port)),
  shardsPerGroup: settings.shardsPerGroup,
  entityMailboxCapacity: settings.mailboxCapacity,
  entityMaxIdleTime: settings.keepAlive ? Duration.infinity : settings.maxIdleTime
})

/** The `ShardingConfig` layer of these settings. */
export const layer = (settings: ClusterSettings, role: Role): Layer.Layer<ShardingConfig.ShardingConfig> =>
  ShardingConfig.layer(shardingConfig(settings, role))

/**
 * `AdminApi.ClusterPlacements` from a cluster's layers: the rows of `Cluster.Placement` (written by each agent's
 * entity when it starts, deleted when it stops: reading them wakes no agent), each with its runner's state from the
 * cluster's `RunnerStorage` (on SQL: registered, healthy, and a heartbeat within the shard-lock expiration). This
 * process's own runner is live while it runs (a local runner registers nowhere).
 *
 * Imports `@effect/cluster`: loaded by `up`'s cluster mode only, never by `AdminApi.ts`.
 *
 * @internal
 */
import type * as RunnerAddress from "@effect/cluster/RunnerAddress"
import * as RunnerStorage from "@effect/cluster/RunnerStorage"
import * as ShardingConfig from "@effect/cluster/ShardingConfig"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { ClusterPlacements } from "../../AdminApi.js"
import { Placement } from "../cluster/placement.js"

/** The addresses (`host:port`) of the live runners: registered, healthy, with a recent heartbeat. */
const liveRunners = Effect.gen(function*() {
  const config = yield* ShardingConfig.ShardingConfig
  const runners = yield* Effect.flatMap(RunnerStorage.RunnerStorage, (storage) => storage.getRunners)
  const name = (address: RunnerAddress.RunnerAddress) => `${address.host}:${address.port}`
  const live = new Set(runners.filter(([, healthy]) => healthy).map(([runner]) => name(runner.address)))
  if (Option.isSome(config.runnerAddress)) live.add(name(config.runnerAddress.value))
  return live
})

/** The placements of the cluster whose tables have this prefix (`Cluster.Placement` on its SQL database). */
export const layer: Layer.Layer<
  ClusterPlacements,
  never,
  Placement | ShardingConfig.ShardingConfig | RunnerStorage.RunnerStorage
> = Layer.effect(
  ClusterPlacements,
  Effect.gen(function*() {
    const placement = yield* Placement
    const context = yield* Effect.context<ShardingConfig.ShardingConfig | RunnerStorage.RunnerStorage>()
    const runners = liveRunners.pipe(
      Effect.provide(context),
      Effect.asSome,
      // Without the runners, the rows are still worth listing: their state is left out.
      Effect.catchAllCause((cause) =>
        Effect.as(Effect.logWarning("cluster placements: could not read the runners", cause), Option.none())
      )
    )
    return ClusterPlacements.of({
      list: Effect.gen(function*() {
        const rows = yield* placement.list
        if (rows.length === 0) return []
        const live = yield* runners
        return rows.map((row) =>
          Option.match(live, {
            onNone: () => row,
            onSome: (addresses) => ({
              ...row,
              state: addresses.has(row.runner) ? "running" as const : "lost" as const
            })
          })
        )
      })
    })
  })
)

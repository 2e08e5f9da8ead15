/**
 * `Supervisor.reload`: an agent child reloaded in place, or a pool's members one after the other (`replace.ts`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { SupervisorChildError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import * as Edge from "../schema.js"
import * as Keeper from "./keeper.js"
import { reloadAgent, type ReloadOptions, respec } from "./replace.js"
import * as Routers from "./routers.js"
import { childError, find, type Instance } from "./state.js"

/** The keys of `reload`'s options. */
const RELOAD_OPTIONS = Edge.allKeysOf<ReloadOptions>()(["config"])

/**
 * `reload(id, options)`: an agent child reloaded in place, or a pool's members one after the other (a new
 * configuration becomes the pool's: later members and restarts of the pool use it).
 */
export const reload = (
  self: Instance,
  id: string,
  options: ReloadOptions | undefined
): Effect.Effect<void, Supervisor.StartError | SupervisorChildError> =>
  Effect.gen(function*() {
    // `{ confg }` reloaded the old configuration without a word
    const unknown = Edge.unknownKeysError(options, RELOAD_OPTIONS, undefined)
    if (unknown !== undefined) return yield* Effect.fail(unknown)
    if (self.terminating) return yield* Effect.fail(childError(self, id, "reload", "supervisor_stopped"))
    const child = find(self, id)
    if (child === undefined) return yield* Effect.fail(childError(self, id, "reload", "not_found"))
    if (child.spec._tag === "Agent") {
      yield* reloadAgent(self, child, yield* respec(child.spec, options?.config))
      // A new configuration outlives the tree under `restore`, for a child added as it runs
      if (options?.config !== undefined) yield* Keeper.respecified(self, id)
      return
    }
    const pool = child.spec.tree.pool
    const router = child.runtime?._tag === "Supervisor" ? Routers.routerOf(child.runtime.instance) : undefined
    if (pool === undefined || router === undefined) {
      return yield* Effect.fail(
        childError(
          self,
          id,
          "reload",
          pool === undefined ? "not_an_agent" : child.status === "restarting" ? "restarting" : "stopped"
        )
      )
    }
    const member = yield* respec(pool.member, options?.config)
    yield* router.reload(member)
    if (options?.config !== undefined) yield* Keeper.respecified(self, id)
  })

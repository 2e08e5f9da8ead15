/**
 * The routers of the running pools (`pool.ts`), by their supervisor handle: what a pool's parent, the topics and a
 * reload find a pool through. Apart from `pool.ts` so that those can reach a router without importing the pool's
 * machinery (which imports theirs).
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { HandleOptions, HandleStreamOptions } from "../../Agent/AgentSupervisor.js"
import type { StreamEvent } from "../../Agent/StreamEvent.js"
import type { RequestError, StreamRequestError, SupervisorChildError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import type { AgentSpec } from "./spec.js"

/** What a pool's parent routes to, and scales. */
export interface Router {
  readonly handleEvent: (payload: unknown, options?: HandleOptions) => Effect.Effect<unknown, RequestError>
  readonly handleEventStream: (
    payload: unknown,
    options?: HandleStreamOptions
  ) => Stream.Stream<StreamEvent, StreamRequestError>
  readonly scale: (size: number) => Effect.Effect<void, Supervisor.StartError | SupervisorChildError>
  /** Calls in flight through the pool to the member `id`. */
  readonly inFlight: (id: string) => number
  /** The pool as `Supervisor.poolInfo` reports it. */
  readonly info: () => Supervisor.PoolInfo
  /**
   * Makes `member` the pool's spec (later members and restarts of the pool use it) and reloads each member with
   * it, one after the other (`replace.ts`); not while a `scale` runs.
   */
  readonly reload: (member: AgentSpec) => Effect.Effect<void, Supervisor.StartError | SupervisorChildError>
}

const routers = new WeakMap<Supervisor.Supervisor, Router>()

/** The router of a pool's supervisor handle; `undefined` for any other supervisor. */
export const routerOf = (handle: Supervisor.Supervisor): Router | undefined => routers.get(handle)

/** Ties a pool's router to its handle. */
export const set = (handle: Supervisor.Supervisor, router: Router): void => {
  routers.set(handle, router)
}

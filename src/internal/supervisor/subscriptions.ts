/**
 * A tree's children as subscribers of its topics (`Topic.ts`): an agent child or a pool child with `topics` is
 * registered when it is added to its supervisor and taken out when it is removed or its supervisor stops. A
 * delivery finds its call when it needs it: the agent (RUNNING or not: a call waits for its restart within its
 * timeout) or the pool's router; none once the child is stopped or its supervisor is terminating.
 *
 * @internal
 */
import type * as Bus from "../topics/bus.js"
import * as Routers from "./routers.js"
import type { Child, Instance } from "./state.js"

const targetOf = (self: Instance, child: Child): ReturnType<Bus.Subscriber["target"]> => {
  if (self.terminating || child.status === "stopped") return undefined
  const runtime = child.runtime
  if (runtime?._tag === "Agent") {
    return { handleEvent: runtime.agent.handleEvent, running: runtime.agent.peekState() === "RUNNING" }
  }
  const router = runtime?._tag === "Supervisor" ? Routers.routerOf(runtime.instance) : undefined
  return router === undefined ? undefined : { handleEvent: router.handleEvent, running: true }
}

/** Registers `child` with the tree's topics when its spec names some. */
export const subscribe = (self: Instance, child: Child): void => {
  const topics = child.spec.topics
  if (topics.length === 0) return
  child.unsubscribe = self.shared.topics.register({
    path: `${self.name}/${child.spec.id}`,
    topics,
    target: () => targetOf(self, child)
  })
}

/** Takes `child` out of the tree's topics (a no-op for a child without topics, and the second time). */
export const unsubscribe = (child: Child): void => {
  child.unsubscribe?.()
  child.unsubscribe = undefined
}

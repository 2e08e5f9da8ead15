/**
 * Child runtimes: starting a child (an agent owned by this supervisor, or a nested supervisor), stopping it,
 * removing it, and cancelling the restarts pending for it. Exits go to the decisions through `Instance.onExit`.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Scope from "effect/Scope"
import * as Owned from "../../Agent/internal/owned.js"
import { ConfigError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import * as Edge from "../schema.js"
import * as AgentNames from "./agentNames.js"
import * as Keeper from "./keeper.js"
import type * as Spec from "./spec.js"
import { type Child, type Instance, now, publish, type Runtime, type StopReason, unheard } from "./state.js"
import * as Subscriptions from "./subscriptions.js"
import * as Watch from "./watch.js"

/**
 * Every start of a child, first or restart, is one `ChildStarted`; a child with topics may take tasks again, and
 * those waiting for a subscriber look again.
 */
export const publishStarted = (self: Instance, child: Child): Effect.Effect<void> =>
  Effect.flatMap(now, (timestamp) => {
    if (child.spec.topics.length > 0) self.shared.topics.touch()
    return publish(self, { _tag: "ChildStarted", supervisor: self.name, child: child.spec.id, timestamp })
  })

/**
 * Starts a child: its agent again when it has one (kept across restarts), else a new runtime in a scope of its own,
 * closed again if the start fails or is interrupted.
 */
export const startRuntime = (self: Instance, child: Child): Effect.Effect<void, Supervisor.StartError> =>
  Effect.gen(function*() {
    const runtime = child.runtime
    if (runtime?._tag === "Agent") {
      yield* runtime.agent.start.pipe(
        Effect.catchTag("AgentStoppedError", () =>
          Effect.fail(
            new ConfigError({
              field: Edge.pathOf(undefined, [child.spec.id]),
              rule: "the agent was stopped while it was starting"
            })
          ))
      )
      return yield* publishStarted(self, child)
    }
    const childScope = yield* Scope.fork(self.childScopes, ExecutionStrategy.sequential)
    const start: Effect.Effect<Runtime, Supervisor.StartError> = child.spec._tag === "Agent"
      ? startAgent(self, child, child.spec, childScope, undefined, (agent) => {
        child.starting = { agent, started: Deferred.unsafeMake(FiberId.none) }
      })
      : startSupervisor(self, child, child.spec, childScope)
    const started = yield* Effect.exit(start).pipe(
      // An interrupted start (terminateChild, shutdown) leaves nothing running behind it.
      Effect.onInterrupt(() => Scope.close(childScope, Exit.void))
    )
    if (Exit.isFailure(started)) {
      yield* Scope.close(childScope, Exit.void)
      return yield* Effect.failCause(started.cause)
    }
    // In one step with the end of `starting` (below): the views go from the starting agent to the runtime's
    child.runtime = started.value
    // Started again: what it has is read from it from now on
    child.agentsAtStop = undefined
    yield* endStarting(child)
    yield* publishStarted(self, child)
  }).pipe(Effect.ensuring(Effect.suspend(() => endStarting(child))))

/** The start that made a child's agent has ended (either way): views and `child(id)` read the runtime now. */
const endStarting = (child: Child): Effect.Effect<void> => {
  const starting = child.starting
  child.starting = undefined
  return starting === undefined ? Effect.void : Deferred.done(starting.started, Exit.void)
}

/**
 * An agent owned by this supervisor: its exits come here to be decided, its events go up in its own fiber. Once a
 * reload has put another runtime in the child's place, this one's exits are no longer the child's: ignored. A
 * reload gives the `stderr` tail of the agent it replaces: the child's stderr goes on over both.
 */
export const startAgent = (
  self: Instance,
  child: Child,
  spec: Spec.AgentSpec,
  childScope: Scope.CloseableScope,
  stderr?: Owned.OwnedAgent["stderrTail"] | undefined,
  onStarting?: Owned.OwnedOptions["onStarting"]
): Effect.Effect<Extract<Runtime, { _tag: "Agent" }>, Supervisor.StartError> =>
  Effect.gen(function*() {
    const holder: { runtime: Extract<Runtime, { _tag: "Agent" }> | undefined } = { runtime: undefined }
    const owner: Owned.Owner = (exit, controls) =>
      Effect.suspend(() => {
        const runtime = holder.runtime
        if (runtime === undefined) return Effect.void
        runtime.controls = controls
        if (child.runtime !== undefined && child.runtime !== runtime) return Effect.void
        return self.onExit(child, {
          exitClass: exit.exitClass,
          reason: exit.reason,
          uptimeMillis: exit.uptimeMillis,
          exitCode: exit.exitCode,
          signal: exit.signal,
          ...(exit.leftBehind === true ? { leftBehind: true as const } : {})
        })
      })
    const agent = yield* Owned.makeOwned(spec.config, owner, {
      // The tree's one writer: the agent neither makes nor flushes one of its own.
      writer: self.shared.writer,
      // The tree's one runner of heartbeat reports: a fiber runs the reports of many agents.
      reports: self.shared.reports,
      // The tree records the restarts it decides, under the child's path in the tree: one record each.
      recordRestarts: false,
      // Its stderr in the tree's log directory, under its own name, over restarts (its scope outlives them).
      logs: self.shared.logs,
      // In the agent's own fiber, before its owner hears of an exit: the tree's events keep causal order.
      onEvent: (event) => publish(self, { _tag: "Agent", supervisor: self.name, child: spec.id, event }),
      onEventUnheard: () => unheard(self),
      // What it publishes goes to the tree's topics.
      onTopicPublish: (topic, payload) => self.shared.topics.fromAgent(spec.config.name, topic, payload),
      stderr,
      onStarting
    }).pipe(Scope.extend(childScope))
    const runtime: Extract<Runtime, { _tag: "Agent" }> = {
      _tag: "Agent",
      agent,
      scope: childScope,
      controls: undefined
    }
    holder.runtime = runtime
    return runtime
  })

const startSupervisor = (
  self: Instance,
  child: Child,
  spec: Spec.SupervisorSpec,
  childScope: Scope.CloseableScope
) =>
  Effect.gen(function*() {
    const instance = yield* self.makeNested(spec.tree).pipe(Scope.extend(childScope))
    // Escalation is the nested supervisor's abnormal exit; auto-shutdown its normal one.
    yield* instance.await.pipe(
      Effect.exit,
      Effect.flatMap((exit) =>
        self.onExit(child, {
          exitClass: Exit.isSuccess(exit) ? "normal" : "abnormal",
          reason: Exit.isSuccess(exit) ? "auto_shutdown" : "escalation",
          uptimeMillis: 0
        })
      ),
      self.fork,
      Effect.flatMap((fiber) => Scope.addFinalizer(childScope, Fiber.interrupt(fiber)))
    )
    return { _tag: "Supervisor", instance, scope: childScope } satisfies Runtime
  })

/** Stops a child's process or subtree (not counted as a failure); an agent keeps its runtime for a restart. */
export const stopRuntime = (self: Instance, child: Child, why: StopReason): Effect.Effect<void> =>
  Effect.gen(function*() {
    const runtime = child.runtime
    if (runtime === undefined) return
    if (runtime._tag === "Agent") {
      const before = yield* runtime.agent.state
      yield* runtime.agent.stop
      // Already stopped (by an escalation below, say): nothing stopped now, so no event.
      if (before === "STOPPED" || before === "IDLE") return
    } else {
      AgentNames.keepAtStop(child)
      child.runtime = undefined
      yield* Scope.close(runtime.scope, Exit.void)
    }
    yield* publish(self, {
      _tag: "ChildStopped",
      supervisor: self.name,
      child: child.spec.id,
      why,
      timestamp: yield* now
    })
  })

/**
 * Forgets a child: its runtime's scope closes, its spec is gone; an agent's last state and checkpoint go from the
 * store after its last writes, unless an agent of the same name is still a child anywhere in the tree.
 */
export const removeChild = (self: Instance, child: Child): Effect.Effect<void> =>
  Effect.gen(function*() {
    self.children = self.children.filter((c) => c !== child)
    Subscriptions.unsubscribe(child)
    yield* Watch.stop(child)
    yield* Keeper.removed(self, child)
    // Its agents, read before its runtime closes: a nested supervisor's children as they are (dynamic ones too)
    const names = new Set(AgentNames.agentNamesBelow(child))
    const runtime = child.runtime
    child.runtime = undefined
    if (runtime !== undefined) yield* Scope.close(runtime.scope, Exit.void)
    // The store forgets each (after its last writes) unless an agent of its name is still in the tree
    const kept = AgentNames.namesInTree(self.shared)
    for (const name of names) if (!kept.has(name)) yield* self.writer.forgetAgent(name)
    yield* publish(self, { _tag: "ChildRemoved", supervisor: self.name, child: child.spec.id, timestamp: yield* now })
  })

/** Cancels the restart pending for one child; a group's restart goes on for the others, skipping this one. */
export const cancelPending = (self: Instance, child: Child): Effect.Effect<void> =>
  Effect.gen(function*() {
    const fiber = child.pending
    if (fiber === undefined) return
    const shared = self.children.some((c) => c !== child && c.pending === fiber)
    if (shared) {
      // The group's restart goes on for the others; if it is starting this child now, stopping the agent
      // ends that start at once instead of at its startupTimeout.
      child.skip = true
      if (child.runtime?._tag === "Agent") yield* child.runtime.agent.stop
    } else {
      child.pending = undefined
      yield* Fiber.interrupt(fiber)
    }
  })

/** The fiber running this effect: a restart must not interrupt itself when it cancels pending restarts. */
export const currentFiber = Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((fiber) =>
  Effect.succeed(fiber)
)

/** Interrupts the pending restart of each child (all of them, or one set), except the running fiber. */
export const interruptPending = (members: ReadonlyArray<Child>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const self = yield* currentFiber
    for (const member of members) {
      const fiber = member.pending
      member.pending = undefined
      if (fiber !== undefined && fiber !== self) yield* Fiber.interrupt(fiber)
    }
  })

/**
 * Stops every child: the dynamic ones (`startChild`, `startChildren`, restored) all at once, as OTP stops a
 * `simple_one_for_one` supervisor's children, then the static ones one by one in reverse start order. Dynamic
 * children start after the static ones, so this keeps reverse start order between the two. Idempotent;
 * uninterruptible, since each stop is bounded.
 */
export const stopAll = (self: Instance, why: "shutdown" | "escalation"): Effect.Effect<void> =>
  Effect.uninterruptible(Effect.gen(function*() {
    self.terminating = true
    yield* interruptPending(self.children)
    const stop = (child: Child) =>
      Effect.zipRight(stopRuntime(self, child, why), Effect.sync(() => (child.status = "stopped")))
    const reversed = [...self.children].reverse()
    yield* Effect.forEach(reversed.filter((c) => c.dynamic), stop, { concurrency: "unbounded", discard: true })
    for (const child of reversed) if (!child.dynamic) yield* stop(child)
  }))

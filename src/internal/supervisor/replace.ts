/**
 * Rolling reload (`Supervisor.reload`, PM2's `reload`): a new incarnation of an agent child started beside the one
 * that serves, put in its place once `ready`, the old one drained of what it has in flight (up to its
 * `gracefulTimeout`) and stopped. A pool reloads member by member, a new one up before an old one goes, so its
 * capacity never drops (`maxUnavailable` 0). When the new incarnation does not start, the old one keeps serving
 * and the reload fails with the startup error.
 *
 * The new incarnation is a new runtime of the same child: the exits of the old one, from then on, are not the
 * child's (`children.ts` ignores them), and its restarts, breaker and failure count start afresh with the new
 * one. Not counted as a restart, as a manual operation is not; its start is a `ChildStarted`, the old one's stop a
 * `ChildStopped` (`"manual"`). Its stderr is the child's as over a restart: the new agent writes to the old one's
 * stderr tail, from its process's first line, so the lines kept and their followers cover both processes.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { isTagged } from "effect/Predicate"
import * as Scope from "effect/Scope"
import * as Config from "../../Agent/Config.js"
import { ConfigError, type SupervisorChildError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import { cancelPending, publishStarted, startAgent } from "./children.js"
import type { AgentSpec } from "./spec.js"
import { type Child, childError, type Instance, now, publish, type Runtime } from "./state.js"

/** What `reload` may change: the agent's configuration (the same name), decoded like the child's own. */
export interface ReloadOptions {
  readonly config?: Config.AgentConfig | Config.AgentConfigInput | undefined
}

type AgentRuntime = Extract<Runtime, { _tag: "Agent" }>

/** How often a drain looks at what the old incarnation has in flight. */
const DRAIN_POLL = Duration.millis(10)

/**
 * The spec a reload runs: the child's, or its configuration replaced by `config`, decoded with the child's
 * restart type and stop timeouts applied as they were (a `ConfigError` with paths under `config`).
 */
export const respec = (
  spec: AgentSpec,
  config: ReloadOptions["config"]
): Effect.Effect<AgentSpec, ConfigError> =>
  Effect.gen(function*() {
    if (config === undefined) return spec
    const decoded = config instanceof Config.AgentConfig ? config : yield* Config.make(config)
    if (decoded.name !== spec.config.name) {
      return yield* new ConfigError({
        field: "config.name",
        rule: `a reload keeps the agent's name ("${spec.config.name}"): add a child to run another agent`,
        value: decoded.name
      })
    }
    const next = new Config.AgentConfig({
      ...decoded,
      restart: spec.restart,
      gracefulTimeout: spec.config.gracefulTimeout,
      sigtermTimeout: spec.config.sigtermTimeout
    })
    return { ...spec, config: next, settings: next }
  })

/** Waits until the agent has nothing in flight, at most `within`. */
const drain = (runtime: AgentRuntime, within: Duration.Duration): Effect.Effect<void> =>
  Effect.gen(function*() {
    while ((yield* runtime.agent.metadata).inFlight > 0) yield* Effect.sleep(DRAIN_POLL)
  }).pipe(Effect.timeoutOption(within), Effect.asVoid)

/**
 * Reloads one agent child whose runtime runs. One reload of a child at a time (`reloading`); the new incarnation is
 * put in place only if, once it is ready, the child is still the one it was started for (not removed, stopped by
 * hand, restarted into another runtime, nor its supervisor stopping): otherwise it is stopped again and the reload
 * fails with why. The old one crashing meanwhile is no obstacle: its pending restart is cancelled and the new one
 * takes over. Run as the supervisor's own (`Instance.asOwn`), whoever asks (an admin request, a watch): the new
 * agent, and every restart of it, logs with the supervisor's annotations, never with the caller's. @internal
 */
export const reloadAgent = (
  self: Instance,
  child: Child,
  spec: AgentSpec
): Effect.Effect<void, Supervisor.StartError | SupervisorChildError> =>
  self.asOwn(Effect.gen(function*() {
    const id = child.spec.id
    const old = child.runtime
    if (old?._tag !== "Agent" || child.status !== "running") {
      return yield* Effect.fail(childError(self, id, "reload", child.status === "running" ? "not_found" : child.status))
    }
    if (child.reloading === true) return yield* Effect.fail(childError(self, id, "reload", "reloading"))
    child.reloading = true
    let swapped = false
    const scope = yield* Scope.fork(self.childScopes, ExecutionStrategy.sequential)
    // The new incarnation is the child's only once swapped in; until then, whatever ends this stops it.
    const unlessSwapped = Effect.suspend(() => swapped ? Effect.void : Scope.close(scope, Exit.void))
    const swap = Effect.gen(function*() {
      // On the old one's stderr tail: the lines kept and their followers go on over both processes.
      const fresh = yield* startAgent(self, child, spec, scope, old.agent.stderrTail).pipe(
        // Stopped while it started (the tree stopping, its scope closing): the reload's error, typed.
        Effect.catchSomeDefect((defect) =>
          isTagged(defect, "AgentStoppedError")
            ? Option.some(
              Effect.fail(childError(self, id, "reload", self.terminating ? "supervisor_stopped" : "stopped"))
            )
            : Option.none()
        )
      )
      // In its place under the lock: a decision about the child sees the one or the other, never half.
      yield* self.locked(Effect.gen(function*() {
        const gone = self.terminating
          ? "supervisor_stopped" as const
          : !self.children.includes(child)
          ? "not_found" as const
          : child.runtime !== old || child.status === "stopped"
          ? "stopped" as const
          : undefined
        if (gone !== undefined) return yield* Effect.fail(childError(self, id, "reload", gone))
        yield* cancelPending(self, child)
        child.runtime = fresh
        child.spec = spec
        child.status = "running"
        child.skip = false
        child.parked = false
        child.failures = 0
        swapped = true
        yield* publishStarted(self, child)
      }))
    })
    yield* swap.pipe(
      Effect.ensuring(Effect.zipRight(unlessSwapped, Effect.sync(() => (child.reloading = false))))
    )
    yield* drain(old, spec.config.gracefulTimeout)
    yield* Scope.close(old.scope, Exit.void)
    yield* publish(self, {
      _tag: "ChildStopped",
      supervisor: self.name,
      child: id,
      why: "manual",
      timestamp: yield* now
    })
  }))

/**
 * A pool's side of a reload: each member reloaded in turn with its own spec (`specOf` its number), a new one up
 * before an old one goes. When one does not start, those already reloaded are reloaded back with `rollback`'s
 * specs (best effort, each failure logged), so that the pool runs one version, and the reload fails with the
 * error. @internal
 */
export const reloadMembers = (
  self: Instance,
  specOf: (index: number) => AgentSpec,
  rollback: (index: number) => AgentSpec
): Effect.Effect<void, Supervisor.StartError | SupervisorChildError> =>
  // As the pool's own, as each member's reload: a failed rollback logs with the pool's annotations.
  self.asOwn(Effect.gen(function*() {
    const members = [...self.children].sort((a, b) => Number(a.spec.id) - Number(b.spec.id))
    const done: Array<Child> = []
    for (const member of members) {
      if (member.spec._tag !== "Agent") continue
      const reloaded = yield* Effect.exit(reloadAgent(self, member, specOf(Number(member.spec.id))))
      if (Exit.isSuccess(reloaded)) {
        done.push(member)
        continue
      }
      for (const back of done) {
        yield* reloadAgent(self, back, rollback(Number(back.spec.id))).pipe(
          Effect.catchAllCause((cause) =>
            Effect.logError(`the reload of member "${back.spec.id}" back to the running version failed`, cause)
          )
        )
      }
      return yield* Effect.failCause(reloaded.cause)
    }
  }))

/**
 * Manual operations (OTP's `start_child`, `terminate_child`, `restart_child`, `delete_child`): never counted as
 * failures, and they cancel the restarts pending for their child.
 *
 * Each runs as the supervisor's own (`Instance.asOwn`), not in its caller's fiber: what it starts (an agent's
 * fibers, a nested supervisor's) keeps the fiber refs it starts in for life, and so would log every line of the
 * agent, and of its restarts, with the caller's annotations (an admin request's `operation`) in place of the
 * supervisor's, as the children it started itself do. Its stops log as the supervisor's too.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { ConfigError, SupervisorChildError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import * as AgentNames from "./agentNames.js"
import { cancelPending, removeChild, startRuntime, stopRuntime } from "./children.js"
import * as Keeper from "./keeper.js"
import * as Namesakes from "./namesakes.js"
import type { Sibling } from "./pathClash.js"
import * as Spec from "./spec.js"
import { type Child, childError, find, type Instance, now, publish } from "./state.js"
import * as Stored from "./stored.js"
import * as Subscriptions from "./subscriptions.js"
import * as Watch from "./watch.js"

/** A child may be added: the supervisor runs and has no child with this id. */
const admit = (self: Instance, id: string): Effect.Effect<void, SupervisorChildError> =>
  Effect.suspend(() => {
    if (self.terminating) return Effect.fail(childError(self, id, "start", "supervisor_stopped"))
    const existing = find(self, id)
    if (existing === undefined) return Effect.void
    return Effect.fail(
      childError(self, id, "start", existing.status === "running" ? "already_started" : "already_present")
    )
  })

/** `startChild`: the spec is decoded here, at the edge, once the id is known to be free. Takes the lock. */
export const startChild = (
  self: Instance,
  input: Supervisor.ChildSpec
): Effect.Effect<void, Supervisor.StartError | SupervisorChildError> =>
  self.asOwn(self.locked(Effect.gen(function*() {
    const notASpec = Spec.checkShape(self.name, input, self.children.length)
    if (notASpec !== undefined) return yield* notASpec
    yield* admit(self, input.id)
    const spec = yield* Spec.decodeAdded(self.tree, siblings(self), input)
    yield* Namesakes.warnAdded(self.tree, self.children.length, [spec], AgentNames.placesInTree(self.shared))
    // Under `restore`, written once the child has started, and waited for (bounded): see `Keeper.added`.
    const child = yield* insert(self, spec, storedOf(self, spec))
    yield* Keeper.added(self, child)
  })))

/** The children of `self` as a spec added beside them is checked against (`pathClash.ts`). */
export const siblings = (self: Instance): Spec.Present => ({
  count: self.children.length,
  siblings: (): Array<Sibling> =>
    self.children.map((child) => ({ id: child.spec.id, nests: child.spec._tag === "Supervisor" }))
})

const storedOf = (self: Instance, spec: Spec.ChildSpec): string | undefined =>
  self.shared.keeper === undefined ? undefined : Stored.encode(spec)

/**
 * `startChildren`: checks the whole batch first (an id already in the tree: `SupervisorChildError`; then every
 * problem of every spec, an id repeated in the batch included, in one `ConfigError`): nothing starts unless all
 * are valid. Then starts them, at most `concurrency`
 * at a time, in the batch's order in the tree: each one that starts is added (and, under `restore`, written), each
 * one that does not is left out with its error. Takes the lock for the whole batch. Interrupted, the children
 * already started stay, supervised; those still starting are stopped and left out.
 */
export const startChildren = (
  self: Instance,
  inputs: ReadonlyArray<Supervisor.ChildSpec>,
  concurrency: number
): Effect.Effect<Supervisor.StartChildrenResult, ConfigError | SupervisorChildError> =>
  self.asOwn(self.locked(Effect.gen(function*() {
    const count = self.children.length
    for (let i = 0; i < inputs.length; i++) {
      const notASpec = Spec.checkShape(self.name, inputs[i], count + i)
      if (notASpec !== undefined) return yield* notASpec
    }
    // Ids repeated in the batch are the decoder's to report, with every other problem.
    for (const id of new Set(inputs.map((input) => input.id))) yield* admit(self, id)
    const specs = yield* Spec.decodeAddedAll(self.tree, siblings(self), inputs)
    yield* Namesakes.warnAdded(self.tree, count, specs, AgentNames.placesInTree(self.shared))
    const children = specs.map((spec) => newChild(spec, storedOf(self, spec), true))
    for (const child of children) Subscriptions.subscribe(self, child)
    yield* Effect.forEach(children, (child) => Watch.start(self, child), { discard: true })
    self.children.push(...children)
    const failed: Array<{ readonly id: string; readonly error: Supervisor.StartError }> = []
    yield* Effect.forEach(
      children,
      (child) =>
        startRuntime(self, child).pipe(
          Effect.zipRight(Keeper.added(self, child)),
          Effect.catchAll((error) => Effect.sync(() => failed.push({ id: child.spec.id, error })))
        ),
      { concurrency, discard: true }
    ).pipe(
      // A child of the batch without a runtime did not start (or was still starting): it is not added.
      Effect.ensuring(Effect.gen(function*() {
        const batch = new Set(children)
        const dropped = self.children.filter((c) => c.runtime === undefined && batch.has(c))
        self.children = self.children.filter((c) => !dropped.includes(c))
        for (const child of dropped) {
          Subscriptions.unsubscribe(child)
          yield* Watch.stop(child)
        }
      }))
    )
    const failedIds = new Set(failed.map((f) => f.id))
    const order = new Map(specs.map((spec, i) => [spec.id, i]))
    return {
      started: specs.filter((spec) => !failedIds.has(spec.id)).map((spec) => spec.id),
      // in the batch's order, not the order the starts ended in
      failed: failed.sort((a, b) => order.get(a.id)! - order.get(b.id)!)
    }
  })))

/** Adds a decoded child (a static one, at start) and starts it. Under the lock. */
export const addChild = (
  self: Instance,
  spec: Spec.ChildSpec
): Effect.Effect<void, Supervisor.StartError | SupervisorChildError> =>
  Effect.zipRight(admit(self, spec.id), Effect.asVoid(insert(self, spec, undefined, false)))

const newChild = (spec: Spec.ChildSpec, stored: string | undefined, dynamic: boolean): Child => ({
  spec,
  stored,
  dynamic,
  status: "running",
  parked: false,
  failures: 0,
  runtime: undefined,
  pending: undefined,
  skip: false
})

/**
 * Adds a child restored from the store and starts it. One that does not start stays, stopped, for `restartChild`
 * (or `deleteChild`) to decide, and the rest of the tree starts: there is no caller to answer.
 */
export const addRestored = (
  self: Instance,
  spec: Spec.ChildSpec,
  stored: string | undefined
): Effect.Effect<void, SupervisorChildError> =>
  Effect.gen(function*() {
    yield* admit(self, spec.id)
    const child = newChild(spec, stored, true)
    self.children.push(child)
    Subscriptions.subscribe(self, child)
    yield* Watch.start(self, child)
    const started = yield* Effect.exit(startRuntime(self, child))
    if (Exit.isFailure(started)) {
      child.status = "stopped"
      yield* Effect.logError(
        `Supervisor "${self.name}": child "${spec.id}", restored from the store, did not start; it stays stopped ` +
          `until restartChild starts it (or deleteChild removes it)`,
        started.cause
      )
    }
  })

/** Adds a child that the previous run left parked: stopped, until `restartChild` starts it. */
export const addParked = (
  self: Instance,
  spec: Spec.ChildSpec,
  stored: string | undefined
): Effect.Effect<void, SupervisorChildError> =>
  Effect.gen(function*() {
    yield* admit(self, spec.id)
    const child: Child = { ...newChild(spec, stored, true), status: "stopped", parked: true }
    self.children.push(child)
    Subscriptions.subscribe(self, child)
    yield* Watch.start(self, child)
    yield* publish(self, { _tag: "ChildParked", supervisor: self.name, child: spec.id, timestamp: yield* now })
  })

/** Appends the child and starts it; a child that does not start is not added. */
const insert = (
  self: Instance,
  spec: Spec.ChildSpec,
  stored: string | undefined,
  dynamic = true
): Effect.Effect<Child, Supervisor.StartError> =>
  Effect.gen(function*() {
    const child = newChild(spec, stored, dynamic)
    self.children.push(child)
    const started = yield* Effect.exit(startRuntime(self, child)).pipe(
      // The caller gave up: startRuntime undid the start, and the child is not added (as after a failure).
      Effect.onInterrupt(() => Effect.sync(() => (self.children = self.children.filter((c) => c !== child))))
    )
    if (Exit.isFailure(started)) {
      self.children = self.children.filter((c) => c !== child)
      return yield* Effect.failCause(started.cause)
    }
    Subscriptions.subscribe(self, child)
    yield* Watch.start(self, child)
    return child
  })

/** `terminateChild`: stops the child and keeps its spec (a temporary child's is removed). */
export const terminateChild = (self: Instance, id: string): Effect.Effect<void, SupervisorChildError> =>
  self.asOwn(Effect.gen(function*() {
    // Cancel first, without the lock: a pending restart may hold it while a start hangs.
    const pendingChild = find(self, id)
    if (pendingChild !== undefined) yield* cancelPending(self, pendingChild)
    yield* self.locked(terminateLocked(self, id))
  }))

const terminateLocked = (self: Instance, id: string): Effect.Effect<void, SupervisorChildError> =>
  Effect.gen(function*() {
    if (self.terminating) return yield* Effect.fail(childError(self, id, "terminate", "supervisor_stopped"))
    const child = find(self, id)
    if (child === undefined) return yield* Effect.fail(childError(self, id, "terminate", "not_found"))
    yield* cancelPending(self, child)
    yield* stopRuntime(self, child, "manual")
    child.status = "stopped"
    yield* Keeper.unpark(self, child)
    if (child.spec.restart === "temporary") yield* removeChild(self, child)
  })

/** `restartChild`: starts a stopped child (a parked one included) with its failures forgotten. */
export const restartChild = (
  self: Instance,
  id: string
): Effect.Effect<void, Supervisor.StartError | SupervisorChildError> =>
  self.asOwn(self.locked(Effect.gen(function*() {
    if (self.terminating) return yield* Effect.fail(childError(self, id, "restart", "supervisor_stopped"))
    const child = find(self, id)
    if (child === undefined) return yield* Effect.fail(childError(self, id, "restart", "not_found"))
    if (child.status !== "stopped") return yield* Effect.fail(childError(self, id, "restart", child.status))
    child.failures = 0
    child.skip = false
    // Running from the moment its start begins, as the views say; stopped again if the start fails.
    child.status = "running"
    yield* Keeper.unpark(self, child)
    yield* startRuntime(self, child).pipe(
      Effect.onError(() => Effect.sync(() => (child.status = "stopped"))),
      // The caller gave up: an agent's start would go on by itself, running and unsupervised. Stop it.
      Effect.onInterrupt(() => stopRuntime(self, child, "manual"))
    )
  })))

/** `deleteChild`: forgets a stopped child. */
export const deleteChild = (self: Instance, id: string): Effect.Effect<void, SupervisorChildError> =>
  self.asOwn(self.locked(Effect.gen(function*() {
    if (self.terminating) return yield* Effect.fail(childError(self, id, "delete", "supervisor_stopped"))
    const child = find(self, id)
    if (child === undefined) return yield* Effect.fail(childError(self, id, "delete", "not_found"))
    if (child.status !== "stopped") return yield* Effect.fail(childError(self, id, "delete", child.status))
    yield* removeChild(self, child)
    yield* Keeper.deleted(self, id)
  })))

/**
 * One running supervisor: its state made, its children started in order, its shutdown registered, and the
 * `Supervisor` handle over the operations and views. Takes a decoded tree only.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Intensity from "../../Agent/internal/intensity.js"
import * as Hub from "../../Agent/internal/supervisor/hub.js"
import type * as RestartPolicy from "../../Agent/RestartPolicy.js"
import { ConfigError, type SupervisorIntensityError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import * as Forker from "../forker.js"
import * as Edge from "../schema.js"
import * as AgentNames from "./agentNames.js"
import * as Batch from "./batch.js"
import { interruptPending, stopAll } from "./children.js"
import { decideLater } from "./decide.js"
import * as Keeper from "./keeper.js"
import * as Operations from "./operations.js"
import * as Pool from "./pool.js"
import * as Reload from "./reload.js"
import * as Restore from "./restore.js"
import * as Spec from "./spec.js"
import { type Instance, publish, type Shared, unheard, type Upstream } from "./state.js"
import * as Subscriptions from "./subscriptions.js"
import * as Views from "./views.js"
import * as Watch from "./watch.js"

/**
 * Starts a supervisor: children start in order; if one fails, those started stop in reverse order and the start
 * fails. Closing the scope stops every child in reverse start order, each subtree whole.
 */
export const make = (
  decoded: Spec.Tree,
  toParent: Upstream | undefined,
  shared: Shared,
  sharedIntensity?: RestartPolicy.Intensity
): Effect.Effect<Supervisor.Supervisor, Supervisor.StartError, Scope.Scope> =>
  Effect.gen(function*() {
    // A pool's children are its members at its size now (`scale` changes it; it outlives a restart of the pool).
    const tree = decoded.pool === undefined ? decoded : { ...decoded, children: Pool.members(decoded.pool) }
    const self = yield* makeState(tree, toParent, shared, sharedIntensity)
    // Stop every child in reverse start order when the scope closes; added after the writer and the pubsub so
    // it runs before them.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        // Interrupt pending restarts first, without the lock: one may hold it while a start hangs.
        self.terminating = true
        yield* interruptPending(self.children)
        yield* self.locked(stopAll(self, "shutdown"))
        for (const child of self.children) {
          Subscriptions.unsubscribe(child)
          yield* Watch.stop(child)
        }
        yield* Deferred.succeed(self.done, void 0)
        yield* self.events.shutdown
      })
    )
    // Static children: in order; a failure stops those started, in reverse, and fails the start. Then, in a tree
    // that restores, the dynamic children the store keeps.
    const initial = yield* Effect.exit(self.locked(Restore.startChildren(self)))
    if (Exit.isFailure(initial)) {
      yield* self.locked(stopAll(self, "shutdown"))
      return yield* Effect.failCause(initial.cause).pipe(
        Effect.catchTag(
          "SupervisorChildError",
          (e) =>
            Effect.fail(new ConfigError({ field: Edge.pathOf(undefined, [tree.name, "children"]), rule: e.message }))
        )
      )
    }
    const supervisor = handle(self)
    AgentNames.register(supervisor, self)
    if (tree.pool !== undefined) Pool.register(self, tree.pool, supervisor)
    return supervisor
  }).pipe(Effect.annotateLogs({ supervisor: decoded.name }))

/** The state of a new supervisor, its writer, events and child scopes in the current scope. */
const makeState = (
  tree: Spec.Tree,
  toParent: Upstream | undefined,
  shared: Shared,
  sharedIntensity: RestartPolicy.Intensity | undefined
): Effect.Effect<Instance, never, Scope.Scope> =>
  Effect.gen(function*() {
    const writer = shared.writer
    const scope = yield* Effect.scope
    // Out of the tree's supervisors last, once its children have stopped (this finalizer is the scope's first)
    yield* Effect.addFinalizer(() => Effect.sync(() => shared.instances.delete(self)))
    // Children's scopes hang below this one, made before the finalizer of `make` is added: the finalizer runs
    // first and stops the children in reverse start order (whatever restarted), then their scopes close.
    const childScopes = yield* Scope.fork(scope, ExecutionStrategy.sequential)
    // Decisions and restarts run for the tree's whole life: the forker keeps them out of the span of the operation
    // that built this supervisor (`Supervisor.make`, a `restartChild`), which ended long before.
    const fork = yield* Forker.make
    // Operations on children (one added, restarted, reloaded by hand, a pool scaled) run with these fiber refs
    // whoever asks: made inside `make`'s `annotateLogs`, they name this supervisor, as its first start does.
    const asOwn = yield* Forker.makeRunner
    const events = Hub.makeLazy<Supervisor.SupervisorEvent>()
    const done = yield* Deferred.make<void, SupervisorIntensityError>()
    const intensity = sharedIntensity ?? (yield* Intensity.make(tree.intensity))
    const lock = yield* Effect.makeSemaphore(1)
    const self: Instance = {
      name: tree.name,
      tree,
      shared,
      writer,
      childScopes,
      fork,
      asOwn,
      events,
      done,
      intensity,
      locked: lock.withPermits(1),
      toParent,
      onExit: (child, exit) => decideLater(self, child, exit),
      reloadChild: (id) => Reload.reload(self, id, undefined),
      // A nested supervisor publishes into this one directly, so events of its own start are not lost.
      // A pool without an intensity of its own counts its members' restarts in this supervisor's.
      makeNested: (nested) =>
        make(
          nested,
          {
            publish: (event) => publish(self, event),
            unheard: () => unheard(self),
            respecified: () => Keeper.respecified(self, nested.name.slice(self.name.length + 1))
          },
          shared,
          nested.pool?.sharesIntensity ? intensity : undefined
        ),
      children: [],
      terminating: false,
      escalated: undefined,
      history: []
    }
    shared.instances.add(self)
    return self
  })

/**
 * Each manual operation is a span naming the supervisor and the child; `call` and the views have none. No stack
 * trace, here nor on `startChildren`'s: the call site would be this module's, and the span stays reachable for the
 * life of what the operation started (their fibers' finalizers keep the fiber refs they were made with), and with
 * it the trace's `Error`, whose frames keep their functions and what those close over (`startChildren`'s kept its
 * whole list of specs, for as long as one child of the batch lived).
 */
const traced = (operation: string, supervisor: string, child: string) =>
  Effect.withSpan(`Supervisor.${operation}`, { attributes: { supervisor, child }, captureStackTrace: false })

/** Fails with the supervisor's `SupervisorIntensityError` once it has escalated; succeeds otherwise. */
const escalation = (self: Instance): Effect.Effect<void, SupervisorIntensityError> =>
  self.escalated === undefined ? Effect.void : Effect.fail(self.escalated)

/**
 * Once the supervisor has escalated, an operation fails with its `SupervisorIntensityError`, never with what the
 * stopped tree would answer (an agent stopped, a child not found, a stopped child deleted): the tree is down, not
 * one child. Checked before (a stopped agent would still be found), and after a failure (an operation that waited
 * for the lock while the escalation ran, a request to an agent the escalation stopped). A running tree pays one
 * boolean test.
 */
const unlessEscalated = <A, E>(
  self: Instance,
  effect: Effect.Effect<A, E>
): Effect.Effect<A, E | SupervisorIntensityError> =>
  Effect.suspend(() => {
    const checked = self.escalated !== undefined ? Effect.zipRight(escalation(self), effect) : effect
    return Effect.tapError(checked, () => escalation(self))
  })

/** {@link unlessEscalated} for a stream: checked before it starts, and on its failure. */
const unlessEscalatedStream = <A, E>(
  self: Instance,
  stream: Stream.Stream<A, E>
): Stream.Stream<A, E | SupervisorIntensityError> =>
  Stream.suspend(() => {
    const checked: Stream.Stream<A, E | SupervisorIntensityError> = self.escalated !== undefined
      ? Stream.fail(self.escalated)
      : stream
    return Stream.catchAll(
      checked,
      (error): Stream.Stream<A, E | SupervisorIntensityError> =>
        Stream.fail(self.escalated !== undefined ? self.escalated : error)
    )
  })

const handle = (self: Instance): Supervisor.Supervisor => ({
  name: self.name,
  call: (childId, payload, options) =>
    unlessEscalated(
      self,
      Effect.flatMap(Views.callTarget(self, childId), (target) => target.handleEvent(payload, options))
    ),
  callStream: (childId, payload, options) =>
    unlessEscalatedStream(
      self,
      Stream.unwrap(
        Effect.map(Views.callTarget(self, childId), (target) => target.handleEventStream(payload, options))
      )
    ),
  poolInfo: (id) => Views.poolInfo(self, id),
  reload: (id, options) =>
    unlessEscalated(self, Reload.reload(self, id, options)).pipe(traced("reload", self.name, id)),
  scale: (id, size) =>
    unlessEscalated(
      self,
      Effect.flatMap(Views.poolChild(self, id), (router) =>
        Effect.zipRight(router.scale(size), Keeper.respecified(self, id)))
    ).pipe(
      traced("scale", self.name, id)
    ),
  child: (id) => unlessEscalated(self, Views.agentChild(self, id)),
  childSupervisor: (id) => unlessEscalated(self, Views.supervisorChild(self, id)),
  startChild: (spec) =>
    Effect.suspend(() =>
      unlessEscalated(self, Operations.startChild(self, spec)).pipe(
        traced("startChild", self.name, String((spec as { id?: unknown })?.id))
      )
    ),
  startChildren: (specs, options) =>
    Effect.suspend(() =>
      unlessEscalated(
        self,
        Effect.flatMap(
          Batch.decodeBatch(specs, options),
          (concurrency) => Operations.startChildren(self, specs, concurrency)
        )
      ).pipe(
        Effect.withSpan("Supervisor.startChildren", {
          attributes: { supervisor: self.name, children: Array.isArray(specs) ? specs.length : 0 },
          captureStackTrace: false
        })
      )
    ),
  terminateChild: (id) =>
    unlessEscalated(self, Operations.terminateChild(self, id)).pipe(traced("terminateChild", self.name, id)),
  restartChild: (id) =>
    unlessEscalated(self, Operations.restartChild(self, id)).pipe(traced("restartChild", self.name, id)),
  deleteChild: (id) =>
    unlessEscalated(self, Operations.deleteChild(self, id)).pipe(traced("deleteChild", self.name, id)),
  whichChildren: Views.whichChildren(self),
  countChildren: Views.countChildren(self),
  restartHistory: Effect.sync(() => [...self.history]),
  events: Stream.flatMap(Stream.scoped(self.events.subscribe), (queue) => Stream.fromQueue(queue)),
  subscribe: self.events.subscribe,
  await: Deferred.await(self.done),
  publish: self.shared.topics.publish,
  awaitResult: self.shared.topics.awaitResult,
  taskOutcome: self.shared.topics.outcome,
  results: self.shared.topics.results,
  subscribeResults: self.shared.topics.subscribeResults,
  deadLetters: (query) =>
    self.shared.topics.deadLetters({
      ...(query?.topic !== undefined ? { topic: query.topic } : {}),
      ...(query?.limit !== undefined ? { limit: query.limit } : {})
    }),
  republish: self.shared.topics.republish,
  topics: Effect.sync(() => self.shared.topics.topics())
})

import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import type * as AgentSupervisor from "../../src/Agent/AgentSupervisor.js"
import * as AgentSupervisorModule from "../../src/Agent/AgentSupervisor.js"
import * as Config from "../../src/Agent/Config.js"
import * as Owned from "../../src/Agent/internal/owned.js"
import * as Hub from "../../src/Agent/internal/supervisor/hub.js"
import * as Writer from "../../src/Store/internal/writer.js"
import * as Memory from "../../src/Store/Memory.js"
import * as Store from "../../src/Store/Store.js"
import * as Supervisor from "../../src/Supervisor.js"
import { agentConfig, closeableScope, drain, takeUntil, TestLive } from "../support.js"

type Event = AgentSupervisor.AgentEvent

const isRunning = (event: Event) => event._tag === "StateChanged" && event.to === "RUNNING"
const transitionsOf = (events: ReadonlyArray<Event>) =>
  events.flatMap((event) => event._tag === "StateChanged" ? [`${event.from}->${event.to}`] : [])

/** An agent under its own restart policy, made by the internal constructor (decoded config, decoded options). */
const owned = (name: string, options?: Owned.OwnedOptions) =>
  Effect.gen(function*() {
    const settings = yield* Config.make(agentConfig("echo", { name, restartBackoff: 0 }))
    return yield* Owned.makeOwned(settings, Owned.restartPolicyOwner(settings), options)
  })

const stamp: Event = { _tag: "CircuitOpened", agent: "x", failures: 1, timestamp: 0 }

describe("Hub.makeLazy", () => {
  it.scoped("is idle while no subscription is open, and once shut down", () =>
    Effect.gen(function*() {
      const hub = Hub.makeLazy()
      assert.isTrue(hub.idle())
      const first = yield* closeableScope
      yield* hub.subscribe.pipe(Scope.extend(first))
      assert.isFalse(hub.idle())
      yield* Effect.scoped(Effect.flatMap(hub.subscribe, () => Effect.sync(() => assert.isFalse(hub.idle()))))
      assert.isFalse(hub.idle(), "the first subscription is still open")
      yield* Scope.close(first, Exit.void)
      assert.isTrue(hub.idle(), "every subscription ended")
      yield* hub.subscribe
      assert.isFalse(hub.idle())
      yield* hub.shutdown
      assert.isTrue(hub.idle())
      const never = Hub.makeLazy()
      yield* never.shutdown
      assert.isTrue(never.idle())
    }))

  it.scoped("delivers what is published after a subscription, to that subscription; nothing before it", () =>
    Effect.gen(function*() {
      const hub = Hub.makeLazy()
      yield* hub.publish({ ...stamp, failures: 1 }) // no subscriber yet: nowhere to go
      const first = yield* hub.subscribe
      yield* hub.publish({ ...stamp, failures: 2 })
      const second = yield* hub.subscribe
      yield* hub.publish({ ...stamp, failures: 3 })
      const failures = (events: Array<Event>) => events.map((e) => e._tag === "CircuitOpened" ? e.failures : -1)
      assert.deepStrictEqual(failures(yield* drain(first)), [2, 3])
      assert.deepStrictEqual(failures(yield* drain(second)), [3])
    }))

  it.scoped("a subscriber that comes while onEvent runs gets the event (the hub is read when the publish runs)", () =>
    Effect.gen(function*() {
      const hub = Hub.makeLazy()
      const entered = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      // makeOwned's composition: the owner's onEvent (a parent's, which may wait), then the hub.
      const onEvent = Effect.zipRight(Deferred.succeed(entered, void 0), Deferred.await(gate))
      const publisher = yield* Effect.fork(Effect.zipRight(onEvent, hub.publish(stamp)))
      yield* Deferred.await(entered)
      const subscription = yield* hub.subscribe
      yield* Deferred.succeed(gate, void 0)
      yield* Fiber.join(publisher)
      assert.deepStrictEqual(yield* drain(subscription), [stamp])
    }))

  it.scoped("shutdown ends subscriptions; afterwards publishing drops the event (no interruption: the publisher may be a stop on its way to a kill) and a new subscription is shut down", () =>
    Effect.gen(function*() {
      const used = Hub.makeLazy()
      const subscription = yield* used.subscribe
      yield* used.shutdown
      assert.isTrue(Exit.isInterrupted(yield* Effect.exit(Queue.take(subscription))))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(used.publish(stamp))))

      // A hub nobody subscribed to behaves the same once shut down.
      const unused = Hub.makeLazy()
      yield* unused.shutdown
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(unused.publish(stamp))))
      const late = yield* unused.subscribe
      assert.isTrue(Exit.isInterrupted(yield* Effect.exit(Queue.take(late))))
    }))
})

describe.sequential("internal makeOwned", () => {
  it.scopedLive("each agent's own hub delivers exactly its events, in order, from its subscription on", () =>
    Effect.gen(function*() {
      const a = yield* owned("hub-a")
      const b = yield* owned("hub-b")
      const eventsA = yield* a.subscribe
      const eventsB = yield* b.subscribe
      yield* Effect.exit(a.handleEvent({ crash: 1 }))
      const seen = yield* takeUntil(eventsA, isRunning)
      // The first start happened before the subscription: none of its events is replayed.
      assert.strictEqual(seen[0]._tag, "Exited")
      assert.deepStrictEqual(seen.filter((e) => e.agent !== "hub-a"), [])
      assert.deepStrictEqual(transitionsOf(seen), [
        "RUNNING->CRASHED",
        "CRASHED->RESTARTING",
        "RESTARTING->STARTING",
        "STARTING->RUNNING"
      ])
      const spawned = seen.find((e) => e._tag === "Spawned")
      assert.strictEqual(spawned?._tag === "Spawned" ? spawned.incarnation : 0, 2)
      assert.strictEqual(yield* b.state, "RUNNING")
      assert.deepStrictEqual(yield* drain(eventsB), [], "b's subscription got another agent's events")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("closing an agent ends its own hub's subscriptions, as the PubSub it had did", () =>
    Effect.gen(function*() {
      const scope = yield* closeableScope
      const agent = yield* owned("hub-close").pipe(Scope.extend(scope))
      const events = yield* agent.subscribe
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* agent.state, "STOPPED")
      assert.isTrue(Exit.isInterrupted(yield* Effect.exit(Queue.take(events))))
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a shared writer takes the agent's writes; the agent neither looks up a Store nor closes it", () =>
    Effect.gen(function*() {
      const shared = yield* Memory.make()
      const inContext = yield* Memory.make()
      const writer = yield* Writer.make(yield* Store.resilient(shared))
      const scope = yield* closeableScope
      const agent = yield* owned("shared-writer", { writer }).pipe(
        Scope.extend(scope),
        Effect.provideService(Store.Store, inContext)
      )
      yield* agent.stop
      yield* Scope.close(scope, Exit.void)
      yield* writer.flush
      const state = yield* shared.getState(agent.name)
      assert.strictEqual(Option.map(state, (s) => s.state).pipe(Option.getOrUndefined), "STOPPED")
      assert.deepStrictEqual(
        (yield* shared.listMetrics({ agent: agent.name, event: "agent_state_change" }))
          .map((m) => m.event === "agent_state_change" ? `${m.old_state}->${m.new_state}` : "")
          .reverse(),
        ["IDLE->STARTING", "STARTING->RUNNING", "RUNNING->STOPPING", "STOPPING->STOPPED"]
      )
      assert.isTrue(Option.isNone(yield* inContext.getState(agent.name)), "the agent wrote to the Store in context")
      // The agent's scope is closed, the writer is not: it still takes writes.
      yield* writer.saveState({ agent_name: "after", state: "STOPPED", restart_count: 0, updated_at: 1 })
      yield* writer.flush
      assert.isTrue(Option.isSome(yield* shared.getState("after")))
      assert.strictEqual(yield* writer.dropped, 0)
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("a shared hub gets every event after onEvent, serves subscribe, and outlives the agent", () =>
    Effect.gen(function*() {
      const pubsub = yield* PubSub.unbounded<Event>()
      const order: Array<string> = []
      const publish = (event: Event) =>
        Effect.zipRight(Effect.sync(() => order.push(`hub:${event._tag}`)), PubSub.publish(pubsub, event))
      const events: Hub.EventHub = {
        publish,
        publishAfter: (first, event) => Effect.zipRight(first, publish(event)),
        subscribe: PubSub.subscribe(pubsub),
        idle: () => false
      }
      const scope = yield* closeableScope
      const agent = yield* owned("shared-hub", {
        events,
        onEvent: (event) => Effect.sync(() => order.push(`onEvent:${event._tag}`))
      }).pipe(Scope.extend(scope))
      const subscription = yield* agent.subscribe
      yield* agent.restart
      const seen = yield* takeUntil(subscription, isRunning)
      assert.deepStrictEqual(transitionsOf(seen), [
        "RUNNING->STOPPING",
        "STOPPING->STOPPED",
        "STOPPED->STARTING",
        "STARTING->RUNNING"
      ])
      assert.deepStrictEqual(order.slice(0, 4), [
        "onEvent:StateChanged",
        "hub:StateChanged",
        "onEvent:Spawned",
        "hub:Spawned"
      ])
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(yield* PubSub.isShutdown(pubsub), "the agent shut down a hub it does not own")
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("make, start, stop and restart are spans naming the agent; a request is one under a tracer of its own", () =>
    Effect.gen(function*() {
      const native = yield* Effect.tracer
      const spans: Array<Tracer.Span> = []
      const recording = Tracer.make({
        span: (name, parent, context, links, startTime, kind, options) => {
          const span = native.span(name, parent, context, links, startTime, kind, options)
          spans.push(span)
          return span
        },
        context: (f, fiber) => native.context(f, fiber)
      })
      yield* Effect.gen(function*() {
        const agent = yield* AgentSupervisorModule.make(agentConfig("echo", { name: "traced" }))
        const before = spans.length
        assert.strictEqual(yield* agent.handleEvent({ echo: 1 }), 1)
        // The default tracer is not this one: the request is a span, with its agent and request id
        assert.strictEqual(spans.length, before + 1, "one span for the request")
        assert.match(String(spans[before].attributes.get("request.id")), /\S/)
        yield* agent.restart
        yield* agent.stop
        yield* agent.start
      }).pipe(Effect.withTracer(recording))
      const named = spans.map((span) => [span.name, span.attributes.get("agent")])
      assert.deepStrictEqual(named, [
        ["AgentSupervisor.make", "traced"],
        ["AgentSupervisor.handleEvent", "traced"],
        ["AgentSupervisor.restart", "traced"],
        ["AgentSupervisor.stop", "traced"],
        ["AgentSupervisor.start", "traced"]
      ])
    }).pipe(Effect.provide(TestLive)))

  it.scopedLive("what an agent or a tree does after it is made runs outside the span of the call that made it", () =>
    Effect.gen(function*() {
      // The span each log line was written in: a restart's logs must not belong to a `make` that ended long ago.
      const seen: Array<{ readonly span: string; readonly message: string }> = []
      const logger = Logger.make(({ context, message }) => {
        const span = Context.getOption(FiberRefs.getOrDefault(context, FiberRef.currentContext), Tracer.ParentSpan)
        seen.push({
          span: Option.match(span, { onNone: () => "(none)", onSome: (s) => s._tag === "Span" ? s.name : "external" }),
          message: String(message)
        })
      })
      const crashAndRecover = (events: Queue.Dequeue<Event>, call: Effect.Effect<unknown, unknown>) =>
        Effect.gen(function*() {
          yield* Effect.either(call)
          yield* takeUntil(events, (event) => event._tag === "Exited")
          yield* takeUntil(events, isRunning)
        })
      yield* Effect.gen(function*() {
        const agent = yield* AgentSupervisorModule.make(agentConfig("echo", { name: "alone", restartBackoff: 0 }))
        const made = seen.length
        yield* crashAndRecover(yield* agent.subscribe, agent.handleEvent({ crash: 1 }))
        const tree = yield* Supervisor.make({
          children: [Supervisor.agent({ id: "t", config: agentConfig("echo", { name: "t", restartBackoff: 0 }) })]
        })
        const child = yield* tree.child("t")
        yield* crashAndRecover(yield* child.subscribe, tree.call("t", { crash: 1 }))
        const after = seen.slice(made)
        assert.isAbove(after.length, 0, "the crashes logged nothing: the test would prove nothing")
        assert.deepStrictEqual(after.filter((line) => line.span.endsWith(".make")), [])
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Logger.withMinimumLogLevel(LogLevel.All))
    }).pipe(Effect.provide(TestLive)))
})

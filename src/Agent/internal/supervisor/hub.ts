/**
 * Where an agent's events go once its owner has seen them, and where `events`/`subscribe` read them from.
 *
 * An agent of its own makes a hub whose `PubSub` exists only once somebody subscribes: until then an event has
 * no reader, and a `PubSub` would drop it anyway, so a tree of 500 agents that nobody subscribes to one by one
 * allocates no buffer per agent. A tree may instead give its agents one hub that it shares.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { AgentEvent } from "../../AgentSupervisor.js"

/**
 * One agent's events (or one supervisor's): published in the fiber that caused them, in order; `subscribe` gets
 * this agent's only.
 */
export interface EventHub<A = AgentEvent> {
  readonly publish: (event: A) => Effect.Effect<void>
  /**
   * Runs `first` (the owner's handler of the event: a tree's, a user's `onEvent`), then publishes `event`: one step
   * of the run loop fewer than `first` then `publish` (a heartbeat's event goes through two hubs a beat).
   */
  readonly publishAfter: (first: Effect.Effect<void>, event: A) => Effect.Effect<void>
  /**
   * Whether nobody can read what is published now: no subscription is open (or the hub is shut down). A publisher
   * may then skip making the event at all (a heartbeat's report, a thousand a second for a thousand agents, is
   * then plain calls with no fiber). A subscription made later gets the events published from then on.
   */
  readonly idle: () => boolean
  /** A subscription to the events from now on, for as long as the scope is open. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<A>, never, Scope.Scope>
}

/** A hub that an agent (or a supervisor) owns: it shuts it down when it is closed. */
export interface OwnHub<A = AgentEvent> extends EventHub<A> {
  /**
   * Ends every subscription, once each has taken what was published before (a stop's own last events: `PubSub`'s
   * shutdown discards what a subscription holds), waiting {@link DRAIN_MILLIS} at most, and not for a reader that
   * takes nothing for 250 ms; what is published later is dropped (no one can read it). Not an interruption, as a shut-down `PubSub`
   * would make it: the publisher may be a stop that must go on to its kill.
   */
  readonly shutdown: Effect.Effect<void>
}

/** How many events a subscriber may fall behind before the oldest are dropped (a sliding buffer). */
const CAPACITY = 4096

/** How long a shutdown waits for the subscriptions to take the events published before it. */
export const DRAIN_MILLIS = 1000

/** How often a shutdown looks whether they have. */
const DRAIN_POLL_MILLIS = 5

/** A subscription that takes nothing for this long is not read (its scope open, its reader gone): not waited for. */
const STALLED_MILLIS = 250

/** A stop follows the wall clock even under a `TestClock` (as its phases do). */
const liveClock = Clock.make()

/**
 * Until every subscription has taken what `pubsub` holds (its size counts what the slowest has not), or
 * {@link DRAIN_MILLIS} have passed, or nothing was taken for {@link STALLED_MILLIS} (a subscription nobody reads
 * would otherwise cost every stop its whole bound).
 */
const drained = <A>(pubsub: PubSub.PubSub<A>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    let left = yield* PubSub.size(pubsub)
    let movedAt = start
    while (left > 0) {
      const now = yield* Clock.currentTimeMillis
      if (now - start >= DRAIN_MILLIS || now - movedAt >= STALLED_MILLIS) return
      yield* Effect.sleep(DRAIN_POLL_MILLIS)
      const size = yield* PubSub.size(pubsub)
      if (size < left) movedAt = yield* Clock.currentTimeMillis
      left = size
    }
  }).pipe(Effect.withClock(liveClock))

/**
 * A hub of the agent's own whose sliding `PubSub` is made on the first `subscribe` (a supervisor's too: a tree of
 * 1,000 agents beating every second that nobody subscribes to publishes into no buffer).
 */
export const makeLazy = <A = AgentEvent>(): OwnHub<A> => {
  let pubsub: PubSub.PubSub<A> | undefined
  let closed = false
  // Subscriptions open now (a pool's wait for a member subscribes for a moment; an admin API's event stream for as
  // long as a client reads it).
  let subscribers = 0
  const counted = Effect.acquireRelease(Effect.sync(() => subscribers++), () => Effect.sync(() => subscribers--))
  const get = Effect.suspend(() =>
    pubsub !== undefined
      ? Effect.succeed(pubsub)
      : Effect.flatMap(PubSub.sliding<A>(CAPACITY), (made) => {
        if (pubsub !== undefined) return Effect.succeed(pubsub) // made meanwhile by a concurrent subscribe
        pubsub = made
        // Subscribing after the agent was closed finds a hub shut down, as it did when the hub was made eagerly.
        return closed ? Effect.as(PubSub.shutdown(made), made) : Effect.succeed(made)
      })
  )
  // Decided when the publish runs, not when it is built: `onEvent` runs in between and may take a while, and a
  // subscriber that came meanwhile gets the event.
  const publishNow = (event: A): Effect.Effect<void> =>
    pubsub !== undefined && !closed ? Effect.asVoid(PubSub.publish(pubsub, event)) : Effect.void
  return {
    publish: (event) => Effect.suspend(() => publishNow(event)),
    publishAfter: (first, event) => Effect.flatMap(first, () => publishNow(event)),
    subscribe: Effect.flatMap(get, (made) => Effect.zipLeft(PubSub.subscribe(made), counted)),
    idle: () => subscribers === 0 || closed,
    shutdown: Effect.suspend(() => {
      closed = true
      return pubsub === undefined ? Effect.void : Effect.zipRight(drained(pubsub), PubSub.shutdown(pubsub))
    })
  }
}

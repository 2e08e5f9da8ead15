/**
 * Fibers started by events (an exit, a restart decision, a start) forked from one runtime captured when their
 * owner was made, never from the fiber that handled the previous event.
 *
 * A fiber inherits its parent's fiber refs, and some refs grow a generation at each fork: restarts started from
 * the fiber that handled the previous exit chained one generation per restart (about 4 KiB of heap per restart,
 * for ever), and a manual restart's span stayed reachable from every later incarnation. Forked from the owner's
 * runtime, every such fiber is a sibling of the others, whatever happened before it.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"

/**
 * Runs `effect` outside the current span: for fibers that outlive the operation that starts them.
 *
 * @internal
 */
export const withoutParentSpan = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.mapInputContext(
    effect as Effect.Effect<A, E, Exclude<R, Tracer.ParentSpan>>,
    (context: Context.Context<R>) =>
      Context.omit(Tracer.ParentSpan)(context) as Context.Context<Exclude<R, Tracer.ParentSpan>>
  ) as Effect.Effect<A, E, R>

/** @internal */
export type Forker = <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<Fiber.RuntimeFiber<A, E>>

/**
 * A forker whose fibers live in the current scope: closing it interrupts those still running; each is forgotten
 * when it ends.
 *
 * @internal
 */
export const make: Effect.Effect<Forker, never, Scope.Scope> = Effect.gen(function*() {
  const set = yield* FiberSet.make<unknown, unknown>()
  // Without the span of the operation that made the owner (`AgentSupervisor.make`, `Supervisor.startChild`): it
  // ended long ago, and would otherwise stay the parent of every fiber and log line for the owner's whole life.
  const run = yield* FiberSet.runtime(set)<never>().pipe(withoutParentSpan)
  // Interruptible: the runtime may have been captured in an uninterruptible region (a Layer being built).
  return <A, E>(effect: Effect.Effect<A, E>) =>
    Effect.sync(() => run(Effect.interruptible(effect)) as Fiber.RuntimeFiber<A, E>)
})

/** @internal */
export type Runner = <A, E>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>

/**
 * A runner of effects on behalf of callers, as the owner's own: each in a fiber of its own forked from the runtime
 * captured here (the owner's fiber refs: its log annotations and spans, log level and loggers, services), never
 * from the caller's, which the caller waits for. For an operation that starts what outlives it (a supervisor's
 * start of a child, a reload's new agent): the fibers of what it starts are forked from the runtime that start runs
 * in, and would otherwise carry the caller's fiber refs for their whole life (an admin request's annotations on
 * every log line of the agent it reloaded, and of each of its restarts).
 *
 * The caller's span, if any, is the parent of the effect's spans while it runs (the operation's trace shows what
 * it did); what it starts for longer forks its fibers without it (`make`, `withoutParentSpan`). Interrupting the
 * caller interrupts the effect and waits for it; the effect's fiber refs never flow back into the caller's (no
 * join). Interruptible, whatever region the runtime was captured in; nothing but the caller interrupts it.
 *
 * @internal
 */
export const makeRunner: Effect.Effect<Runner> = Effect.map(
  withoutParentSpan(Effect.runtime<never>()),
  (runtime) => {
    const runFork = Runtime.runFork(runtime)
    return <A, E>(effect: Effect.Effect<A, E>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(Effect.serviceOption(Tracer.ParentSpan), (span) => {
          // Its failure is the caller's to handle: the fiber ends with its exit as a value, so that the runtime does
          // not log it as an unhandled error ("Fiber terminated with an unhandled error", at Debug, for a 404)
          const fiber = runFork(
            Effect.exit(Effect.interruptible(Option.isSome(span) ? Effect.withParentSpan(effect, span.value) : effect))
          )
          return Effect.flatten(
            Effect.flatten(restore(Fiber.await(fiber)).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber))))
          )
        })
      )
  }
)

/**
 * A tree run as a Layer (`Supervisor.layer`): an escalation at its root ends the program the layer was provided
 * to, so that `NodeRuntime.runMain` exits non-zero and an outer manager (systemd, Kubernetes) restarts the service.
 *
 * A Layer cannot fail once it is built, and the program that uses it (the `program` of `Effect.provide(program,
 * layer)`, the `never` of `Layer.launch`) does not wait for the tree. So the layer remembers the fiber running that
 * program, its *provider*, and on escalation interrupts it: the provider unwinds and closes the layer's scope, whose
 * last finalizer ends with the `SupervisorIntensityError` as a defect. A defect, not a failure: a fiber being
 * interrupted strips the failures from its cause in every handler it unwinds through (`runMain`'s own error
 * report is one), leaving only the interruption, which `runMain` takes for a clean exit (code 0). A defect
 * survives them, and the exit code is 1. For the same reason `runMain` cannot report it (its report is skipped in
 * an interrupted fiber): this module logs the error itself, before interrupting.
 *
 * The provider is the fiber that builds the layer, unless that fiber is one of those `Layer.merge` builds layers
 * in, in parallel, and which end with the build. A FiberRef set while building goes up with the build: a parent
 * fiber joins the FiberRefs of the fibers it forked, and this FiberRef's `join` records the fiber doing the join
 * (`Fiber.getCurrentFiber`), the one that goes on to run the program. Public APIs only (Effect's own
 * `WorkerRunner` interrupts the fiber that built it the same way).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import { identity } from "effect/Function"
import { globalValue } from "effect/GlobalValue"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { ConfigError, SupervisorIntensityError } from "../../Errors.js"
import type * as Supervisor from "../../Supervisor.js"
import * as Forker from "../forker.js"
import * as Edge from "../schema.js"

/** What a root escalation does to the program the layer was provided to. */
export type OnEscalation = "fail" | "keep"

const LayerOptions = Schema.Struct({ onEscalation: Schema.optional(Schema.Literal("fail", "keep")) })

/** `onEscalation` as the user wrote it, decoded at the edge; `"fail"` by default. */
export const decodeOnEscalation = (input: unknown): Either.Either<OnEscalation, ConfigError> =>
  Either.map(
    Edge.decodeOptions(LayerOptions, { onEscalation: input }, { whole: "(layer options)", undefinedIsAbsent: true }),
    (options) => options.onEscalation ?? "fail"
  )

/** The fiber running the program the layer was provided to; mutable, since a parallel build hands it up. */
interface Provider {
  fiber: Fiber.RuntimeFiber<unknown, unknown>
}

/**
 * Set in the fiber that builds the layer. `join` runs only when a fiber joins one that changed it (the parallel
 * build of a `Layer.merge`, which nothing else changes), in the joining fiber: that fiber is the provider now.
 */
const providerRef = globalValue(
  Symbol.for("effect-agent-supervisor/Supervisor/provider"),
  () =>
    FiberRef.unsafeMake<Provider | undefined>(undefined, {
      fork: identity,
      join: (parent, child) => {
        const joining = Fiber.getCurrentFiber()
        if (child !== undefined && child !== parent && Option.isSome(joining)) child.fiber = joining.value
        return child
      }
    })
)

const currentFiber = Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((fiber) => Effect.succeed(fiber))

/**
 * Builds the root with `make` so that, with `onEscalation` `"fail"`, its escalation ends the layer's provider with
 * the `SupervisorIntensityError`; with `"keep"` the program goes on (every operation of the tree fails with that
 * error). Runs in the layer's scope.
 */
export const make = <E, R>(
  build: Effect.Effect<Supervisor.Supervisor, E, R>,
  onEscalation: OnEscalation
): Effect.Effect<Supervisor.Supervisor, E, R | Scope.Scope> =>
  onEscalation === "keep" ? build : Effect.gen(function*() {
    const provider: Provider = { fiber: yield* currentFiber }
    yield* Effect.locallyScoped(providerRef, provider)
    const escalated: { error: SupervisorIntensityError | undefined } = { error: undefined }
    // Added before the tree is made, so it runs after the tree's own finalizers: the tree is down, its last
    // writes are flushed, and then the scope ends with the error.
    yield* Effect.addFinalizer(() => escalated.error === undefined ? Effect.void : Effect.die(escalated.error))
    const root = yield* build
    const fork = yield* Forker.make
    yield* fork(Effect.catchAll(root.await, (error) =>
      Effect.gen(function*() {
        escalated.error = error
        const running = provider.fiber.unsafePoll() === null
        yield* Effect.logError(
          running
            ? "The root supervisor escalated: ending the program Supervisor.layer was provided to " +
              "(onEscalation \"fail\"; \"keep\" keeps it running)"
            : "The root supervisor escalated, and the program Supervisor.layer was provided to has ended " +
              "(a ManagedRuntime?): the tree stays down and each of its operations fails with this error",
          Cause.fail(error)
        )
        if (running) yield* Fiber.interruptAsFork(provider.fiber, yield* Effect.fiberId)
      })))
    return root
  })

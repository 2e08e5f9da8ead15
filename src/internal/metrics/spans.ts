/**
 * Request spans, made only when a tracer other than Effect's default one is installed (an OTLP exporter, say).
 *
 * Effect's default tracer sends spans nowhere, yet a span still costs a request about what the rest of its path in
 * the supervisor costs: the span object, a context with it as the parent, and an exit handler that ends it (an
 * uninterruptible region around the request). So a request asks its fiber which tracer it has, a field read, and
 * goes without a span under the default one (or another copy of `effect`'s default one). Its id is known only when the request table numbers it: the table
 * tells this module, which writes it on the request's span if the caller is in one made here.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as Tracer from "effect/Tracer"
import { unsafeCurrentFiber } from "../currentFiber.js"

/** Effect's default tracer, whose spans go nowhere. */
const defaultTracer: Tracer.Tracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

// Another copy of `effect` (an application on its CommonJS build, this package on its ES modules one) has a default
// tracer of its own: told apart from a real one by its source, once per tracer object. Without this, every request
// of such an application had a span, and cost 2.5 times as much CPU (measured).
const defaultSource = defaultTracer.span.toString()
const seen = new WeakMap<Tracer.Tracer, boolean>()

/** Whether spans made with `tracer` go somewhere. */
const traces = (tracer: Tracer.Tracer | undefined): boolean => {
  if (tracer === undefined || tracer === defaultTracer) return false
  let real = seen.get(tracer)
  if (real === undefined) {
    real = tracer.span.toString() !== defaultSource
    seen.set(tracer, real)
  }
  return real
}

/** The name of a request's span. @internal */
export const REQUEST_SPAN = "AgentSupervisor.handleEvent"

// The spans made here, so that a request's id goes on its own span and never on a caller's.
const requestSpans = new WeakSet<Tracer.Span>()

/** Whether spans made in `fiber` go somewhere: its tracer is not Effect's default one. @internal */
export const isTracing = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean => traces(fiber.currentTracer)

/**
 * Runs `request` in a span named {@link REQUEST_SPAN} with the attribute `agent`, when the fiber traces; as it is
 * otherwise. @internal
 */
export const traceRequest = <A, E>(agent: string, request: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.suspend(() =>
    traces(unsafeCurrentFiber()?.currentTracer)
      ? Effect.useSpan(
        REQUEST_SPAN,
        { attributes: { agent }, kind: "client", captureStackTrace: false },
        (span) => {
          requestSpans.add(span)
          return Effect.withParentSpan(request, span)
        }
      )
      : request
  )

/**
 * The request `caller` makes was numbered `id`: the attribute `request.id` of its span, if the caller runs in a
 * request span (the last id wins: a request refused by an exiting process goes to the next one under a new id).
 * A field read when the fiber does not trace. @internal
 */
export const requestNumbered = (caller: Fiber.RuntimeFiber<unknown, unknown>, id: string): void => {
  if (!traces(caller.currentTracer)) return
  const span = caller.currentSpan
  if (span !== undefined && span._tag === "Span" && requestSpans.has(span)) span.attribute("request.id", id)
}

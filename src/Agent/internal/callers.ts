/**
 * What each caller's fiber waits on, so that a caller that leaves before its answer (it was interrupted) takes its
 * request with it: one observer per fiber for the fiber's life, not one per request.
 *
 * A fiber waits on one request at a time (it is suspended in the request's `Effect.async` until the answer), so
 * one record per fiber says which. It is emptied when the request is settled; the fiber's observer, added at
 * its first request, tells the request it still holds when the fiber ends. A fiber that asks again while its
 * record still holds a request left that one without an answer (it was interrupted, caught it, and went on): the
 * old request is told then, not kept until its timeout.
 *
 * Before, each request added an observer to its caller's fiber and took it off again when settled: a closure per
 * request, and a copy of the fiber's observer array (Effect's `removeObserver` filters it). In process, at 256
 * callers in flight, the saving is about 0.2-0.4 µs of ~11 µs a request, near the noise of alternating rounds
 * (2026-12-01); the other gain is the behaviour above: a fiber that goes on after an interruption no longer keeps
 * its old request until the timeout.
 *
 * @internal
 */
import type * as Fiber from "effect/Fiber"

/** A request a caller waits on. @internal */
export interface Waiting {
  /** Told once, if its caller stops waiting for it without an answer (the fiber ended, or asked again). */
  readonly onCallerLeft: (waiting: Waiting) => void
}

/** A caller's fiber, as this module knows it: what it waits on now. @internal */
export interface Caller {
  current: Waiting | undefined
}

const callers = new WeakMap<Fiber.RuntimeFiber<unknown, unknown>, Caller>()

const leave = (caller: Caller): void => {
  const left = caller.current
  if (left === undefined) return
  caller.current = undefined
  left.onCallerLeft(left)
}

/**
 * `fiber` now waits on `waiting`; returns the fiber's record, to empty with {@link settled}. What it waited on before is
 * told that its caller left (see the module's comment). Call it once `waiting` can be settled: when the fiber has
 * already ended, `waiting` is told at once, before this returns (a fiber asks from inside itself, so only a caller
 * that hands over another fiber can meet that).
 *
 * @internal
 */
export const wait = (fiber: Fiber.RuntimeFiber<unknown, unknown>, waiting: Waiting): Caller => {
  const known = callers.get(fiber)
  if (known !== undefined) {
    leave(known)
    known.current = waiting
    // Its observer has run already: nobody else would tell it.
    if (fiber.unsafePoll() !== null) leave(known)
    return known
  }
  const caller: Caller = { current: waiting }
  callers.set(fiber, caller)
  // Called at once when the fiber has ended.
  fiber.addObserver(() => leave(caller))
  return caller
}

/** `waiting` was settled (answered, timed out, failed): its caller no longer waits on it. @internal */
export const settled = (caller: Caller, waiting: Waiting): void => {
  if (caller.current === waiting) caller.current = undefined
}

/** What `fiber` waits on now, if anything (tests). @internal */
export const waitingOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Waiting | undefined =>
  callers.get(fiber)?.current

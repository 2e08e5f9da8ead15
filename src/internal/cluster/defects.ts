/**
 * A defect crossing the cluster (in an agent's handler, or in transport) as our typed `AgentUnavailableError`
 * (`reason` "defect"): a handler's defect would otherwise rebuild the entity, and a client's would escape untyped.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { AgentUnavailableError } from "../../Errors.js"

/** The error for a defect of `cause` in a call to `agent`. */
const unavailable = (agent: string, cause: Cause.Cause<unknown>) =>
  new AgentUnavailableError({ agent, reason: "defect", detail: Cause.pretty(cause) })

/** An effect's defect as a typed failure (for `Effect.catchAllDefect`). */
export const defect = (agent: string) => (d: unknown): Effect.Effect<never, AgentUnavailableError> =>
  Effect.fail(unavailable(agent, Cause.die(d)))

/** A stream's defect as a typed failure, its failures and interruptions as they are (for `Stream.catchAllCause`). */
export const streamDefect =
  (agent: string) => <E>(cause: Cause.Cause<E>): Stream.Stream<never, E | AgentUnavailableError> =>
    Option.isSome(Cause.failureOption(cause)) || Cause.isInterruptedOnly(cause)
      ? Stream.failCause(cause)
      : Stream.fail(unavailable(agent, cause))

/**
 * Starting the agent under test: spawn it, then wait for its `ready` line, the first protocol message it must
 * write. Every check but the feature-gated ones starts its own agent this way; the `ready` check judges the line
 * itself (its timing, its version, its `features`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { PROTOCOL_VERSION } from "../../Protocol/Message.js"
import type * as Message from "../../Protocol/Message.js"
import { fail, show, type Verdict } from "./check.js"
import type { Settings } from "./options.js"
import * as Session from "./session.js"

/** A `ready` line, with the `features` protocol 1.1 adds (an array of names, when the agent announces any). */
export interface Ready {
  readonly message: Message.Ready & { readonly features?: unknown }
  readonly line: Session.Line
}

/** How the agent ended, for a summary. */
export const describeExit = (exit: Session.ExitInfo | undefined): string =>
  exit === undefined
    ? "still running"
    : exit.signal !== null
    ? `killed by ${exit.signal} at +${exit.at} ms`
    : `exited with code ${exit.code} at +${exit.at} ms`

/** Waits for the first protocol message, which must be `ready` with this protocol version. */
export const awaitReady = (session: Session.Session, settings: Settings): Effect.Effect<Ready, Verdict> =>
  Effect.gen(function*() {
    const first = yield* session.waitLine(
      (line) => line.message === undefined ? undefined : { message: line.message, line },
      settings.startupTimeout
    )
    if (Option.isNone(first)) {
      const exit = yield* session.ended
      return yield* fail(
        exit === undefined
          ? `no ready line within ${settings.startupTimeout} ms of the spawn`
          : `no ready line: the agent ${describeExit(exit)}`
      )
    }
    const { line, message } = first.value
    if (!("type" in message) || message.type !== "ready") {
      return yield* fail(`the first protocol message was not ready: ${show(line.text)}`)
    }
    if (message.protocol !== PROTOCOL_VERSION) {
      return yield* fail(`ready announces protocol ${show(message.protocol)}; this kit checks ${PROTOCOL_VERSION}`)
    }
    return { message, line }
  })

/** Spawns the agent and waits for `ready`; `onOpen` learns of the session first, for the transcript. */
export const start = (
  settings: Settings,
  onOpen: (session: Session.Session) => void
): Effect.Effect<Session.Session, Verdict, Scope.Scope> =>
  Effect.gen(function*() {
    const opened = yield* Session.open(settings)
    if (typeof opened === "string") return yield* fail(opened)
    onOpen(opened)
    yield* awaitReady(opened, settings)
    return opened
  })

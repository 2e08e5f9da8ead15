/**
 * The checks of an agent's life: it announces itself (`ready`), drains the work in flight on `shutdown` and exits 0
 * (`shutdown-drains`), and exits 0 when its stdin ends without `shutdown` (`exit-on-eof`: what saves an agent whose
 * supervisor was killed). `featuresOf` reads the protocol 1.1 features a `ready` announces, which decide whether
 * the feature checks (`stream.ts`, `checkpoint.ts`) run.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { answersTo, type Check, describe, fail, pass, show, shutdownLine, task } from "./check.js"
import { awaitReady, describeExit } from "./startup.js"

/** The `features` of a ready message: an array of strings, or none; anything else is not a list of features. */
export const featuresOf = (message: object): ReadonlyArray<string> | "malformed" => {
  const features = (message as { readonly features?: unknown }).features
  if (features === undefined) return []
  return Array.isArray(features) && features.every((f) => typeof f === "string") ? features : "malformed"
}

export const ready: Check = {
  name: "ready",
  description: `The first protocol message on stdout is {"type":"ready","protocol":1}, within startupTimeout of ` +
    "the spawn; a features field, if any, is an array of names.",
  run: ({ open, settings }) =>
    Effect.gen(function*() {
      const session = yield* open
      const { line, message } = yield* awaitReady(session, settings)
      const features = featuresOf(message)
      if (features === "malformed") {
        return yield* fail(
          `ready's features is ${show((message as { readonly features?: unknown }).features)}, not an array of names`
        )
      }
      const before = session.lines().filter((l) => l.at <= line.at && l.message === undefined).length
      return pass(
        `${line.text.length > 120 ? `${line.text.slice(0, 120)}...` : line.text} ${line.at} ms after the spawn` +
          (features.length > 0 ? `; features: ${features.join(", ")}` : ""),
        before > 0 ? [`${before} stdout line(s) before it were not protocol messages (see stdout-print)`] : []
      )
    })
}

/** How long the task in flight at shutdown sleeps. */
const DRAIN_MS = 500

export const shutdownDrains: Check = {
  name: "shutdown-drains",
  description: `After shutdown and the end of stdin, a ${DRAIN_MS} ms task in flight is still answered, then the ` +
    "agent exits with code 0 within exitTimeout.",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      session.send(task("drain-1", "sleep", { ms: DRAIN_MS, value: "drained" }))
      session.send(shutdownLine)
      session.closeStdin()
      const shutdownAt = session.now()
      const exit = yield* session.waitExit(DRAIN_MS + settings.exitTimeout)
      // What it wrote before exiting may still be in the pipe: read to its end (a child holding it: bounded).
      if (Option.isSome(exit)) yield* session.waitClosed(settings.exitTimeout)
      const answer = answersTo(session, "drain-1")[0]
      const response = answer?.message !== undefined && "status" in answer.message ? answer.message : undefined
      const answered = answer === undefined
        ? "the task in flight was not answered"
        : response?.status === "ok" && response.result === "drained"
        ? `the task in flight was answered ${answer.at - shutdownAt} ms after shutdown`
        : `the task in flight was answered with ${response === undefined ? show(answer.text) : describe(response)}`
      if (Option.isNone(exit)) {
        return yield* fail(`the agent was still running ${DRAIN_MS + settings.exitTimeout} ms after shutdown`, [
          answered
        ])
      }
      const { code, signal } = exit.value
      if (answer === undefined || response?.status !== "ok" || response.result !== "drained") {
        return yield* fail(`${answered}; the agent ${describeExit(exit.value)}`)
      }
      if (code !== 0 || signal !== null) return yield* fail(`${answered}, but the agent ${describeExit(exit.value)}`)
      return pass(`${answered}; exit code 0 ${exit.value.at - shutdownAt} ms after shutdown`)
    })
}

export const exitOnEof: Check = {
  name: "exit-on-eof",
  description: "With nothing in flight, the end of stdin without a shutdown message makes the agent exit with " +
    "code 0 within exitTimeout.",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      session.closeStdin()
      const closedAt = session.now()
      const exit = yield* session.waitExit(settings.exitTimeout)
      if (Option.isNone(exit)) {
        return yield* fail(`the agent was still running ${settings.exitTimeout} ms after its stdin ended`)
      }
      const { code, signal } = exit.value
      if (code !== 0 || signal !== null) {
        return yield* fail(`after its stdin ended, the agent ${describeExit(exit.value)}`)
      }
      return pass(`exit code 0 ${exit.value.at - closedAt} ms after stdin ended`)
    })
}

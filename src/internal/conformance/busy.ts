/**
 * The checks of an agent that is busy: a ping is answered while a task runs (`ping-while-busy`: the supervisor's
 * heartbeat must not mistake a long task for a hung agent), and a `cancel` stops the task it names (`cancel`).
 *
 * **What `cancel` may answer.** Protocol v1 says a cancelled request gets nothing ("stop working on it, send
 * nothing": `Protocol/Message.ts`), and both adapters send nothing; but a response may already be on the wire when
 * the cancel arrives (the adapters' own comment: "the response crossed the cancel on the wire"), and the supervisor
 * drops a response to an id it has forgotten as a late one (DESIGN.md). So the kit accepts no answer, or one answer
 * (ok or error) within `cancelTimeout` of the cancel; an answer later than that, or two, fail: the work went on.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { HealthReport } from "../../Protocol/Message.js"
import {
  answers,
  answersTo,
  cancelLine,
  type Check,
  closeGracefully,
  describe,
  fail,
  pass,
  pingLine,
  show,
  task,
  waitAnswer
} from "./check.js"
import type { Session } from "./session.js"

/** How long the task in flight sleeps while the ping is sent. */
const BUSY_MS = 2_000
/** The task the cancel check cancels: long enough that only a cancel ends it within the check. */
const CANCELLED_MS = 10_000
/** Between two `wasCancelled` questions while the agent has not yet seen to its cancel. */
const POLL_MS = 50

const isHealth = Schema.is(HealthReport)

export const pingWhileBusy: Check = {
  name: "ping-while-busy",
  timed: true,
  description: `A ping sent while a ${BUSY_MS} ms task runs is answered within pingTimeout and before that task, ` +
    "with the health report {uptime_seconds, total_requests, memory_mb, cpu_percent}.",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      const taskSentAt = session.now()
      session.send(task("busy-1", "sleep", { ms: BUSY_MS, value: "slept" }))
      session.send(pingLine("ping-1"))
      const pingedAt = session.now()
      // Waited for past the bound, to the task's end and a little more: the evidence says when it came, if it did.
      const pong = yield* waitAnswer(session, "ping-1", BUSY_MS + settings.pingTimeout)
      const busy = answersTo(session, "busy-1")[0]
      if (Option.isNone(pong)) {
        return yield* fail(`the ping was not answered within ${BUSY_MS + settings.pingTimeout} ms`, [
          busy === undefined ? "the task was not answered either" : `the task was answered at +${busy.at} ms`
        ])
      }
      const { line, response } = pong.value
      const latency = line.at - pingedAt
      // By position, not time: two answers read in one chunk share their time, but not their order.
      const lines = session.lines()
      if (busy !== undefined && lines.indexOf(busy) < lines.indexOf(line)) {
        const taskLatency = busy.at - taskSentAt
        // A task answered before its sleep could end did not run it (an agent that answers every payload as it
        // came): the ping waited behind nothing.
        return yield* fail(
          taskLatency < BUSY_MS
            ? `the ${BUSY_MS} ms task was answered ${taskLatency} ms after it was sent, before its sleep could end: ` +
              `the agent does not run the contract's "sleep" operation, so this check cannot tell whether a ping ` +
              `is answered while a task runs (the ping was answered after it, ${latency} ms after it was sent)`
            : `the ping was answered ${latency} ms after it was sent, after the task it waited behind`
        )
      }
      if (latency > settings.pingTimeout) {
        return yield* fail(`the ping was answered ${latency} ms after it was sent (bound: ${settings.pingTimeout} ms)`)
      }
      if (response.status !== "ok" || !isHealth(response.result)) {
        return yield* fail(
          `the ping was answered with ${show(response.status === "ok" ? response.result : response)}, ` +
            "not {health: {uptime_seconds, total_requests, memory_mb, cpu_percent}} (numbers)"
        )
      }
      return pass(`answered ${latency} ms after the ping, while the ${BUSY_MS} ms task ran`, [
        `health: ${show(response.result.health)}`
      ])
    })
}

/** Asks `wasCancelled` until the agent says true or `cancelTimeout` has passed since the cancel. */
const askWasCancelled = (session: Session, cancelledAt: number, within: number) =>
  Effect.gen(function*() {
    for (let n = 1;; n++) {
      const id = `was-cancelled-${n}`
      session.send(task(id, "wasCancelled"))
      const answer = yield* waitAnswer(session, id, Math.max(0, cancelledAt + within - session.now()))
      if (Option.isNone(answer)) {
        return yield* fail(`"wasCancelled" was not answered within ${within} ms of the cancel`)
      }
      const { response } = answer.value
      if (response.status === "ok" && response.result === true) return { asked: n, line: answer.value.line }
      if (response.status !== "ok" || response.result !== false) {
        return yield* fail(`"wasCancelled" was answered with ${describe(response)}, not true or false`)
      }
      if (session.now() + POLL_MS > cancelledAt + within) {
        return yield* fail(`"wasCancelled" still answered false ${within} ms after the cancel (asked ${n} times)`)
      }
      yield* Effect.sleep(POLL_MS)
    }
  })

export const cancel: Check = {
  name: "cancel",
  timed: true,
  description: `A cancel cuts a ${CANCELLED_MS} ms task short (the agent's "wasCancelled" turns true within ` +
    "cancelTimeout), and the task is answered at most once, within cancelTimeout of the cancel, or not at all.",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      session.send(task("cancel-me", "sleep", { ms: CANCELLED_MS, value: "not cancelled" }))
      // A ping answered after the task was read tells that the task has begun (a cancel that overtook its start
      // would find nothing to cut short); an agent that cannot answer now is given pingTimeout, then cancelled.
      session.send(pingLine("ping-1"))
      const pong = yield* waitAnswer(session, "ping-1", settings.pingTimeout)
      if (Option.isNone(pong)) {
        session.note(`no answer to the ping within ${settings.pingTimeout} ms: cancelling anyway`)
      }
      session.send(cancelLine("cancel-me"))
      const cancelledAt = session.now()
      const { asked, line } = yield* askWasCancelled(session, cancelledAt, settings.cancelTimeout)
      const confirmed = `"wasCancelled" answered true ${line.at - cancelledAt} ms after the cancel` +
        (asked > 1 ? ` (asked ${asked} times)` : "")
      // Whatever the cancelled task still writes is seen by the time the agent has exited.
      const gone = yield* closeGracefully(session, settings.exitTimeout)
      const watched = gone
        ? "until the agent exited after shutdown"
        : `for ${settings.exitTimeout} ms after shutdown (the agent had not exited)`
      const late = answersTo(session, "cancel-me")
      if (late.length > 1) return yield* fail(`the cancelled task was answered ${late.length} times`, [confirmed])
      if (late.length === 1) {
        const after = late[0].at - cancelledAt
        const response = answers("cancel-me")(late[0])!.response
        if (after < 0) return yield* fail(`the ${CANCELLED_MS} ms task was answered before the cancel`, [confirmed])
        if (after > settings.cancelTimeout) {
          return yield* fail(
            `the cancelled task was answered ${after} ms after the cancel (bound: ${settings.cancelTimeout} ms)`,
            [confirmed, `answer: ${describe(response)}`]
          )
        }
        return pass(`${confirmed}; the task was answered ${after} ms after the cancel (${describe(response)})`)
      }
      return pass(`${confirmed}; the task was not answered (watched ${watched})`)
    })
}

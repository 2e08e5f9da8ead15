/**
 * The check of protocol 1.1's `checkpoint` feature, where `ready` announces it (docs/PROTOCOL.md): the agent sends
 * an agent checkpoint, `{"type":"checkpoint","data":D}` with no id, when its code makes one; and a fresh agent that
 * is sent `{"type":"restore","data":D}` right after its `ready`, as the supervisor sends a new incarnation the last
 * checkpoint, gives its code D (and, with no restore, nothing).
 *
 * Two agents, one after the other: the first answers `restored` with null (nothing was restored) and makes the
 * checkpoint, then is killed, as a crash would end it; the second is sent what the first one sent, restore and
 * first task in one write (the supervisor writes them back to back), and answers `restored` with it.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import {
  type Check,
  type Context,
  deepEqual,
  describe,
  differenceLines,
  exitedNote,
  expectResult,
  fail,
  pass,
  restoreLine,
  show,
  task,
  waitAnswer
} from "./check.js"
import type { Line, Session } from "./session.js"

/** What the agent is asked to checkpoint. */
const DATA = { n: 7 }

/** The agent checkpoint a line carries: `{"type":"checkpoint","data"}`, with its id when it has one. */
const checkpointOf = (line: Line): { readonly id: string | undefined; readonly data: unknown } | undefined =>
  line.message !== undefined && "type" in line.message && line.message.type === "checkpoint"
    ? { id: line.message.id, data: line.message.data }
    : undefined

/**
 * Asks `restored` (as `id`, in one write after the lines `before`) and requires `expected`; `situation` opens the
 * summary of a failure.
 */
const expectRestored = (
  session: Session,
  id: string,
  expected: unknown,
  within: number,
  situation: string,
  before = ""
) =>
  Effect.gen(function*() {
    session.send(before + task(id, "restored"))
    const sentAt = session.now()
    const answer = yield* waitAnswer(session, id, within)
    if (Option.isNone(answer)) {
      return yield* fail(
        `${situation}: no answer to "restored" within ${within} ms` +
          (yield* exitedNote(session))
      )
    }
    const { line, response } = answer.value
    if (response.status !== "ok" || !deepEqual(response.result, expected)) {
      return yield* fail(
        `${situation}: "restored" was answered ${
          response.status === "ok" ? show(response.result) : describe(response)
        }` +
          `, not ${show(expected)}`,
        response.status === "ok" ? differenceLines(expected, response.result, "result") : []
      )
    }
    return line.at - sentAt
  })

/** The first agent: `restored` is null, then the checkpoint op; succeeds with where its checkpoint came. */
const makeCheckpoint = (session: Session, settings: Context["settings"]) =>
  Effect.gen(function*() {
    yield* expectRestored(session, "restored-1", null, settings.requestTimeout, "with no restore sent")
    session.send(task("checkpoint-1", "checkpoint", { data: DATA }))
    const { line: response } = yield* expectResult(session, "checkpoint-1", "checkpointed", settings.requestTimeout)
    // Before the response as a rule; an agent that sends its checkpoints apart from its tasks may be a little late.
    const found = yield* session.waitLine(
      (line) => {
        const checkpoint = checkpointOf(line)
        return checkpoint === undefined ? undefined : { line, ...checkpoint }
      },
      Math.max(0, response.at + settings.pingTimeout - session.now())
    )
    if (Option.isNone(found)) {
      return yield* fail(
        `"checkpoint-1" was answered "checkpointed", but no checkpoint line came by ${settings.pingTimeout} ms ` +
          "(pingTimeout) after",
        [`expected {"type":"checkpoint","data":${show(DATA)}}`]
      )
    }
    const { data, id, line } = found.value
    if (id !== undefined) {
      return yield* fail(
        `the checkpoint carries the id ${show(id)}: it is that request's checkpoint, not the agent's`,
        [`expected {"type":"checkpoint","data":${show(DATA)}} (no id), got ${show(line.text)}`]
      )
    }
    if (!deepEqual(data, DATA)) {
      return yield* fail(`the agent checkpointed ${show(data)}, not the data it was given`, [
        `expected ${show(DATA)}`,
        ...differenceLines(DATA, data, "data")
      ])
    }
    const lines = session.lines()
    const when = lines.indexOf(line) < lines.indexOf(response)
      ? "before the response"
      : `${line.at - response.at} ms after the response`
    return { data, when }
  })

/** The second agent: restore and the first task in one write, right after its ready, as the supervisor sends. */
const restore = (session: Session, data: unknown, within: number) =>
  expectRestored(
    session,
    "restored-2",
    data,
    within,
    `a fresh agent sent {"type":"restore","data":${show(data)}} right after its ready`,
    restoreLine(data)
  )

export const checkpoint: Check = {
  name: "checkpoint",
  feature: "checkpoint",
  description: `Protocol 1.1, where ready announces "checkpoint": the agent's checkpoint goes out as ` +
    `{"type":"checkpoint","data"} (no id); a fresh agent sent {"type":"restore","data"} right after its ready ` +
    "gives its code that data (and null with no restore).",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      // The first agent in a scope of its own: killed (SIGKILL to its group, as a crash) before the second starts.
      const made = yield* Effect.scoped(Effect.flatMap(start, (session) => makeCheckpoint(session, settings)))
      const millis = yield* restore(yield* start, made.data, settings.requestTimeout)
      return pass(
        `"restored" was null, then the checkpoint ${show(made.data)} came ${made.when}; a fresh agent sent it ` +
          `in a restore answered "restored" with it ${millis} ms later`,
        [
          `agent 1: {"op":"restored"} with no restore (null expected), then {"op":"checkpoint","data":${show(DATA)}}` +
          ` (a {"type":"checkpoint","data":${show(DATA)}} line expected); then killed, as a crash would end it`,
          `agent 2: {"type":"restore","data":<what agent 1 sent>} and {"op":"restored"} in one write right after ` +
          "its ready (that data expected)"
        ]
      )
    })
}

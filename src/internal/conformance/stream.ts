/**
 * The check of protocol 1.1's `stream` feature, where `ready` announces it (docs/PROTOCOL.md): a task sent with
 * `"stream":true` gets its chunks under its id, in order, then its response and nothing after; a `cancel` ends a
 * stream (nothing of it comes after the answer to a ping sent right behind the cancel: the agent reads its stdin in
 * order, so by then it has seen the cancel, and what it queued before is out); and the same task sent without
 * `"stream":true`, as a v1 caller sends it, gets no chunk, one response.
 *
 * All in one agent, one part after the other, and judged once the agent has exited after `shutdown` (or
 * `exitTimeout` has passed): a line that comes late is seen wherever it comes.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import {
  answers,
  answersTo,
  cancelLine,
  type Check,
  chunkOf,
  closeGracefully,
  deepEqual,
  describe,
  expectResult,
  fail,
  pass,
  pingLine,
  show,
  streamTask,
  task,
  waitAnswer
} from "./check.js"
import type { Line, Session } from "./session.js"

/** The chunks of the first stream: `{"i":0}` to `{"i":49}`. */
const CHUNKS = 50
/** The pieces of the stream sent without `"stream":true`. */
const COLLECTED = 5
/** The stream that is cancelled: a chunk every `PACE_MS`, long enough (5 s) that only the cancel ends it. */
const PACE_MS = 10
const PACED_CHUNKS = 500
/** How many of its chunks come before the cancel is sent. */
const BEFORE_CANCEL = 3
/** After the barrier, a sleep of this many paces: a stream that went on would show as many chunks meanwhile. */
const WATCH_PACES = 20

const chunksOf = (session: Session, id: string): ReadonlyArray<Line> =>
  session.lines().filter((line) => chunkOf(id)(line) !== undefined)

/** The lines for `id` (chunks and answers) that come after `line` on stdout. */
const linesAfter = (session: Session, id: string, line: Line): ReadonlyArray<Line> => {
  const lines = session.lines()
  return lines.slice(lines.indexOf(line) + 1).filter((l) =>
    chunkOf(id)(l) !== undefined || answers(id)(l) !== undefined
  )
}

/** A result as a summary names it: a list by its length. */
const shape = (value: unknown): string => Array.isArray(value) ? `a list of ${value.length}` : show(value, 60)

/** Part 1: 50 chunks in order, then the response "done". */
const inOrder = (session: Session, within: number) =>
  Effect.gen(function*() {
    session.send(streamTask("stream-1", "stream", { n: CHUNKS, value: "done" }))
    const sentAt = session.now()
    const answer = yield* waitAnswer(session, "stream-1", within)
    if (Option.isNone(answer)) {
      return yield* fail(
        `no answer to the stream "stream-1" within ${within} ms (${chunksOf(session, "stream-1").length} of ` +
          `${CHUNKS} chunks came)` + ((yield* session.ended) !== undefined ? "; the agent exited" : "")
      )
    }
    const { line, response } = answer.value
    const lines = session.lines()
    const chunks = lines.slice(0, lines.indexOf(line)).flatMap((l) => {
      const chunk = chunkOf("stream-1")(l)
      return chunk === undefined ? [] : [chunk.data]
    })
    const misplaced = chunks.findIndex((data, i) => !deepEqual(data, { i }))
    const problems = [
      ...(chunks.length === CHUNKS ? [] : [`${chunks.length} chunk(s) before the response, not ${CHUNKS}`]),
      ...(misplaced === -1 ? [] : [`chunk ${misplaced} was ${show(chunks[misplaced])}, not {"i":${misplaced}}`]),
      ...(response.status === "ok" && response.result === "done"
        ? []
        : [`the response was ${describe(response)}, not ok with "done"`])
    ]
    if (problems.length > 0) {
      return yield* fail(`the stream "stream-1": ${problems.join("; ")}`, [
        `sent {"op":"stream","n":${CHUNKS},"value":"done"} with "stream":true: expected the chunks {"i":0} to ` +
        `{"i":${CHUNKS - 1}} in order, then ok with "done"`
      ])
    }
    return { line, millis: line.at - sentAt }
  })

/** Part 2: the same operation sent without `"stream":true`: no chunk, an ok response. */
const collected = (session: Session, within: number) =>
  Effect.gen(function*() {
    session.send(task("collect-1", "stream", { n: COLLECTED, value: "done" }))
    const answer = yield* waitAnswer(session, "collect-1", within)
    if (Option.isNone(answer)) {
      return yield* fail(`no answer to "collect-1" (sent without "stream") within ${within} ms`)
    }
    const chunks = chunksOf(session, "collect-1").length
    if (chunks > 0) {
      return yield* fail(`the task sent without "stream":true got ${chunks} chunk(s): a v1 caller cannot take them`)
    }
    const { response } = answer.value
    if (response.status !== "ok") {
      return yield* fail(`the task sent without "stream":true was answered with ${describe(response)}`)
    }
    return response.result
  })

/** Part 3: a paced stream, cancelled after a few chunks; a ping behind the cancel, then a sleep to watch. */
const cancelled = (session: Session, within: number) =>
  Effect.gen(function*() {
    session.send(streamTask("cancel-me", "stream", { n: PACED_CHUNKS, ms: PACE_MS, value: "not cancelled" }))
    const begun = yield* session.waitUntil(
      () => chunksOf(session, "cancel-me").length >= BEFORE_CANCEL || answersTo(session, "cancel-me").length > 0,
      within
    )
    const before = chunksOf(session, "cancel-me").length
    if (!begun) {
      return yield* fail(`${before} chunk(s) of a stream paced ${PACE_MS} ms within ${within} ms, not ${BEFORE_CANCEL}`)
    }
    if (answersTo(session, "cancel-me").length > 0) {
      return yield* fail(
        `the stream of ${PACED_CHUNKS} chunks paced ${PACE_MS} ms was answered after ${before} chunk(s), ` +
          "before it was cancelled"
      )
    }
    session.send(cancelLine("cancel-me"))
    const cancelledAt = session.now()
    session.send(pingLine("barrier-1"))
    const pong = yield* waitAnswer(session, "barrier-1", within)
    if (Option.isNone(pong)) {
      return yield* fail(`the ping sent right behind the cancel was not answered within ${within} ms`)
    }
    // A stream that went on would show a chunk every PACE_MS: watch that many paces, on the agent's own clock.
    session.send(task("watch-1", "sleep", { ms: WATCH_PACES * PACE_MS, value: "watched" }))
    yield* expectResult(session, "watch-1", "watched", within)
    return { before, cancelledAt, barrier: pong.value.line }
  })

export const stream: Check = {
  name: "stream",
  feature: "stream",
  description: `Protocol 1.1, where ready announces "stream": a task sent with "stream":true gets ${CHUNKS} ` +
    "chunks under its id, in order, then its response and nothing after; a cancelled stream sends nothing after " +
    `a ping behind the cancel is answered; a task sent without "stream":true gets no chunk, one response.`,
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      const within = settings.requestTimeout
      const first = yield* inOrder(session, within)
      const result = yield* collected(session, within)
      const cut = yield* cancelled(session, within)
      // Whatever the agent still writes is seen by the time it has exited.
      const gone = yield* closeGracefully(session, settings.exitTimeout)
      const watched = gone
        ? "until the agent exited after shutdown"
        : `for ${settings.exitTimeout} ms after shutdown (the agent had not exited)`
      const afterFirst = linesAfter(session, "stream-1", first.line)
      if (afterFirst.length > 0) {
        return yield* fail(`${afterFirst.length} line(s) for "stream-1" came after its response`, [
          ...afterFirst.slice(0, 5).map((l) => `+${l.at} ms: ${show(l.text, 120)}`)
        ])
      }
      const collectAnswers = answersTo(session, "collect-1").length
      const collectChunks = chunksOf(session, "collect-1").length
      if (collectAnswers !== 1 || collectChunks > 0) {
        return yield* fail(
          `the task sent without "stream":true got ${collectChunks} chunk(s) and ${collectAnswers} answers, ` +
            "not one answer alone"
        )
      }
      const late = linesAfter(session, "cancel-me", cut.barrier)
      const between = chunksOf(session, "cancel-me").length - cut.before -
        late.filter((l) => chunkOf("cancel-me")(l) !== undefined).length
      const rule = `the cancel at +${cut.cancelledAt} ms, the ping behind it answered at +${cut.barrier.at} ms: ` +
        "nothing of the cancelled stream may come after that answer"
      if (late.length > 0) {
        const last = late[late.length - 1]
        return yield* fail(
          `${late.length} line(s) of the cancelled stream came after the ping behind the cancel was answered, the ` +
            `last ${last.at - cut.cancelledAt} ms after the cancel: the stream went on`,
          [rule, ...late.slice(0, 5).map((l) => `+${l.at} ms: ${show(l.text, 120)}`)]
        )
      }
      const crossed = answersTo(session, "cancel-me")
      if (crossed.length > 1) return yield* fail(`the cancelled stream was answered ${crossed.length} times`, [rule])
      const answered = crossed.length === 1
        ? `; its answer crossed the cancel (${describe(answers("cancel-me")(crossed[0])!.response)})`
        : ""
      return pass(
        `${CHUNKS} chunks in order, then ok "done", in ${first.millis} ms; without "stream":true no chunk and ` +
          `${shape(result)}; cancelled after ${cut.before} chunks, ${between} more before the ping behind the ` +
          `cancel was answered ${cut.barrier.at - cut.cancelledAt} ms later, none after${answered}`,
        [rule, `watched ${watched}`]
      )
    })
}

/**
 * The check of protocol 1.2's `publish` feature, where `ready` announces it (docs/PROTOCOL.md): a publish made by
 * the agent's code goes out as `{"type":"publish","topic","payload"}`, the payload exactly as given; one the
 * adapter must refuse (an empty topic) is an error in the code that made it, sends nothing, and leaves the agent
 * serving.
 *
 * One agent: a publish of a payload holding every JSON type (answered `"published"`, its line before the response
 * or within `pingTimeout` after it), then a publish to the empty topic (an error response, no line), then an `echo`
 * (still answered). A publish has no reply and no id, so the kit judges what the agent wrote, not what came back.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import {
  type Check,
  deepEqual,
  describe,
  differenceLines,
  exitedNote,
  expectResult,
  fail,
  pass,
  show,
  task,
  waitAnswer
} from "./check.js"
import type { Line } from "./session.js"

/** The topic of the publish that must go out. */
const TOPIC = "conformance.invoices"

/** What it publishes: every JSON type, text beyond ASCII, nesting. */
const PAYLOAD = {
  invoice: 42,
  amount: -1234.5,
  paid: false,
  sent: true,
  note: null,
  text: "naïve café ☃ 🎉 \"quoted\" back\\slash",
  pages: [1, "two", [3], { four: 4 }],
  nested: { deep: { deeper: [] } }
}

/**
 * The publish a line carries, whatever its shape: `{"type":"publish",...}` as JSON. Read from the text, not from the
 * kit's parse, which takes no publish with an empty topic for a protocol message.
 */
const publishOf = (line: Line): { readonly line: Line; readonly fields: Record<string, unknown> } | undefined => {
  if (line.truncated || !line.text.includes("publish")) return undefined
  try {
    const json: unknown = JSON.parse(line.text)
    return typeof json === "object" && json !== null && !Array.isArray(json) &&
        (json as Record<string, unknown>).type === "publish"
      ? { line, fields: json as Record<string, unknown> }
      : undefined
  } catch {
    return undefined
  }
}

const publishLines = (lines: ReadonlyArray<Line>) =>
  lines.flatMap((line) => {
    const found = publishOf(line)
    return found === undefined ? [] : [found]
  })

export const publish: Check = {
  name: "publish",
  feature: "publish",
  description: `Protocol 1.2, where ready announces "publish": a publish goes out as ` +
    `{"type":"publish","topic","payload"}, the payload exactly as given; one to an empty topic is an error ` +
    "response, sends nothing, and the agent goes on serving.",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      const expectedLine = `{"type":"publish","topic":${show(TOPIC)},"payload":${show(PAYLOAD, 400)}}`

      // 1. A publish: its line before the response as a rule; an agent that writes it apart may be a little late.
      session.send(task("publish-1", "publish", { topic: TOPIC, payload: PAYLOAD }))
      const { line: response } = yield* expectResult(session, "publish-1", "published", settings.requestTimeout)
      const found = yield* session.waitLine(publishOf, Math.max(0, response.at + settings.pingTimeout - session.now()))
      if (Option.isNone(found)) {
        return yield* fail(
          `"publish-1" was answered "published", but no publish line came by ${settings.pingTimeout} ms ` +
            "(pingTimeout) after",
          [`expected ${expectedLine}`]
        )
      }
      const { fields, line } = found.value
      if (fields.topic !== TOPIC || !deepEqual(fields.payload, PAYLOAD)) {
        const what = fields.topic !== TOPIC
          ? `the topic ${show(fields.topic)}`
          : "payload" in fields
          ? `another payload than it was given`
          : `no "payload" member`
        return yield* fail(`the agent published with ${what}`, [
          `expected ${expectedLine}`,
          `got      ${line.text}`,
          ...(fields.topic === TOPIC && "payload" in fields ? differenceLines(PAYLOAD, fields.payload, "payload") : [])
        ])
      }
      const lines = session.lines()
      const when = lines.indexOf(line) < lines.indexOf(response)
        ? "before the response"
        : `${line.at - response.at} ms after the response`

      // 2. A publish the adapter must refuse: an error response, and nothing sent.
      session.send(task("publish-2", "publish", { topic: "", payload: 1 }))
      const refused = yield* waitAnswer(session, "publish-2", settings.requestTimeout)
      if (Option.isNone(refused)) {
        return yield* fail(
          `no answer to a publish to the empty topic ("publish-2") within ${settings.requestTimeout} ms` +
            (yield* exitedNote(session))
        )
      }
      const refusal = refused.value.response
      if (refusal.status === "ok") {
        return yield* fail(
          `a publish to the empty topic was answered ${describe(refusal)}: the adapter must refuse it, an error ` +
            "in the code that called publish (Python ValueError, Node TypeError, Go ErrEmptyTopic)"
        )
      }

      // 3. Still serving; and by its answer, whatever the refused publish wrote is out (stdout is written in order).
      session.send(task("echo-after", "echo", { value: "still serving" }))
      yield* expectResult(session, "echo-after", "still serving", settings.requestTimeout)
      const all = publishLines(session.lines())
      const empty = all.filter(({ fields }) => fields.topic === "")
      if (empty.length > 0) {
        return yield* fail(
          `the publish to the empty topic was refused (${describe(refusal)}), but its line went out all the same`,
          empty.map(({ line }) => `+${line.at} ms: ${line.text}`)
        )
      }
      if (all.length !== 1) {
        return yield* fail(`the agent wrote ${all.length} publish lines for the one publish asked for`, [
          ...all.map(({ line }) => `+${line.at} ms: ${line.text}`)
        ])
      }
      return pass(
        `the publish to ${show(TOPIC)} came ${when}, its payload as given; a publish to the empty topic was ` +
          `refused with ${describe(refusal)}, nothing sent, and the agent answered the next task`,
        [
          `{"op":"publish","topic":${show(TOPIC)},"payload":<every JSON type>} (${expectedLine} expected)`,
          `{"op":"publish","topic":"","payload":1} (an error response and no line expected), then an echo`
        ]
      )
    })
}

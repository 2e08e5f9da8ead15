/**
 * The checks of requests and their answers: a task's value comes back (`echo`), many in flight at once are each
 * answered under their own id (`concurrent-requests`), a failure has the error shape (`error-response`), and
 * payloads that break naive framing survive: 4 MiB each way (`large-payload`), text of every kind of character
 * (`multibyte-text`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { answers, answersTo, type Check, deepEqual, expectResult, fail, pass, show, task } from "./check.js"
import type { Session } from "./session.js"

/** A value with every JSON type in it. */
const ECHO_VALUE = { text: "conformance", number: 42.5, list: [1, "two", null, true, false], nested: { ok: true } }

/** What to run instead, where the agent does not seem to implement the contract. */
const WRITTEN_TO_THE_CONTRACT = "Run the kit on an agent written to the contract to see it pass: the package's " +
  "adapters/python/conformance_agent.py is one (python3 adapters/python/supervisor_adapter.py " +
  "adapters/python/conformance_agent.py), and so is the Go adapter's cmd/echo-agent"

/** Whether `result` holds nothing of the echo's value: no object with any of its keys (a near miss shows its diff). */
const echoedNothing = (result: unknown): boolean =>
  typeof result !== "object" || result === null || !Object.keys(ECHO_VALUE).some((key) => key in result)

export const echo: Check = {
  name: "echo",
  description: "A task's payload reaches the agent as sent and its result comes back as the agent returned it.",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      const payload = { op: "echo", value: ECHO_VALUE }
      session.send(task("echo-1", "echo", { value: ECHO_VALUE }))
      const sentAt = session.now()
      // An agent that answers every payload as it came speaks the protocol but not the kit's contract: every check
      // that needs an operation then fails, and this one says why.
      const { line } = yield* expectResult(
        session,
        "echo-1",
        ECHO_VALUE,
        settings.requestTimeout,
        deepEqual,
        (result) =>
          deepEqual(result, payload)
            ? {
              summary: `"echo-1" was answered with its whole payload: the agent echoes what it gets`,
              diagnosis: `the agent answers every payload as it came: it does not implement the conformance ` +
                `contract (docs/CONFORMANCE.md: "op": "echo" answers with "value"), so every check that needs the ` +
                "contract's operations fails"
            }
            : echoedNothing(result)
            // An answer with nothing of the value: most likely an ordinary agent, doing its own work with the payload
            ? {
              summary: `"echo-1" was answered with ${show(result, 80)}, not the "value" it sent`,
              diagnosis: `the agent does not answer "op": "echo" with its "value": it does not seem to implement the ` +
                `conformance contract (docs/CONFORMANCE.md), which the checks that need its operations require; an ` +
                `ordinary agent fails them. ${WRITTEN_TO_THE_CONTRACT}`
            }
            : undefined,
        // An ordinary agent that reads its own fields from a payload fails on the kit's (a KeyError, say)
        `the agent answers the kit's "op": "echo" task with an error: it does not seem to implement the conformance ` +
          `contract (docs/CONFORMANCE.md), which the checks that need its operations require; an ordinary agent ` +
          `fails them. ${WRITTEN_TO_THE_CONTRACT}`
      )
      return pass(`answered with the value sent, ${line.at - sentAt} ms after the request`)
    })
}

/** How many requests are in flight at once: the supervisor's default `maxInFlight`. */
const CONCURRENT = 64

export const concurrentRequests: Check = {
  name: "concurrent-requests",
  description: `${CONCURRENT} requests written at once are each answered once, under their own id, with their own ` +
    "value (a short sleep each, longest first, so that an agent that runs them at once answers out of order).",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      const nonce = Math.random().toString(36).slice(2, 8)
      const requests = Array.from({ length: CONCURRENT }, (_, i) => ({
        id: `concurrent-${String(i).padStart(2, "0")}`,
        value: `value-${i}-${nonce}`,
        ms: (3 - (i % 4)) * 10
      }))
      for (const r of requests) session.send(task(r.id, "sleep", { ms: r.ms, value: r.value }))
      const sentAt = session.now()
      const byId = new Map(requests.map((r) => [r.id, r]))
      const responses = () =>
        session.lines().flatMap((line) =>
          line.message !== undefined && "status" in line.message
            ? [{ line, response: line.message }]
            : []
        )
      const answered = () => new Set(responses().map((r) => r.response.id))
      const complete = yield* session.waitUntil(
        () => requests.every((r) => answered().has(r.id)),
        settings.requestTimeout
      )
      const all = responses()
      const problems: Array<string> = []
      for (const r of requests) {
        const mine = all.filter((a) => a.response.id === r.id)
        if (mine.length === 0) problems.push(`"${r.id}" was not answered`)
        if (mine.length > 1) problems.push(`"${r.id}" was answered ${mine.length} times`)
        const first = mine[0]?.response
        if (first !== undefined && (first.status !== "ok" || first.result !== r.value)) {
          problems.push(`"${r.id}" sent ${show(r.value)}, got ${show(first.status === "ok" ? first.result : first)}`)
        }
      }
      for (const a of all) {
        if (!byId.has(a.response.id)) problems.push(`an answer to an id never sent: ${show(a.response.id)}`)
      }
      const lastAt = Math.max(...all.map((a) => a.line.at))
      if (problems.length > 0 || !complete) {
        const answeredCount = requests.filter((r) => answered().has(r.id)).length
        return yield* fail(
          `${answeredCount} of ${CONCURRENT} answered within ${settings.requestTimeout} ms; ` +
            `${problems.length} problem(s)`,
          problems.slice(0, 20)
        )
      }
      const order = all.map((a) => a.response.id)
      const moved = order.filter((id, i) => id !== requests[i].id).length
      return pass(
        `all ${CONCURRENT} answered once with their own value within ${lastAt - sentAt} ms; ` +
          (moved === 0 ? "in the order sent" : `${moved} out of the order sent (run at once)`)
      )
    })
}

/** The message the `fail` operation is given, to be found in the error response. */
const FAILURE_MESSAGE = "conformance: a deliberate failure"

/** The JSON object of a line that carries `id`, whether or not it is a well-formed response. */
const rawAnswer = (id: string) => (line: { readonly text: string }): Record<string, unknown> | undefined => {
  try {
    const value: unknown = JSON.parse(line.text)
    return typeof value === "object" && value !== null && (value as Record<string, unknown>).id === id
      ? value as Record<string, unknown>
      : undefined
  } catch {
    return undefined
  }
}

export const errorResponse: Check = {
  name: "error-response",
  description: `A task that fails is answered {"id","status":"error","error":{"message","type","stack"}}: the ` +
    "message as raised, a non-empty type, and a stack that is a string where there is one (it is optional).",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      session.send(task("fail-1", "fail", { message: FAILURE_MESSAGE }))
      const sentAt = session.now()
      const found = yield* session.waitLine(rawAnswer("fail-1"), settings.requestTimeout)
      if (Option.isNone(found)) return yield* fail(`no answer to "fail-1" within ${settings.requestTimeout} ms`)
      const answer = found.value
      const error = answer.error as Record<string, unknown> | undefined
      const problems = [
        ...(answer.status === "error" ? [] : [`status is ${show(answer.status)}, not "error"`]),
        ...(typeof error === "object" && error !== null ? [] : [`error is ${show(error)}, not an object`]),
        ...(error?.message === FAILURE_MESSAGE ? [] : [`error.message is ${show(error?.message)}`]),
        ...(typeof error?.type === "string" && error.type !== "" ? [] : [`error.type is ${show(error?.type)}`]),
        ...(error?.stack === undefined || typeof error.stack === "string"
          ? []
          : [`error.stack is ${show(error.stack)}, not a string`])
      ]
      if (problems.length > 0) {
        return yield* fail(problems.join("; "), [`expected message ${show(FAILURE_MESSAGE)}`])
      }
      const at = session.lines().find((line) => rawAnswer("fail-1")(line) !== undefined)?.at ?? sentAt
      const stack = typeof error?.stack === "string" ? "a stack" : "no stack (it is optional)"
      return pass(
        `error ${show(error?.type)} with the message raised and ${stack}, ${at - sentAt} ms after the request`
      )
    })
}

/** Where two strings first differ, for the evidence of a corrupted echo. */
const firstCharDifference = (expected: string, got: string): string => {
  let i = 0
  while (i < expected.length && i < got.length && expected[i] === got[i]) i++
  const around = (s: string) => show(s.slice(Math.max(0, i - 8), i + 8))
  return `first difference at index ${i}: expected ${around(expected)}, got ${around(got)}`
}

/** Echoes `value` (a string) and compares what comes back, character for character. */
const echoString = (session: Session, id: string, value: string, within: number) =>
  Effect.gen(function*() {
    session.send(task(id, "echo", { value }))
    const sentAt = session.now()
    const result = yield* expectResult(session, id, value, within, (a, b) => a === b).pipe(
      Effect.catchAll((verdict) => {
        const answer = answersTo(session, id)[0]
        const response = answer === undefined ? undefined : answers(id)(answer)?.response
        const got = response?.status === "ok" ? response.result : undefined
        return fail(
          verdict.summary,
          typeof got === "string"
            ? [`sent ${value.length} characters, got ${got.length}`, firstCharDifference(value, got)]
            : verdict.details
        )
      })
    )
    return result.line.at - sentAt
  })

/**
 * 4 MiB of text that shows where it was cut or shuffled: 4,096 blocks of 1 KiB, each opening with its number. Made
 * once (a few milliseconds; a string built piece by piece would hold the event loop for a fifth of a second, and
 * every agent's events with it).
 */
const LARGE_CHARS = 4 * 1024 * 1024
let large: string | undefined
const largeValue = (): string => {
  if (large !== undefined) return large
  const filler = "abcdefghijklmnopqrstuvwxyz0123456789-".repeat(28)
  const blocks: Array<string> = []
  for (let i = 0; i < LARGE_CHARS / 1024; i++) {
    const head = `${i.toString(36).padStart(6, "0")}|`
    blocks.push(head + filler.slice(0, 1024 - head.length))
  }
  large = blocks.join("")
  return large
}

export const largePayload: Check = {
  name: "large-payload",
  description: "A 4 MiB string goes to the agent in one task line and comes back whole in one response line.",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      const value = largeValue()
      const millis = yield* echoString(session, "large-1", value, settings.requestTimeout)
      return pass(`${LARGE_CHARS} characters sent and received intact in ${millis} ms`)
    })
}

/**
 * Characters that trip agents up: CJK, Hangul, an emoji sequence with a zero-width joiner, characters outside the
 * Basic Multilingual Plane, combining marks, U+2028 and U+2029 (line separators to a Unicode-aware line splitter,
 * and sent raw: JSON does not escape them), and the escapes JSON does have. Repeated past 64 KiB so that the
 * pipe's reads split characters apart somewhere.
 */
export const MULTIBYTE_SAMPLE =
  "漢字とかな交じり文 한국어 👩‍💻🚀𝄞 e\u0301 n\u0303 a\u0308 [\u2028] [\u2029] \"quoted\" back\\slash tab\t newline\n ∑Ω·"
const MULTIBYTE_REPEAT = 3000

export const multibyteText: Check = {
  name: "multibyte-text",
  description: "Text with multi-byte UTF-8 characters, combining marks, U+2028/U+2029 and JSON escapes comes back " +
    "unchanged, also when reads split its characters.",
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      const value = MULTIBYTE_SAMPLE.repeat(MULTIBYTE_REPEAT)
      const millis = yield* echoString(session, "text-1", value, settings.requestTimeout)
      const bytes = Buffer.byteLength(value)
      return pass(`${value.length} UTF-16 units (${bytes} bytes of UTF-8) came back unchanged in ${millis} ms`)
    })
}

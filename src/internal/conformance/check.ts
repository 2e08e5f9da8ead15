/**
 * What a check is and the helpers every check uses: a verdict (pass or fail with a one-line summary and the
 * details behind it; a failed verdict short-circuits through the error channel), the context a check runs in
 * (the settings, a way to start the agent and wait for its `ready`), and the requests of the conformance contract.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Message from "../../Protocol/Message.js"
import { encodeTask } from "../../Protocol/Message.js"
import type { CheckName, Settings } from "./options.js"
import type { Line, Session } from "./session.js"

/** The outcome of a check, before the kit adds the transcript and the time. */
export interface Verdict {
  readonly status: "pass" | "fail" | "skipped"
  /** One line: why, with the timing that decided it. */
  readonly summary: string
  /** What the check saw beyond the transcript (values compared, counts, which rule it applied). */
  readonly details: ReadonlyArray<string>
  /** A finding that explains other checks' failures too (the report's `diagnoses`). */
  readonly diagnosis?: string
}

export const pass = (summary: string, details: ReadonlyArray<string> = []): Verdict => ({
  status: "pass",
  summary,
  details
})

/** A failed verdict, as a failure of the check's effect: the check stops there. */
export const fail = (
  summary: string,
  details: ReadonlyArray<string> = [],
  diagnosis?: string
): Effect.Effect<never, Verdict> =>
  Effect.fail(
    diagnosis === undefined ? { status: "fail", summary, details } : { status: "fail", summary, details, diagnosis }
  )

export const skipped = (summary: string): Verdict => ({ status: "skipped", summary, details: [] })

/** What a check runs with. */
export interface Context {
  readonly settings: Settings
  /** Spawns the agent; a spawn failure fails the check. Nothing is waited for. */
  readonly open: Effect.Effect<Session, Verdict, Scope.Scope>
  /** Spawns the agent and waits for its `ready`; a spawn failure or no `ready` in time fails the check. */
  readonly start: Effect.Effect<Session, Verdict, Scope.Scope>
  /** The `features` the agent announced in the `ready` check's run: none when that run saw no `ready`. */
  readonly features: Effect.Effect<Option.Option<ReadonlyArray<string>>>
}

/** One check of the battery. */
export interface Check {
  readonly name: CheckName
  /** What passing it proves, in one sentence. */
  readonly description: string
  /** The feature the agent must announce in `ready` (`features`) for the check to run: protocol 1.1 and later. */
  readonly feature?: string | undefined
  /**
   * It measures how soon the agent answers: it runs after the other checks, so that their agents' start-up (CPU
   * bound, a dozen at once) does not slow the agent it times.
   */
  readonly timed?: boolean | undefined
  readonly run: (context: Context) => Effect.Effect<Verdict, Verdict, Scope.Scope>
}

// ---- the contract's requests ----

/** A task line of the conformance contract: `payload` is `{ op, ...fields }`. */
export const task = (id: string, op: string, fields: Record<string, unknown> = {}): string =>
  encodeTask(id, { op, ...fields })

/** The same, sent as a stream (`"stream":true`, protocol 1.1): the agent may answer with chunks first. */
export const streamTask = (id: string, op: string, fields: Record<string, unknown> = {}): string =>
  `${task(id, op, fields).slice(0, -2)},"stream":true}\n`

/** What the supervisor sends right after a new incarnation's `ready`: the last agent checkpoint (protocol 1.1). */
export const restoreLine = (data: unknown): string => `${JSON.stringify({ type: "restore", data })}\n`

export const pingLine = (id: string): string => `{"id":${JSON.stringify(id)},"type":"ping"}\n`
export const cancelLine = (id: string): string => `{"id":${JSON.stringify(id)},"type":"cancel"}\n`
export const shutdownLine = `{"type":"shutdown"}\n`

export type Response = Message.ResponseOk | Message.ResponseError

/** The response a line carries when it answers `id`. */
export const answers = (id: string) => (line: Line): { readonly response: Response; readonly line: Line } | undefined =>
  line.message !== undefined && "status" in line.message && line.message.id === id
    ? { response: line.message, line }
    : undefined

/** The chunk a line carries for `id` (protocol 1.1's `{"id","type":"chunk","data"}`). */
export const chunkOf = (id: string) => (line: Line): Message.Chunk | undefined =>
  line.message !== undefined && "type" in line.message && line.message.type === "chunk" && line.message.id === id
    ? line.message
    : undefined

/** Every line that answers `id`. */
export const answersTo = (session: Session, id: string): ReadonlyArray<Line> =>
  session.lines().filter((line) => answers(id)(line) !== undefined)

/** Waits for the answer to `id`, `within` ms at most. */
export const waitAnswer = (session: Session, id: string, within: number) => session.waitLine(answers(id), within)

/** A value as a detail line shows it: JSON, abbreviated. */
export const show = (value: unknown, max = 160): string => {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length} chars)`
}

/** A response as a summary names it. */
export const describe = (response: Response): string =>
  response.status === "ok"
    ? `ok with ${show(response.result, 80)}`
    : `error ${show(response.error.message, 80)} (${response.error.type})`

/** Waits for the answer to `id` and requires it to be ok with `expected`; fails the check otherwise. */
export const expectResult = (
  session: Session,
  id: string,
  expected: unknown,
  within: number,
  equal: (a: unknown, b: unknown) => boolean = deepEqual,
  /** Why an unexpected result came, when it says more than "another value" (see `echo`). */
  explain: (result: unknown) => { readonly summary: string; readonly diagnosis?: string } | undefined = () => undefined,
  /** What an error answer means, when it says more than the error (see `echo`). */
  explainError?: string
): Effect.Effect<{ readonly line: Line }, Verdict> =>
  Effect.gen(function*() {
    const answer = yield* waitAnswer(session, id, within)
    if (Option.isNone(answer)) {
      return yield* fail(`no answer to "${id}" within ${within} ms` + (yield* exitedNote(session)))
    }
    const { line, response } = answer.value
    if (response.status !== "ok") {
      return yield* fail(`"${id}" was answered with ${describe(response)}`, [], explainError)
    }
    if (!equal(response.result, expected)) {
      const why = explain(response.result)
      return yield* fail(why?.summary ?? `"${id}" was answered with another value than it sent`, [
        `expected ${show(expected)}`,
        `got      ${show(response.result)}`,
        // (a known mistake's summary says it better)
        ...(why === undefined ? differenceLines(expected, response.result, "result") : [])
      ], why?.diagnosis)
    }
    return { line }
  })

/**
 * `" (the agent exited)"` when it did, else nothing: the end of the summary of a wait for an answer that did not
 * come (see `Session.ended`).
 *
 * @internal
 */
export const exitedNote = (session: Session): Effect.Effect<string> =>
  Effect.map(session.ended, (exit) => exit !== undefined ? " (the agent exited)" : "")

/** Structural equality of JSON values. */
export const deepEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const keysA = Object.keys(a)
  const keysB = Object.keys(b)
  if (keysA.length !== keysB.length) return false
  return keysA.every((key) =>
    Object.prototype.hasOwnProperty.call(b, key) &&
    deepEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])
  )
}

/** `n` items, in words. */
const itemsOf = (n: number): string => `${n} item${n === 1 ? "" : "s"}`

/** A member's step in a path: `.name` for an identifier, `["other key"]` for any other key. */
const memberStep = (key: string): string => /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`

/**
 * Where `got` first departs from `expected` (JSON values), as the path from `root` and what each holds there:
 * `payload.pages[3].four: expected 4, got "4"`, `payload.note: expected null, got no such member`,
 * `payload.pages: expected 4 items, got 3`; `undefined` when they are deeply equal ({@link deepEqual}). Members are
 * visited in `expected`'s order, then those only `got` has; items in order. For the evidence of a check that
 * compares structured values, where showing both whole leaves the reader to find the difference.
 *
 * @internal
 */
export const firstDifference = (expected: unknown, got: unknown, root: string): string | undefined => {
  if (deepEqual(expected, got)) return undefined
  const bothObjects = typeof expected === "object" && typeof got === "object" && expected !== null && got !== null
  if (!bothObjects || Array.isArray(expected) !== Array.isArray(got)) {
    return `${root}: expected ${show(expected, 80)}, got ${show(got, 80)}`
  }
  if (Array.isArray(expected) && Array.isArray(got)) {
    for (let i = 0; i < Math.min(expected.length, got.length); i++) {
      const found = firstDifference(expected[i], got[i], `${root}[${i}]`)
      if (found !== undefined) return found
    }
    return `${root}: expected ${itemsOf(expected.length)}, got ${got.length}`
  }
  const want = expected as Record<string, unknown>
  const have = got as Record<string, unknown>
  const has = (record: Record<string, unknown>, key: string) => Object.prototype.hasOwnProperty.call(record, key)
  for (const key of Object.keys(want)) {
    const path = `${root}${memberStep(key)}`
    if (!has(have, key)) return `${path}: expected ${show(want[key], 80)}, got no such member`
    const found = firstDifference(want[key], have[key], path)
    if (found !== undefined) return found
  }
  const extra = Object.keys(have).find((key) => !has(want, key))!
  return `${root}${memberStep(extra)}: expected no such member, got ${show(have[extra], 80)}`
}

/**
 * The evidence line naming where a structured value departs from the one expected (see {@link firstDifference}):
 * none when either is not an object or an array (the summary, which shows both, says it all) or they are equal.
 *
 * @internal
 */
export const differenceLines = (expected: unknown, got: unknown, root: string): Array<string> => {
  if (typeof expected !== "object" || expected === null || typeof got !== "object" || got === null) return []
  const where = firstDifference(expected, got, root)
  return where === undefined ? [] : [`first difference at ${where}`]
}

/** Ends a session the way the supervisor does (shutdown, then EOF) and waits, bounded, for the agent to be gone. */
export const closeGracefully = (session: Session, within: number): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    session.send(shutdownLine)
    session.closeStdin()
    return session.waitClosed(within)
  })

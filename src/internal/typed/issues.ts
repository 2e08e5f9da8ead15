/**
 * A failed encode or decode as the facts of an `AgentSchemaError`: every problem Effect's `ArrayFormatter` finds,
 * with its path, kept short. A response can be as long as `maxMessageBytes` (16 MiB), and Effect's message for a
 * value of the wrong type shows the whole value: the error keeps the first few problems, each cut to a bound.
 *
 * @internal
 */
import * as ParseResult from "effect/ParseResult"

/** How many problems the error keeps (it counts them all). */
export const MAX_ISSUES = 10

/** How long one problem's message may be, in UTF-16 code units, before it is cut. */
export const MAX_MESSAGE_LENGTH = 240

/** One problem: where in the value, and what is wrong there. */
export interface Issue {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
}

/** `text` cut to `max` code units (never inside a surrogate pair), saying how much was left out. */
export const truncate = (text: string, max: number = MAX_MESSAGE_LENGTH): string => {
  if (text.length <= max) return text
  const end = text.charCodeAt(max - 1) >= 0xd800 && text.charCodeAt(max - 1) <= 0xdbff ? max - 1 : max
  return `${text.slice(0, end)}... (${text.length - end} more characters)`
}

/** The problems of a parse error, the first {@link MAX_ISSUES} of them bounded, and how many there were. */
export const issuesOf = (
  error: ParseResult.ParseError
): { readonly issues: ReadonlyArray<Issue>; readonly issueCount: number } => {
  const all = ParseResult.ArrayFormatter.formatErrorSync(error)
  return {
    issues: all.slice(0, MAX_ISSUES).map((issue) => ({
      path: issue.path.map((key) => typeof key === "number" ? key : truncate(String(key), 80)),
      message: truncate(issue.message)
    })),
    issueCount: all.length
  }
}

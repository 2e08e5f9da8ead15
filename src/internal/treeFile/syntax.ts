/**
 * From text to a plain value: YAML through the `yaml` package (YAML 1.2, keys unique, one document), JSON through
 * `JSON.parse`. A syntax error is a problem naming the line and column where the parser stopped, never a throw.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Yaml from "yaml"
import type * as Edge from "../schema.js"
import { messageOf } from "../standalone/messageOf.js"

/** The formats a tree file may be written in. */
export type Format = "yaml" | "json"

/** Where `offset` is in `text`, 1-based, as editors count. */
const lineAndColumn = (text: string, offset: number): { readonly line: number; readonly column: number } => {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)))
  const lines = before.split("\n")
  return { line: lines.length, column: lines[lines.length - 1].length + 1 }
}

const at = (source: string, line: number, column: number) => `${source}:${line}:${column}`

// Loaded by the first YAML file, not with the package: most programs never read one (about 60 ms of start-up).
let loading: Promise<typeof Yaml> | undefined

const loadYaml = (source: string) =>
  Effect.tryPromise({
    try: () => (loading ??= import("yaml")),
    catch: (cause): Edge.Problem => {
      loading = undefined
      return {
        field: source,
        rule: `cannot be read: the yaml package did not load (${String(cause)}); reinstall effect-agent-supervisor`
      }
    }
  })

const yaml = (lib: typeof Yaml, text: string, source: string): Either.Either<unknown, Edge.Problem> => {
  const lineCounter = new lib.LineCounter()
  const document = lib.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const error = document.errors[0]
  if (error !== undefined) {
    const { col, line } = lineCounter.linePos(error.pos[0])
    return Either.left({ field: at(source, line, col), rule: `YAML syntax error: ${error.message}` })
  }
  try {
    return Either.right(document.toJS({ maxAliasCount: 100 }))
  } catch (cause) {
    // An alias to an anchor not yet defined, or too many aliases (a "billion laughs" document).
    return Either.left({ field: source, rule: `YAML error: ${messageOf(cause)}` })
  }
}

/** Where V8 says a JSON error is: `at position N`, the end of the text, or `undefined` when it does not say. */
const reported = (message: string, length: number): number | undefined => {
  const position = /at position (\d+)/.exec(message)
  return position !== null ? Number(position[1]) : /end of JSON input/.test(message) ? length : undefined
}

/**
 * Where a JSON error is that V8 reports without a position ("Unexpected token"): the shortest prefix of the text
 * that fails before its own end ends just after it (a shorter prefix only runs out of text).
 */
const locate = (text: string): number => {
  const failsInside = (length: number): boolean => {
    try {
      JSON.parse(text.slice(0, length))
      return false
    } catch (cause) {
      const at = reported(messageOf(cause), length)
      return at === undefined || at < length
    }
  }
  let low = 0
  let high = text.length
  while (low < high) {
    const middle = (low + high) >> 1
    if (failsInside(middle)) high = middle
    else low = middle + 1
  }
  return Math.max(0, low - 1)
}

const json = (text: string, source: string): Either.Either<unknown, Edge.Problem> => {
  try {
    return Either.right(JSON.parse(text))
  } catch (cause) {
    const message = messageOf(cause)
    const offset = reported(message, text.length) ?? locate(text)
    // V8 quotes the whole text in some messages: the location says where.
    const what = message.replace(/ in JSON at position \d+.*$/s, "").replace(/, .*is not valid JSON$/s, "")
    const { column, line } = lineAndColumn(text, offset)
    return Either.left({ field: at(source, line, column), rule: `JSON syntax error: ${what}` })
  }
}

/**
 * Parses `text` as `format`. `source` names the text in a syntax error's location (`tree.yaml:3:7`). A byte order
 * mark is ignored.
 */
export const parse = (text: string, format: Format, source: string): Effect.Effect<unknown, Edge.Problem> => {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  return format === "yaml"
    ? Effect.flatMap(loadYaml(source), (lib) => yaml(lib, body, source))
    : json(body, source)
}

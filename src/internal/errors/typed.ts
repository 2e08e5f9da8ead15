/**
 * The text of `AgentSchemaError`: a typed agent's request that its `Schema` could not encode (it was not sent), or
 * a response that its `Schema` could not decode. One line for one problem, a list for several, each problem with
 * the path of its value (`["items"][2]["words"]`) and Effect's own description of it.
 *
 * Plain fields in, strings out (and the schema of those fields): this module knows nothing of the error classes
 * (`Errors.ts` imports it, never the other way round).
 *
 * @internal
 */
import * as Schema from "effect/Schema"

/**
 * One problem: where in the value (keys and positions from its root) and what is wrong there.
 *
 * @internal
 */
export const issue = Schema.Struct({
  path: Schema.Array(Schema.Union(Schema.String, Schema.Number)),
  message: Schema.String
})

/**
 * The fields of `Errors.AgentSchemaError`, by their type first: a named type keeps each field's comment in the
 * published declarations (an inferred one is printed without them).
 *
 * @internal
 */
export type SchemaErrorFields = {
  /** The agent's name; for a call through a tree, the child's id. */
  readonly agent: typeof Schema.String
  /** For a call through a tree: the supervisor's path (`"root/workers"`). */
  readonly supervisor: Schema.optional<typeof Schema.String>
  /** What did not match: the `request` (so it was not sent), the agent's `response`, or a `chunk` of its stream. */
  readonly direction: Schema.Literal<["request", "response", "chunk"]>
  /** The first problems found (at most 10), each message cut to a few hundred characters. */
  readonly issues: Schema.Array$<typeof issue>
  /** How many problems were found, `issues` included. */
  readonly issueCount: typeof Schema.Number
}

/**
 * The fields of `Errors.AgentSchemaError`.
 *
 * @internal
 */
export const schemaErrorFields: SchemaErrorFields = {
  agent: Schema.String,
  supervisor: Schema.optional(Schema.String),
  direction: Schema.Literal("request", "response", "chunk"),
  issues: Schema.Array(issue),
  issueCount: Schema.Number
}

/**
 * The facts of a schema mismatch (the fields of `Errors.AgentSchemaError`).
 *
 * @internal
 */
export interface SchemaFacts extends Schema.Struct.Type<typeof schemaErrorFields> {}

/**
 * A path as Effect's formatters write it: `["items"][2]["words"]` (nothing for the value itself).
 *
 * @internal
 */
export const formatPath = (path: ReadonlyArray<string | number>): string =>
  path.map((key) => `[${typeof key === "number" ? key : JSON.stringify(key)}]`).join("")

const describe = (issue: SchemaFacts["issues"][number]): string =>
  issue.path.length === 0 ? issue.message : `${formatPath(issue.path)}: ${issue.message}`

/**
 * The message of an `AgentSchemaError`: `Agent "summarizer": response does not match: ["words"]: Expected number,
 * actual "two"`, or every problem on a line of its own.
 *
 * @internal
 */
export const schemaMessage = (e: SchemaFacts): string => {
  const who = e.supervisor === undefined ? `Agent "${e.agent}"` : `Agent "${e.agent}" (child of "${e.supervisor}")`
  const what = e.direction === "request"
    ? "request does not match its schema, so it was not sent"
    : e.direction === "chunk"
    ? "a chunk of its stream does not match"
    : "response does not match"
  const more = e.issueCount > e.issues.length ? [`and ${e.issueCount - e.issues.length} more`] : []
  return e.issues.length === 1 && more.length === 0
    ? `${who}: ${what}: ${describe(e.issues[0])}`
    : `${who}: ${what} (${e.issueCount} problems):\n` +
      [...e.issues.map(describe), ...more].map((line) => `  ${line}`).join("\n")
}

/**
 * What to do about an `AgentSchemaError`.
 *
 * @internal
 */
export const schemaRemediation = (e: SchemaFacts): string =>
  e.direction === "request"
    ? "Send a value the request schema encodes: fix the value, or the schema. Its type may allow what the schema " +
      "rejects (a refinement, a transformation that cannot encode it), or it was cast past its type (`as`, `any`, " +
      "JSON read at run time): decode such a value with the schema first."
    : "Make the agent's callback return (or stream) what the response (or chunk) schema describes, or fix the " +
      "schema. The reply is " +
      "JSON: describe its encoded side (a date arrives as a string, so `Schema.Date`, not `Schema.DateFromSelf`)."

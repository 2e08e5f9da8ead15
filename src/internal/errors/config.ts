/**
 * The text of `ConfigError`: one line for one problem (as it always was), a list for several, each problem with
 * the path of its field (`children[1].config.requestTimeout`), the rule it breaks and the value given.
 *
 * Plain fields in, strings out (and the schema of those fields): this module knows nothing of the error classes
 * (`Errors.ts` imports it, never the other way round).
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import { atMost } from "../atMost.js"

/**
 * The fields of one problem of a configuration: the path of the field, the rule it breaks, the value given.
 *
 * @internal
 */
export const problemFields = { field: Schema.String, rule: Schema.String, value: Schema.optional(Schema.String) }

/**
 * One problem of a configuration (an entry of `Errors.ConfigError`'s `problems`).
 *
 * @internal
 */
export interface Problem extends Schema.Struct.Type<typeof problemFields> {}

// The path bare: a key that is no plain name is in it quoted already (`env["A.B"]`, see `schema.ts`'s `pathOf`).
const describe = (p: Problem): string => `${p.field}: ${p.rule}` + (p.value !== undefined ? ` (got ${p.value})` : "")

/**
 * The message of a `ConfigError`: `Invalid configuration at field: rule (got value)`, or every problem on a
 * line of its own.
 *
 * @internal
 */
export const configMessage = (problems: ReadonlyArray<Problem>): string =>
  problems.length <= 1
    ? `Invalid configuration at ${describe(problems[0])}`
    : `Invalid configuration: ${problems.length} problems\n` + atMost(
      problems.map((p) => `  at ${describe(p)}`),
      LISTED_PROBLEMS,
      (count) => `  and ${count} more (every one is in the error's \`problems\`)`
    ).join("\n")

/** How many problems a `ConfigError`'s message and remediation name; all are in its `problems`. */
const LISTED_PROBLEMS = 20

/**
 * What to do about a `ConfigError`: fix each field named. A rule says what its field must be or is
 * (`must be a number`, `is missing from the supervisor's context: provide ...`), so one problem's is the field and
 * its rule as a sentence.
 *
 * @internal
 */
export const configRemediation = (problems: ReadonlyArray<Problem>): string =>
  problems.length <= 1
    ? `${problems[0].field} ${problems[0].rule}${/[.?!]$/.test(problems[0].rule) ? "" : "."}`
    : `Fix each of the ${problems.length} settings listed: ` +
      `${atMost(problems.map((p) => p.field), LISTED_PROBLEMS, (count) => `and ${count} more`).join(", ")}.`

/**
 * What a `ConfigError` is made from: its first problem, and the list of all of them when there are several.
 *
 * @internal
 */
export interface ConfigErrorProps extends Problem {
  readonly problems?: ReadonlyArray<Problem> | undefined
}

/**
 * The props with `problems` filled in: the list given, or the one problem the props describe.
 *
 * @internal
 */
export const withProblems = (props: ConfigErrorProps): Problem & { readonly problems: ReadonlyArray<Problem> } => {
  const first: Problem = {
    field: props.field,
    rule: props.rule,
    ...(props.value !== undefined ? { value: props.value } : {})
  }
  return { ...first, problems: props.problems ?? [first] }
}

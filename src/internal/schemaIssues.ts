/**
 * A failed decode's issues as users read them: where a value is none of what a field takes, one issue that lists
 * what it takes (`must be "standard", "fast" or "test", or an object of settings`), not one per member of the
 * field's union in the schema's words (`Expected "standard", actual 5`, `Expected { readonly ... }`,
 * `Expected undefined`). What a field takes is read from the schema's own AST (the literals, the structs and
 * records, the `undefined` of an optional field), never from the text of a message.
 *
 * @internal
 */
import * as ParseResult from "effect/ParseResult"
import * as AST from "effect/SchemaAST"

/** A composite issue's inner issues, one or more. */
const innerOf = (issue: ParseResult.Composite): ReadonlyArray<ParseResult.ParseIssue> =>
  Array.isArray(issue.issues) ? issue.issues : [issue.issues as ParseResult.ParseIssue]

/**
 * Whether a failed member of a union took the value for its own (the value had its shape) and failed inside it: at
 * a property or element (a `Pointer`), at a refinement's predicate, or in a transformation of a value it decoded.
 * A member that failed on the value's kind itself (a `Type`: not that literal, not an object) did not.
 */
const tookTheValue = (issue: ParseResult.ParseIssue): boolean => {
  switch (issue._tag) {
    case "Pointer":
      return true
    case "Composite":
      return innerOf(issue).some(tookTheValue)
    case "Refinement":
      return issue.kind === "Predicate" || tookTheValue(issue.issue)
    case "Transformation":
      return issue.kind !== "Encoded" || tookTheValue(issue.issue)
    default:
      return false
  }
}

/** A failed literal member whose literal is of the value's own kind (both strings, say). */
const isLiteralOfItsKind = (issue: ParseResult.ParseIssue): boolean =>
  issue._tag === "Type" && AST.isLiteral(issue.ast) && typeof issue.ast.literal === typeof issue.actual

/** The `undefined` member of an optional field's union, failed: never what a user meant to give. */
const isUndefinedMember = (issue: ParseResult.ParseIssue): boolean =>
  issue._tag === "Type" && AST.isUndefinedKeyword(issue.ast)

/**
 * `issue` with each union's failures narrowed to the members that could have been meant: those that took the value
 * when any did (an object of settings that failed inside is not also "not one of the literals"), and never the
 * `undefined` of an optional field beside another member. Serves a tree file's problems too (`treeFile/issues.ts`).
 *
 * @internal
 */
export const narrow = (issue: ParseResult.ParseIssue): ParseResult.ParseIssue => {
  switch (issue._tag) {
    case "Composite": {
      const all = innerOf(issue).map(narrow)
      let kept = all
      if (AST.isUnion(issue.ast)) {
        const took = all.filter(tookTheValue)
        // A literal of the value's own kind stays: the value may be a typo of it (`brutal_kill`, beside a duration)
        kept = took.length > 0
          ? all.filter((member) => took.includes(member) || isLiteralOfItsKind(member))
          : all.filter((member) => !isUndefinedMember(member))
        if (kept.length === 0) kept = all
      }
      return new ParseResult.Composite(
        issue.ast,
        issue.actual,
        kept as unknown as readonly [ParseResult.ParseIssue, ...Array<ParseResult.ParseIssue>],
        issue.output
      )
    }
    default:
      return mapWrapped(issue, narrow)
  }
}

/**
 * `issue` with `f` applied to the one issue it wraps (a `Pointer`'s, a `Refinement`'s, a `Transformation`'s); any
 * other as it is. For rewrites of an issue's tree, which handle a `Composite` themselves.
 *
 * @internal
 */
export const mapWrapped = (
  issue: ParseResult.ParseIssue,
  f: (inner: ParseResult.ParseIssue) => ParseResult.ParseIssue
): ParseResult.ParseIssue => {
  switch (issue._tag) {
    case "Pointer":
      return new ParseResult.Pointer(issue.path, issue.actual, f(issue.issue))
    case "Refinement":
      return new ParseResult.Refinement(issue.ast, issue.actual, issue.kind, f(issue.issue))
    case "Transformation":
      return new ParseResult.Transformation(issue.ast, issue.actual, issue.kind, f(issue.issue))
    default:
      return issue
  }
}

/** One thing a field takes, as a failed member of its union says it. */
type Expectation =
  | { readonly kind: "literal"; readonly text: string }
  /** A struct: named settings. */
  | { readonly kind: "settings" }
  /** A record: any names, each to a value. */
  | { readonly kind: "record" }
  /** The `undefined` of an optional field: not something to ask for. */
  | { readonly kind: "undefined" }
  | { readonly kind: "other" }

const keyOf = (path: ReadonlyArray<PropertyKey>): string => JSON.stringify(path.map(String))

const expectationOf = (ast: AST.AST): Expectation => {
  if (AST.isLiteral(ast)) {
    const literal = ast.literal
    return typeof literal === "bigint" ? { kind: "other" } : { kind: "literal", text: JSON.stringify(literal) }
  }
  if (AST.isUndefinedKeyword(ast)) return { kind: "undefined" }
  if (AST.isTypeLiteral(ast)) return ast.propertySignatures.length > 0 ? { kind: "settings" } : { kind: "record" }
  return { kind: "other" }
}

/** The expectations of every `Type` issue of `issue`, by the path the array formatter gives it. */
const collect = (
  issue: ParseResult.ParseIssue,
  path: ReadonlyArray<PropertyKey>,
  into: Map<string, Array<Expectation>>
): void => {
  switch (issue._tag) {
    case "Type": {
      const key = keyOf(path)
      into.set(key, [...(into.get(key) ?? []), expectationOf(issue.ast)])
      return
    }
    case "Pointer":
      return collect(issue.issue, path.concat(issue.path), into)
    case "Composite":
      for (const inner of innerOf(issue)) collect(inner, path, into)
      return
    case "Refinement":
    case "Transformation":
      return collect(issue.issue, path, into)
    default: {
      const key = keyOf(path)
      into.set(key, [...(into.get(key) ?? []), { kind: "other" }])
    }
  }
}

/** `must be "a", "b" or "c", or an object of settings`; `undefined` when there is nothing to list. */
const ruleOf = (expectations: ReadonlyArray<Expectation>): string | undefined => {
  const literals = [
    ...new Set(expectations.flatMap((expectation) => expectation.kind === "literal" ? [expectation.text] : []))
  ]
  const objects = [
    ...(expectations.some((expectation) => expectation.kind === "settings") ? ["an object of settings"] : []),
    ...(expectations.some((expectation) => expectation.kind === "record") ? ["an object of names to values"] : [])
  ]
  const choices = literals.length === 0 ? "" : literals.length === 1
    ? literals[0]
    : `${literals.slice(0, -1).join(", ")} or ${literals[literals.length - 1]}`
  const all = [...(choices === "" ? [] : [choices]), ...objects]
  return all.length === 0 ? undefined : `must be ${all.join(", or ")}`
}

/** The schema's own message for a value of the wrong type, which {@link issuesOf} may say better. */
const isSchemaMessage = (issue: ParseResult.ArrayFormatterIssue): boolean =>
  issue._tag === "Type" && issue.message.startsWith("Expected ")

/**
 * The issues of `error`, as `ParseResult.ArrayFormatter` gives them, but: at a path whose every failure is a
 * literal, a struct or a record it is not (or the `undefined` of an optional field), one issue saying what it may
 * be; an issue with a message of its own (an annotation's) is kept as it is; the same message at the same path
 * is given once. A union's failures are first narrowed to the members that could have been meant (`narrow`).
 *
 * @internal
 */
export const issuesOf = (error: ParseResult.ParseError): Array<ParseResult.ArrayFormatterIssue> => {
  const narrowed = narrow(error.issue)
  const issues = ParseResult.ArrayFormatter.formatIssueSync(narrowed)
  const expected = new Map<string, Array<Expectation>>()
  collect(narrowed, [], expected)
  const said = new Set<string>()
  return issues.flatMap((issue) => {
    const key = keyOf(issue.path)
    const expectations = expected.get(key) ?? []
    const rule = isSchemaMessage(issue) && !expectations.some((expectation) => expectation.kind === "other")
      ? ruleOf(expectations)
      : undefined
    const message = rule ?? issue.message
    const once = `${key} ${message}`
    if (said.has(once)) return []
    said.add(once)
    return [rule === undefined ? issue : { ...issue, message }]
  })
}

/**
 * A failed decode of a file as problems with paths, in the library's words (`internal/schema.ts`). Where a key or
 * a `type` is not one the schema knows, the problem names the one that was probably meant: the keys and values
 * allowed at its place are read from the schema that rejected it, never from a list kept by hand.
 *
 * @internal
 */
import * as Arr from "effect/Array"
import * as ParseResult from "effect/ParseResult"
import * as AST from "effect/SchemaAST"
import * as Edge from "../schema.js"
import { mapWrapped, narrow } from "../schemaIssues.js"
import { closest } from "../suggest.js"
import { fieldOf } from "./problems.js"

/**
 * Annotates a union of mappings told apart by their keys (a pool's `config`: an agent's, a callback agent's or a
 * directory agent's) with `(input) => index`: the member the input is written as, whose problems alone are reported
 * when every member fails (rather than every member's, most of them about keys of another form).
 */
export const FormOf: unique symbol = Symbol.for("effect-agent-supervisor/TreeFile/FormOf")

/** `issue` with each union annotated {@link FormOf} reduced to the issue of the member the input is written as. */
const asWritten = (issue: ParseResult.ParseIssue): ParseResult.ParseIssue => {
  switch (issue._tag) {
    case "Composite": {
      const choose = issue.ast.annotations[FormOf] as ((input: unknown) => number) | undefined
      const issues = Arr.ensure(issue.issues)
      if (choose !== undefined && AST.isUnion(issue.ast)) {
        const member = issue.ast.types[choose(issue.actual)]
        const its = issues.find((each) => "ast" in each && each.ast === member)
        if (its !== undefined) return asWritten(its)
      }
      const [first, ...rest] = issues.map(asWritten)
      return new ParseResult.Composite(issue.ast, issue.actual, [first, ...rest], issue.output)
    }
    default:
      return mapWrapped(issue, asWritten)
  }
}

/**
 * What the schema allows where a problem is: the keys of the object an unknown key is in, a field's values, or a
 * shape (a mapping, a list, a number, text) where the schema's own words would be its internal name.
 */
type Allowed =
  | { readonly keys: ReadonlyArray<string> }
  | { readonly values: ReadonlyArray<string> }
  | { readonly shape: string }

const keyOf = (path: ReadonlyArray<PropertyKey>): string => JSON.stringify(path.map(String))

/** The string literals `ast` allows, when it is one or a union of them (a `type`, a strategy). */
const literals = (ast: AST.AST): ReadonlyArray<string> | undefined => {
  const members = AST.isUnion(ast) ? ast.types : [ast]
  const values = members.flatMap((m) => AST.isLiteral(m) && typeof m.literal === "string" ? [m.literal] : [])
  return values.length > 0 && values.length === members.length ? values : undefined
}

/**
 * What a value of `ast`'s type is, in a file's words, where the schema's own (`Expected number, actual "abc"`) would
 * be its internal names: a mapping, a list, a number, text, true or false.
 */
const shapeOf = (ast: AST.AST): string | undefined => {
  switch (ast._tag) {
    case "TypeLiteral":
      return "a mapping"
    case "TupleType":
      return "a list"
    case "NumberKeyword":
      return "a number"
    case "StringKeyword":
      return "text"
    case "BooleanKeyword":
      return "true or false"
    default:
      return undefined
  }
}

/** For every unknown key and every value outside a set of literals in `issue`: its path and what is allowed. */
const allowedAt = (issue: ParseResult.ParseIssue): Map<string, Allowed> => {
  const found = new Map<string, Allowed>()
  const go = (node: ParseResult.ParseIssue, path: ReadonlyArray<PropertyKey>, keys: ReadonlyArray<string>): void => {
    switch (node._tag) {
      case "Unexpected":
        found.set(keyOf(path), { keys })
        return
      case "Type":
      case "Missing": {
        // A missing key's `ast` is its property signature, whose `type` is what the key takes.
        const ast: AST.AST = "_tag" in node.ast ? node.ast : (node.ast as { readonly type: AST.AST }).type
        const values = literals(ast)
        const shape = node._tag === "Type" ? shapeOf(ast) : undefined
        if (values !== undefined) found.set(keyOf(path), { values })
        else if (shape !== undefined) found.set(keyOf(path), { shape })
        return
      }
      case "Pointer":
        return go(node.issue, [...path, ...(Array.isArray(node.path) ? node.path : [node.path])], keys)
      case "Refinement":
      case "Transformation":
        return go(node.issue, path, keys)
      case "Composite": {
        // A union of literals: an issue per literal below, each of which would say its own one.
        const values = literals(node.ast)
        if (values !== undefined) return void found.set(keyOf(path), { values })
        const inner = AST.isTypeLiteral(node.ast)
          ? node.ast.propertySignatures.flatMap((ps) => typeof ps.name === "string" ? [ps.name] : [])
          : keys
        for (const each of Array.isArray(node.issues) ? node.issues : [node.issues]) go(each, path, inner)
        return
      }
      default:
        return
    }
  }
  go(issue, [], [])
  return found
}

const quoted = Edge.quoted

/** What a value outside a set of literals is told (the schema's own words when it has some), and what was meant. */
const notOneOf = (message: string, actual: unknown, values: ReadonlyArray<string>): string => {
  const meant = typeof actual === "string" ? closest(actual, values) : undefined
  return (message.startsWith("Expected ") ? `must be ${quoted(values)}` : message) +
    (meant !== undefined ? `: did you mean "${meant}"?` : "")
}

/** The rule of one issue, with what is allowed where the schema says. */
const ruleOf = (issue: ParseResult.ArrayFormatterIssue, allowed: Allowed | undefined, actual: unknown): string => {
  if (issue._tag === "Unexpected") {
    return Edge.unknownKeyRule(
      issue.path[issue.path.length - 1],
      allowed !== undefined && "keys" in allowed ? allowed.keys : []
    )
  }
  if (allowed !== undefined && "values" in allowed) {
    return issue._tag === "Missing"
      ? `is missing: ${quoted(allowed.values)}`
      : notOneOf(issue.message, actual, allowed.values)
  }
  if (allowed !== undefined && "shape" in allowed && issue.message.startsWith("Expected ")) {
    return `must be ${allowed.shape}`
  }
  // A refinement of the library's Schema that says nothing of its own (`Schema.Int`) says what it wants as "an
  // integer", "a positive number": that, in a file's words (a whole number, as every rule of the file says it).
  const wanted = /^Expected (an? [^,]+), actual /.exec(issue.message)
  return wanted !== null ? `must be ${wanted[1].replace(/^an integer\b/, "a whole number")}` : issue.message
}

const at = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>(
    (value, key) => typeof value === "object" && value !== null ? (value as any)[key] : undefined,
    input
  )

/** Every problem of a failed decode of `input`, each with its path from the file's root. */
export const problemsOf = (input: unknown, error: ParseResult.ParseError): Array<Edge.Problem> => {
  const issue = narrow(asWritten(error.issue))
  const allowed = allowedAt(issue)
  // A union of literals given none of them is an issue per literal, each told the same rule: said once.
  const said = new Set<string>()
  return ParseResult.ArrayFormatter.formatIssueSync(issue).flatMap((issue) => {
    const field = fieldOf(issue.path)
    const rule = ruleOf(issue, allowed.get(keyOf(issue.path)), at(input, issue.path))
    const value = Edge.valueAt(input, issue.path)
    const once = JSON.stringify([field, rule])
    if (said.has(once)) return []
    said.add(once)
    return [{ field: field === "" ? "(file)" : field, rule, ...(value !== undefined ? { value } : {}) }]
  })
}

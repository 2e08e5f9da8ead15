/**
 * A failed decode's issues as users read them (`internal/schemaIssues.ts`): a union's failures narrowed to the
 * members that could have been meant, what a field takes listed once, never the `undefined` of an optional field.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Config from "../src/internal/cluster/config.js"
import { issuesOf } from "../src/internal/schemaIssues.js"

const said = <A, I>(schema: Schema.Schema<A, I>, input: unknown): Array<string> => {
  const result = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(input)
  if (Either.isRight(result)) return []
  return issuesOf(result.left).map((issue) => `${issue.path.join(".")}: ${issue.message}`)
}

const Timing = Schema.Union(
  Schema.Literal("standard", "fast", "test"),
  Schema.Struct({ expiration: Schema.optional(Schema.Number), name: Schema.optional(Schema.String) })
)
const Options = Schema.Struct({ timing: Schema.optional(Timing), size: Schema.optional(Schema.Number) })

describe("schemaIssues", () => {
  it("a value of none of a union's kinds: one issue listing what the field takes", () => {
    assert.deepStrictEqual(said(Options, { timing: 5 }), [
      `timing: must be "standard", "fast" or "test", or an object of settings`
    ])
  })

  it("an object that fails inside a literal-or-settings union: only the inner issue, not \"must be standard\"", () => {
    assert.deepStrictEqual(said(Options, { timing: { expiration: "x" } }), [
      "timing.expiration: Expected number, actual \"x\""
    ])
    assert.deepStrictEqual(said(Options, { timing: { expiration: 1, typo: 1 } }), [
      `timing.typo: is unexpected, expected: "expiration" | "name"`
    ])
  })

  it("an optional field of the wrong type: never \"Expected undefined\"", () => {
    const issues = said(Options, { size: "big" })
    assert.deepStrictEqual(issues, ["size: Expected number, actual \"big\""])
  })

  it("a refinement's predicate failed: that member was meant, the literals are not listed", () => {
    const Size = Schema.Union(Schema.Literal("auto"), Schema.Number.pipe(Schema.positive()))
    assert.deepStrictEqual(said(Schema.Struct({ size: Size }), { size: -1 }), [
      "size: Expected a positive number, actual -1"
    ])
    assert.deepStrictEqual(said(Schema.Struct({ size: Size }), { size: "big" }), [
      "size: Expected \"auto\", actual \"big\"",
      "size: Expected number, actual \"big\""
    ])
  })

  it("a literal of the value's kind stays beside a member that took the value: it may be a typo of it", () => {
    const Size = Schema.Union(Schema.Literal("auto"), Schema.NumberFromString)
    const issues = said(Schema.Struct({ size: Size }), { size: "atuo" })
    assert.include(issues.join("\n"), `size: Expected "auto", actual "atuo"`)
  })

  it("the cluster's options: a bad duration inside timing's settings is that alone", () => {
    const decoded = Config.decode({ timing: { shardLockExpiration: "x" } })
    assert.isTrue(Either.isLeft(decoded))
    if (Either.isRight(decoded)) return
    assert.strictEqual(
      decoded.left.message,
      `Invalid configuration at cluster.timing.shardLockExpiration: must be a duration like "5 seconds", "250ms" ` +
        `or "1h30m" (got "x")`
    )
  })

  it("a ParseError of no union is given as the formatter gives it", () => {
    const result = Schema.decodeUnknownEither(Schema.Struct({ a: Schema.String }))({ a: 1 })
    assert.isTrue(Either.isLeft(result))
    if (Either.isRight(result)) return
    assert.deepStrictEqual(issuesOf(result.left), ParseResult.ArrayFormatter.formatErrorSync(result.left))
  })
})

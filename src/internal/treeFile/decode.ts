/**
 * From a file's text to the tree it describes: syntax, references, the file's schema, the tree's own rules, then
 * relative paths. Every check runs on the whole file (but syntax, which leaves nothing to check), and their
 * problems are one `ConfigError`.
 *
 * @internal
 */
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as JSONSchema from "effect/JSONSchema"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { ConfigError } from "../../Errors.js"
import type * as TreeFile from "../../TreeFile.js"
import * as Edge from "../schema.js"
import { treeProblems, treeWarnings } from "./check.js"
import { type Env, substituteAll } from "./env.js"
import { type TreeFileInput, TreeFileSchema } from "./fileSchema.js"
import { problemsOf } from "./issues.js"
import { resolveAll } from "./paths.js"
import { merge } from "./problems.js"
import type { StoreInput } from "./storeSchema.js"
import * as Syntax from "./syntax.js"

const decodeFile = Schema.decodeUnknownEither(TreeFileSchema, { errors: "all", onExcessProperty: "error" })

/** `store.urlEnv` names a variable that is set. */
const urlProblems = (file: unknown, env: Env): Array<Edge.Problem> => {
  const store = (file as { readonly store?: unknown } | null)?.store as { urlEnv?: unknown } | undefined
  const name = typeof store === "object" && store !== null ? store.urlEnv : undefined
  if (typeof name !== "string" || (env[name] ?? "") !== "") return []
  return [{ field: "store.urlEnv", rule: `names the environment variable ${name}, which is not set`, value: name }]
}

/** Fields whose value is a secret: a problem with one says what is wrong, never what was written. */
const SECRET = /^(admin\.token|store\.url|metrics\.otlp\.headers([.[].*)?)$/

const withoutSecret = (problem: Edge.Problem): Edge.Problem => {
  if (!SECRET.test(problem.field) || !("value" in problem)) return problem
  const { value: _, ...rest } = problem
  return rest
}

/** The checked file as the tree it describes: the store chosen, `urlEnv` read, `$schema` dropped. */
const toTree = (input: TreeFileInput, env: Env): TreeFile.TreeFile => {
  const { $schema: _, admin, children, store, ...root } = input
  return {
    ...root,
    ...(admin === undefined ? {} : {
      admin: admin.token === undefined ? admin : { ...admin, token: Redacted.make(admin.token) }
    }),
    store: toStore(store ?? { type: "memory" }, env),
    children: (children ?? []) as ReadonlyArray<TreeFile.Child>
  } as TreeFile.TreeFile
}

const toStore = (store: StoreInput, env: Env): TreeFile.StoreChoice => {
  if (store.type !== "postgres") return store as TreeFile.StoreChoice
  const { url, urlEnv, ...rest } = store
  return { ...rest, url: Redacted.make(url ?? env[urlEnv!] ?? "") } as TreeFile.PostgresStore
}

/** See `TreeFile.parse`. */
export const parse: (
  text: string,
  options: TreeFile.ParseOptions
) => Effect.Effect<TreeFile.TreeFile, ConfigError, Path.Path> = Effect.fn("TreeFile.parse")(
  function*(text: string, options: TreeFile.ParseOptions) {
    const parsed = yield* Syntax.parse(text, options.format, options.source ?? `(${options.format})`).pipe(
      Effect.mapError((problem) => Edge.configError([problem]))
    )
    const env = options.env ?? process.env
    const substituted = substituteAll(parsed, env)
    const value = substituted.value
    const decoded = decodeFile(value)
    const problems = merge(value, [
      substituted.problems,
      Either.isLeft(decoded) ? problemsOf(value, decoded.left) : [],
      urlProblems(value, env),
      yield* treeProblems(value)
    ])
    if (problems.length > 0) {
      return yield* Effect.fail(Edge.configError(problems.map(withoutSecret) as [Edge.Problem]))
    }
    const tree = toTree(value as TreeFileInput, env)
    if (options.dir === undefined) return tree
    const path = yield* Path.Path
    return resolveAll(tree, path.resolve(options.dir), path)
  }
)

/** See `TreeFile.warnings`. */
export const warnings = (file: TreeFile.TreeFile): Effect.Effect<ReadonlyArray<string>> => treeWarnings(file)

/** See `TreeFile.jsonSchema`. */
export const jsonSchema = (): JSONSchema.JsonSchema7Root => JSONSchema.make(TreeFileSchema)

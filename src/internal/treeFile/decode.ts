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
import type * as TreeFileCluster from "../../TreeFile/Cluster.js"
import * as Edge from "../schema.js"
import * as BareMillis from "./bareMillis.js"
import { treeProblems, treeWarnings } from "./check.js"
import { nameProblems } from "./cluster.js"
import type { ClusterInput } from "./clusterSchema.js"
import { type Env, substituteAll } from "./env.js"
import { type TreeFileInput, TreeFileSchema } from "./fileSchema.js"
import { problemsOf } from "./issues.js"
import { resolveAll } from "./paths.js"
import { merge } from "./problems.js"
import { salvaged } from "./salvage.js"
import type { StoreInput } from "./storeSchema.js"
import * as Syntax from "./syntax.js"

const decodeFile = Schema.decodeUnknownEither(TreeFileSchema, { errors: "all", onExcessProperty: "error" })

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** The mapping at `path` in a parsed file, if there is one. */
const sectionAt = (file: unknown, path: ReadonlyArray<string>): Record<string, unknown> | undefined => {
  let node = file
  for (const key of path) node = isRecord(node) ? node[key] : undefined
  return isRecord(node) ? node : undefined
}

/** `urlEnv` of the section at `path` (the store, the cluster's database) names a variable that is set. */
const urlEnvProblems = (file: unknown, env: Env, path: ReadonlyArray<string>): Array<Edge.Problem> => {
  const name = sectionAt(file, path)?.urlEnv
  if (typeof name !== "string" || (env[name] ?? "") !== "") return []
  return [{
    field: [...path, "urlEnv"].join("."),
    rule: `names the environment variable ${name}, which is not set`,
    value: name
  }]
}

/**
 * A cluster without a database of its own is on the store's: a runner or a client shares it with the others, so it
 * must be a SQL one (a local cluster on an in-memory store keeps its messages in memory too).
 */
const clusterDatabaseProblems = (file: unknown): Array<Edge.Problem> => {
  const cluster = sectionAt(file, ["cluster"])
  if (cluster === undefined || cluster.database !== undefined || cluster.role === "local") return []
  const store = sectionAt(file, ["store"])?.type
  if (store === "sqlite" || store === "postgres") return []
  return [{
    field: "cluster.database",
    rule: "is missing: the runners and clients of a cluster share its shard locks, runners and messages in SQL, and " +
      `the store is in memory: give { type: sqlite, filename } or { type: postgres, url }, or a sqlite or postgres store`
  }]
}

/** Fields whose value is a secret: a problem with one says what is wrong, never what was written. */
const SECRET = /^(admin\.token|store\.url|cluster\.database\.url|metrics\.otlp\.headers([.[].*)?)$/

const withoutSecret = (problem: Edge.Problem): Edge.Problem => {
  if (!SECRET.test(problem.field) || !("value" in problem)) return problem
  const { value: _, ...rest } = problem
  return rest
}

/** The checked file as the tree it describes: the store chosen, `urlEnv` read, `$schema` dropped. */
const toTree = (input: TreeFileInput, env: Env): TreeFile.TreeFile => {
  const { $schema: _, admin, children, cluster, store, ...root } = input
  const chosen = toStore(store ?? { type: "memory" }, env)
  return {
    ...root,
    ...(admin === undefined ? {} : {
      admin: admin.token === undefined ? admin : { ...admin, token: Redacted.make(admin.token) }
    }),
    store: chosen,
    ...(cluster === undefined ? {} : { cluster: toCluster(cluster, chosen, env) }),
    children: (children ?? []) as ReadonlyArray<TreeFile.Child>
  } as TreeFile.TreeFile
}

/** The cluster section with its role and its database (the store's, when it names none). */
const toCluster = (cluster: ClusterInput, store: TreeFile.StoreChoice, env: Env): TreeFileCluster.Settings => {
  const { database, role, ...options } = cluster
  return { ...options, role: role ?? "runner", database: toDatabase(database, store, env) }
}

const toDatabase = (
  database: ClusterInput["database"],
  store: TreeFile.StoreChoice,
  env: Env
): TreeFileCluster.Database => {
  if (database !== undefined) {
    if (database.type === "sqlite") return database
    const { url, urlEnv, ...rest } = database
    return { ...rest, url: Redacted.make(url ?? env[urlEnv!] ?? "") }
  }
  switch (store.type) {
    case "sqlite":
      return { type: "sqlite", filename: store.filename }
    case "postgres":
      return {
        type: "postgres",
        url: store.url,
        ...(store.maxConnections === undefined ? {} : { maxConnections: store.maxConnections })
      }
    case "memory":
      // Only a local cluster gets here (`clusterDatabaseProblems`): alone, it may keep its messages in memory too.
      return { type: "sqlite", filename: ":memory:" }
  }
}

const toStore = (store: StoreInput, env: Env): TreeFile.StoreChoice => {
  if (store.type !== "postgres") return store as TreeFile.StoreChoice
  const { url, urlEnv, ...rest } = store
  return { ...rest, url: Redacted.make(url ?? env[urlEnv!] ?? "") } as TreeFile.PostgresStore
}

/** More problems of a file as written, references replaced (`load`'s look at what it names on disk). */
type More<R> = (file: unknown) => Effect.Effect<ReadonlyArray<Edge.Problem>, never, R>

/** Every problem of a parsed file, references replaced (`substituted` the references' own), in the file's order. */
const problemsIn = <R>(
  value: unknown,
  substituted: ReadonlyArray<Edge.Problem>,
  env: Env,
  more: More<R> | undefined
): Effect.Effect<Array<Edge.Problem>, never, R> =>
  Effect.gen(function*() {
    const decoded = decodeFile(value)
    return merge(value, [
      substituted,
      Either.isLeft(decoded) ? problemsOf(value, decoded.left) : [],
      urlEnvProblems(value, env, ["store"]),
      urlEnvProblems(value, env, ["cluster", "database"]),
      clusterDatabaseProblems(value),
      yield* treeProblems(value),
      more === undefined ? [] : yield* more(value)
    ]).map(withoutSecret)
  })

/** A file's text parsed, references replaced, and its problems; a syntax error fails (nothing is left to check). */
const read = <R>(text: string, options: TreeFile.ParseOptions, more: More<R> | undefined) =>
  Effect.gen(function*() {
    const parsed = yield* Syntax.parse(text, options.format, options.source ?? `(${options.format})`).pipe(
      Effect.mapError((problem) => Edge.configError([problem]))
    )
    const env = options.env ?? process.env
    const substituted = substituteAll(parsed, env)
    const problems = yield* problemsIn(substituted.value, substituted.problems, env, more)
    return { value: substituted.value, env, problems }
  })

/** The tree of a file with no problems: the cluster's names checked, relative paths resolved. */
const finish = (
  value: unknown,
  env: Env,
  options: TreeFile.ParseOptions
): Effect.Effect<TreeFile.TreeFile, ConfigError, Path.Path> =>
  Effect.gen(function*() {
    const tree = toTree(value as TreeFileInput, env)
    // Only once every field is known good: which children a cluster hosts, and under which names.
    const names = nameProblems(tree)
    if (names.length > 0) return yield* Effect.fail(Edge.configError(names as [Edge.Problem]))
    if (options.dir === undefined) return tree
    const path = yield* Path.Path
    return resolveAll(tree, path.resolve(options.dir), path)
  })

/** `TreeFile.parse`, with the problems of `more` in the one list with the others'. */
export const parseWith = <R = never>(
  text: string,
  options: TreeFile.ParseOptions,
  more?: More<R>
): Effect.Effect<TreeFile.TreeFile, ConfigError, Path.Path | R> =>
  Effect.gen(function*() {
    const { env, problems, value } = yield* read(text, options, more)
    if (problems.length > 0) return yield* Effect.fail(Edge.configError(problems as [Edge.Problem]))
    return yield* finish(value, env, options)
  }).pipe(Effect.withSpan("TreeFile.parse", { captureStackTrace: false }))

/**
 * A file's problems, and the tree of what is left of it once its places with problems are put aside
 * (`salvage.ts`), for `validate` to look at the rest: its programs, callbacks and optional peers. `file` is the
 * whole file's tree when it has no problems, and `undefined` when nothing decodes once they are put aside.
 */
export const parseSalvaging = <R = never>(
  text: string,
  options: TreeFile.ParseOptions,
  more?: More<R>
): Effect.Effect<
  { readonly file: TreeFile.TreeFile | undefined; readonly problems: ReadonlyArray<Edge.Problem> },
  ConfigError,
  Path.Path | R
> =>
  Effect.gen(function*() {
    const { env, problems, value } = yield* read(text, options, more)
    let rest = value
    let left = problems
    // A place put aside may uncover another (a field taken out that was needed): a few rounds, then give up.
    for (let round = 0; round < 5 && left.length > 0 && rest !== undefined; round++) {
      rest = salvaged(rest, left)
      left = rest === undefined ? left : yield* problemsIn(rest, [], env, more)
    }
    if (rest === undefined || left.length > 0) return { file: undefined, problems }
    const file = yield* Effect.either(finish(rest, env, options))
    return Either.isRight(file)
      ? { file: file.right, problems }
      : { file: undefined, problems: [...problems, ...file.left.problems] }
  })

/** See `TreeFile.parse`. */
export const parse = (
  text: string,
  options: TreeFile.ParseOptions
): Effect.Effect<TreeFile.TreeFile, ConfigError, Path.Path> => parseWith(text, options)

/** See `TreeFile.warnings`. */
export const warnings = (file: TreeFile.TreeFile): Effect.Effect<ReadonlyArray<string>> =>
  Effect.map(treeWarnings(file), (tree) => [...BareMillis.warnings(file), ...tree])

/** See `TreeFile.jsonSchema`. */
export const jsonSchema = (): JSONSchema.JsonSchema7Root => JSONSchema.make(TreeFileSchema)

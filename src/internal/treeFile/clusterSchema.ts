/**
 * The `cluster` section of a tree file: `Cluster.ClusterOptions` (the cluster's own schema, each field with the
 * text editors show for it), where this process stands (`role`), and the SQL database the cluster keeps its shard
 * locks, runners and messages in (`database`, the store's own shape; the store's database when left out).
 *
 * Loading this module loads `@effect/cluster`'s `ShardingConfig` and `RunnerAddress` (through the options' schema):
 * a required peer of `@effect/platform-node`, so installed wherever the CLI runs; the cluster's runtime is loaded
 * by `up` only for a file that has the section.
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import { ClusterOptions } from "../cluster/options.js"
import { oneUrl, optional, PostgresConnection, required, says } from "./storeSchema.js"

const fields = ClusterOptions.fields

/**
 * A field of `Cluster.ClusterOptions` as a file writes it: the field's own schema, optional, its default left to the
 * cluster's decoding (`Cluster.layerRunner` and the others decode the section again). A default is a transformation,
 * which would make the section's encoded side, the one editors read, lose every other key's description.
 */
/** What a file writes for a field. */
type EncodedOf<F> = F extends Schema.PropertySignature<any, any, any, any, infer I, any, any> ? I : never

const written = <F extends Schema.PropertySignature.Any>(
  field: F,
  description: string,
  message?: Schema.Annotations.Schema<unknown>["message"]
) => {
  const ast = field.ast
  const type = ast._tag === "PropertySignatureTransformation" ? ast.from.type : ast.type
  const defined = AST.isUnion(type) ? AST.Union.make(type.types.filter((t) => !AST.isUndefinedKeyword(t))) : type
  const schema = Schema.make<unknown, Exclude<EncodedOf<F>, undefined>>(defined)
  return optional(message === undefined ? schema : schema.annotations({ message }), description)
}

const SqliteDatabase = Schema.Struct({
  type: Schema.Literal("sqlite"),
  filename: required(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a file name" })),
    "The database file, relative to this file's directory. One SQLite file serves the runners of one host only."
  )
}).annotations({ title: "SQLite cluster database", description: "Needs @effect/sql-sqlite-node." })

const PostgresDatabase = PostgresConnection.pipe(Schema.filter(oneUrl)).annotations({
  title: "PostgreSQL cluster database",
  description: "Needs @effect/sql-pg. The database runners on several hosts share."
})

/** `cluster.database`. */
export const ClusterDatabase = Schema.Union(SqliteDatabase, PostgresDatabase).annotations({
  message: () => `must be a mapping with a type ("sqlite" or "postgres") and its options`
})

/** Where `up` stands in the cluster. */
export const Role = Schema.Literal("runner", "client", "local").annotations(
  says(`must be "runner", "client" or "local"`)
)

/** The `cluster` section. */
export const ClusterSection = Schema.Struct({
  role: optional(
    Role,
    `"runner" (the default): hosts the file's agents among the cluster's runners, reached at address; "local": ` +
      `hosts them alone, its messages in the database; "client": hosts none, serves /api/cluster.`
  ),
  database: optional(
    ClusterDatabase,
    "Where the cluster keeps its shard locks, runners, messages and placements (PostgreSQL across hosts). The " +
      "store's database by default, when the store is sqlite or postgres."
  ),
  prefix: written(
    fields.prefix,
    `The prefix of the cluster's tables (<prefix>_messages, _runners, _agents...). "agent_cluster" by default.`
  ),
  address: written(
    fields.address,
    "Where other runners and clients reach this runner: { host, port }. A runner must have one (or " +
      "--runner-host and --runner-port)."
  ),
  listen: written(
    fields.listen,
    "The address to listen on when it is not address (behind NAT, in a container: { host: 0.0.0.0, port })."
  ),
  timing: written(
    fields.timing,
    `Shard-lock timings: "fast" (the default: failover in 6-8 s), "standard" (about 40 s), "test" (tests only), ` +
      "or the fields.",
    // One message for the whole value: a union of names and a mapping has no better one to give.
    says(
      `must be "fast", "standard" or "test", or a mapping of durations ("3 seconds"): shardLockExpiration, ` +
        "shardLockRefreshInterval, refreshAssignmentsInterval, entityTerminationTimeout"
    ).message
  ),
  maxIdleTime: written(
    fields.maxIdleTime,
    "An agent's process stops after this long without a message, and starts at the next. 5 minutes by default."
  ),
  keepAlive: written(
    fields.keepAlive,
    "Never stop idle agents: they run until their runner stops or their shard moves. false by default."
  ),
  mailboxCapacity: written(
    fields.mailboxCapacity,
    "Messages an agent may queue before a call fails with AgentUnavailableError. 4096 by default."
  ),
  shardsPerGroup: written(
    fields.shardsPerGroup,
    "Shards per group; every runner and client of a cluster must agree. 300 by default."
  )
}).annotations({
  title: "Cluster",
  description: "Scale out on @effect/cluster: `agent-supervisor up` hosts the file's agents as cluster entities " +
    "(pool members as <name>-<i>), each on one runner at a time."
})

/** The `cluster` section as a file holds it. */
export type ClusterInput = typeof ClusterSection.Encoded

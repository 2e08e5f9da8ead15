/**
 * The cluster's options as users write them (in code or a tree file's `cluster` section), and their decoding. No
 * import of `@effect/cluster` here: the tree file's schema uses this module, and a program that never runs a cluster
 * need not install it (`config.ts` turns the settings into a `ShardingConfig`).
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { ConfigError } from "../../Errors.js"
import { toDuration } from "../durationText.js"
import type * as Text from "../durationText.js"
import { configError, decodeOptions, DurationInput, type Problem } from "../schema.js"

/**
 * The shard-lock timings, by name. Failover after a runner dies takes about `shardLockExpiration +
 * refreshAssignmentsInterval + 1 s`: `standard` (the cluster's defaults, 35 s / 10 s / 3 s) about 40 s, `fast` (6 s /
 * 2 s / 1 s) 6-8 s, `test` (3 s / 1 s / 1 s) 4-5 s. `test` is for tests only: a runner whose event loop stalls past
 * ~2 s would lose its locks to another runner.
 */
export const presets = {
  standard: {
    shardLockExpiration: "35 seconds",
    shardLockRefreshInterval: "10 seconds",
    refreshAssignmentsInterval: "3 seconds"
  },
  fast: {
    shardLockExpiration: "6 seconds",
    shardLockRefreshInterval: "2 seconds",
    refreshAssignmentsInterval: "1 second"
  },
  test: {
    shardLockExpiration: "3 seconds",
    shardLockRefreshInterval: "1 second",
    refreshAssignmentsInterval: "1 second"
  }
} as const

/** A preset's name. */
export const Preset = Schema.Literal("standard", "fast", "test")

const Port = Schema.Int.pipe(Schema.between(0, 65535, { message: () => "must be a port number (0 to 65535)" }))
const Host = Schema.String.pipe(Schema.minLength(1, { message: () => "must be a non-empty host name or address" }))

/** A host and a port. */
export const Address = Schema.Struct({ host: Host, port: Port })

/** Timings: a preset, or the fields (any left out are the `fast` preset's). */
export const Timing = Schema.Union(
  Preset,
  Schema.Struct({
    shardLockExpiration: Schema.optional(DurationInput),
    shardLockRefreshInterval: Schema.optional(DurationInput),
    refreshAssignmentsInterval: Schema.optional(DurationInput),
    entityTerminationTimeout: Schema.optional(DurationInput)
  })
)

const Prefix = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,39}$/, {
    message: () => "must be a table prefix: a letter or _, then letters, digits or _ (at most 40 characters)"
  })
)
const Positive = Schema.Int.pipe(Schema.positive({ message: () => "must be a whole number of at least 1" }))

/** The cluster's options. */
export const ClusterOptions = Schema.Struct({
  /** The prefix of the cluster's tables (`${prefix}_messages`, `_replies`, `_runners`, `_locks`, `_agents`). */
  prefix: Schema.optionalWith(Prefix, { default: () => "agent_cluster" }),
  /** The address other runners and clients reach this runner at (a runner must set it). */
  address: Schema.optional(Address),
  /** The address to listen on, when not `address` (behind NAT, in a container: `0.0.0.0`). */
  listen: Schema.optional(Address),
  /** Shard-lock timings: `fast` by default (failover in under 10 s). */
  timing: Schema.optionalWith(Timing, { default: () => "fast" as const }),
  /** Stop an agent's process after this long without a message (its entity is passivated). 5 minutes by default. */
  maxIdleTime: Schema.optionalWith(DurationInput, { default: () => Duration.minutes(5) }),
  /** Never passivate: agents run until their runner stops or their shard moves. False by default. */
  keepAlive: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Messages an agent's entity may queue before a call fails with `AgentUnavailableError` "mailbox_full". 4,096. */
  mailboxCapacity: Schema.optionalWith(Positive, { default: () => 4096 }),
  /** Shards per group; every runner and client of a cluster must agree. 300 by default. */
  shardsPerGroup: Schema.optionalWith(Positive, { default: () => 300 })
})

/** Decoded cluster options. */
export type ClusterSettings = typeof ClusterOptions.Type
/** Cluster options as users write them. */
export type ClusterOptionsInput = typeof ClusterOptions.Encoded

/** Decodes cluster options; a failure is a `ConfigError` naming each bad field. */
export const decode = (input: unknown, prefix = "cluster"): Either.Either<ClusterSettings, ConfigError> =>
  Either.flatMap(
    decodeOptions(ClusterOptions, input ?? {}, { whole: prefix, prefix, undefinedIsAbsent: true }),
    (settings) => {
      const problems = timingProblems(settings, prefix)
      return problems.length === 0
        ? Either.right(settings)
        : Either.left(configError([problems[0], ...problems.slice(1)]))
    }
  )

/**
 * What the timings must be for shard locks to hold: every interval above 0, and a lock refreshed before it expires
 * (refreshed every `shardLockRefreshInterval`, it expires after `shardLockExpiration`). A listening port of 0 is
 * refused too: nobody could reach it.
 */
const timingProblems = (settings: ClusterSettings, prefix: string): Array<Problem> => {
  const problems: Array<Problem> = []
  const timing = timingOf(settings.timing) as Record<string, Text.DurationInput>
  const millis = (field: string) => Duration.toMillis(toDuration(timing[field]))
  for (const field of ["shardLockExpiration", "shardLockRefreshInterval", "refreshAssignmentsInterval"]) {
    if (millis(field) <= 0) problems.push({ field: `${prefix}.timing.${field}`, rule: "must be more than 0" })
  }
  if (millis("shardLockRefreshInterval") >= millis("shardLockExpiration")) {
    problems.push({
      field: `${prefix}.timing.shardLockRefreshInterval`,
      rule: `must be less than shardLockExpiration (${Duration.format(toDuration(timing.shardLockExpiration))}):` +
        " a lock must be refreshed before it expires"
    })
  }
  if (settings.listen?.port === 0) {
    problems.push({ field: `${prefix}.listen.port`, rule: "must not be 0: others could not reach it", value: "0" })
  }
  return problems
}

export const timingOf = (timing: ClusterSettings["timing"]) =>
  typeof timing === "string"
    ? presets[timing]
    : { ...presets.fast, ...Object.fromEntries(Object.entries(timing).filter(([, v]) => v !== undefined)) }

/**
 * What a cluster hosts, beyond single agents: pools (a pool of `size` is the agents `${name}-0` ...
 * `${name}-${size-1}`, `name` its configuration's, as a tree names its members; each is its own entity, routed to by
 * the caller: in turn, or by a key's hash) and topics (which agents and pools
 * subscribe to each). Runners and clients of one cluster are given the same topology, as they are the same catalog.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Config from "../../Agent/Config.js"
import { ConfigError } from "../../Errors.js"
import { memberName } from "../memberName.js"
import { DEFAULT_MAX_POOL_SIZE, sizeProblems } from "../poolSize.js"
import { joinPaths, type Problem } from "../schema.js"

/** An agent of the cluster: its configuration, and the topics it takes tasks from. */
export interface AgentEntry {
  readonly config: Config.AgentConfig | Config.AgentConfigInput
  readonly topics?: ReadonlyArray<string> | undefined
}

/** A pool of copies of one agent (each member named `${config.name}-${i}`, as a tree's pool names its members). */
export interface PoolEntry {
  readonly id: string
  readonly size: number
  /** The most members `size` may ask for: 1000 by default, as a tree's pool. */
  readonly maxSize?: number | undefined
  readonly config: Config.AgentConfig | Config.AgentConfigInput
  readonly topics?: ReadonlyArray<string> | undefined
  /** `round-robin` (the default): in turn; `sticky`: a call's `idempotencyKey` (or `routingKey`) picks the member. */
  readonly routing?: "round-robin" | "sticky" | undefined
}

/** What users give: agents (a configuration, or one with topics) and pools. */
export interface TopologyInput {
  readonly agents?: ReadonlyArray<Config.AgentConfig | Config.AgentConfigInput | AgentEntry> | undefined
  readonly pools?: ReadonlyArray<PoolEntry> | undefined
}

/** A decoded topology. */
export interface Topology {
  /** Every agent the cluster may start, pool members included, by name. */
  readonly configs: ReadonlyMap<string, Config.AgentConfig>
  readonly pools: ReadonlyMap<string, { readonly members: ReadonlyArray<string>; readonly sticky: boolean }>
  /** The subscribers of each topic: agent names and pool ids, in the order given. */
  readonly topics: ReadonlyMap<string, ReadonlyArray<string>>
}

/** The topology of this process's cluster (provided by `layerAgents` and `layerTopology`). */
export class TopologyTag extends Context.Tag("effect-agent-supervisor/Cluster/Topology")<TopologyTag, Topology>() {}

const isEntry = (a: unknown): a is AgentEntry =>
  typeof a === "object" && a !== null && "config" in a && !("command" in a)

const withPath = (error: ConfigError, path: string): Array<Problem> =>
  error.problems.map((p) => ({ ...p, field: joinPaths(path, p.field) }))

/** Decodes a topology: every problem (bad configuration, duplicate name, bad pool size or topic) in one ConfigError. */
export const decode = (input: TopologyInput | Iterable<Config.AgentConfig | Config.AgentConfigInput>) =>
  Effect.gen(function*() {
    const given: TopologyInput = Symbol.iterator in Object(input) && !("agents" in Object(input))
      ? { agents: [...(input as Iterable<Config.AgentConfig | Config.AgentConfigInput>)] }
      : input as TopologyInput
    const problems: Array<Problem> = []
    const configs = new Map<string, Config.AgentConfig>()
    const pools = new Map<string, { members: Array<string>; sticky: boolean }>()
    const topics = new Map<string, Array<string>>()
    const add = (name: string, config: Config.AgentConfig, path: string) => {
      if (configs.has(name) || pools.has(name)) {
        problems.push({ field: `${path}.name`, rule: "must be unique", value: name })
      } else configs.set(name, config)
    }
    const subscribe = (id: string, list: ReadonlyArray<string> | undefined, path: string) => {
      for (const [i, topic] of (list ?? []).entries()) {
        if (typeof topic !== "string" || topic.length === 0) {
          problems.push({ field: `${path}.topics[${i}]`, rule: "must be a non-empty topic name", value: String(topic) })
        } else topics.set(topic, [...(topics.get(topic) ?? []), id])
      }
    }
    for (const [i, agent] of (given.agents ?? []).entries()) {
      const path = `agents[${i}]`
      const entry = isEntry(agent) ? agent : { config: agent }
      const decoded = yield* Effect.either(Config.make(entry.config))
      if (decoded._tag === "Left") {
        problems.push(...withPath(decoded.left, isEntry(agent) ? `${path}.config` : path))
        continue
      }
      add(decoded.right.name, decoded.right, isEntry(agent) ? `${path}.config` : path)
      subscribe(decoded.right.name, entry.topics, path)
    }
    for (const [i, pool] of (given.pools ?? []).entries()) {
      const path = `pools[${i}]`
      if (!Number.isInteger(pool.size) || pool.size < 1) {
        problems.push({ field: `${path}.size`, rule: "must be a whole number of at least 1", value: String(pool.size) })
        continue
      }
      const maxSize = pool.maxSize ?? DEFAULT_MAX_POOL_SIZE
      if (!Number.isSafeInteger(maxSize) || maxSize < 1) {
        problems.push({ field: `${path}.maxSize`, rule: "must be a whole number of 1 or more", value: String(maxSize) })
        continue
      }
      const sizes = sizeProblems({ size: pool.size, maxSize }, path)
      if (sizes.length > 0) {
        problems.push(...sizes)
        continue
      }
      if (pool.routing !== undefined && pool.routing !== "round-robin" && pool.routing !== "sticky") {
        problems.push({
          field: `${path}.routing`,
          rule: `must be "round-robin" or "sticky"`,
          value: String(pool.routing)
        })
      }
      const members = Array.from({ length: pool.size }, (_, m) => memberName(pool.config.name, m))
      if (configs.has(pool.id) || pools.has(pool.id)) {
        problems.push({ field: `${path}.id`, rule: "must be unique", value: pool.id })
        continue
      }
      pools.set(pool.id, { members, sticky: pool.routing === "sticky" })
      for (const member of members) {
        const decoded = yield* Effect.either(Config.make({ ...(pool.config as Config.AgentConfigInput), name: member }))
        if (decoded._tag === "Left") {
          problems.push(...withPath(decoded.left, `${path}.config`))
          break
        }
        add(member, decoded.right, path)
      }
      subscribe(pool.id, pool.topics, path)
    }
    if (problems.length > 0) {
      return yield* Effect.fail(new ConfigError({ ...problems[0], problems }))
    }
    return { configs, pools, topics } satisfies Topology as Topology
  })

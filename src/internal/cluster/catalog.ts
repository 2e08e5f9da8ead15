/**
 * The catalog: which agent an entity id names, and its configuration. Every runner holds the same catalog (built
 * from the same tree file), so whichever runner the cluster assigns an id to starts the same agent. An id not in
 * the catalog fails with `ConfigError` and spawns nothing: a backlog of messages for unknown ids cannot fill the
 * machine with processes.
 */
import * as Context from "effect/Context"
import * as Option from "effect/Option"
import type * as Config from "../../Agent/Config.js"

/** Finds the configuration of the agent an entity id names. */
export class AgentCatalog extends Context.Tag("effect-agent-supervisor/Cluster/AgentCatalog")<
  AgentCatalog,
  { readonly lookup: (agentId: string) => Option.Option<Config.AgentConfig | Config.AgentConfigInput> }
>() {}

/** A catalog of these agents, by their names. */
export const fromConfigs = (
  configs: Iterable<Config.AgentConfig | Config.AgentConfigInput>
): AgentCatalog["Type"] => {
  const byName = new Map<string, Config.AgentConfig | Config.AgentConfigInput>()
  for (const config of configs) byName.set(config.name, config)
  return { lookup: (agentId) => Option.fromNullable(byName.get(agentId)) }
}

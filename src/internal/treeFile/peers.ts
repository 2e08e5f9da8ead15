/**
 * The optional peers a tree file needs (`internal/peers.ts`): a SQL driver for its store or its cluster's database,
 * `@effect/opentelemetry` for `metrics.otlp`, `@effect/cluster` for a `cluster` section. `validate` checks that each
 * is installed where this package finds it, as `up` would find it missing only when it loads it.
 *
 * @internal
 */
import { createRequire } from "node:module"
import { ConfigError } from "../../Errors.js"
import type * as TreeFile from "../../TreeFile.js"
import { installCommand, type OPTIONAL_PEERS } from "../peers.js"

type Peer = keyof typeof OPTIONAL_PEERS

const DRIVERS: Record<string, Peer | undefined> = {
  sqlite: "@effect/sql-sqlite-node",
  postgres: "@effect/sql-pg"
}

/** What the file's sections need: each with the section's path (`store`, `metrics.otlp`), in the file's order. */
export const needed = (file: TreeFile.TreeFile): Array<{ readonly field: string; readonly peer: Peer }> => {
  const store = DRIVERS[file.store.type]
  return [
    ...(store === undefined ? [] : [{ field: "store", peer: store }]),
    ...(file.metrics?.otlp === undefined ? [] : [{ field: "metrics.otlp", peer: "@effect/opentelemetry" as const }]),
    ...(file.cluster === undefined ? [] : [
      { field: "cluster", peer: "@effect/cluster" as const },
      // a cluster on a store of its own: its database needs its driver too (the same one is named once)
      ...[DRIVERS[file.cluster.database.type]].filter((peer): peer is Peer => peer !== undefined && peer !== store)
        .map((peer) => ({ field: "cluster.database", peer }))
    ])
  ]
}

/**
 * The file's needed peers that `resolves` does not find (by default, Node's resolution from this module, as the
 * library's own imports resolve), as one `ConfigError` with a problem for each; `undefined` when every one is there.
 */
export const missing = (
  file: TreeFile.TreeFile,
  resolves: (peer: string) => boolean = resolvesHere
): ConfigError | undefined => {
  const problems = needed(file).filter(({ peer }) => !resolves(peer)).map(({ field, peer }) => ({
    field,
    rule: `needs the optional peer dependency ${peer}, which is not installed: ${installCommand(peer)}`
  }))
  return problems.length === 0 ? undefined : new ConfigError({ ...problems[0], problems })
}

const require = createRequire(import.meta.url)

/** Whether `peer` is installed where this package finds it: a package that has no CommonJS entry is found too. */
const resolvesHere = (peer: string): boolean => {
  try {
    require.resolve(peer)
    return true
  } catch (error) {
    return (error as { readonly code?: unknown }).code === "ERR_PACKAGE_PATH_NOT_EXPORTED"
  }
}

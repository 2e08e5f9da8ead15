/**
 * The optional peers a tree file needs, and `validate`'s problem for each that is not installed: `validate`
 * passed a file with `metrics.otlp` where `@effect/opentelemetry` was missing, and `up` then failed. The missing
 * install itself is run for real in `pack.test.ts` (the packed tarball has no optional peer beside it).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { missing, needed } from "../src/internal/treeFile/peers.js"
import * as TreeFile from "../src/TreeFile.js"

const yaml = (text: string) =>
  TreeFile.parse(text, { format: "yaml", env: {}, dir: "/srv/app" }).pipe(Effect.provide(NodeContext.layer))

describe("TreeFile: optional peers", () => {
  it.effect("each section names its peer; a cluster's own database its driver, once", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(needed(yield* yaml("children: []")), [])
      assert.deepStrictEqual(needed(yield* yaml("store: { type: sqlite, filename: t.db }\nchildren: []")), [
        { field: "store", peer: "@effect/sql-sqlite-node" }
      ])
      const all = yield* yaml([
        "store: { type: postgres, url: \"postgres://db/agents\" }",
        "metrics: { otlp: { url: \"http://127.0.0.1:4318\", serviceName: agents } }",
        "cluster: { database: { type: sqlite, filename: cluster.db } }",
        "children: []"
      ].join("\n"))
      assert.deepStrictEqual(needed(all), [
        { field: "store", peer: "@effect/sql-pg" },
        { field: "metrics.otlp", peer: "@effect/opentelemetry" },
        { field: "cluster", peer: "@effect/cluster" },
        { field: "cluster.database", peer: "@effect/sql-sqlite-node" }
      ])
      const same = yield* yaml("store: { type: sqlite, filename: t.db }\ncluster: {}\nchildren: []")
      assert.deepStrictEqual(needed(same).map(({ peer }) => peer), ["@effect/sql-sqlite-node", "@effect/cluster"])

      // Missing: one ConfigError, a problem per peer, each with the install command at this package's range
      assert.isUndefined(missing(all, () => true))
      const error = missing(all, (peer) => peer === "@effect/sql-pg")
      assert.strictEqual(error?._tag, "ConfigError")
      assert.deepStrictEqual(error?.problems.map((p) => p.field), ["metrics.otlp", "cluster", "cluster.database"])
      assert.include(
        error!.problems[0].rule,
        "needs the optional peer dependency @effect/opentelemetry, which is not installed: npm install " +
          "@effect/opentelemetry@^"
      )
      // Here, in this repository, every one is installed
      assert.isUndefined(missing(all))
    }))
})

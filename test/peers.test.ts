/**
 * The install commands the library prints for its optional peers name the ranges `package.json` gives: npm's latest
 * of them follows Effect 4 and does not install beside Effect 3.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { installCommand, OPTIONAL_PEERS } from "../src/internal/peers.js"
import { root } from "./support.js"

describe("optional peers", () => {
  it("their ranges are package.json's peerDependencies, optional there, and the install command names them", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
      readonly peerDependencies: Record<string, string>
      readonly peerDependenciesMeta: Record<string, { readonly optional?: boolean }>
    }
    for (const [name, range] of Object.entries(OPTIONAL_PEERS)) {
      assert.strictEqual(pkg.peerDependencies[name], range, name)
      assert.isTrue(pkg.peerDependenciesMeta[name]?.optional, name)
    }
    assert.strictEqual(installCommand("@effect/opentelemetry"), "npm install @effect/opentelemetry@^0.64.1")
  })
})

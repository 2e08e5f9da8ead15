/**
 * The install commands the library prints for its optional peers name the ranges `package.json` gives: npm's latest
 * of them follows Effect 4 and does not install beside Effect 3. The README's Dependencies table names every package
 * `package.json` does, with its range and kind.
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

  it("the README's Dependencies table names every package of package.json, with its range and kind", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
      readonly dependencies: Record<string, string>
      readonly devDependencies: Record<string, string>
      readonly peerDependencies: Record<string, string>
      readonly peerDependenciesMeta: Record<string, { readonly optional?: boolean }>
    }
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
    const section = readme.slice(readme.indexOf("\n## Dependencies\n"))
    // Each row: its packages (in backticks, with a range or not), its range, its kind.
    const rows = section.split("\n").filter((line) => line.startsWith("| `")).map((line) => {
      const [names, range, kind] = line.split("|").slice(1, 4).map((cell) => cell.trim())
      return { names: [...names.matchAll(/`([^`]+)`/g)].map((match) => match[1]), range, kind }
    })
    const rowOf = (name: string) => rows.find((row) => row.names.includes(name))
    const expected = [
      ...Object.entries(pkg.dependencies).map(([name, range]) => [name, range, "dependency"] as const),
      ...Object.entries(pkg.peerDependencies).map(([name, range]) =>
        [name, range, pkg.peerDependenciesMeta[name]?.optional === true ? "optional peer" : "peer"] as const
      )
    ]
    for (const [name, range, kind] of expected) {
      const row = rowOf(name)
      assert.isDefined(row, `${name} is not in the README's Dependencies table`)
      // `~1.6.0` may read `~1.6` there (not `^0.64.1` for `^0.64.12`)
      assert.isTrue(
        range === row!.range || range.startsWith(`${row!.range}.`),
        `${name}: ${row!.range} in the README, ${range} in package.json`
      )
      assert.strictEqual(row!.kind, kind, name)
    }
    // A dev dependency that is no peer's dev copy: in a `dev` row, by its name alone or with its range.
    const devRows = rows.filter((row) => row.kind === "dev").flatMap((row) =>
      row.names.map((name) => name.split(" ")[0])
    )
    for (const name of Object.keys(pkg.devDependencies)) {
      if (name in pkg.peerDependencies) continue
      assert.include(devRows, name, `the dev dependency ${name} is not in the README's Dependencies table`)
    }
  })
})

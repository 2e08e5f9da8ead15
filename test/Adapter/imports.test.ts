import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "vitest"
import { root } from "../support.js"

// The Node adapter is spawned once per agent: whatever it imports is paid for at every start. It may import
// `node:` built-ins, its own modules (src/Adapter) and the library's standalone modules (src/internal/standalone:
// they import nothing but `node:` built-ins themselves), never the rest of the library nor a package.

const adapterDir = path.join(root, "src", "Adapter")
const standaloneDir = path.join(root, "src", "internal", "standalone")

/** Every .ts file under a directory. */
const sources = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name)
    return entry.isDirectory() ? sources(file) : entry.name.endsWith(".ts") ? [file] : []
  })

/** The module specifiers of a source file: static imports and re-exports, and dynamic imports of a literal. */
const specifiers = (file: string): Array<string> => {
  const text = fs.readFileSync(file, "utf8")
  const found = [...text.matchAll(/^\s*(?:import|export)\b[^"']*?\bfrom\s+["']([^"']+)["']/gm)].map((m) => m[1])
  const bare = [...text.matchAll(/^\s*import\s+["']([^"']+)["']/gm)].map((m) => m[1])
  const dynamic = [...text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1])
  return [...found, ...bare, ...dynamic]
}

/** The imports of the .ts files under `dir` that are neither `node:` built-ins nor modules under one of `allowed`. */
const outsideOf = (dir: string, allowed: ReadonlyArray<string>): Array<string> => {
  const outside: Array<string> = []
  for (const file of sources(dir)) {
    for (const specifier of specifiers(file)) {
      if (specifier.startsWith("node:")) continue
      const target = specifier.startsWith(".") ? path.resolve(path.dirname(file), specifier) : undefined
      if (target !== undefined && allowed.some((where) => target.startsWith(where + path.sep))) continue
      outside.push(`${path.relative(root, file)}: ${specifier}`)
    }
  }
  return outside
}

describe("Adapter/node imports", () => {
  it("imports only node: built-ins, modules of src/Adapter and standalone modules", () => {
    assert.include(sources(adapterDir), path.join(adapterDir, "node.ts"))
    assert.deepStrictEqual(outsideOf(adapterDir, [adapterDir, standaloneDir]), [])
  })

  it("a standalone module imports only node: built-ins and other standalone modules", () => {
    assert.include(sources(standaloneDir), path.join(standaloneDir, "strictJson.ts"))
    assert.deepStrictEqual(outsideOf(standaloneDir, [standaloneDir]), [])
  })
})

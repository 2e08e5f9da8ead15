import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "vitest"
import { root } from "../support.js"

// The Node adapter is spawned once per agent: whatever it imports is paid for at every start. It may import
// `node:` built-ins and its own modules (src/Adapter), never the rest of the library nor a package.

const adapterDir = path.join(root, "src", "Adapter")

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

describe("Adapter/node imports", () => {
  it("imports only node: built-ins and modules of src/Adapter", () => {
    const files = sources(adapterDir)
    assert.include(files, path.join(adapterDir, "node.ts"))
    const outside: Array<string> = []
    for (const file of files) {
      for (const specifier of specifiers(file)) {
        if (specifier.startsWith("node:")) continue
        const target = specifier.startsWith(".") ? path.resolve(path.dirname(file), specifier) : undefined
        if (target !== undefined && target.startsWith(adapterDir + path.sep)) continue
        outside.push(`${path.relative(root, file)}: ${specifier}`)
      }
    }
    assert.deepStrictEqual(outside, [])
  })
})

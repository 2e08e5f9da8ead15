/**
 * The package's `exports` map: public modules resolve, internal folders do not (they may change in any release).
 * Resolved through the package's own name (Node's self-reference), against the built `dist`.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { root } from "./support.js"

const resolveAll = (specifiers: ReadonlyArray<string>): Record<string, string> => {
  const script = `
    const out = {}
    for (const s of ${JSON.stringify(specifiers)}) {
      try { require.resolve(s); out[s] = "ok" } catch (e) { out[s] = e.code }
    }
    process.stdout.write(JSON.stringify(out))`
  return JSON.parse(execFileSync(process.execPath, ["-e", script], { cwd: root, encoding: "utf8" }))
}

const name = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).name as string

describe("package exports", () => {
  it("public modules resolve", () => {
    const publics = [
      "",
      "/Supervisor",
      "/Errors",
      "/Agent",
      "/Protocol",
      "/Store/Store",
      "/Store/Sqlite",
      "/Store/Pg",
      "/Agent/AgentSupervisor",
      "/Agent/Config",
      "/Agent/Directory",
      "/TreeFile",
      "/AdminApi",
      "/LogFiles",
      "/Metrics",
      "/Typed",
      "/Conformance",
      "/Cluster",
      "/TreeFile/Cluster",
      "/schema/agent-supervisor.schema.json",
      "/package.json"
    ]
    const result = resolveAll(publics.map((p) => name + p))
    expect(Object.values(result).every((code) => code === "ok"), JSON.stringify(result)).toBe(true)
  })

  it("every internal module in dist is closed", () => {
    const internals: Array<string> = []
    const walk = (dir: string) => {
      for (const entry of fs.readdirSync(path.join(root, "dist", dir), { withFileTypes: true })) {
        const rel = dir === "" ? entry.name : `${dir}/${entry.name}`
        if (entry.isDirectory()) walk(rel)
        else if (entry.name.endsWith(".js") && rel.split("/").includes("internal")) internals.push(rel.slice(0, -3))
      }
    }
    walk("")
    expect(internals.length).toBeGreaterThan(5)
    const result = resolveAll(internals.map((p) => `${name}/${p}`))
    const open = Object.entries(result).filter(([, code]) => code !== "ERR_PACKAGE_PATH_NOT_EXPORTED")
    expect(open).toEqual([])
  })
})

import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as path from "node:path"
import { root } from "../support.js"

describe("Python adapter", () => {
  // The adapter's own suite is stdlib unittest (it must run where only Python is installed); run it from here so
  // `npm test` covers it.
  it("passes its unittest suite", () => {
    const result = spawnSync("python3", [path.join(root, "adapters", "python", "test_supervisor_adapter.py")], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
      timeout: 120_000
    })
    assert.strictEqual(result.status, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stderr, /\nOK/)
  }, 150_000)
})

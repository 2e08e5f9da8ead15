import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { root } from "../support.js"

/** The suite's bound as a whole; every read inside it has its own. */
const SUITE_TIMEOUT_MS = 360_000

describe("Python adapter", () => {
  // The adapter's own suite is stdlib unittest (it must run where only Python is installed); run it from here so
  // `npm test` covers it. It starts some 100 adapters one after the other: 16-23 s on a 2-core machine beside other
  // work, longer beside busy loops. Spawned asynchronously: a worker blocked in spawnSync that long misses vitest's
  // own RPC deadline ("Timeout calling onTaskUpdate") and fails the run.
  it("passes its unittest suite", async () => {
    const child = spawn("python3", [path.join(root, "adapters", "python", "test_supervisor_adapter.py")], {
      cwd: root,
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), SUITE_TIMEOUT_MS)
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on("error", reject)
      child.on("close", (code) => resolve(code))
    }).finally(() => clearTimeout(timer))
    assert.strictEqual(code, 0, `${stdout}\n${stderr}`)
    assert.match(stderr, /\nOK/)
  }, SUITE_TIMEOUT_MS + 30_000)
})

/**
 * The admin API's state file is one running process's: another `up` of the same tree file (or any admin API given
 * the same file) refuses to take it over while that process runs and answers; a file left by a process that is
 * gone is taken over. Real processes and a real listening socket.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as StateFile from "../src/internal/admin/stateFile.js"
import { failureOf } from "./support.js"

/** A process listening on a free port: its pid, its URL, and how to end it. */
const listener = Effect.acquireRelease(
  Effect.async<{ readonly child: childProcess.ChildProcess; readonly url: string }, Error>((resume) => {
    const child = childProcess.spawn(process.execPath, [
      "-e",
      `const s = require("node:net").createServer(() => {}).listen(0, "127.0.0.1", () => console.log(s.address().port))`
    ], { stdio: ["ignore", "pipe", "inherit"] })
    child.stdout!.once(
      "data",
      (chunk: Buffer) => resume(Effect.succeed({ child, url: `http://127.0.0.1:${String(chunk).trim()}` }))
    )
    child.once("error", (error) => resume(Effect.fail(error)))
  }),
  ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
)

const address = { host: "127.0.0.1", port: 0 }

describe("the admin API's state file", () => {
  it.scopedLive("another running process's is refused, named; one whose process is gone, or does not answer, is free", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "state-file-"))
      const file = path.join(dir, ".tree.yaml.admin.json")
      const { child, url } = yield* listener
      fs.writeFileSync(file, JSON.stringify({ url, token: "t", pid: child.pid }))
      const error = failureOf(yield* Effect.exit(StateFile.checkFree(file, address)))
      assert.strictEqual(error.reason, "state_file_in_use")
      assert.include(error.message, `is another running admin API's (pid ${child.pid}, ${url})`)
      // names what there is (the admin API's options have no state file of the tree file's section), and does not
      // advise a state file of its own alone, which would run the same tree twice (a new user's trial)
      assert.include(error.remediation, "would run the same agents again, under the same names and on the same store")
      assert.include(error.remediation, "AdminApi.layer's stateFile")
      // Not `up`'s alone: a library host holds one too
      assert.include(error.remediation, "Stop the process holding it first (its pid is above")
      assert.notInclude(error.remediation, "give this one a state file of its own")
      // Writing it (an admin API starting) fails the same way, and leaves the file as it was
      const before = fs.readFileSync(file, "utf8")
      const made = yield* Effect.exit(
        Effect.scoped(
          StateFile.make(file, { url: "http://127.0.0.1:1", token: Redacted.make("t"), pid: process.pid }, address)
        )
      )
      assert.strictEqual(failureOf(made).reason, "state_file_in_use")
      assert.strictEqual(fs.readFileSync(file, "utf8"), before)
      // A live process that answers nothing there (its pid taken over by another program): free
      fs.writeFileSync(file, JSON.stringify({ url: "http://127.0.0.1:1", token: "t", pid: child.pid }))
      assert.isUndefined(yield* StateFile.holder(file))
      // Gone (killed, as SIGKILL leaves the file behind): free
      fs.writeFileSync(file, JSON.stringify({ url, token: "t", pid: child.pid }))
      child.kill("SIGKILL")
      yield* Effect.promise(() => new Promise((resolve) => child.once("exit", resolve)))
      assert.isUndefined(yield* StateFile.holder(file))
      // Ours, missing, or not JSON: free
      fs.writeFileSync(file, JSON.stringify({ url, token: "t", pid: process.pid }))
      assert.isUndefined(yield* StateFile.holder(file))
      fs.writeFileSync(file, "{")
      assert.isUndefined(yield* StateFile.holder(file))
      assert.isUndefined(yield* StateFile.holder(path.join(dir, "none.json")))
      fs.rmSync(dir, { recursive: true, force: true })
    }))

  // A new user's finding: after up's third Ctrl-C (`process.exit`, no finalizer runs) the state file stayed, and the
  // next `status` said that up was gone.
  it("a process that exits without closing the API (process.exit) takes its state file with it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "state-file-"))
    const ours = path.join(dir, ".ours.admin.json")
    const taken = path.join(dir, ".taken.admin.json")
    // The host writes both, then another process takes `taken` over; then the host exits from inside the scope.
    const module = path.join(__dirname, "..", "dist", "internal", "admin", "stateFile.js")
    const script = `
        import * as Effect from "effect/Effect"
        import * as Redacted from "effect/Redacted"
        import * as fs from "node:fs"
        import * as StateFile from ${JSON.stringify(module)}
        const contents = { url: "http://127.0.0.1:1", token: Redacted.make("t"), pid: process.pid }
        const address = { host: "127.0.0.1", port: 0 }
        Effect.runFork(Effect.scoped(Effect.gen(function*() {
          yield* StateFile.make(${JSON.stringify(ours)}, contents, address)
          yield* StateFile.make(${JSON.stringify(taken)}, contents, address)
          fs.writeFileSync(${JSON.stringify(taken)}, "another's")
          console.log(fs.existsSync(${JSON.stringify(ours)}) ? "written" : "missing")
          process.exit(130)
        })))
      `
    const child = childProcess.spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: path.join(__dirname, ".."),
      encoding: "utf8",
      timeout: 30_000
    })
    assert.deepStrictEqual([child.status, child.stdout.trim()], [130, "written"], child.stderr)
    assert.isFalse(fs.existsSync(ours), "the state file outlived its process")
    assert.strictEqual(fs.readFileSync(taken, "utf8"), "another's", "another process's file is left as it is")
    fs.rmSync(dir, { recursive: true, force: true })
  })
})

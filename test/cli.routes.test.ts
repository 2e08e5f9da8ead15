/**
 * Which build runs a command line (`internal/cli/routes.ts`): a command that only talks to a running `up` from its
 * bundle (`dist/bin/remote.js`, one file, half the start time), every other line from the modules as built. Seen
 * from outside, through the built bin in a child process: the modules Node loads (`NODE_DEBUG=esm` names each as it
 * stores it, `module` each CommonJS module it looks for).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { grammar } from "../src/internal/cli/main.js"
import { isRemote, REMOTE_COMMANDS } from "../src/internal/cli/routes.js"
import { root, runCli, tempDir } from "./support.js"

const DIST = pathToFileURL(path.join(root, "dist")).href + "/"

/** The files (not Node's own modules) that `agent-supervisor ARGS` loaded in `cwd`, relative to dist/ or as they are. */
const loaded = (args: ReadonlyArray<string>, cwd: string) =>
  runCli(args, { cwd, env: { NODE_DEBUG: "esm,module" }, maxBuffer: 256 * 1024 * 1024 }).pipe(Effect.map((result) => ({
    ...result,
    files: [
      ...new Set([...result.stderr.matchAll(/^ESM \d+: Storing (file:\S+)/gm)].map((m) => m[1]!))
    ]
      .map((url) => url.startsWith(DIST) ? url.slice(DIST.length) : url)
      .sort()
  })))

describe("the CLI's two builds", () => {
  it("the bundle runs every command but up, validate and conformance, which load the library", () => {
    const loadsLibrary = ["up", "validate", "conformance"]
    assert.deepStrictEqual(
      [...REMOTE_COMMANDS].sort(),
      [...grammar.commands.keys()].filter((name) => !loadsLibrary.includes(name)).sort()
    )
  })

  it("a line goes to the bundle only when its first word is a remote command", () => {
    assert.isTrue(isRemote(["status", "--json"]))
    assert.isTrue(isRemote(["logs", "-f", "echo"]))
    for (
      const args of [[], ["up", "tree.yaml"], ["--help"], ["--version"], ["--log-level", "debug", "status"], ["Status"]]
    ) {
      assert.isFalse(isRemote(args), args.join(" "))
    }
  })

  it.scoped("status starts from the bundle: no module of dist/ but the entry's, none of node_modules", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cli-routes-")
      // Against an address that refuses: the client's HTTP layer (a lazy import) loads too
      const status = yield* loaded(["status", "--url", "http://127.0.0.1:1", "--token", "t"], dir)
      assert.strictEqual(status.code, 1)
      assert.match(status.stderr, /error: Cannot reach the admin API at http:\/\/127\.0\.0\.1:1/)
      assert.deepStrictEqual(status.files, [
        "bin/agent-supervisor.js",
        "bin/remote.js",
        "internal/cli/earlySignals.js",
        "internal/cli/routes.js",
        "internal/cli/version.js"
      ])
      // Nor a CommonJS module (NODE_DEBUG=module names each it looks for)
      assert.notInclude(status.stderr, "node_modules")
    }))

  it.scoped("validate starts from the modules as built: the library's, and effect from node_modules", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cli-routes-")
      const validate = yield* loaded(["validate", path.join(dir, "missing.yaml")], dir)
      assert.strictEqual(validate.code, 1)
      assert.notInclude(validate.files, "bin/remote.js")
      assert.include(validate.files, "internal/cli/bin.js")
      assert.isTrue(validate.files.some((file) => file.includes("/node_modules/effect/")), validate.files.join("\n"))
    }))

  it.effect("the bundle refuses a command of the modules' (the entry never sends one there), naming the route", () =>
    Effect.gen(function*() {
      const result = yield* Effect.async<{ readonly code: number | null; readonly stderr: string }>((resume) => {
        execFile(
          process.execPath,
          [path.join(root, "dist", "bin", "remote.js"), "validate", "examples/tree.yaml"],
          {
            cwd: root,
            timeout: 60_000
          },
          (error, _stdout, stderr) => resume(Effect.succeed({ code: error === null ? 0 : Number(error.code), stderr }))
        )
      })
      assert.strictEqual(result.code, 1)
      assert.include(result.stderr, "internal/cli/validate.js does not run from dist/bin/remote.js")
    }))
})

/**
 * `fromDirectory` with `user`: what the agent needs (the adapter, its code, the dependency install, its cwd) is
 * checked reachable by that user before anything runs, and the default dependency cache is one it can read.
 * The access check itself against real modes, owners and groups (`limits/access.ts`).
 */
import * as Path from "@effect/platform/Path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Directory from "../../../src/Agent/Directory.js"
import { defaultCacheDir } from "../../../src/Agent/internal/directory/resolve.js"
import * as Access from "../../../src/Agent/internal/limits/access.js"
import { failureOf, fixture, tempDir, TestLive } from "../../support.js"

const isRoot = process.getuid?.() === 0
const NOBODY = { uid: 65534, gid: 65534 }

/** The node-deps agent copied into `parent`, run as nobody with its installs in `cache`. */
const nodeDeps = (parent: string, cache: string): Directory.DirectoryOptions => {
  const agentDir = path.join(parent, "node-deps")
  fs.cpSync(fixture("directories", "node-deps"), agentDir, { recursive: true })
  return {
    agentName: "as-nobody",
    agentDir,
    cacheDir: cache,
    user: "nobody",
    inheritEnv: ["PATH"],
    gracefulTimeout: "2 seconds",
    sigtermTimeout: "2 seconds",
    startupTimeout: "20 seconds",
    requestTimeout: "20 seconds"
  }
}

/** A directory for the agent and a dependency cache, both open to every user (0755). */
const openDirs = Effect.gen(function*() {
  const parent = yield* tempDir("dir-user")
  const cache = yield* tempDir("dir-user-cache")
  fs.chmodSync(parent, 0o755)
  fs.chmodSync(cache, 0o755)
  return { parent, cache }
})

const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1])

describe("fromDirectory with user", () => {
  it.scopedLive.skipIf(!isRoot)(
    "a dependency cache the user cannot read: a ConfigError naming it, its mode and owner; nothing runs (no install)",
    () =>
      Effect.gen(function*() {
        const parent = yield* tempDir("dir-user")
        fs.chmodSync(parent, 0o755)
        const cache = yield* tempDir("dir-user-cache") // mkdtemp: 0700, root's
        const error = failureOf(yield* Effect.exit(Directory.resolve(nodeDeps(parent, cache))))
        assert.strictEqual(error._tag, "ConfigError")
        if (error._tag !== "ConfigError") return
        assert.strictEqual(error.field, "user")
        assert.strictEqual(error.value, "nobody")
        // Before the install, which runs as the user
        assert.include(error.rule, `uid 65534 (gid 65534) may not read ${cache} (mode 0700, owner 0:0)`)
        assert.include(error.rule, "cacheDir")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive.skipIf(!isRoot)(
    "readable by the user: the install is used and the agent runs as uid 65534",
    () =>
      Effect.gen(function*() {
        const { cache, parent } = yield* openDirs
        const agent = yield* Directory.fromDirectory(nodeDeps(parent, cache))
        assert.deepStrictEqual(yield* agent.handleEvent("nobody"), { greeting: "hello nobody", version: 1 })
        const pid = Option.getOrThrow((yield* agent.metadata).pid)
        assert.strictEqual(uidOf(pid), 65534)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive.skipIf(!isRoot)(
    "the install runs as the user, with the agent's environment, not the supervisor's; the install is then root's",
    () =>
      Effect.gen(function*() {
        const { cache, parent } = yield* openDirs
        const options = nodeDeps(parent, cache)
        // The package's own postinstall: the agent's code, run by npm install. It says as whom and with what.
        const manifest = path.join(options.agentDir, "package.json")
        fs.writeFileSync(
          manifest,
          JSON.stringify({
            ...JSON.parse(fs.readFileSync(manifest, "utf8")),
            scripts: {
              postinstall: "node -e \"require('fs').writeFileSync('installed-by.json', JSON.stringify({ uid: " +
                "process.getuid(), gid: process.getgid(), secret: process.env.SUPERVISOR_ONLY ?? null, " +
                "home: process.env.HOME ?? null }))\""
            }
          })
        )
        // In the supervisor's environment, not passed on (inheritEnv: ["PATH"])
        yield* Effect.acquireRelease(
          Effect.sync(() => (process.env.SUPERVISOR_ONLY = "root's secret")),
          () => Effect.sync(() => delete process.env.SUPERVISOR_ONLY)
        )
        const config = yield* Directory.resolve(options)
        const report = path.join(config.cwd!, "installed-by.json")
        assert.deepStrictEqual(JSON.parse(fs.readFileSync(report, "utf8")), {
          uid: 65534,
          gid: 65534,
          secret: null,
          home: "/nonexistent"
        })
        // Handed back: an agent of that account cannot change the install that others read
        assert.strictEqual(fs.lstatSync(report).uid, 0)
        assert.strictEqual(fs.lstatSync(config.cwd!).uid, 0)
        assert.isFalse(fs.existsSync(path.join(config.cwd!, ".installer-scratch")), "the scratch directory is gone")
        const agent = yield* Directory.fromDirectory(options)
        assert.deepStrictEqual(yield* agent.handleEvent("nobody"), { greeting: "hello nobody", version: 1 })
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive.skipIf(!isRoot)(
    "a Python install for the user (pip run as it, as npm is above): a local wheel offline, handed back to root, imported",
    () =>
      Effect.gen(function*() {
        const { cache, parent } = yield* openDirs
        const agentDir = path.join(parent, "python-wheel")
        fs.cpSync(fixture("directories", "python-wheel"), agentDir, { recursive: true })
        execFileSync("python3", [
          fixture("directories", "make_wheel.py"),
          path.join(agentDir, "localdep-0.1-py3-none-any.whl")
        ])
        fs.chmodSync(path.join(agentDir, "localdep-0.1-py3-none-any.whl"), 0o644)
        const options: Directory.DirectoryOptions = {
          agentName: "py-wheel-nobody",
          agentDir,
          cacheDir: cache,
          user: "nobody",
          inheritEnv: false,
          env: { PATH: "/usr/local/bin:/usr/bin:/bin", PIP_NO_INDEX: "1" },
          startupTimeout: "20 seconds"
        }
        const config = yield* Directory.resolve(options)
        const target = config.env!.PYTHONPATH!.split(path.delimiter)[0]
        // written by pip in a temporary directory handed to nobody, then taken back by the supervisor
        const installed = path.join(target, "localdep", "__init__.py")
        assert.strictEqual(fs.lstatSync(installed).uid, 0)
        assert.isFalse(fs.existsSync(path.join(target, ".installer-scratch")))
        const agent = yield* Directory.fromDirectory(options)
        const reply = (yield* agent.handleEvent("you")) as { greeting: string; from: string }
        assert.strictEqual(reply.greeting, "hello you")
        assert.isTrue(reply.from.startsWith(target), reply.from)
        assert.strictEqual(uidOf(Option.getOrThrow((yield* agent.metadata).pid)), 65534)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive.skipIf(!isRoot)(
    "the Python interpreter is found once on the agent's PATH: one the user cannot run is named before anything runs",
    () =>
      Effect.gen(function*() {
        // A python3 in a directory only root may enter, first on the agent's PATH (as pyenv's under /root is).
        const closed = yield* tempDir("dir-user-python")
        const python = path.join(closed, "python3")
        fs.writeFileSync(python, "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n", { mode: 0o755 })
        const parent = yield* tempDir("dir-user")
        fs.chmodSync(parent, 0o755)
        const agentDir = path.join(parent, "python-basic")
        fs.cpSync(fixture("directories", "python-basic"), agentDir, { recursive: true })
        const options: Directory.DirectoryOptions = {
          agentName: "py-nobody",
          agentDir,
          cacheDir: parent,
          user: "nobody",
          inheritEnv: false,
          env: { PATH: `${closed}:/usr/local/bin:/usr/bin:/bin` },
          startupTimeout: "20 seconds"
        }
        const error = failureOf(yield* Effect.exit(Directory.resolve(options)))
        assert.strictEqual(error._tag, "ConfigError")
        if (error._tag === "ConfigError") {
          assert.include(error.rule, `uid 65534 (gid 65534) may not enter ${closed} (mode 0700, owner 0:0)`)
          assert.include(error.rule, "env.PATH")
        }
        // With a PATH whose python3 the user can run, that one file is the agent's command.
        const open = { ...options, env: { PATH: "/usr/local/bin:/usr/bin:/bin" } }
        const config = yield* Directory.resolve(open)
        assert.isTrue(path.isAbsolute(config.command), config.command)
        const agent = yield* Directory.fromDirectory(open)
        assert.isDefined(yield* agent.handleEvent({ text: "hi" }))
        assert.strictEqual(uidOf(Option.getOrThrow((yield* agent.metadata).pid)), 65534)
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.effect("the default cache of an agent run as another user is the system's, not root's home", () =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      assert.strictEqual(defaultCacheDir(path, true), "/var/cache/effect-agent-supervisor")
      assert.match(defaultCacheDir(path, false), /effect-agent-supervisor$/)
      assert.notStrictEqual(defaultCacheDir(path, false), defaultCacheDir(path, true))
    }).pipe(Effect.provide(Path.layer)))
})

describe("Access.unreachable", () => {
  it.scoped.skipIf(!isRoot)(
    "owner, group and other bits; every directory on the way; links followed",
    () =>
      Effect.gen(function*() {
        const top = yield* tempDir("access")
        fs.chmodSync(top, 0o755)
        const closed = path.join(top, "closed")
        fs.mkdirSync(closed, { mode: 0o700 })
        const file = path.join(closed, "f")
        fs.writeFileSync(file, "x", { mode: 0o644 })
        assert.strictEqual(
          Access.unreachable(NOBODY, file, "file"),
          `uid 65534 (gid 65534) may not enter ${closed} (mode 0700, owner 0:0)`
        )
        assert.isUndefined(Access.unreachable({ uid: 0, gid: 0 }, file, "file"), "root passes")
        // The group's bits for a member of the file's group; the owner's for its owner.
        fs.chownSync(closed, 0, NOBODY.gid)
        fs.chmodSync(closed, 0o750)
        assert.isUndefined(Access.unreachable(NOBODY, file, "file"))
        fs.chmodSync(file, 0o600)
        assert.include(Access.unreachable(NOBODY, file, "file"), `may not read ${file} (mode 0600`)
        fs.chownSync(file, NOBODY.uid, 0)
        assert.isUndefined(Access.unreachable(NOBODY, file, "file"))
        // A directory to read from needs reading and entering.
        const listOnly = path.join(top, "list-only")
        fs.mkdirSync(listOnly, { mode: 0o744 })
        assert.include(Access.unreachable(NOBODY, listOnly, "directory"), `may not enter ${listOnly}`)
        // A link is judged by where it leads.
        const link = path.join(top, "link")
        fs.symlinkSync(listOnly, link)
        assert.include(Access.unreachable(NOBODY, link, "directory"), `may not enter ${listOnly}`)
        assert.isUndefined(Access.unreachable(NOBODY, path.join(top, "missing"), "file"), "not this check's business")
      })
  )
})

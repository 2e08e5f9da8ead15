/**
 * `fromDirectory` with `user`: what the agent needs (the adapter, its code, the dependency install, its cwd) is
 * checked reachable by that user before anything runs, and the default dependency cache is one it can read.
 * The access check itself against real modes, owners and groups (`limits/access.ts`).
 */
import * as Path from "@effect/platform/Path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
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

const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1])

describe("fromDirectory with user", () => {
  it.scopedLive.skipIf(!isRoot)(
    "a dependency cache the user cannot enter: a ConfigError naming it, its mode and owner; nothing runs",
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
        assert.include(error.rule, `uid 65534 (gid 65534) may not enter ${cache} (mode 0700, owner 0:0)`)
        assert.include(error.rule, "cacheDir")
      }).pipe(Effect.provide(TestLive)),
    60_000
  )

  it.scopedLive.skipIf(!isRoot)(
    "readable by the user: the install is used and the agent runs as uid 65534",
    () =>
      Effect.gen(function*() {
        const parent = yield* tempDir("dir-user")
        const cache = yield* tempDir("dir-user-cache")
        fs.chmodSync(parent, 0o755)
        fs.chmodSync(cache, 0o755)
        const agent = yield* Directory.fromDirectory(nodeDeps(parent, cache))
        assert.deepStrictEqual(yield* agent.handleEvent("nobody"), { greeting: "hello nobody", version: 1 })
        const pid = Option.getOrThrow((yield* agent.metadata).pid)
        assert.strictEqual(uidOf(pid), 65534)
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

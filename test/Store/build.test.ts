/**
 * A store layer fails when it is built for what waiting cannot repair (a driver that does not load, a path that
 * cannot be used), and builds for what can pass (a database down, a file locked): the split the README's
 * "Persistent stores" draws. Broken installs are real module resolution in a child process, bent by hooks
 * registered with `node:module`'s `register` (`fixtures/redirect.mjs`), not mocks: the application must exit
 * non-zero with the `StoreError`, not 0 after warnings.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import type { StoreError } from "../../src/Errors.js"
import * as Store from "../../src/Store/Store.js"
import { closedPort, pgUrl, tempDir, withHostAndPort } from "./services.js"

const root = fileURLToPath(new URL("../..", import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url))

/** Builds `layer` in a scope of its own and gives back the error it fails with. */
const buildError = <E>(layer: Layer.Layer<Store.Store, E>) => Effect.flip(Effect.scoped(Layer.build(layer)))

/** Narrows a build failure to the `StoreError` it must be. */
const storeError = (error: { readonly _tag: string; readonly message: string }): StoreError => {
  if (error._tag !== "StoreError") return assert.fail(`a StoreError, not ${error.message}`)
  return error as StoreError
}

describe("Store.layerSqlite at build", () => {
  it.scoped("creates the missing directories of its file: rows are written, then read back by the next run", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "data", "nested", "deeper", "agents.sqlite")
      const state: Store.StateRecord = { agent_name: "echo", state: "RUNNING", pid: 7, restart_count: 1, updated_at: 5 }
      yield* Effect.flatMap(Store.Store, (store) =>
        Effect.zipRight(
          store.saveState(state),
          store.saveMetric({ event: "tick", agent_name: "echo", timestamp: 5 })
        )).pipe(Effect.provide(Store.layerSqlite({ filename })))
      assert.isTrue(fs.statSync(filename).isFile())

      const [restored, metrics] = yield* Effect.all([
        Store.restore("echo"),
        Effect.flatMap(Store.Store, (store) => store.listMetrics())
      ]).pipe(Effect.provide(Store.layerSqlite({ filename })))
      assert.deepStrictEqual(restored.state, Option.some(state))
      assert.deepStrictEqual(metrics, [{ event: "tick", agent_name: "echo", timestamp: 5 }])
    }))

  it.scoped("a regular file where a directory must be: fails with a StoreError naming it, the file untouched", () =>
    Effect.gen(function*() {
      const blocker = path.join(yield* tempDir(), "data")
      fs.writeFileSync(blocker, "not a directory")
      for (const filename of [path.join(blocker, "agents.sqlite"), path.join(blocker, "nested", "agents.sqlite")]) {
        const error = storeError(yield* buildError(Store.layerSqlite({ filename })))
        assert.strictEqual(error.reason, "path_unusable")
        assert.strictEqual(error.path, path.dirname(filename))
        assert.include(["EEXIST", "ENOTDIR"], error.code)
        assert.include(error.message, `cannot create the directory ${path.dirname(filename)} for ${filename}`)
        assert.match(error.remediation, new RegExp(`A file is in the way of the directory ${path.dirname(filename)}`))
      }
      assert.strictEqual(fs.readFileSync(blocker, "utf8"), "not a directory")
    }))

  it.scoped("a directory where the file must be: fails with a StoreError naming it", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.sqlite")
      fs.mkdirSync(filename)
      const error = storeError(yield* buildError(Store.layerSqlite({ filename })))
      assert.strictEqual(error.reason, "path_unusable")
      assert.strictEqual(error.path, filename)
      assert.strictEqual(error.code, "SQLITE_CANTOPEN")
      assert.match(error.remediation, /not a directory/)
    }))

  it.scoped("a file that is not a SQLite database: fails with a StoreError, the file untouched", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir(), "agents.log")
      const text = "2026-01-01 an application's log, not its store\n".repeat(100)
      fs.writeFileSync(filename, text)
      const error = storeError(yield* buildError(Store.layerSqlite({ filename })))
      assert.strictEqual(error.reason, "path_unusable")
      assert.strictEqual(error.code, "SQLITE_NOTADB")
      assert.match(error.message, /is not a SQLite database/)
      assert.match(error.remediation, /move this one aside/)
      assert.strictEqual(fs.readFileSync(filename, "utf8"), text)
    }))

  it.effect("a bad option is still a ConfigError, before anything is created", () =>
    Effect.gen(function*() {
      const dir = path.join(yield* Effect.scoped(tempDir()), "never")
      const error = yield* buildError(Store.layerSqlite({ filename: path.join(dir, "x.sqlite"), maxMetrics: -1 }))
      assert.strictEqual(error._tag, "ConfigError")
      assert.isFalse(fs.existsSync(dir))
    }))
})

/** What the application fixture did: its exit code, output, what it saved and the error it printed, if any. */
interface AppRun {
  readonly code: number | null
  /** Its stdout (where the logger writes too) and stderr. */
  readonly output: string
  readonly saved: boolean | undefined
  readonly error: Record<string, unknown> | undefined
}

const jsonLine = (text: string, start: string) => {
  const line = text.split("\n").find((l) => l.startsWith(start))
  return line === undefined ? undefined : JSON.parse(line)
}

/** What a specifier resolves to instead (see `fixtures/redirect-hooks.mjs`). */
type Redirect = { readonly file: string } | { readonly missingFrom: string }

/**
 * Runs `fixtures/store-app.ts` in a child Node.js, its module resolution bent by `redirect`; killed with SIGKILL
 * after `timeout` millis (its `code` is then `null`).
 */
const runApp = (args: ReadonlyArray<string>, redirect: Record<string, Redirect> = {}, timeout = 60_000) =>
  Effect.async<AppRun>((resume) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "--import", pathToFileURL(fixture("redirect.mjs")).href, fixture("store-app.ts"), ...args],
      {
        cwd: root,
        env: { ...process.env, STORE_TEST_REDIRECT: JSON.stringify(redirect) },
        timeout,
        killSignal: "SIGKILL"
      },
      (_, stdout, stderr) =>
        resume(Effect.succeed({
          code: child.exitCode,
          output: `exit code ${child.exitCode} (signal ${child.signalCode})\n${stdout}\n${stderr}`,
          saved: jsonLine(stdout, "{\"saved\"")?.saved,
          error: jsonLine(stderr, "{")
        }))
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/**
 * A copy of the installed `better-sqlite3` (its JavaScript, and the `bindings` it loads its native module with),
 * with `binary` as its native module, or none: what a failed or foreign build leaves.
 */
const brokenBetterSqlite = (binary: string | undefined) =>
  Effect.gen(function*() {
    const modules = path.join(yield* tempDir("driver"), "node_modules")
    for (const name of ["better-sqlite3/package.json", "better-sqlite3/lib", "bindings", "file-uri-to-path"]) {
      fs.cpSync(path.join(root, "node_modules", name), path.join(modules, name), { recursive: true })
    }
    if (binary !== undefined) {
      const release = path.join(modules, "better-sqlite3", "build", "Release")
      fs.mkdirSync(release, { recursive: true })
      fs.writeFileSync(path.join(release, "better_sqlite3.node"), binary)
    }
    return { "better-sqlite3": { file: path.join(modules, "better-sqlite3", "lib", "index.js") } }
  })

/** The application failed to start with a `StoreError` saying which driver did not load and what to run. */
const failedWithDriver = (
  run: AppRun,
  expected: { readonly driver: string; readonly code?: string; readonly detail: RegExp; readonly remediation: RegExp }
) => {
  const output = run.output
  assert.notStrictEqual(run.code, 0, output)
  assert.isUndefined(run.saved, output)
  assert.isDefined(run.error, output)
  const error = run.error!
  assert.strictEqual(error._tag, "StoreError", output)
  assert.strictEqual(error.reason, "driver_unavailable", output)
  assert.strictEqual(error.driver, expected.driver, output)
  if (expected.code !== undefined) assert.strictEqual(error.code, expected.code, output)
  assert.match(String(error.message), expected.detail, output)
  assert.match(String(error.remediation), expected.remediation, output)
}

const rebuild = /`npm rebuild better-sqlite3`.*`npm install @effect\/sql-sqlite-node@\^0\.53\.0`/

// In a child process: the hang this guards against was a synchronous loop (Node's `mkdirSync(dir, { recursive: true })`
// under /proc), which no timeout in this worker could interrupt. The child is killed after 60 s: a failure, not a hang.
describe.sequential("Store.layerSqlite where no directory can be created (a pseudo filesystem): a child process", () => {
  it.scopedLive.skipIf(process.platform !== "linux")(
    "/proc and /sys: the layer fails at once with a StoreError naming the directory, never hangs",
    () =>
      Effect.gen(function*() {
        const filenames = ["/proc/x/y.sqlite", "/proc/self/x/agents.sqlite", "/proc/sys/x/y/agents.sqlite"]
        if (fs.existsSync("/sys/kernel")) filenames.push("/sys/x/y.sqlite")
        // (a hang is what this catches: runApp's 60 s bound, not a tight one. Two at a time: four applications
        // loading through tsx at once took over 15 s on a slow 2-core machine beside the other tests)
        const runs = yield* Effect.forEach(filenames, (filename) => runApp(["sqlite", filename]), { concurrency: 2 })
        runs.forEach((run, i) => {
          const filename = filenames[i]
          assert.strictEqual(run.code, 1, `${filename}: ${run.output}`)
          assert.isUndefined(run.saved, run.output)
          const error = run.error
          assert.isDefined(error, run.output)
          assert.strictEqual(error!._tag, "StoreError", run.output)
          assert.strictEqual(error!.reason, "path_unusable", run.output)
          assert.strictEqual(error!.path, path.dirname(filename), run.output)
          assert.include(String(error!.message), `cannot create the directory ${path.dirname(filename)}`, run.output)
          assert.match(
            String(error!.remediation),
            /its filesystem refuses one \(\/proc and \/sys .*Set `filename` to a path/,
            run.output
          )
        })
      }),
    150_000
  )
})

describe.sequential("a store driver that cannot load: the application fails to start (a child process)", () => {
  it.scopedLive("control: on this install the application writes data/agents.sqlite (its directory made), exit 0", () =>
    Effect.gen(function*() {
      const run = yield* runApp(["sqlite", path.join(yield* tempDir(), "data", "agents.sqlite")])
      assert.strictEqual(run.code, 0, run.output)
      assert.isTrue(run.saved, run.output)
    }))

  it.scopedLive("better-sqlite3 built for another Node.js, failing as it loads", () =>
    Effect.gen(function*() {
      const run = yield* runApp(["sqlite", path.join(yield* tempDir(), "agents.sqlite")], {
        "better-sqlite3": { file: fixture("abi-mismatch.cjs") }
      })
      failedWithDriver(run, {
        driver: "better-sqlite3",
        code: "ERR_DLOPEN_FAILED",
        detail: /did not load .*compiled against a different Node\.js version/,
        remediation: rebuild
      })
    }))

  it.scopedLive("better-sqlite3 whose native module is not a loadable binary, failing at its first database", () =>
    Effect.gen(function*() {
      const redirect = yield* brokenBetterSqlite("not an ELF shared object")
      const run = yield* runApp(["sqlite", path.join(yield* tempDir(), "agents.sqlite")], redirect)
      failedWithDriver(run, {
        driver: "better-sqlite3",
        code: "ERR_DLOPEN_FAILED",
        detail: /Store open failed: the driver better-sqlite3 did not load .*better_sqlite3\.node/,
        remediation: rebuild
      })
    }))

  it.scopedLive("better-sqlite3 whose native module was never built", () =>
    Effect.gen(function*() {
      const redirect = yield* brokenBetterSqlite(undefined)
      const run = yield* runApp(["sqlite", path.join(yield* tempDir(), "agents.sqlite")], redirect)
      failedWithDriver(run, {
        driver: "better-sqlite3",
        detail: /did not load \(Could not locate the bindings file/,
        remediation: rebuild
      })
    }))

  it.scopedLive("@effect/sql-sqlite-node not installed", () =>
    Effect.gen(function*() {
      const run = yield* runApp(["sqlite", path.join(yield* tempDir(), "agents.sqlite")], {
        "@effect/sql-sqlite-node/SqliteClient": { missingFrom: yield* tempDir("empty") }
      })
      failedWithDriver(run, {
        driver: "@effect/sql-sqlite-node",
        code: "ERR_MODULE_NOT_FOUND",
        detail: /Store load failed: the driver @effect\/sql-sqlite-node did not load/,
        remediation: /^Install the store's driver: `npm install @effect\/sql-sqlite-node@\^0\.53\.0`/
      })
    }))

  it.scopedLive("pg not installed: Store.layerPg fails at build, before any connection", () =>
    Effect.gen(function*() {
      const url = withHostAndPort(pgUrl, "127.0.0.1", yield* closedPort())
      const run = yield* runApp(["pg", url], { pg: { missingFrom: yield* tempDir("empty") } })
      failedWithDriver(run, {
        driver: "pg",
        code: "ERR_MODULE_NOT_FOUND",
        detail: /Cannot find package 'pg'/,
        remediation: /`npm install @effect\/sql-pg@\^0\.53\.0` \(it brings pg\)/
      })
    }))

  it.scopedLive("@effect/sql-pg not installed", () =>
    Effect.gen(function*() {
      const url = withHostAndPort(pgUrl, "127.0.0.1", yield* closedPort())
      const run = yield* runApp(["pg", url], { "@effect/sql-pg/PgClient": { missingFrom: yield* tempDir("empty") } })
      failedWithDriver(run, {
        driver: "@effect/sql-pg",
        code: "ERR_MODULE_NOT_FOUND",
        detail: /the driver @effect\/sql-pg did not load/,
        remediation: /`npm install @effect\/sql-pg@\^0\.53\.0`;/
      })
    }))

  it.scopedLive("an outage is not a broken install: PostgreSQL down at start, the application starts and exits 0", () =>
    Effect.gen(function*() {
      const run = yield* runApp(["pg", withHostAndPort(pgUrl, "127.0.0.1", yield* closedPort())])
      assert.strictEqual(run.code, 0, run.output)
      assert.isFalse(run.saved, run.output)
      assert.isUndefined(run.error, run.output)
      assert.match(run.output, /Store outage started.*ECONNREFUSED/)
    }))
})

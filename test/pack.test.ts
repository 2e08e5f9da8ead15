/**
 * The package as a user gets it: packed from a clean copy of the repository (no `dist/`: `prepack` builds it),
 * installed into a fresh project outside this repository, and run from there: a TypeScript program, type-checked
 * against the shipped declarations, starts a Python agent located through `Adapters`, sends it one request and stops
 * it, then exits 0 on its own.
 *
 * The install is offline: the tarball, plus the peer dependencies the program needs, linked from this repository's
 * `node_modules` (`file:` paths; npm links them, in well under a second). No SQL package (`@effect/sql*`,
 * `@effect/experimental`) is installed where the package can resolve it: the core must not need one. A
 * module-resolution hook fails the program if anything resolves into this repository outside `node_modules`.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { root } from "./support.js"

/** How long one step (copy, pack with its build, install, type-check, run) may take before it is killed. */
const STEP_TIMEOUT_MS = 120_000

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

// Asynchronous on purpose: a worker blocked in spawnSync for the ~10 s of a build misses vitest's RPC deadline.
const run = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<Ran> =>
  new Promise((resolve, reject) => {
    // npm's own variables (set when this runs under `npm test`) would point the nested npm at this repository
    const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)))
    const child = spawn(command, args, { cwd, env: { ...env, NO_UPDATE_NOTIFIER: "1" } })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), STEP_TIMEOUT_MS)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

const succeed = async (command: string, args: ReadonlyArray<string>, cwd: string): Promise<string> => {
  const ran = await run(command, args, cwd)
  assert.strictEqual(ran.code, 0, `${command} ${args.join(" ")} in ${cwd}:\n${ran.stdout}\n${ran.stderr}`)
  return ran.stdout
}

const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
  readonly name: string
  readonly version: string
  readonly dependencies: Record<string, string>
  readonly peerDependencies: Record<string, string>
  readonly peerDependenciesMeta: Record<string, { readonly optional?: boolean }>
  readonly devDependencies: Record<string, string>
}
const installedVersion = (name: string): string =>
  JSON.parse(fs.readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8")).version

/** `version` satisfies a caret range `^a.b.c` (the only form our peer ranges use). */
const satisfiesCaret = (version: string, range: string): boolean => {
  const match = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range)
  if (match === null) return false
  const [major, minor, patch] = match.slice(1).map(Number)
  const [vMajor, vMinor, vPatch] = version.split(/[.+-]/).slice(0, 3).map(Number)
  if (vMajor !== major) return false
  if (major > 0) return vMinor > minor || (vMinor === minor && vPatch >= patch)
  return vMinor === minor && vPatch >= patch
}

const program = `import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Option } from "effect"
import { Adapters, AgentSupervisor, Store } from "effect-agent-supervisor"

const main = Effect.gen(function*() {
  const agent = yield* AgentSupervisor.make({
    name: "echo",
    ...Adapters.pythonCallback("agents/echo.py", "handle"),
    requestTimeout: "30 seconds"
  })
  const reply = yield* agent.handleEvent({ text: "from the tarball" })
  const pid = Option.getOrNull((yield* agent.metadata).pid)
  yield* agent.stop
  const state = yield* agent.state
  yield* Console.log(JSON.stringify({ reply, pid, state, python: Adapters.python, node: Adapters.node }))
})

NodeRuntime.runMain(main.pipe(Effect.scoped, Effect.provide(Layer.merge(NodeContext.layer, Store.layerMemory))))
`

// Fails any import that resolves into this repository, except its node_modules (where the linked peers live).
const guard = `let repository
export const initialize = (data) => { repository = data.repository }
export const resolve = async (specifier, context, nextResolve) => {
  const resolved = await nextResolve(specifier, context)
  if (resolved.url.startsWith(repository) && !resolved.url.startsWith(repository + "node_modules/")) {
    throw new Error("resolved into the repository: " + resolved.url + " (from " + context.parentURL + ")")
  }
  return resolved
}
`

describe.sequential("the packed package", () => {
  let work = ""
  let tarball = ""
  let files: ReadonlyArray<string> = []

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "eas-pack-"))
    // A clean clone with the working tree's changes: tracked and untracked files, none that git ignores (dist/).
    const clone = path.join(work, "clone")
    const listed = (await succeed("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], root))
      .split("\0")
      .filter((file) => file !== "" && fs.existsSync(path.join(root, file)))
    for (const file of new Set(listed)) {
      fs.mkdirSync(path.dirname(path.join(clone, file)), { recursive: true })
      fs.copyFileSync(path.join(root, file), path.join(clone, file))
    }
    // The build's tools (tsc, @types/node); npm pack itself never reads node_modules
    fs.symlinkSync(path.join(root, "node_modules"), path.join(clone, "node_modules"))
    const packs = path.join(work, "packs")
    fs.mkdirSync(packs)
    const packed = JSON.parse(await succeed("npm", ["pack", "--json", "--pack-destination", packs], clone)) as [
      { readonly filename: string; readonly files: ReadonlyArray<{ readonly path: string }> }
    ]
    tarball = path.join(packs, packed[0].filename)
    files = packed[0].files.map((file) => file.path)
  }, 2 * STEP_TIMEOUT_MS)

  afterAll(() => {
    if (work !== "") fs.rmSync(work, { recursive: true, force: true })
  })

  it("ships the built JavaScript, the declarations, the sources its maps point at, LICENSE, the adapters and the docs", () => {
    for (
      const file of [
        "package.json",
        "README.md",
        "LICENSE",
        "dist/index.js",
        "dist/index.d.ts",
        "dist/Adapters.js",
        "dist/Adapter/node.js",
        "dist/bin/agent-supervisor.js",
        "dist/bin/remote.js",
        "dist/bin/remote.licenses.txt",
        "adapters/python/supervisor_adapter.py",
        // The agent the conformance kit's diagnosis names, and the docs run
        "adapters/python/conformance_agent.py",
        "adapters/go/go.mod",
        "adapters/go/agent/agent.go",
        "schema/agent-supervisor.schema.json",
        "src/index.ts",
        // What the README links to, and the conformance kit's diagnosis cites
        "docs/PROTOCOL.md",
        "docs/CONFORMANCE.md"
      ]
    ) assert.include(files, file)
    const shipped = new Set(files)
    // No tests, fixtures or repository tooling
    const stray = files.filter((file) =>
      /(^|\/)(test|tests|bench|examples|scripts|\.ci)\//.test(file) ||
      /\.test\.|(^|\/)test_[^/]*\.py$|_test\.go$/.test(file)
    )
    assert.deepStrictEqual(stray, [])
    // Every built module comes from a source file (no leftovers of an older build), but the remote commands'
    // bundle, built from dist/ itself (scripts/bundleCli.mjs)
    const orphans = files.filter((file) =>
      /^dist\/.*\.js$/.test(file) && file !== "dist/bin/remote.js" && !shipped.has(`src/${file.slice(5, -3)}.ts`)
    )
    assert.deepStrictEqual(orphans, [])
    // Every map points at files that are in the package
    const unpacked = path.join(work, "unpacked")
    fs.mkdirSync(unpacked)
    return succeed("tar", ["-xzf", tarball, "-C", unpacked], work).then(() => {
      const broken: Array<string> = []
      const maps = files.filter((file) => file.endsWith(".map"))
      assert.isAbove(maps.length, 10)
      for (const map of maps) {
        const absolute = path.join(unpacked, "package", map)
        const { sources } = JSON.parse(fs.readFileSync(absolute, "utf8")) as { readonly sources: ReadonlyArray<string> }
        for (const source of sources) {
          const target = path.relative(path.join(unpacked, "package"), path.resolve(path.dirname(absolute), source))
          if (!shipped.has(target)) broken.push(`${map} -> ${source}`)
        }
      }
      assert.deepStrictEqual(broken, [])
      assert.notStrictEqual(fs.statSync(path.join(unpacked, "package", "dist/Adapter/node.js")).mode & 0o111, 0)
    })
  })

  it("declares effect and the platform as peers this repository's dev copies satisfy, the SQL drivers optional", () => {
    // The command line's parser and its printers (peers of @effect/cli), the config file's parsers
    assert.deepStrictEqual(Object.keys(manifest.dependencies), [
      "@effect/cli",
      "@effect/printer",
      "@effect/printer-ansi",
      "smol-toml",
      "yaml"
    ])
    for (const [name, range] of Object.entries(manifest.peerDependencies)) {
      assert.isDefined(manifest.devDependencies[name], `${name} has a dev copy`)
      assert.isTrue(satisfiesCaret(installedVersion(name), range), `${name}@${installedVersion(name)} in ${range}`)
    }
    const optional = Object.keys(manifest.peerDependenciesMeta).filter((name) =>
      manifest.peerDependenciesMeta[name].optional === true
    ).sort()
    assert.deepStrictEqual(optional, [
      "@effect/cluster",
      "@effect/experimental",
      "@effect/opentelemetry",
      "@effect/rpc",
      "@effect/sql",
      "@effect/sql-pg",
      "@effect/sql-sqlite-node",
      "@effect/workflow"
    ])
    for (const name of ["effect", "@effect/platform", "@effect/platform-node"]) {
      assert.isDefined(manifest.peerDependencies[name], name)
      assert.notInclude(optional, name)
    }
  })

  it("installs into a fresh project and runs a Python agent found through Adapters", async () => {
    const app = path.join(work, "app")
    fs.mkdirSync(path.join(app, "agents"), { recursive: true })
    const linked = (name: string) => `file:${path.join(root, "node_modules", name)}`
    const dependencies = {
      [manifest.name]: `file:${tarball}`,
      // What a user installs beside it: the required peers (no SQL driver) and the package's own dependencies
      "effect": linked("effect"),
      "@effect/platform": linked("@effect/platform"),
      "@effect/platform-node": linked("@effect/platform-node"),
      "@effect/cli": linked("@effect/cli"),
      "@effect/printer": linked("@effect/printer"),
      "@effect/printer-ansi": linked("@effect/printer-ansi"),
      "smol-toml": linked("smol-toml"),
      "yaml": linked("yaml")
    }
    fs.writeFileSync(
      path.join(app, "package.json"),
      JSON.stringify({ name: "app", private: true, type: "module", dependencies }, null, 2)
    )
    fs.writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: true,
          types: []
        },
        files: ["main.ts"]
      })
    )
    fs.writeFileSync(path.join(app, "main.ts"), program)
    fs.writeFileSync(path.join(app, "agents", "echo.py"), "def handle(event):\n    return {\"echo\": event}\n")
    fs.writeFileSync(path.join(app, "guard.mjs"), guard)
    fs.writeFileSync(
      path.join(app, "register.mjs"),
      `import { register } from "node:module"\nregister("./guard.mjs", import.meta.url, { data: ${
        JSON.stringify({ repository: pathToFileURL(root).href + "/" })
      } })\n`
    )

    // Peers are linked by hand above: npm's peer placement fails on links (a null dereference in arborist)
    await succeed("npm", ["install", "--offline", "--legacy-peer-deps", "--no-audit", "--no-fund"], app)
    const installed = path.join(app, "node_modules", manifest.name)
    assert.isFalse(fs.lstatSync(installed).isSymbolicLink())
    assert.strictEqual(
      JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")).version,
      manifest.version
    )

    await succeed(process.execPath, [path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", app], app)
    const ran = await run(process.execPath, ["--import", "./register.mjs", "main.js"], app)
    assert.strictEqual(ran.code, 0, `${ran.stdout}\n${ran.stderr}`)
    const line = ran.stdout.split("\n").find((text) => text.startsWith("{"))
    assert.isDefined(line, ran.stdout)
    const out = JSON.parse(line!) as {
      readonly reply: unknown
      readonly pid: number | null
      readonly state: string
      readonly python: string
      readonly node: string
    }
    assert.match(JSON.stringify(out.reply), /from the tarball/)
    assert.strictEqual(out.state, "STOPPED")
    assert.strictEqual(out.python, path.join(installed, "adapters", "python", "supervisor_adapter.py"))
    assert.strictEqual(out.node, path.join(installed, "dist", "Adapter", "node.js"))
    assert.isTrue(fs.existsSync(out.node))
    // The adapter resolves through the exports map too; internal modules do not
    const resolved = JSON.parse(
      await succeed(process.execPath, [
        "--input-type=module",
        "-e",
        `const out = {}
        for (const s of ["adapters/python/supervisor_adapter.py", "internal/schema"]) {
          try { out[s] = import.meta.resolve("${manifest.name}/" + s) } catch (e) { out[s] = e.code }
        }
        console.log(JSON.stringify(out))`
      ], app)
    )
    assert.deepStrictEqual(resolved, {
      "adapters/python/supervisor_adapter.py": pathToFileURL(out.python).href,
      "internal/schema": "ERR_PACKAGE_PATH_NOT_EXPORTED"
    })
    // The agent was reaped, not left behind
    assert.isNumber(out.pid)
    assert.throws(() => process.kill(out.pid!, 0), /ESRCH/)
    // The command line, as npm installs it: a bin that checks a tree file
    fs.writeFileSync(
      path.join(app, "tree.json"),
      JSON.stringify({
        children: [{
          type: "callback",
          id: "echo",
          config: { name: "echo", language: "python", file: "agents/echo.py", function: "handle" }
        }]
      })
    )
    const bin = path.join(app, "node_modules", ".bin", "agent-supervisor")
    const validated = await run(bin, ["validate", "tree.json"], app)
    assert.strictEqual(validated.code, 0, `${validated.stdout}\n${validated.stderr}`)
    assert.include(validated.stdout, "tree.json: OK. Tree \"root\": 1 agent, 0 nested supervisors; store: memory.")
    // A file whose sections need optional peers this install has not: validate says so (up would fail on them),
    // and checks the agents' programs all the same
    fs.writeFileSync(
      path.join(app, "needs.yaml"),
      "store: { type: sqlite, filename: t.db }\nmetrics: { otlp: { url: \"http://127.0.0.1:4318\", serviceName: a } }\n" +
        "children: [{ type: agent, id: a, config: { name: a, command: /no/such/program } }]\n"
    )
    const needs = await run(bin, ["validate", "needs.yaml"], app)
    assert.strictEqual(needs.code, 1, `${needs.stdout}\n${needs.stderr}`)
    assert.strictEqual(needs.stdout, "")
    for (const [field, peer] of [["store", "@effect/sql-sqlite-node"], ["metrics.otlp", "@effect/opentelemetry"]]) {
      assert.include(
        needs.stderr,
        `at ${field}: needs the optional peer dependency ${peer}, which is not installed: npm install ${peer}@^`,
        needs.stderr
      )
    }
    assert.include(needs.stderr, "at children[0].config.command: ", needs.stderr)
    // The Node adapter's command, as docs/CONFORMANCE.md tells a user to check a callback of their own with it
    fs.writeFileSync(path.join(app, "agent.mjs"), "export const handle = async (payload) => payload\n")
    const adapter = path.join(app, "node_modules", ".bin", "effect-agent-node-adapter")
    const checked = await run(bin, ["conformance", "--only", "ready", "--", adapter, "./agent.mjs:handle"], app)
    assert.strictEqual(checked.code, 0, `${checked.stdout}\n${checked.stderr}`)
    assert.match(checked.stdout, /ready\s+pass/)
    // A command that talks to a running up starts from its bundle (dist/bin/remote.js), which the tarball ships
    const status = await run(bin, ["status"], app)
    assert.strictEqual(status.code, 1, `${status.stdout}\n${status.stderr}`)
    assert.include(status.stderr, "error: No running tree found in this directory", status.stderr)
    assert.isTrue(fs.existsSync(path.join(app, "node_modules", "effect-agent-supervisor", "dist", "bin", "remote.js")))
  }, 3 * STEP_TIMEOUT_MS)
})

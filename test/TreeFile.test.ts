/**
 * Tree files (issue 11, "Config file"): YAML and JSON describe the same tree; a bad file is one `ConfigError` with
 * every problem and its path (syntax with line and column, unset references, bad values deep in the tree, unknown
 * keys with the key that was meant, the tree's own rules); `${NAME}` references; paths relative to the file; and
 * the options and specs the library runs a file with. Nothing here starts an agent (see TreeFile.run.test.ts).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Adapters from "../src/Adapters.js"
import * as Store from "../src/Store/Store.js"
import * as TreeFile from "../src/TreeFile.js"
import { configErrorOf, fixture, problemLines, root, tempDir } from "./support.js"

/** The ConfigError a failed effect ends with (the test fails on anything else). */
const yaml = (text: string, env: TreeFile.Env = {}) => TreeFile.parse(text, { format: "yaml", env })

/** The problems of a bad YAML file, as `field: rule` lines. */
const problemsOf = (text: string, env: TreeFile.Env = {}) => problemLines(yaml(text, env))

const env = { NODE: "/usr/bin/node", STORE_DIR: "/var/lib/agents" }

describe("TreeFile.parse", () => {
  it.effect("reads the same tree from YAML and from JSON", () =>
    Effect.gen(function*() {
      const fromYaml = yield* TreeFile.parse(fs.readFileSync(fixture("trees", "tree.yaml"), "utf8"), {
        format: "yaml",
        env
      })
      const fromJson = yield* TreeFile.parse(fs.readFileSync(fixture("trees", "tree.json"), "utf8"), {
        format: "json",
        env
      })
      assert.deepStrictEqual(fromYaml, fromJson)
      assert.deepStrictEqual(fromYaml, {
        name: "fixture",
        store: { type: "sqlite", filename: "/var/lib/agents/tree.sqlite" },
        children: [
          {
            type: "agent",
            id: "echo",
            config: {
              name: "file-echo",
              command: "/usr/bin/node",
              args: ["../agents/agent.mjs", "echo"],
              gracefulTimeout: "2 seconds",
              sigtermTimeout: "2 seconds",
              startupTimeout: "10 seconds"
            }
          },
          {
            type: "supervisor",
            id: "workers",
            strategy: "one-for-all",
            children: [{
              type: "directory",
              id: "basic",
              config: {
                agentName: "file-basic",
                agentDir: "../directories/python-basic",
                cacheDir: "/var/lib/agents/cache",
                startupTimeout: "10 seconds"
              }
            }]
          }
        ]
      })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("an empty tree runs on the in-memory store", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* yaml("children: []\n"), { store: { type: "memory" }, children: [] })
      assert.deepStrictEqual(yield* yaml("{}"), { store: { type: "memory" }, children: [] })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("the in-memory store takes every bound of Store.makeMemory, maxTasks and maxAgents too", () =>
    Effect.gen(function*() {
      const file = yield* yaml("store: { type: memory, maxMetrics: 5, maxRestarts: 4, maxTasks: 3, maxAgents: 2 }\n")
      assert.deepStrictEqual(file.store, { type: "memory", maxMetrics: 5, maxRestarts: 4, maxTasks: 3, maxAgents: 2 })
      // The layer holds them: the third agent's state pushes out the first's
      const store = yield* Effect.provide(Store.Store, TreeFile.storeLayer(file))
      for (const name of ["a", "b", "c"]) {
        yield* store.saveState({ agent_name: name, state: "RUNNING", restart_count: 0, updated_at: 1 })
      }
      assert.isTrue(Option.isNone(yield* store.getState("a")))
      assert.isTrue(Option.isSome(yield* store.getState("c")))
      const problems = yield* problemsOf("store: { type: memory, maxAgents: -1, maxTasks: 1.5 }\n")
      assert.include(problems, "store.maxAgents: must be 0 or more agents")
      assert.include(problems, "store.maxTasks: must be a whole number of task records")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("an empty id, which no path could address, is a problem", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
children:
  - { type: agent, id: "", config: { name: n2, command: x } }
`)
      assert.deepStrictEqual(problems, [
        "children[0].id: must not be empty: a child is addressed by its id (its path below the root, `workers/echo`)"
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("reports every problem at once, each with its path, in the file's order", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
name: app
strategy: one-for-eleven
store: { type: redis }
children:
  - type: agent
    id: a
    config: { name: a, command: python3, requestTimout: 5 seconds }
  - type: agnet
    id: b
  - type: supervisor
    id: workers
    children:
      - type: agent
        id: deep
        config: { name: deep, command: "\${AGENT_CMD}", requestTimeout: 5 secs }
  - type: agent
    id: a
    significant: true
    config: { name: a2, command: x }
`)
      assert.deepStrictEqual(problems, [
        `strategy: must be "one-for-one", "one-for-all" or "rest-for-one"`,
        `store.type: must be "memory", "sqlite" or "postgres"`,
        `children[0].config.requestTimout: is not a known setting: did you mean "requestTimeout"?`,
        `children[1].type: must be "agent", "callback", "directory", "pool" or "supervisor": did you mean "agent"?`,
        "children[2].children[0].config.command: refers to the environment variable AGENT_CMD, which is not set: " +
        "set it, or give a default (${AGENT_CMD:-default})",
        `children[2].children[0].config.requestTimeout: must be a duration like "5 seconds", "250ms" or "1h30m"`,
        "children[3].id: child ids must be unique: children[0] has it too",
        `children[3].significant: a significant child must be transient or temporary (as in OTP); its restart is ` +
        `"permanent"`,
        `children[3].significant: a significant child needs its supervisor's autoShutdown ("autoShutdown") to be ` +
        `"any-significant" or "all-significant", not "never" (as in OTP): nothing would read its exit`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("the error's message lists the problems with the values given", () =>
    Effect.gen(function*() {
      const error = yield* configErrorOf(yaml(
        "children:\n  - type: agent\n    id: a\n    config: { name: a, command: x, requestTimeout: 5 secs }\n"
      ))
      assert.strictEqual(
        error.message,
        `Invalid configuration at children[0].config.requestTimeout: must be a duration like "5 seconds", ` +
          `"250ms" or "1h30m" (got "5 secs")`
      )
      assert.strictEqual(error.field, "children[0].config.requestTimeout")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("unknown keys: the key meant when one is close, else the keys allowed when they are few", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
stor: { type: memory }
children:
  - type: supervisor
    id: s
    stratgy: one-for-all
    colour: blue
  - type: directory
    id: d
    config: { agentName: d, agentDir: ., callbackFuntion: run }
`)
      assert.deepStrictEqual(problems, [
        `stor: is not a known setting: did you mean "store"?`,
        `children[0].stratgy: is not a known setting: did you mean "strategy"?`,
        `children[0].colour: is not a known setting here (known: "type", "id", "restart", "significant", ` +
        `"strategy", "intensity", "autoShutdown" or "children")`,
        `children[1].config.callbackFuntion: is not a known setting: did you mean "callbackFunction"?`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("shapes: a child, a configuration, the whole file", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* problemsOf("children: [agent]\n"), [
        `children[0]: must be a child: a mapping with a type ("agent", "callback", "directory", "pool" or "supervisor") and an id`
      ])
      assert.deepStrictEqual(yield* problemsOf("children: [{ id: a }, { type: agent, id: b, config: 3 }]\n"), [
        `children[0].type: is missing: "agent", "callback", "directory", "pool" or "supervisor"`,
        "children[1].config: must be a mapping"
      ])
      assert.deepStrictEqual(yield* problemsOf(""), [
        "(file): must be a mapping of the tree's settings (name, strategy, store, children...)"
      ])
      assert.deepStrictEqual(yield* problemsOf("- a\n"), [
        "(file): must be a mapping of the tree's settings (name, strategy, store, children...)"
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a YAML syntax error names its line and column, and stops there", () =>
    Effect.gen(function*() {
      const error = yield* configErrorOf(
        TreeFile.parse("name: app\nchildren: [\n  { type: agent\nstore: 3\n", {
          format: "yaml",
          source: "tree.yaml"
        })
      )
      assert.strictEqual(error.problems.length, 1)
      assert.match(error.field, /^tree\.yaml:\d+:\d+$/)
      assert.match(error.rule, /^YAML syntax error: /)
      const duplicate = yield* configErrorOf(yaml("name: a\nstrategy: one-for-one\nname: b\n"))
      assert.strictEqual(duplicate.field, "(yaml):3:1")
      assert.strictEqual(duplicate.rule, "YAML syntax error: Map keys must be unique")
      const tab = yield* configErrorOf(yaml("children:\n\t- type: agent\n"))
      assert.strictEqual(tab.field, "(yaml):2:1")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a JSON syntax error names its line and column too", () =>
    Effect.gen(function*() {
      const json = (text: string) => configErrorOf(TreeFile.parse(text, { format: "json", source: "tree.json" }))
      const missing = yield* json(`{\n  "name": "app",\n  "children": \n}`)
      assert.strictEqual(missing.field, "tree.json:4:1")
      assert.strictEqual(missing.rule, "JSON syntax error: Unexpected token '}'")
      const trailing = yield* json(`{\n  "name": "app",\n}`)
      assert.strictEqual(trailing.field, "tree.json:3:1")
      const cut = yield* json(`{ "name": "app"`)
      assert.strictEqual(cut.field, "tree.json:1:16")
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("environment references", () => {
  it.effect("${NAME}, ${NAME:-default} (also for an empty variable), $${ for a literal; never in keys", () =>
    Effect.gen(function*() {
      const file = yield* yaml(
        `
children:
  - type: agent
    id: a
    config:
      name: \${NAME}
      command: \${CMD:-python3}
      args: ["\${HOME}/agent.py", "\${EMPTY:-fallback}", "$\${LITERAL}", "\${A}\${B}", "a $ b", "$$"]
      env: { "\${KEY}": "\${VALUE:-}" }
`,
        { NAME: "worker", HOME: "/home/me", EMPTY: "", A: "1", B: "2", LITERAL: "no" }
      )
      const child = file.children[0] as TreeFile.AgentChild
      assert.deepStrictEqual(child.config, {
        name: "worker",
        command: "python3",
        args: ["/home/me/agent.py", "fallback", "${LITERAL}", "12", "a $ b", "$$"],
        env: { "${KEY}": "" }
      })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("an unset variable without a default, and a malformed reference, are problems with their paths", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(
        `
name: "\${ROOT_NAME}"
store: { type: sqlite, filename: "\${DIR}/x.sqlite" }
children:
  - type: agent
    id: a
    config: { name: a, command: "\${1BAD}", args: ["\${UNCLOSED"] }
`,
        { DIR: "/tmp" }
      )
      assert.deepStrictEqual(problems, [
        "name: refers to the environment variable ROOT_NAME, which is not set: set it, or give a default " +
        "(${ROOT_NAME:-default})",
        `children[0].config.command: has a malformed environment reference "\${1BAD}": write \${NAME} or ` +
        `\${NAME:-default} (and $\${ for a literal "\${")`,
        `children[0].config.args[0]: has a malformed environment reference "\${UNCLOSED": write \${NAME} or ` +
        `\${NAME:-default} (and $\${ for a literal "\${")`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("references read process.env unless an environment is given", () =>
    Effect.gen(function*() {
      const file = yield* TreeFile.parse(`name: "\${PATH}"\n`, { format: "yaml" })
      assert.strictEqual(file.name, process.env.PATH)
      const given = yield* TreeFile.parse(`name: "\${PATH:-none}"\n`, { format: "yaml", env: {} })
      assert.strictEqual(given.name, "none")
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("the store", () => {
  it.effect("PostgreSQL: the URL from a reference or from the variable urlEnv names, redacted", () =>
    Effect.gen(function*() {
      const env = { DATABASE_URL: "postgres://app:secret@db:5432/agents" }
      const fromUrl = yield* yaml(`store: { type: postgres, url: "\${DATABASE_URL}", tablePrefix: app_ }\n`, env)
      const fromEnv = yield* yaml("store: { type: postgres, urlEnv: DATABASE_URL, maxConnections: 4 }\n", env)
      assert.strictEqual(fromUrl.store.type, "postgres")
      assert.strictEqual(fromEnv.store.type, "postgres")
      if (fromUrl.store.type !== "postgres" || fromEnv.store.type !== "postgres") return
      assert.strictEqual(Redacted.value(fromUrl.store.url), env.DATABASE_URL)
      assert.strictEqual(Redacted.value(fromEnv.store.url), env.DATABASE_URL)
      assert.strictEqual(fromUrl.store.tablePrefix, "app_")
      assert.strictEqual(fromEnv.store.maxConnections, 4)
      assert.notInclude(JSON.stringify(fromEnv), "secret")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("bad store settings", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* problemsOf("store: { type: postgres }\n"), [
        `store.url: is missing: give the server's URL as "url" (say "\${DATABASE_URL}") or the name of a variable ` +
        `as "urlEnv"`
      ])
      assert.deepStrictEqual(yield* problemsOf("store: { type: postgres, urlEnv: DATABASE_URL }\n"), [
        "store.urlEnv: names the environment variable DATABASE_URL, which is not set"
      ])
      assert.deepStrictEqual(yield* problemsOf("store: { type: postgres, url: mysql://db }\n"), [
        "store.url: must be a PostgreSQL URL such as postgres://user:password@host:5432/database"
      ])
      assert.deepStrictEqual(
        yield* problemsOf("store: { type: sqlite, filename: a.db, maxMetricAge: 3 dayz, pruneEvery: 0 }\n"),
        [
          `store.maxMetricAge: must be a duration like "5 seconds", "250ms" or "1h30m"`,
          "store.pruneEvery: must be at least 1 write"
        ]
      )
      assert.deepStrictEqual(yield* problemsOf("store: memory\n"), [
        `store: must be a mapping with a type ("memory", "sqlite" or "postgres") and its options`
      ])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("the tree's own rules", () => {
  it.effect("are the ones Supervisor.make applies, with the file's paths", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
children:
  - type: agent
    id: job
    restart: temporary
    shutdown: brutal-kill
    config: { name: job, command: x, restart: transient, gracefulTimeout: 3 seconds }
  - type: supervisor
    id: workers
    intensity: { maxRestarts: -1, window: 5 seconds }
    children:
      - type: directory
        id: d
        significant: true
        restart: transient
        config: { agentName: d, agentDir: . }
`)
      assert.deepStrictEqual(problems, [
        `children[0].restart: conflicts with children[0].config.restart ("transient"): give the restart type in ` +
        `one place`,
        "children[0].shutdown: conflicts with children[0].config.gracefulTimeout (3s): give the stop timeouts in " +
        `one place ("brutal-kill" sets both to 0, a duration sets gracefulTimeout)`,
        "children[1].intensity.maxRestarts: must be a whole number of 0 or more",
        `children[1].children[0].significant: a significant child needs its supervisor's autoShutdown ` +
        `("children[1].autoShutdown") to be "any-significant" or "all-significant", not "never" (as in OTP): ` +
        "nothing would read its exit"
      ])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("whole numbers", () => {
  it.effect("are said so everywhere: a whole number, never an integer", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
intensity: { maxRestarts: 1.5, window: 5 seconds }
children:
  - type: agent
    id: a
    config: { name: a, command: x, maxInFlight: 1.5 }
`)
      assert.deepStrictEqual(problems, [
        "intensity.maxRestarts: must be a whole number of 0 or more",
        "children[0].config.maxInFlight: must be a whole number"
      ])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("TreeFile.warnings", () => {
  it.effect("what Supervisor.make will warn of: a child that would be parked rather than escalate", () =>
    Effect.gen(function*() {
      const file = yield* yaml(`
intensity: { maxRestarts: 3, window: 10 seconds }
children:
  - type: agent
    id: a
    config: { name: a, command: x }
  - type: supervisor
    id: s
    children:
      - type: directory
        id: d
        config: { agentName: d, agentDir: ., maxRestartAttempts: 5 }
`)
      const [warning, ...others] = yield* TreeFile.warnings(file)
      assert.deepStrictEqual(others, [])
      assert.include(warning, "A child that never starts would be parked")
      assert.include(warning, `children[0] ("a"): its circuit opens after 3 restarts in a row`)
      assert.notInclude(warning, "children[1]")
      assert.deepStrictEqual(yield* TreeFile.warnings(yield* yaml("children: []\n")), [])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("TreeFile.load", () => {
  it.scoped("resolves relative paths against the file's directory; an agent runs there unless it sets cwd", () =>
    Effect.gen(function*() {
      const top = yield* tempDir("treefile")
      const dir = path.join(top, "app")
      // The directories the file names are there (`load` looks: TreeFile.callbackFile.test.ts).
      for (const made of [path.join(top, "elsewhere"), path.join(dir, "agents", "d"), path.join(dir, "work")]) {
        fs.mkdirSync(made, { recursive: true })
      }
      fs.writeFileSync(
        path.join(dir, "tree.yml"),
        `
store: { type: sqlite, filename: state/agents.sqlite }
children:
  - type: agent
    id: here
    config: { name: here, command: ./run.sh, args: [agent.py] }
  - type: agent
    id: there
    config: { name: there, command: x, cwd: ../elsewhere }
  - type: supervisor
    id: s
    children:
      - type: directory
        id: d
        config: { agentName: d, agentDir: agents/d, cacheDir: /var/cache/agents, cwd: work }
      - type: agent
        id: absolute
        config: { name: absolute, command: x, cwd: ${top} }
`
      )
      const file = yield* TreeFile.load(path.join(dir, "tree.yml"), { env: {} })
      assert.deepStrictEqual(file.store, { type: "sqlite", filename: path.join(dir, "state", "agents.sqlite") })
      const [here, there, s] = file.children as [TreeFile.AgentChild, TreeFile.AgentChild, TreeFile.SupervisorChild]
      assert.deepStrictEqual(here.config, { name: "here", command: "./run.sh", args: ["agent.py"], cwd: dir })
      assert.strictEqual(there.config.cwd, path.resolve(dir, "..", "elsewhere"))
      const [d, absolute] = s.children as [TreeFile.DirectoryChild, TreeFile.AgentChild]
      assert.deepStrictEqual(d.config, {
        agentName: "d",
        agentDir: path.join(dir, "agents", "d"),
        cacheDir: "/var/cache/agents",
        cwd: path.join(dir, "work")
      })
      assert.strictEqual(absolute.config.cwd, top)
      const memory = yield* TreeFile.parse("store: { type: sqlite, filename: ':memory:' }\n", {
        format: "yaml",
        dir
      })
      assert.deepStrictEqual(memory.store, { type: "sqlite", filename: ":memory:" })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a missing file, a directory, another extension: a ConfigError naming the path", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile")
      const missing = yield* configErrorOf(TreeFile.load(path.join(dir, "nope.yaml")))
      assert.strictEqual(missing.field, path.join(dir, "nope.yaml"))
      assert.match(missing.rule, /^no such file/)
      fs.mkdirSync(path.join(dir, "folder.json"))
      const folder = yield* configErrorOf(TreeFile.load(path.join(dir, "folder.json")))
      assert.match(folder.rule, /^cannot be read/)
      fs.writeFileSync(path.join(dir, "tree.toml"), "")
      const toml = yield* configErrorOf(TreeFile.load(path.join(dir, "tree.toml")))
      assert.strictEqual(toml.rule, "must end in .yaml, .yml or .json: the format is read from the extension")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scoped("a syntax error names the file as given", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("treefile")
      fs.writeFileSync(path.join(dir, "tree.json"), `{\n  "children": [,]\n}\n`)
      const error = yield* configErrorOf(TreeFile.load(path.join(dir, "tree.json")))
      assert.strictEqual(error.field, `${path.join(dir, "tree.json")}:2:16`)
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("TreeFile.toOptions", () => {
  it.effect("children become Supervisor.agent and Supervisor.supervisor specs; root options pass through", () =>
    Effect.gen(function*() {
      const file = yield* yaml(`
name: app
strategy: rest-for-one
intensity: { maxRestarts: 2, window: 10 seconds }
storeFlushTimeout: 2 seconds
children:
  - type: agent
    id: a
    restart: transient
    shutdown: 10 seconds
    config: { name: a, command: x }
  - type: supervisor
    id: s
    autoShutdown: any-significant
    children:
      - type: agent
        id: b
        significant: true
        config: { name: b, command: y, restart: temporary }
`)
      const options = yield* TreeFile.toOptions(file)
      assert.deepStrictEqual(JSON.parse(JSON.stringify(options)), {
        name: "app",
        strategy: "rest-for-one",
        intensity: { maxRestarts: 2, window: "10 seconds" },
        storeFlushTimeout: "2 seconds",
        children: [
          { _tag: "Agent", id: "a", config: { name: "a", command: "x" }, restart: "transient", shutdown: "10 seconds" },
          {
            _tag: "Supervisor",
            id: "s",
            autoShutdown: "any-significant",
            children: [{
              _tag: "Agent",
              id: "b",
              config: { name: "b", command: "y", restart: "temporary" },
              significant: true
            }]
          }
        ]
      })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("a directory agent's ConfigError names its field's path in the file", () =>
    Effect.gen(function*() {
      const file = yield* TreeFile.parse(
        `
children:
  - type: supervisor
    id: s
    children:
      - type: directory
        id: d
        config: { agentName: d, agentDir: ../directories/python-basic, callbackFunction: "not a name" }
`,
        { format: "yaml", dir: fixture("trees") }
      )
      const error = yield* configErrorOf(TreeFile.toOptions(file))
      assert.strictEqual(error.field, "children[0].children[0].config.callbackFunction")
      assert.deepStrictEqual(error.problems.map((p) => p.field), ["children[0].children[0].config.callbackFunction"])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("callback children", () => {
  it.effect("run a function through the bundled adapter: Adapters.pythonCallback's and nodeCallback's command lines", () =>
    Effect.gen(function*() {
      const file = yield* TreeFile.parse(
        `
children:
  - type: callback
    id: py
    config: { name: py, language: python, file: agents/summarize.py, function: handle, interpreter: .venv/bin/python }
  - type: callback
    id: js
    restart: transient
    config: { name: js, language: node, file: agents/classify.mjs, requestTimeout: 10 seconds }
`,
        { format: "yaml", dir: "/srv/app" }
      )
      const options = yield* TreeFile.toOptions(file)
      assert.deepStrictEqual(JSON.parse(JSON.stringify(options.children)), [
        {
          _tag: "Agent",
          id: "py",
          config: {
            name: "py",
            cwd: "/srv/app",
            ...Adapters.pythonCallback("agents/summarize.py", "handle", { python: ".venv/bin/python" })
          }
        },
        {
          _tag: "Agent",
          id: "js",
          restart: "transient",
          config: {
            name: "js",
            requestTimeout: "10 seconds",
            cwd: "/srv/app",
            ...Adapters.nodeCallback("agents/classify.mjs")
          }
        }
      ])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("every problem of a callback child, command and args refused, with the tree's rules", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(`
children:
  - type: callback
    id: a
    config: { name: a, language: ruby, file: "", command: ruby, restart: transient }
    restart: permanent
`)
      assert.deepStrictEqual(problems, [
        `children[0].config.language: must be "python" or "node"`,
        "children[0].config.file: must be a file",
        // Far from every key: the keys known there (a callback child's), not "check its spelling" alone
        `children[0].config.command: is not a known setting here (known: "language", "file", "function", ` +
        `"interpreter", "name", "env", "cwd", "inheritEnv", "user", "group", "limits", "requestTimeout", ` +
        `"gracefulTimeout", "sigtermTimeout", "startupTimeout", "restartOnExit", "restart", "maxRestartAttempts", ` +
        `"restartBackoff", "backoffFactor", "jitter", "maxBackoff", "heartbeatInterval", "pingTimeout", ` +
        `"unhealthyAfter", "resetAfter", "maxInFlight", "maxMessageBytes", "maxCheckpointBytes", "stderrLines", ` +
        `"outputLogLevel", "outputRateLimit" or "outputBurst")`,
        `children[0].restart: conflicts with children[0].config.restart ("transient"): give the restart type in ` +
        "one place"
      ])
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("the sections for operators: logs and admin", () => {
  it.effect("logs.dir is relative to the file's directory and reaches Supervisor.Options; admin stays out of them", () =>
    Effect.gen(function*() {
      const file = yield* TreeFile.parse(
        "logs: { dir: logs, maxBytes: 65536, keep: 2 }\nadmin: { port: 8080, token: \"${TOKEN}\" }\n" +
          "metrics: { otlp: { url: http://127.0.0.1:4318, serviceName: agents, exportInterval: 5 seconds } }\n",
        { format: "yaml", dir: "/srv/app", env: { TOKEN: "a-token-of-sixteen+" } }
      )
      assert.deepStrictEqual(file.logs, { dir: "/srv/app/logs", maxBytes: 65536, keep: 2 })
      assert.strictEqual(file.admin?.port, 8080)
      assert.deepStrictEqual(file.metrics, {
        otlp: { url: "http://127.0.0.1:4318", serviceName: "agents", exportInterval: "5 seconds" }
      })
      assert.strictEqual(Redacted.value(file.admin!.token!), "a-token-of-sixteen+")
      const options = yield* TreeFile.toOptions(file)
      assert.deepStrictEqual(options.logs, { dir: "/srv/app/logs", maxBytes: 65536, keep: 2 })
      assert.notProperty(options, "admin")
      assert.notProperty(options, "metrics")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.effect("every problem of both sections, with its path", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(
        "logs: { dir: '', maxBytes: 10, keep: -1 }\nadmin: { port: 70000, token: short, host: '' }\n"
      )
      assert.deepStrictEqual(problems, [
        "logs.dir: must be a directory",
        "logs.maxBytes: must be a whole number of bytes of at least 1024",
        "logs.keep: must be a whole number from 0 to 1000",
        "admin.port: must be a port number from 0 to 65535 (0: any free one)",
        "admin.token: must be at least 16 characters",
        "admin.host: must be a host name or address"
      ])
      const metrics = yield* problemsOf("metrics: { otlp: { url: ftp://x, headers: { key: 1 } } }\n")
      assert.includeMembers(metrics, [
        "metrics.otlp.url: must be an http:// or https:// URL",
        "metrics.otlp.serviceName: is missing"
      ])
      assert.isTrue(metrics.some((p) => p.startsWith("metrics.otlp.headers")), metrics.join("\n"))
      // A secret is never shown, not even a wrong one
      const error = yield* configErrorOf(
        yaml("admin: { token: sh0rt-s3cret }\nstore: { type: postgres, url: 'mysql://u:pw@h' }\n")
      )
      assert.notInclude(error.message, "sh0rt-s3cret")
      assert.notInclude(error.message, "pw@h")
      assert.include(error.message, "admin.token")
      assert.include(error.message, "store.url")
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("start-up", () => {
  it("the package loads its YAML parser with the first YAML file, not before (built package)", () => {
    const script = `
      const loaded = () => Object.keys(require.cache).some((p) => /[\\\\/]node_modules[\\\\/]yaml[\\\\/]/.test(p))
      const { Effect } = require("effect")
      const { layer } = require("@effect/platform/Path")
      import("./dist/index.js").then(async ({ TreeFile }) => {
        const before = loaded()
        await Effect.runPromise(Effect.provide(TreeFile.parse("{}", { format: "json" }), layer))
        const afterJson = loaded()
        await Effect.runPromise(Effect.provide(TreeFile.parse("children: []", { format: "yaml" }), layer))
        process.stdout.write(JSON.stringify([before, afterJson, loaded()]))
      })`
    const result = JSON.parse(execFileSync(process.execPath, ["-e", script], { cwd: root, encoding: "utf8" }))
    assert.deepStrictEqual(result, [false, false, true])
  })
})

/**
 * The configuration of limits and identity: sizes as users write them, every rule with its field's path, `user` and
 * `group` resolved from the account files, refused to a supervisor that is not root (in a real process run as
 * `nobody`), and the environment an agent inherits.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Config from "../../../src/Agent/Config.js"
import * as Identity from "../../../src/Agent/internal/limits/identity.js"
import * as Spawn from "../../../src/Agent/internal/spawn.js"
import * as Store from "../../../src/Store/Store.js"
import * as Supervisor from "../../../src/Supervisor.js"
import { problemLines, root } from "../../support.js"

const base = { name: "limited", command: "/bin/true" }

const problemsOf = (input: unknown) => problemLines(Config.decodeConfig(input))

describe("limits in the configuration", () => {
  it.effect("sizes are bytes or a number and a unit, binary or decimal, in any case", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [unknown, number]> = [
        [64 * 1024 * 1024, 64 * 1024 * 1024],
        ["512 MiB", 512 * 1024 * 1024],
        ["1.5 GiB", 1.5 * 1024 ** 3],
        ["64MB", 64_000_000],
        ["2 mib", 2 * 1024 * 1024],
        ["1048576", 1048576],
        ["3000000 B", 3_000_000]
      ]
      for (const [memory, bytes] of cases) {
        const config = yield* Config.make({ ...base, limits: { memory } as never })
        assert.strictEqual(config.limits?.memory, bytes, String(memory))
      }
    }))

  it.effect("every bad limit is reported at once, each with its path and rule", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({
        ...base,
        limits: { memory: "512 MegaBytes", cpu: 0, pids: 1.5, enforce: "hard", memoryGrace: "2 secs", oops: 1 }
      })
      assert.deepStrictEqual(problems.map((problem) => problem.split(":")[0]), [
        "limits.oops",
        "limits.memory",
        "limits.cpu",
        "limits.pids",
        "limits.enforce",
        "limits.memoryGrace"
      ])
      assert.match(problems[1], /a number and a unit such as "512 MiB"/)
      assert.match(problems[2], /cores from 0.01 to 1024/)
      assert.match(problems[4], /must be one of "auto", "soft"/)
      const small = yield* problemsOf({ ...base, limits: { memory: "1000 kB" } })
      assert.match(small[0], /^limits\.memory: .*at least 1048576 bytes/)
    }))

  it.effect("defaults: auto enforcement, a 2 s memory grace, a 10 s CPU window, CPU logged", () =>
    Effect.gen(function*() {
      const config = yield* Config.make({ ...base, limits: { memory: "64 MiB" } })
      assert.strictEqual(config.limits?.enforce, "auto")
      assert.strictEqual(Duration.toMillis(config.limits!.memoryGrace), 2000)
      assert.strictEqual(Duration.toMillis(config.limits!.cpuWindow), 10_000)
      assert.strictEqual(config.limits?.onCpuLimit, "log")
      assert.strictEqual((yield* Config.make(base)).limits, undefined)
    }))
})

describe("user and group", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "identity-"))
  const databases = { passwd: path.join(dir, "passwd"), group: path.join(dir, "group") }
  fs.writeFileSync(
    databases.passwd,
    "root:x:0:0:root:/root:/bin/bash\n# a comment\nagent:x:1234:2345:Agent:/home/agent:/bin/sh\n"
  )
  fs.writeFileSync(databases.group, "root:x:0:\nagents:x:2345:\nother:x:3456:agent\n")

  it("names resolve from the account files; numbers are taken as they are; the user's group by default", () => {
    assert.deepStrictEqual(Identity.resolve("agent", undefined, databases, true), {
      identity: { uid: 1234, gid: 2345, account: { name: "agent", home: "/home/agent" } }
    })
    assert.deepStrictEqual(Identity.resolve("agent", "other", databases, true), {
      identity: { uid: 1234, gid: 3456, account: { name: "agent", home: "/home/agent" } }
    })
    assert.deepStrictEqual(Identity.resolve(4000, 4001, databases, true), {
      identity: { uid: 4000, gid: 4001, account: undefined }
    })
    assert.deepStrictEqual(Identity.resolve(undefined, "agents", databases, true), {
      identity: { uid: undefined, gid: 2345, account: undefined }
    })
    const resolved = Identity.resolve("agent", undefined, databases, true)
    assert.deepStrictEqual(Identity.accountEnv("identity" in resolved ? resolved.identity : (undefined as never)), {
      HOME: "/home/agent",
      USER: "agent",
      LOGNAME: "agent"
    })
  })

  it("an unknown name, a uid without its group, and a supervisor that is not root are problems", () => {
    const problems = (user: string | number | undefined, group: string | number | undefined, isRoot = true) => {
      const resolved = Identity.resolve(user, group, databases, isRoot)
      return "problems" in resolved ? resolved.problems.map((problem) => `${problem.field}: ${problem.rule}`) : []
    }
    assert.match(problems("nobody-here", undefined)[0], /^user: names no user in .*passwd/)
    assert.match(problems("agent", "nogroup")[0], /^group: names no group in .*group/)
    assert.match(
      problems(4000, undefined)[0],
      /^group: is needed: user 4000 is not in .*passwd, so its primary group is unknown/
    )
    const notRoot = problems("agent", "agents", false)
    assert.strictEqual(notRoot.length, 2)
    assert.match(notRoot[0], /^user: needs a supervisor running as root/)
    assert.match(notRoot[1], /^group: needs a supervisor running as root/)
  })

  it.effect("the configuration checks the user against this machine's accounts", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf({ ...base, user: "no-such-user-here" })
      assert.match(problems[0], /^user: names no user in \/etc\/passwd/)
      const bad = yield* problemsOf({ ...base, user: "bad name", group: -1 })
      assert.deepStrictEqual(bad.map((problem) => problem.split(":")[0]), ["user", "group"])
    }))

  it.effect("a tree's child and an already decoded configuration are checked too, each problem with its path", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(Supervisor.make({
        name: "tree",
        children: [Supervisor.agent({ id: "a", config: { ...base, user: "no-such-user-here" } })]
      })))
      assert.strictEqual(error._tag, "ConfigError")
      if (error._tag === "ConfigError") assert.strictEqual(error.field, "children[0].config.user")
      const decoded = yield* Effect.flip(Config.make(new Config.AgentConfig({ ...base, user: "no-such-user-here" })))
      assert.strictEqual(decoded.field, "user")
    }).pipe(Effect.provide(Store.layerMemory)))

  it("a supervisor that is not root asked for a user gets a ConfigError (a real process run as nobody)", (ctx) => {
    if (process.getuid?.() !== 0) return ctx.skip()
    // The configuration module, loaded (through tsx) by a process that runs as nobody (uid 65534).
    const script = `
      import("${path.join(root, "src", "Agent", "Config.ts")}").then(async (Config) => {
        const { Effect, Exit } = await import("effect")
        const exit = await Effect.runPromiseExit(Config.make({ name: "a", command: "/bin/true", user: "root" }))
        console.log(JSON.stringify(Exit.isFailure(exit) ? exit.cause.error : "succeeded"))
      })`
    const ran = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      uid: 65534,
      gid: 65534,
      encoding: "utf8",
      cwd: root
    })
    assert.strictEqual(ran.status, 0, ran.stderr)
    const error = JSON.parse(ran.stdout.trim())
    assert.strictEqual(error._tag, "ConfigError")
    assert.strictEqual(error.field, "user")
    assert.match(error.rule, /needs a supervisor running as root .* \(this one runs as uid 65534\)/)
  })
})

describe("inheritEnv", () => {
  it.effect("all (the default), none, or the variables named; the agent's own env and the account's on top", () =>
    Effect.gen(function*() {
      process.env.LIMITS_TEST_KEPT = "kept"
      process.env.LIMITS_TEST_DROPPED = "dropped"
      try {
        const all = Spawn.childEnv(yield* Config.make(base))
        assert.strictEqual(all.LIMITS_TEST_DROPPED, "dropped")
        assert.strictEqual(all.PYTHONUNBUFFERED, "1")
        const none = Spawn.childEnv(yield* Config.make({ ...base, inheritEnv: false, env: { OWN: "1" } }))
        assert.deepStrictEqual(Object.keys(none).sort(), ["OWN", "PYTHONUNBUFFERED"])
        const named = Spawn.childEnv(
          yield* Config.make({ ...base, inheritEnv: ["LIMITS_TEST_KEPT", "NOT_SET_ANYWHERE"] }),
          { HOME: "/home/agent", USER: "agent" }
        )
        assert.deepStrictEqual(named, {
          LIMITS_TEST_KEPT: "kept",
          HOME: "/home/agent",
          USER: "agent",
          PYTHONUNBUFFERED: "1"
        })
      } finally {
        delete process.env.LIMITS_TEST_KEPT
        delete process.env.LIMITS_TEST_DROPPED
      }
    }))

  it.effect("a bad inheritEnv is a ConfigError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Config.decodeConfig({ ...base, inheritEnv: "yes" }))
      assert.isTrue(Exit.isFailure(exit))
    }))
})

import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Config from "../../src/Agent/Config.js"

const errorOf = (input: unknown) => Effect.flip(Config.decodeConfig(input))

describe("Config", () => {
  it.effect("applies the documented defaults", () =>
    Effect.gen(function*() {
      const config = yield* Config.make({ name: "echo", command: "python3" })
      assert.deepStrictEqual(
        [
          config.requestTimeout,
          config.gracefulTimeout,
          config.sigtermTimeout,
          config.startupTimeout,
          config.restartBackoff,
          config.maxBackoff,
          config.heartbeatInterval,
          config.pingTimeout,
          config.resetAfter
        ].map(Duration.toMillis),
        // restartBackoff 1 s (it was 5 s): a child that never starts escalates under OTP's default intensity
        [60_000, 5_000, 5_000, 30_000, 1_000, 300_000, 30_000, 5_000, 60_000]
      )
      assert.deepStrictEqual(
        [config.restartOnExit, config.maxRestartAttempts, config.unhealthyAfter, config.maxInFlight],
        [true, 3, 3, 64]
      )
      assert.strictEqual(config.maxMessageBytes, 16 * 1024 * 1024)
      assert.strictEqual(config.maxCheckpointBytes, 1024 * 1024)
      assert.deepStrictEqual([config.args, config.env, config.cwd], [[], {}, undefined])
      assert.deepStrictEqual(
        [config.outputLogLevel, config.outputRateLimit, config.outputBurst],
        ["Info", 100, 200]
      )
    }))

  it.effect("agent output: a level (or None) and a rate with a burst", () =>
    Effect.gen(function*() {
      const quiet = yield* Config.make({ name: "a", command: "x", outputLogLevel: "None" })
      assert.strictEqual(quiet.outputLogLevel, "None")
      const chatty = yield* Config.make({
        name: "a",
        command: "x",
        outputLogLevel: "Debug",
        outputRateLimit: 0.5,
        outputBurst: 1
      })
      assert.deepStrictEqual([chatty.outputLogLevel, chatty.outputRateLimit, chatty.outputBurst], ["Debug", 0.5, 1])
    }))

  it.effect("durations accept milliseconds, text and Duration values", () =>
    Effect.gen(function*() {
      const config = yield* Config.make({
        name: "a",
        command: "x",
        requestTimeout: 1500,
        gracefulTimeout: "2 seconds",
        sigtermTimeout: Duration.millis(300)
      })
      assert.deepStrictEqual(
        [config.requestTimeout, config.gracefulTimeout, config.sigtermTimeout].map(Duration.toMillis),
        [1500, 2000, 300]
      )
    }))

  it.effect("a decoded config passes through unchanged", () =>
    Effect.gen(function*() {
      const config = yield* Config.make({ name: "a", command: "x" })
      assert.strictEqual(yield* Config.make(config), config)
    }))

  it.effect("invalid values fail with ConfigError naming the field and the rule", () =>
    Effect.gen(function*() {
      const cases: Array<[unknown, string, string]> = [
        [{ command: "x" }, "name", "is missing"],
        [{ name: "", command: "x" }, "name", "1-128 characters"],
        [{ name: "a", command: "" }, "command", "non-empty"],
        [{ name: "a", command: "x", requestTimeout: -5 }, "requestTimeout", "longer than 0"],
        [{ name: "a", command: "x", requestTimeout: "-5 seconds" }, "requestTimeout", "longer than 0"],
        [{ name: "a", command: "x", gracefulTimeout: -5 }, "gracefulTimeout", "0 or more"],
        [{ name: "a", command: "x", gracefulTimeout: "-5 seconds" }, "gracefulTimeout", "negative"],
        [{ name: "a", command: "x", gracefulTimeout: "soon" }, "gracefulTimeout", "like \"5 seconds\""],
        [{ name: "a", command: "x", maxInFlight: 0 }, "maxInFlight", "1 or more"],
        [{ name: "a", command: "x", maxInFlight: 1.5 }, "maxInFlight", "integer"],
        [{ name: "a", command: "x", maxRestartAttempts: -1 }, "maxRestartAttempts", "0 or more"],
        [{ name: "a", command: "x", jitter: 2 }, "jitter", "between 0 and 1"],
        [{ name: "a", command: "x", maxMessageBytes: 10 }, "maxMessageBytes", "1 KiB"],
        [{ name: "a", command: "x", maxCheckpointBytes: 0 }, "maxCheckpointBytes", "a size in bytes"],
        [{ name: "a", command: "x", maxCheckpointBytes: "lots" }, "maxCheckpointBytes", "a size in bytes"],
        [{ name: "a", command: "x", env: { A: 1 } }, "env.A", "string"],
        [{ name: "a", command: "x", outputLogLevel: "off" }, "outputLogLevel", "\"None\" (logs no agent output)"],
        [{ name: "a", command: "x", outputLogLevel: "info" }, "outputLogLevel", "must be one of"],
        [{ name: "a", command: "x", outputRateLimit: 0 }, "outputRateLimit", "above 0"],
        [{ name: "a", command: "x", outputRateLimit: -1 }, "outputRateLimit", "above 0"],
        [{ name: "a", command: "x", outputRateLimit: Infinity }, "outputRateLimit", "above 0"],
        [{ name: "a", command: "x", outputRateLimit: "100/s" }, "outputRateLimit", "number"],
        [{ name: "a", command: "x", outputBurst: 0 }, "outputBurst", "1 or more"],
        [{ name: "a", command: "x", outputBurst: 2.5 }, "outputBurst", "integer"],
        [{ name: "a", command: "x", args: "--flag" }, "args", "ReadonlyArray"],
        [{ name: "a", command: "x", requestTimout: 5 }, "requestTimout", "not a known setting"],
        ["not an object", "(config)", "must be an object of settings"]
      ]
      for (const [input, field, rule] of cases) {
        const error = yield* errorOf(input)
        assert.strictEqual(error._tag, "ConfigError")
        assert.strictEqual(error.field, field, JSON.stringify(input))
        assert.include(error.rule, rule, JSON.stringify(input))
        assert.include(error.message, field)
        assert.isString(error.remediation)
      }
    }))
})

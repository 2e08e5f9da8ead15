/**
 * The command line's own mistakes, as every command says them: `error: ...` first, the command or option meant when
 * one is close, the command's usage line after an error @effect/cli found. @effect/cli 0.77 printed "Received
 * unknown argument: '--urll'" and "'abc' is not a integer" bare, with no hint and no `error:` (only `conformance`
 * suggested the option meant). Through the built bin, in a child process, in a directory with no running tree.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as fs from "node:fs"
import * as path from "node:path"
import { followHint, unknownName } from "../src/internal/cli/arguments.js"
import { grammar, run } from "../src/internal/cli/main.js"
import { report } from "../src/internal/cli/report.js"
import { runCli, tempDir } from "./support.js"

const cli = (args: ReadonlyArray<string>, cwd: string) => runCli(args, { cwd })

const NO_TREE = "error: No running tree found in this directory"

/** Command lines refused, and the lines of what is printed (stderr) each must start with. */
const REFUSED: ReadonlyArray<readonly [ReadonlyArray<string>, ReadonlyArray<string>]> = [
  [["status", "--urll", "http://127.0.0.1:1"], [
    `error: "--urll" is no option of status (did you mean --url?); its options are --file (-f), --url, --token, ` +
    "--state-file, --json"
  ]],
  [["logs", "--folow", "x"], [`error: "--folow" is no option of logs (did you mean --follow?); `]],
  [["stauts"], [`error: "stauts" is no command of agent-supervisor (did you mean status?); the commands are up, `]],
  [["frobnicate"], [`error: "frobnicate" is no command of agent-supervisor; the commands are up, validate, status, `]],
  [["--json", "status"], [
    `error: "--json" is no option of agent-supervisor itself: a command's options go after its name ` +
    "(agent-supervisor status --json)"
  ]],
  [["status", "--url"], ["error: --url needs a value: agent-supervisor status --url TEXT"]],
  [["up", "tree.yaml", "--log-format"], [
    "error: --log-format needs a value: agent-supervisor up --log-format one of auto | pretty | json | logfmt"
  ]],
  ...["1e3", "0x3", "+3", " 3", "-1", "2.5"].map((n) =>
    [["scale", "pool", n], [`error: N must be a whole number of 0 or more, in digits (got "${n}")`]] as const
  ),
  [["scale", "pool", "99999999999999999999"], ["error: N 99999999999999999999 is too large: "]],
  [["scale", "pool", "abc"], [
    `error: N must be a whole number of 0 or more, in digits (got "abc")`,
    "usage: agent-supervisor scale [(-f, --file file)] [--url text] [--token text] [--state-file file] [--json] " +
    "<ID> <N>",
    "(agent-supervisor scale --help for more)"
  ]],
  [["restart"], ["error: Missing argument <ID>", "usage: agent-supervisor restart "]],
  [["validate", "missing.yaml"], ["error: Path 'missing.yaml' must exist", "usage: agent-supervisor validate <FILE>"]],
  [["status", "extra"], [`error: "extra" is no argument or option here`, "usage: agent-supervisor status "]],
  // -f is --follow where a command follows: a tree file after it is said so
  [["logs", "chatty", "-f", "tree.yaml"], [
    `error: "tree.yaml" is no argument or option here (-f is --follow here; give the tree file with --file)`,
    "usage: agent-supervisor logs "
  ]],
  [["events", "-F", "tree.yml"], [
    `error: "tree.yml" is no argument or option here (-f is --follow here; give the tree file with --file)`
  ]],
  [["logs", "-f", "chatty", "tree.json"], [
    `error: "tree.json" is no argument or option here (-f is --follow here; give the tree file with --file)`
  ]],
  [["logs", "-fn", "3", "x"], [`error: "-fn" is no option of logs; its options are `]],
  [["status", "--url", "--", "x"], ["error: --url needs a value: agent-supervisor status --url TEXT"]],
  // after --, nothing is an option: one of the command's there is said so
  [["call", "echo", "--", "-1", "--url", "http://127.0.0.1:1"], [
    `error: "--url" is no argument or option here (after -- nothing is read as an option: give --url before --)`,
    "usage: agent-supervisor call "
  ]],
  // An empty ID would reach the API as another route (/api/children//restart), a count of lines below 1 as a 400
  ...["restart", "stop", "start", "reload", "logs", "call", "history"].map((command) =>
    [[command, ""], [
      "error: ID is empty: give a child's path below the root (agent-supervisor status lists them)",
      `usage: agent-supervisor ${command} `
    ]] as const
  ),
  [["scale", "", "3"], ["error: ID is empty: "]],
  // "." and ".." steps: the URL would be read as another route (/api/children/../call); no child id may be so
  ...[["call", ".."], ["restart", "a/./b"], ["scale", ".", "3"]].map((args) =>
    [args, [
      `error: ID "${args[1]}" holds "." or "..", which no child id may: give a child's path below the root`
    ]] as const
  ),
  [["publish", "..", "{}"], [`error: TOPIC ".." holds "." or "..", which no name may: give a topic's name`]],
  [["publish", "", "{}"], ["error: TOPIC is empty: give a topic's name"]],
  [["logs", "x", "-n", "0"], [
    "error: --lines (-n) must be a whole number of 1 or more (got 0)",
    "usage: agent-supervisor logs "
  ]]
]

/** Through the bin: one of each kind refused, and lines read as meant (on to the address, which is not there). */
const THROUGH_THE_BIN: ReadonlyArray<readonly [ReadonlyArray<string>, ReadonlyArray<string>]> = [
  REFUSED[0],
  REFUSED.find(([args]) => args[0] === "scale")!,
  [["logs", "-F", "-n", "3", "x"], [NO_TREE]],
  [["scale", "pool", "-1"], [`error: N must be a whole number of 0 or more, in digits (got "-1")`]],
  [["status", "--json=true"], [NO_TREE]],
  // options after the arguments are read as well as before them: the --url is the one reached
  [["scale", "pool", "3", "--url", "http://127.0.0.1:1"], ["error: Cannot reach the admin API at http://127.0.0.1:1"]]
]

/** What the bin prints for a command line refused before anything runs: the command line run in this process. */
const refusal = (args: ReadonlyArray<string>) =>
  run("0.0.0")(["node", "agent-supervisor", ...args]).pipe(
    Effect.provide(NodeContext.layer),
    Effect.exit,
    Effect.map((exit) => Exit.isFailure(exit) ? report(exit.cause) : undefined)
  )

/** `text`'s lines start with `expected`'s, in order. */
const startsWith = (text: string, expected: ReadonlyArray<string>, what: string) => {
  const lines = text.split("\n")
  expected.forEach((line, n) => assert.isTrue(lines[n]?.startsWith(line), `line ${n} of ${what}:\n${text}`))
}

describe("the command line's mistakes", () => {
  it.effect("each is refused before anything runs: error:, what was meant, the command's usage", () =>
    Effect.gen(function*() {
      for (const [args, expected] of REFUSED) {
        const printed = yield* refusal(args)
        assert.isDefined(printed, args.join(" "))
        startsWith(printed!, expected, args.join(" "))
      }
    }))

  it.scoped("a ConfigError is printed as its message alone: each setting and its rule, not said again", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("cli-config-error")
      const file = path.join(dir, "tree.yaml")
      fs.writeFileSync(
        file,
        "children:\n  - { type: agent, id: a, config: { name: a, command: x, requestTimout: 5 } }\n"
      )
      const printed = yield* refusal(["validate", file])
      assert.strictEqual(
        printed,
        `error: Invalid configuration at children[0].config.requestTimout: is not a known setting: did you mean ` +
          `"requestTimeout"? (got 5)`
      )
    }))

  it.scopedLive(
    "through the bin: printed on stderr alone, exit 1, no stack; the rest read as meant",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("cli-arguments")
        const results = yield* Effect.forEach(THROUGH_THE_BIN, ([args]) => cli(args, dir), { concurrency: 2 })
        THROUGH_THE_BIN.forEach(([args, expected], i) => {
          const { code, stderr, stdout } = results[i]
          const what = args.join(" ")
          assert.strictEqual(code, 1, `${what}:\n${stderr}`)
          assert.strictEqual(stdout, "", what)
          startsWith(stderr, expected, what)
          assert.notInclude(stderr, "    at ", `no stack: ${what}`)
        })
      }),
    120_000
  )

  it("unknownName: a word before -- naming no command or option; values, aliases and -- pass", () => {
    for (
      const args of [
        ["status", "-f", "tree.yaml", "--json"],
        ["--log-level", "debug", "status"],
        ["--log-level=debug", "status", "--help"],
        ["conformance", "--only", "ready", "--", "node", "--anything"],
        ["status", "--token", "-secret-"],
        ["scale", "pool", "-3"],
        ["--version"],
        []
      ]
    ) assert.isUndefined(unknownName(args, grammar), args.join(" "))
    assert.strictEqual(
      unknownName(["conformance", "--jsn", "--", "true"], grammar),
      `"--jsn" is no option of conformance (did you mean --json?); its options are --json, --only, --startup-timeout, ` +
        "--request-timeout, --ping-timeout, --cancel-timeout, --exit-timeout, and the agent's command goes after --"
    )
    assert.include(unknownName(["logs", "-x", "id"], grammar)!, `"-x" is no option of logs; its options are `)
    assert.include(unknownName(["logs", "-fx", "id"], grammar)!, `"-fx" is no option of logs`)
  })

  it("followHint: a word left over after -f where -f is --follow, right after it or named as a tree file", () => {
    const hint = " (-f is --follow here; give the tree file with --file)"
    assert.strictEqual(followHint(grammar, ["logs", "chatty", "-f", "tree.yaml"], "tree.yaml"), hint)
    assert.strictEqual(followHint(grammar, ["logs", "chatty", "--follow", "mytree"], "mytree"), hint)
    assert.strictEqual(followHint(grammar, ["logs", "-f", "chatty", "tree.toml"], "tree.toml"), hint)
    // not after -f, not a file's name, or a command whose -f is --file
    assert.strictEqual(followHint(grammar, ["logs", "-f", "chatty", "extra"], "extra"), "")
    assert.strictEqual(followHint(grammar, ["logs", "chatty", "tree.yaml"], "tree.yaml"), "")
    assert.strictEqual(followHint(grammar, ["status", "-f", "tree.yaml", "tree.yaml"], "tree.yaml"), "")
  })
})

/**
 * The README's code blocks, run as a user runs them. Every fenced block carries a marker on the line just before
 * it, and a block without one fails this test, so that no new block escapes it:
 *
 * - `<!-- readme-test: run -->`: a whole TypeScript program. It is written as `main.ts` into a fresh directory
 *   inside this repository (so that `effect-agent-supervisor` resolves to the built package through its own
 *   `exports`, as it does for a user who installed it), beside every `file` block; type-checked with the
 *   repository's compiler options (`strict`, `exactOptionalPropertyTypes`) and run with `node --import tsx main.ts`
 *   from that directory. It must exit 0 within {@link RUN_TIMEOUT_MS}, log no warning or error, and print every
 *   line its comments promise (`// prints: TEXT`, in order; `...` stands for any text).
 *   `run twice` runs it a second time in the same directory and checks the second run (a store that remembers);
 *   `run until-signal` sends SIGINT (Ctrl-C) once every promised line is out and expects exit 0 (a program that
 *   runs until it is stopped).
 * - `<!-- readme-test: check -->`: a whole TypeScript module, type-checked only (it makes values this test has no
 *   server for).
 * - `<!-- readme-test: file PATH -->`: a file that programs use (an agent), written at PATH in each program's
 *   directory. A `run` block must name PATH.
 * - `<!-- readme-test: fragment -->`: part of a program (a signature, a line to add), not compiled.
 * - `<!-- readme-test: shell -->`: commands (an install, the project's own scripts), not run here.
 *
 * `README_PATH` points the test at another README: `README_PATH=old.md npx vitest run test/readme.test.ts`.
 * Needs the built package (`npm test` builds first).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { root } from "./support.js"

/**
 * How long one run of a program may take, from its spawn, before it is killed with its process group. Alone on an
 * idle machine a run takes ~3 s (most of it `tsx` and loading the package); the bound catches a hang, not slowness.
 */
const RUN_TIMEOUT_MS = 40_000
/**
 * How many programs run at once. Each is CPU-bound while it loads; run all at once beside the type-check and another
 * test file on 2 busy cores, each took 4-8 times as long as alone, and past any bound (CI: 25 s).
 */
const RUN_SLOTS = 2
/** How long the type-check of every program may take. */
const CHECK_TIMEOUT_MS = 60_000

const readmePath = path.resolve(root, process.env.README_PATH ?? "README.md")
const readmeName = path.relative(root, readmePath)

// -- the blocks -----------------------------------------------------------------------------------------------------

type Marker =
  | { readonly kind: "run"; readonly mode: "once" | "twice" | "until-signal" }
  | { readonly kind: "check" }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "fragment" }
  | { readonly kind: "shell" }

interface Block {
  /** The line of the opening fence, from 1. */
  readonly line: number
  readonly lang: string
  readonly code: string
  readonly marker: Marker | undefined
}

const MARKER = /^<!--\s*readme-test:\s*(.*?)\s*-->\s*$/
const TYPESCRIPT = new Set(["ts", "typescript"])

/** A marker's text as a `Marker`, or why it is not one. */
const parseMarker = (text: string, lang: string): Marker | string => {
  const [kind, ...rest] = text.split(/\s+/)
  switch (kind) {
    case "run":
    case "check": {
      if (!TYPESCRIPT.has(lang)) return `"${kind}" is for TypeScript blocks, not "${lang}"`
      if (kind === "check") return rest.length === 0 ? { kind } : `"check" takes no option, got "${rest.join(" ")}"`
      const mode = rest.length === 0 ? "once" : rest.join(" ")
      return mode === "once" || mode === "twice" || mode === "until-signal"
        ? { kind, mode }
        : `"run" takes "twice" or "until-signal", got "${mode}"`
    }
    case "file": {
      const file = rest.join(" ")
      if (file === "" || path.isAbsolute(file) || path.normalize(file).startsWith("..")) {
        return `"file" needs a relative path inside the program's directory, got "${file}"`
      }
      return { kind, path: path.normalize(file) }
    }
    case "fragment":
    case "shell":
      return rest.length === 0 ? { kind } : `"${kind}" takes no option, got "${rest.join(" ")}"`
    default:
      return `unknown marker "${text}" (run, check, file PATH, fragment, shell)`
  }
}

/** Every fenced block with its marker, and every problem with the markers. */
const parseReadme = (
  name: string,
  text: string
): { readonly blocks: ReadonlyArray<Block>; readonly problems: ReadonlyArray<string> } => {
  const lines = text.split("\n")
  const blocks: Array<Block> = []
  const problems: Array<string> = []
  const where = (line: number) => `${name}:${line}`
  for (let i = 0; i < lines.length; i++) {
    const marker = MARKER.exec(lines[i])
    if (marker !== null && !/^```/.test(lines[i + 1] ?? "")) {
      problems.push(`${where(i + 1)}: a readme-test marker must be on the line just before a fenced block`)
      continue
    }
    const open = /^```\s*([\w-]*)\s*$/.exec(lines[i])
    if (open === null) continue
    const start = i
    let end = i + 1
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++
    if (end === lines.length) {
      problems.push(`${where(start + 1)}: a fenced block that is never closed`)
      break
    }
    const lang = open[1].toLowerCase()
    const code = lines.slice(start + 1, end).join("\n") + "\n"
    const before = start > 0 ? MARKER.exec(lines[start - 1]) : null
    let parsed: Marker | undefined = undefined
    if (before === null) {
      problems.push(
        `${where(start + 1)}: a ${lang === "" ? "plain" : lang} block without a marker: put ` +
          "`<!-- readme-test: run | check | file PATH | fragment | shell -->` on the line before it"
      )
    } else {
      const result = parseMarker(before[1], lang)
      if (typeof result === "string") problems.push(`${where(start)}: ${result}`)
      else parsed = result
    }
    blocks.push({ line: start + 1, lang, code, marker: parsed })
    i = end
  }
  const runs = blocks.filter((block) => block.marker?.kind === "run")
  if (runs.length === 0) problems.push(`${name}: no block is marked "run"`)
  const files = new Map<string, number>()
  for (const block of blocks) {
    if (block.marker?.kind !== "file") continue
    const file = block.marker.path
    const earlier = files.get(file)
    if (earlier !== undefined) {
      problems.push(`${where(block.line)}: ${file} is already written by the block at ${earlier}`)
    }
    files.set(file, block.line)
    if (!runs.some((run) => run.code.includes(file))) {
      problems.push(`${where(block.line)}: no "run" block uses ${file}`)
    }
  }
  return { blocks, problems }
}

const { blocks, problems } = parseReadme(readmeName, fs.readFileSync(readmePath, "utf8"))
const programs = blocks.filter((block) => block.marker?.kind === "run" || block.marker?.kind === "check")
const files = blocks.flatMap((block) =>
  block.marker?.kind === "file" ? [{ path: block.marker.path, code: block.code }] : []
)
const directoryOf = (block: Block) => `${block.marker?.kind}-${block.line}`

// -- what a program promises ----------------------------------------------------------------------------------------

/** The lines a program's comments say it prints (`// prints: TEXT`), as patterns for one whole line of output. */
const promisedLines = (code: string): ReadonlyArray<RegExp> =>
  code.split("\n").flatMap((line) => {
    const promise = /\/\/.*?\bprints: (.+?)\s*$/.exec(line)
    if (promise === null) return []
    const pattern = promise[1].split("...").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")
    return [new RegExp(`^${pattern}$`)]
  })

/** The promised lines not found in `output`, in order (each after the previous one). */
const missingLines = (promised: ReadonlyArray<RegExp>, output: string): ReadonlyArray<string> => {
  const lines = output.split("\n").map((line) => line.trimEnd())
  const missing: Array<string> = []
  let from = 0
  for (const pattern of promised) {
    const at = lines.findIndex((line, index) => index >= from && pattern.test(line))
    if (at === -1) missing.push(pattern.source)
    else from = at + 1
  }
  return missing
}

// Effect's loggers: pretty (`[12:00:00.000] WARN (#1): ...`, what runMain installs) and logfmt (`level=WARN`)
const WARNING_OR_WORSE = /^\[[\d:.]+\] (WARN|ERROR|FATAL)\b|\blevel=(WARN|ERROR|FATAL)\b/m

// -- processes ------------------------------------------------------------------------------------------------------

interface Ran {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
  readonly interrupted: boolean
}

/**
 * Runs a command in its own process group, killed whole with SIGKILL after `timeoutMs`. With `interruptOnce`, sends
 * SIGINT to the command once its stdout holds every line of `interruptOnce`.
 */
const run = (
  command: string,
  args: ReadonlyArray<string>,
  cwd: string,
  timeoutMs: number,
  interruptOnce?: ReadonlyArray<RegExp>
): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const { NODE_OPTIONS: _, ...env } = process.env
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    let timedOut = false
    let interrupted = false
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      const complete = stdout.slice(0, stdout.lastIndexOf("\n") + 1)
      if (interruptOnce !== undefined && !interrupted && missingLines(interruptOnce, complete).length === 0) {
        interrupted = true
        child.kill("SIGINT")
      }
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid!, "SIGKILL")
      } catch {
        // the group is gone already
      }
    }, timeoutMs)
    child.on("error", reject)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr, timedOut, interrupted })
    })
  })

/** At most `slots` of the functions given run at once; the others wait their turn, in order. */
const makeLimiter = (slots: number) => {
  let free = slots
  const waiting: Array<() => void> = []
  return async <A>(f: () => Promise<A>): Promise<A> => {
    if (free > 0) free -= 1
    else await new Promise<void>((resolve) => waiting.push(resolve))
    try {
      return await f()
    } finally {
      const next = waiting.shift()
      if (next === undefined) free += 1
      else next()
    }
  }
}

const describeRun = (ran: Ran): string => {
  const ended = `${ran.timedOut ? "killed after the timeout, " : ""}exit ${ran.code ?? ran.signal}`
  return `${ended}\n--- stdout\n${ran.stdout}--- stderr\n${ran.stderr}`
}

// -- the test -------------------------------------------------------------------------------------------------------

describe(readmeName, () => {
  let work = ""

  beforeAll(() => {
    assert.isTrue(
      fs.existsSync(path.join(root, "dist", "index.js")),
      "the programs import the built package: run `npm run build` (`npm test` does)"
    )
    // Inside the repository (in its git-ignored scratch folder), so that the package resolves by its name
    fs.mkdirSync(path.join(root, ".scratch"), { recursive: true })
    work = fs.mkdtempSync(path.join(root, ".scratch", "readme-"))
    for (const block of programs) {
      const directory = path.join(work, directoryOf(block))
      fs.mkdirSync(directory)
      fs.writeFileSync(path.join(directory, "main.ts"), block.code)
      for (const file of files) {
        fs.mkdirSync(path.dirname(path.join(directory, file.path)), { recursive: true })
        fs.writeFileSync(path.join(directory, file.path), file.code)
      }
    }
    fs.writeFileSync(
      path.join(work, "tsconfig.json"),
      JSON.stringify({
        extends: path.join(root, "tsconfig.base.json"),
        // A user's own choice; the README's programs need not declare everything they use
        compilerOptions: { noEmit: true, noUnusedLocals: false, noUnusedParameters: false },
        include: ["*/main.ts"]
      })
    )
  })

  afterAll(() => {
    if (work !== "") fs.rmSync(work, { recursive: true, force: true })
  })

  it("marks every fenced block, each run block using the files it names", () => {
    assert.deepStrictEqual(problems, [])
  })

  it("finds a block without a marker, a misplaced marker, a wrong kind and a file no program uses", () => {
    const fence = "```"
    const text = [
      "<!-- readme-test: run -->",
      `${fence}ts`,
      "console.log(1)",
      fence,
      `${fence}python`,
      "print(1)",
      fence,
      "<!-- readme-test: fragment -->",
      "",
      `${fence}sh`,
      "ls",
      fence,
      "<!-- readme-test: run -->",
      `${fence}js`,
      "1",
      fence,
      "<!-- readme-test: file agents/a.py -->",
      `${fence}python`,
      "pass",
      fence
    ].join("\n")
    const found = parseReadme("X.md", text)
    assert.deepStrictEqual(found.blocks.map((block) => [block.line, block.lang, block.marker?.kind]), [
      [2, "ts", "run"],
      [5, "python", undefined],
      [10, "sh", undefined],
      [14, "js", undefined],
      [18, "python", "file"]
    ])
    assert.deepStrictEqual(found.problems.map((problem) => problem.split(": put ")[0]), [
      "X.md:5: a python block without a marker",
      "X.md:8: a readme-test marker must be on the line just before a fenced block",
      "X.md:10: a sh block without a marker",
      "X.md:13: \"run\" is for TypeScript blocks, not \"js\"",
      "X.md:18: no \"run\" block uses agents/a.py"
    ])
  })

  it.concurrent(`type-checks the ${programs.length} run and check blocks`, async () => {
    assert.isAbove(programs.length, 0)
    const ran = await run(
      process.execPath,
      [path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "."],
      work,
      CHECK_TIMEOUT_MS
    )
    // Errors as README positions: `run-67/main.ts(3,5)` is line 67 + 3 of the README
    const located = ran.stdout.replace(
      /(?:run|check)-(\d+)\/main\.ts\((\d+),(\d+)\)/g,
      (_, block: string, line: string, column: string) => `${readmeName}:${Number(block) + Number(line)}:${column}`
    )
    assert.strictEqual(ran.code, 0, located + ran.stderr)
  }, CHECK_TIMEOUT_MS + 5_000)

  const limit = makeLimiter(RUN_SLOTS)
  const runCount = (block: Block): number => block.marker?.kind !== "run" ? 0 : block.marker.mode === "twice" ? 2 : 1
  /** A program may wait for every other run before its own: the test's bound covers that wait. */
  const allRuns = programs.reduce((sum, block) => sum + runCount(block), 0)
  for (const block of programs) {
    const marker = block.marker
    if (marker?.kind !== "run") continue
    const promised = promisedLines(block.code)
    it.concurrent(`${readmeName}:${block.line} runs${marker.mode === "once" ? "" : ` (${marker.mode})`}`, async () => {
      const directory = path.join(work, directoryOf(block))
      const interruptOnce = marker.mode === "until-signal" ? promised : undefined
      const runOnce = async (nth: number): Promise<Ran> => {
        const ran = await limit(() =>
          run(process.execPath, ["--import", "tsx", "main.ts"], directory, RUN_TIMEOUT_MS, interruptOnce)
        )
        assert.isFalse(ran.timedOut, `run ${nth} did not end within ${RUN_TIMEOUT_MS} ms: ${describeRun(ran)}`)
        assert.strictEqual(ran.code, 0, `run ${nth}: ${describeRun(ran)}`)
        assert.notMatch(ran.stdout + ran.stderr, WARNING_OR_WORSE, `run ${nth} logged: ${describeRun(ran)}`)
        return ran
      }
      // The promises are the last run's: the second of `run twice` reads what the first one left
      const last = marker.mode === "twice" ? await runOnce(1).then(() => runOnce(2)) : await runOnce(1)
      if (marker.mode === "until-signal") {
        assert.isTrue(last.interrupted, `ended before it printed every promised line: ${describeRun(last)}`)
      }
      assert.deepStrictEqual(
        missingLines(promised, last.stdout),
        [],
        `promised lines not printed: ${describeRun(last)}`
      )
    }, allRuns * RUN_TIMEOUT_MS + 5_000)
  }
})

/**
 * A protocol conformance kit: runs a battery of checks against any agent program, in any language, and reports
 * what it did, check by check, with the evidence (what was sent, what came back, when).
 *
 * The agent under test implements the **conformance contract** (`docs/CONFORMANCE.md`): a task's `payload` is
 * `{"op": ...}`, and
 *
 * | payload | the agent |
 * |---|---|
 * | `{"op":"echo","value":X}` | returns X |
 * | `{"op":"sleep","ms":N,"value":X}` | sleeps N ms unless cancelled, returns X |
 * | `{"op":"fail","message":S}` | fails with message S (an error response) |
 * | `{"op":"print","text":S}` | writes S to its own stdout (print, console.log), returns `"printed"` |
 * | `{"op":"spawn","text":S}` | runs `sh -c 'echo "$1"' sh S` with its stdout inherited, waits, returns `"spawned"` |
 * | `{"op":"wasCancelled"}` | returns whether the most recent sleep was cut short by a cancel |
 * | `{"op":"stream","n":N,"value":X}` | (feature `stream`) sends `{"i":0}`..`{"i":N-1}` (`"ms":M` apart), returns X |
 * | `{"op":"checkpoint","data":D}` | (feature `checkpoint`) sends the agent checkpoint D, returns `"checkpointed"` |
 * | `{"op":"restored"}` | (feature `checkpoint`) returns the data of the last `restore` received, or null |
 * | `{"op":"publish","topic":T,"payload":P}` | (feature `publish`) publishes P to T, returns `"published"`; an empty T is an error response |
 *
 * The last four are protocol 1.1's and 1.2's: their checks (`stream`, `checkpoint`, `publish`) run only where the
 * agent's `ready` announces the feature, and are skipped elsewhere.
 *
 * Each check spawns the agent afresh (so one crash fails one check), in a process group of its own that is killed
 * when the check ends, and talks to it over raw pipes: the kit sees every byte of stdout, every line of stderr,
 * the exit. Checks run at once (`concurrency`). They wait for events, each within a bound of the options (a
 * loaded machine is slow, not wrong: raise the bounds there); the live clock is used, so run it outside
 * `TestClock`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Adapters, Conformance } from "effect-agent-supervisor"
 *
 * const program = Effect.gen(function*() {
 *   const report = yield* Conformance.run(Adapters.pythonCallback("agents/conformance.py"))
 *   for (const check of report.checks) console.log(check.name, check.status, check.summary)
 *   return report.passed
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import { fileURLToPath } from "node:url"
import * as Adapters from "./Adapters.js"
import type { ConfigError } from "./Errors.js"
import * as battery from "./internal/conformance/battery.js"
import * as options from "./internal/conformance/options.js"
import type { DurationInput } from "./internal/durationText.js"

/**
 * The name of a check, as reports and `only` give it.
 *
 * @since 0.1.0
 * @category models
 */
export type CheckName = options.CheckName

/**
 * Every check's name, in the order a report lists them.
 *
 * @since 0.1.0
 * @category checks
 */
export const checkNames: ReadonlyArray<CheckName> = options.CHECK_NAMES

/**
 * What a check is, without running it.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckInfo {
  readonly name: CheckName
  /** What passing it proves, in one sentence. */
  readonly description: string
  /** The feature `ready` must announce (`"features": [...]`, protocol 1.1) for it to run; none for protocol 1. */
  readonly feature?: string | undefined
}

/**
 * The battery, in report order.
 *
 * @since 0.1.0
 * @category checks
 */
export const checks: ReadonlyArray<CheckInfo> = battery.checks.map(({ description, feature, name }) => ({
  name,
  description,
  ...(feature !== undefined ? { feature } : {})
}))

/**
 * `"pass"`, `"fail"`, or `"skipped"` (not applicable to this agent: a feature it does not announce). A report with
 * skips and no failure has passed.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "pass" | "fail" | "skipped"

/**
 * The outcome of one check.
 *
 * @since 0.1.0
 * @category models
 */
export interface CheckResult {
  readonly name: CheckName
  readonly description: string
  readonly status: Status
  /** One line: why, with the timing that decided it. */
  readonly summary: string
  /**
   * Several lines: what the check found (values compared, the rule applied), then the transcript of its agent,
   * each event with the milliseconds since the spawn: `->` sent to stdin, `<-` a protocol message on stdout, `<!` a
   * stdout line that is not one, `2>` stderr, `**` the kit's notes, and the exit. Long lines are cut.
   */
  readonly evidence: string
  /** From the check's start to its end, its agent killed, in milliseconds. */
  readonly durationMillis: number
  /**
   * Present when this check found what explains other checks' failures too: an agent that answers every payload as
   * it came fails `echo` with the diagnosis that it does not implement the conformance contract.
   */
  readonly diagnosis?: string
}

/**
 * What {@link run} found.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** The protocol version checked. */
  readonly protocol: 1
  /**
   * The features the agent announced in its `ready` line: in the `ready` check's run, or, when that check is not
   * run, in the start that read them for a check of a feature; empty when none was announced, no `ready` was seen,
   * or neither ran (`only: ["echo"]`).
   */
  readonly features: ReadonlyArray<string>
  /** One result per check run, in the order of {@link checkNames}. */
  readonly checks: ReadonlyArray<CheckResult>
  readonly counts: { readonly pass: number; readonly fail: number; readonly skipped: number }
  /** The checks' diagnoses, each once, in the checks' order: what to fix first when many checks fail. */
  readonly diagnoses: ReadonlyArray<string>
  /** No check failed (skips allowed). */
  readonly passed: boolean
  /** The whole run, in milliseconds. */
  readonly durationMillis: number
}

/**
 * Options of {@link run}. Durations are milliseconds, `"5 seconds"`, or a `Duration`, longer than 0.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The agent's program: a name on `PATH` or a path. `Adapters.pythonCallback(...)` and `nodeCallback` fit. */
  readonly command: string
  /** Its arguments; none by default. */
  readonly args?: ReadonlyArray<string> | undefined
  /** Its working directory; this process's by default. */
  readonly cwd?: string | undefined
  /** Added to this process's environment, as the supervisor does (which also sets `PYTHONUNBUFFERED=1`, as here). */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** From the spawn to `ready`. 10 seconds by default. */
  readonly startupTimeout?: DurationInput | undefined
  /** From a request to its answer (the 4 MiB echo: both ways). 10 seconds by default. */
  readonly requestTimeout?: DurationInput | undefined
  /**
   * A ping sent while a 2 s task runs must be answered within this, and before the task; and an agent checkpoint
   * must come before its task's response, or within this after it. 1 second by default.
   */
  readonly pingTimeout?: DurationInput | undefined
  /** From a cancel until `wasCancelled` says true; a cancelled task's answer, if any, comes within it. 2 seconds. */
  readonly cancelTimeout?: DurationInput | undefined
  /** From `shutdown` or the end of stdin to the exit (plus the 500 ms task being drained). 5 seconds by default. */
  readonly exitTimeout?: DurationInput | undefined
  /** How many checks run at once, each with an agent of its own: a number of at least 1, or `"unbounded"` (default). */
  readonly concurrency?: number | "unbounded" | undefined
  /** Only these checks (the report lists only them); all by default. */
  readonly only?: ReadonlyArray<CheckName> | undefined
}

/**
 * 10 seconds: the default `startupTimeout`.
 *
 * @since 0.1.0
 * @category defaults
 */
export const DEFAULT_STARTUP_TIMEOUT: Duration.Duration = options.DEFAULT_STARTUP_TIMEOUT

/**
 * 10 seconds: the default `requestTimeout`.
 *
 * @since 0.1.0
 * @category defaults
 */
export const DEFAULT_REQUEST_TIMEOUT: Duration.Duration = options.DEFAULT_REQUEST_TIMEOUT

/**
 * 1 second: the default `pingTimeout`.
 *
 * @since 0.1.0
 * @category defaults
 */
export const DEFAULT_PING_TIMEOUT: Duration.Duration = options.DEFAULT_PING_TIMEOUT

/**
 * 2 seconds: the default `cancelTimeout`.
 *
 * @since 0.1.0
 * @category defaults
 */
export const DEFAULT_CANCEL_TIMEOUT: Duration.Duration = options.DEFAULT_CANCEL_TIMEOUT

/**
 * 5 seconds: the default `exitTimeout`.
 *
 * @since 0.1.0
 * @category defaults
 */
export const DEFAULT_EXIT_TIMEOUT: Duration.Duration = options.DEFAULT_EXIT_TIMEOUT

/**
 * Runs the battery against the agent and reports every check. It never fails because of the agent: one that
 * cannot be spawned, never sends `ready`, crashes or hangs gives a report of failures, each with its evidence.
 * Fails only with `ConfigError` for bad options (each named with its field).
 *
 * @since 0.1.0
 * @category running
 */
export const run: (options: Options) => Effect.Effect<Report, ConfigError> = battery.run

/**
 * The command line of the conformance contract written for the Node adapter: the Node adapter running
 * `dist/internal/conformance/nodeAgent.js`, which ships with the package. `Conformance.run(Conformance.nodeAgent)`
 * checks the adapter and the Node it runs on.
 *
 * @since 0.1.0
 * @category agents
 */
export const nodeAgent: Adapters.CommandLine = Adapters.nodeCallback(
  // Through `../dist/` as `Adapters.node` is: the built module, from `dist/` and, in tests, from `src/`.
  fileURLToPath(new URL("../dist/internal/conformance/nodeAgent.js", import.meta.url))
)

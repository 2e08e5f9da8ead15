/**
 * The restart policy as pure rules and small Effects: how an exit is classified, whether it restarts, how long
 * to wait (a backoff `Schedule` driven by `Clock` and `Random`), when the failure counter resets, and the
 * sliding-window restart intensity of a supervisor. Everything that decides a restart goes through here.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import * as Schema from "effect/Schema"
import type { ConfigError } from "../Errors.js"
import type { DurationInput } from "../internal/durationText.js"
import * as Edge from "../internal/schema.js"
import * as Machinery from "./internal/intensity.js"

/**
 * How an exit is classified (DESIGN "Exit classes").
 *
 * @since 0.1.0
 * @category models
 */
export type ExitClass = "normal" | "shutdown" | "abnormal"

/**
 * Classifies an exit: asked for by the supervisor, a clean exit 0, or anything else.
 *
 * @since 0.1.0
 * @category classification
 */
export const classifyExit = (exit: {
  readonly exitCode: number | null
  readonly signal: string | null
  readonly requested: boolean
}): ExitClass => {
  // A requested stop is never a failure, whatever code the child died with while being stopped.
  if (exit.requested) return "shutdown"
  // No code (spawn failure, no `ready`) or a signal (OOM kill included) is a crash, not a clean exit.
  return exit.exitCode === 0 && exit.signal === null ? "normal" : "abnormal"
}

/**
 * The settings the policy needs (a structural subset of `AgentConfig`, so tests can build it without a full config).
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly restartOnExit: boolean
  readonly restart: "permanent" | "transient" | "temporary"
  readonly maxRestartAttempts: number
  readonly restartBackoff: Duration.Duration
  readonly backoffFactor: number
  readonly jitter: number
  readonly maxBackoff: Duration.Duration
  readonly resetAfter: Duration.Duration
}

const baseDelayMillis = (settings: Settings, failures: number): number => {
  const cap = Duration.toMillis(settings.maxBackoff)
  const base = Duration.toMillis(settings.restartBackoff)
  // 0 * Infinity is NaN: a zero base (OTP's immediate restart) stays zero however far the exponent grows.
  if (base === 0) return 0
  const raw = base * settings.backoffFactor ** Math.max(0, failures - 1)
  return Math.min(cap, raw)
}

/**
 * The delay before restart number `failures` (1-based), without jitter: `min(maxBackoff, base * factor^(failures-1))`.
 *
 * @since 0.1.0
 * @category backoff
 */
export const baseDelay = (settings: Settings, failures: number): Duration.Duration =>
  Duration.millis(baseDelayMillis(settings, failures))

/**
 * The same with jitter in `[0, jitter * delay]` drawn from Effect's `Random`, capped again at `maxBackoff`.
 *
 * @since 0.1.0
 * @category backoff
 */
export const delay = (settings: Settings, failures: number): Effect.Effect<Duration.Duration> =>
  Effect.gen(function*() {
    const base = baseDelayMillis(settings, failures)
    // Without jitter no draw is made, so a seeded Random is left untouched for the caller's own use.
    if (settings.jitter <= 0 || base === 0) return Duration.millis(base)
    const fraction = yield* Random.next
    return Duration.millis(Math.min(Duration.toMillis(settings.maxBackoff), base * (1 + settings.jitter * fraction)))
  })

/**
 * The backoff as an Effect `Schedule`: its output is the delay it waits; it recurs `maxRestartAttempts` times;
 * exponential, capped and jittered; driven by `Clock` and `Random`, so `TestClock` makes it deterministic.
 *
 * @since 0.1.0
 * @category backoff
 */
export const schedule = (settings: Settings): Schedule.Schedule<Duration.Duration, unknown> =>
  // Built by hand rather than from `exponential`/`jittered`/`union`: those change the wait without changing the
  // output, and users (and the supervisor's events) need the output to be exactly the delay that is waited.
  Schedule.makeWithState(0, (now, _input: unknown, restarts: number) => {
    if (restarts >= settings.maxRestartAttempts) {
      return Effect.succeed([restarts, Duration.zero, ScheduleDecision.done] as const)
    }
    return Effect.map(delay(settings, restarts + 1), (wait) =>
      [
        restarts + 1,
        wait,
        ScheduleDecision.continueWith(ScheduleInterval.after(now + Duration.toMillis(wait)))
      ] as const)
  })

/**
 * The planned delays of the schedule, in order (`maxRestartAttempts` of them), for users to inspect and test.
 *
 * @since 0.1.0
 * @category backoff
 */
export const delays = (settings: Settings): Effect.Effect<ReadonlyArray<Duration.Duration>> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    // One input per restart: the schedule is never stepped into its `done`, so no extra Random draw is made.
    const inputs = Array.from({ length: Math.max(0, settings.maxRestartAttempts) }, () => undefined)
    const planned = yield* Schedule.run(schedule(settings), now, inputs)
    return Chunk.toReadonlyArray(planned)
  })

/**
 * What to do after an exit the supervisor did not ask for, given the consecutive failures so far.
 *
 * @since 0.1.0
 * @category models
 */
export type Decision =
  /** Restart after the backoff; `failures` is the new consecutive-failure count. */
  | { readonly _tag: "Restart"; readonly failures: number }
  /** The circuit opens: failures passed `maxRestartAttempts`; only a manual restart closes it. */
  | { readonly _tag: "Park"; readonly failures: number }
  /** Not restarted, spec kept (transient after a normal exit; `restartOnExit` false; a requested shutdown). */
  | { readonly _tag: "Stop" }
  /** Temporary: never restarted, spec removed. */
  | { readonly _tag: "Remove" }

/**
 * Decides what follows an exit (DESIGN "Restart decision", rules 1 and 2), given the failures before this exit.
 *
 * @since 0.1.0
 * @category decisions
 */
export const decide = (settings: Settings, exitClass: ExitClass, failuresBefore: number): Decision => {
  // What the supervisor asked for is never a failure and never counted, whatever the restart type.
  if (exitClass === "shutdown") return { _tag: "Stop" }
  if (settings.restart === "temporary") return { _tag: "Remove" }
  if (!settings.restartOnExit) return { _tag: "Stop" }
  if (settings.restart === "transient" && exitClass === "normal") return { _tag: "Stop" }
  const failures = failuresBefore + 1
  // `>` rather than `>=`: maxRestartAttempts = 3 allows exactly 3 restarts before the circuit opens.
  return failures > settings.maxRestartAttempts ? { _tag: "Park", failures } : { _tag: "Restart", failures }
}

/**
 * The consecutive-failure counter after a period RUNNING: reset to 0 once the child has run for `resetAfter`
 * (inclusive), kept otherwise.
 *
 * @since 0.1.0
 * @category decisions
 */
export const failuresAfterRun = (settings: Settings, failuresBefore: number, ranForMillis: number): number =>
  ranForMillis >= Duration.toMillis(settings.resetAfter) ? 0 : failuresBefore

/**
 * Whether a child that fails at once, every time, makes its supervisor escalate before its circuit opens.
 *
 * Its restarts count toward the intensity until it is parked; parked, it counts no more. Escalation needs
 * `maxRestarts + 1` restarts within `window`: the breaker must allow that many in a row, and the backoff between
 * the first and the last (jitter at its largest) must fit in the window. The time each failed start takes comes on
 * top: a start that hangs takes its `startupTimeout`.
 *
 * @since 0.1.0
 * @category models
 */
export type Reach =
  /** It escalates at the restart that comes `afterMillis` (at most) after the first. */
  | { readonly _tag: "Escalates"; readonly afterMillis: number }
  /** Never restarted (temporary, or `restartOnExit` false): it never counts toward the intensity. */
  | { readonly _tag: "NeverRestarted" }
  /** Parked after `restarts` in a row, fewer than the `needed` that exceed the intensity. */
  | { readonly _tag: "ParkedFirst"; readonly restarts: number; readonly needed: number }
  /** The backoff spreads the `needed` restarts over more than `spanMillis`, wider than the window. */
  | { readonly _tag: "TooSlow"; readonly needed: number; readonly spanMillis: number; readonly windowMillis: number }

/**
 * Tells whether a child that never starts escalates (see {@link Reach}): the rule `Supervisor.make` and
 * `startChild` check, warning when a child would be parked instead.
 *
 * @since 0.1.0
 * @category decisions
 */
export const reach = (
  settings: Settings,
  intensity: { readonly maxRestarts: number; readonly window: Duration.Duration }
): Reach => {
  if (settings.restart === "temporary" || !settings.restartOnExit) return { _tag: "NeverRestarted" }
  const needed = Math.max(0, intensity.maxRestarts) + 1
  if (settings.maxRestartAttempts < needed) {
    return { _tag: "ParkedFirst", restarts: settings.maxRestartAttempts, needed }
  }
  const windowMillis = Duration.toMillis(intensity.window)
  const cap = Duration.toMillis(settings.maxBackoff)
  let span = 0
  // The restart number `failures` waits its delay before the next one is decided.
  for (let failures = 1; failures < needed && span <= windowMillis; failures++) {
    span += Math.min(cap, baseDelayMillis(settings, failures) * (1 + settings.jitter))
  }
  return span <= windowMillis
    ? { _tag: "Escalates", afterMillis: span }
    : { _tag: "TooSlow", needed, spanMillis: span, windowMillis }
}

/**
 * Restart intensity: restart timestamps in a sliding window held in a `Ref` (milliseconds, inclusive boundary).
 *
 * @since 0.1.0
 * @category models
 */
export interface Intensity {
  /**
   * Records a restart decision at the Clock's current time; true when it EXCEEDS the limit (more than
   * `maxRestarts` within the window), which means escalate. `maxRestarts: 0` means any restart exceeds.
   */
  readonly record: Effect.Effect<boolean>
  /** Timestamps currently inside the window, oldest first (at most `maxRestarts + 1` of them). */
  readonly recent: Effect.Effect<ReadonlyArray<number>>
  /** Forgets every recorded restart. */
  readonly reset: Effect.Effect<void>
}

const IntensitySettings = Schema.Struct({ maxRestarts: Edge.Count, window: Edge.DurationInput })

/**
 * Makes a sliding-window intensity counter with OTP's semantics (`add_restart`): keep the timestamps `t` with
 * `now - t <= window`, add `now`, and the limit is exceeded when more than `maxRestarts` remain. Fails with
 * `ConfigError` when `maxRestarts` is not a whole number of 0 or more or `window` is no duration (or negative).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeIntensity = (options: {
  readonly maxRestarts: number
  readonly window: DurationInput
}): Effect.Effect<Intensity, ConfigError> =>
  Effect.flatMap(
    Edge.decodeOptions(IntensitySettings, options, { whole: "(intensity)" }),
    Machinery.make
  )

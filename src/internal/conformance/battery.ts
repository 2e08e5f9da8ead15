/**
 * The battery: every check in report order, and running them. Each check gets agents of its own (a crash in one
 * check cannot fail another) in its own scope (their process groups are killed when the check ends); checks
 * run at once up to `concurrency`. A check that needs a feature of protocol 1.1 waits for the `features` of the
 * `ready` check's agent and is skipped, with the reason, where they do not include it.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { performance } from "node:perf_hooks"
import type * as Conformance from "../../Conformance.js"
import type { ConfigError } from "../../Errors.js"
import * as Busy from "./busy.js"
import { type Check, type Context, fail, skipped, type Verdict } from "./check.js"
import * as Checkpoint from "./checkpoint.js"
import * as Lifecycle from "./lifecycle.js"
import * as Options from "./options.js"
import * as Publish from "./publish.js"
import * as Requests from "./requests.js"
import * as Session from "./session.js"
import * as Startup from "./startup.js"
import * as Stdout from "./stdout.js"
import * as Stream from "./stream.js"
import { evidence } from "./transcript.js"

/** Every check, in the order of `Options.CHECK_NAMES` (the report's). */
export const checks: ReadonlyArray<Check> = [
  Lifecycle.ready,
  Requests.echo,
  Requests.concurrentRequests,
  Busy.pingWhileBusy,
  Busy.cancel,
  Requests.errorResponse,
  Lifecycle.shutdownDrains,
  Lifecycle.exitOnEof,
  Stdout.stdoutPrint,
  Stdout.stdoutChild,
  Requests.largePayload,
  Requests.multibyteText,
  Stream.stream,
  Checkpoint.checkpoint,
  Publish.publish
]

/** The features a session's `ready` line announced, when it had a well-formed one. */
const featuresOf = (session: Session.Session | undefined): Option.Option<ReadonlyArray<string>> => {
  const ready = session?.lines().find((line) => line.message !== undefined)?.message
  if (ready === undefined || !("type" in ready) || ready.type !== "ready") return Option.none()
  const features = Lifecycle.featuresOf(ready)
  return features === "malformed" ? Option.none() : Option.some(features)
}

/** A verdict for a check that needs `feature`, from what the agent announced; undefined when it is to run. */
const gate = (feature: string, announced: Option.Option<ReadonlyArray<string>>): Verdict | undefined =>
  Option.match(announced, {
    onNone: () => skipped(`needs "${feature}" in ready's features, and no well-formed ready line was seen`),
    onSome: (features) =>
      features.includes(feature) ? undefined : skipped(`the agent does not announce "${feature}" in ready's features`)
  })

/** Runs one check to its verdict, its agents killed at the end, and writes its result. */
const runCheck = (
  check: Check,
  settings: Options.Settings,
  features: Effect.Effect<Option.Option<ReadonlyArray<string>>>,
  onSession: (session: Session.Session) => void
): Effect.Effect<Conformance.CheckResult> =>
  Effect.gen(function*() {
    const began = performance.now()
    // Most checks start one agent; one that starts more shows each one's transcript.
    const sessions: Array<Session.Session> = []
    const opened = (s: Session.Session) => {
      sessions.push(s)
      onSession(s)
    }
    const context: Context = {
      settings,
      open: Effect.flatMap(
        Session.open(settings),
        (s) => typeof s === "string" ? fail(s) : Effect.sync(() => (opened(s), s))
      ),
      start: Startup.start(settings, opened),
      features
    }
    const gated = check.feature === undefined ? undefined : gate(check.feature, yield* features)
    const verdict: Verdict = gated ?? (yield* check.run(context).pipe(
      Effect.merge,
      Effect.scoped,
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.failCause(cause)
          : Effect.succeed<Verdict>({
            status: "fail",
            summary: "the kit itself failed while running this check (a bug: please report it)",
            details: [Cause.pretty(cause)]
          })
      )
    ))
    return {
      name: check.name,
      description: check.description,
      status: verdict.status,
      summary: verdict.summary,
      evidence: evidence(verdict.details, sessions),
      durationMillis: Math.round(performance.now() - began),
      ...(verdict.diagnosis === undefined ? {} : { diagnosis: verdict.diagnosis })
    }
  })

/**
 * The agent's features for the checks that need them: from the `ready` check, or a start of their own (once, when
 * a check needs them); and `announced`, what either read, for the report (none when neither ran or saw a `ready`).
 */
const featureSource = (settings: Options.Settings, readyRuns: boolean) =>
  Effect.gen(function*() {
    const fromReady = yield* Deferred.make<Option.Option<ReadonlyArray<string>>>()
    let announced: Option.Option<ReadonlyArray<string>> = Option.none()
    const own = yield* Effect.cached(Effect.scoped(
      Effect.gen(function*() {
        let session: Session.Session | undefined
        yield* Effect.either(Startup.start(settings, (s) => (session = s)))
        return (announced = featuresOf(session))
      })
    ))
    return {
      features: readyRuns ? Deferred.await(fromReady) : own,
      readyDone: (session: Session.Session | undefined) => Deferred.succeed(fromReady, announced = featuresOf(session)),
      announced: () => announced
    }
  })

/** Runs the battery against the agent `options` describe. */
export const run: (options: Conformance.Options) => Effect.Effect<Conformance.Report, ConfigError> = Effect.fn(
  "Conformance.run"
)(
  function*(options: Conformance.Options) {
    const settings = yield* Options.decode(options)
    const began = performance.now()
    const selected = checks.filter((check) => settings.only === undefined || settings.only.has(check.name))
    const readyRuns = selected.some((check) => check.name === "ready")
    const { announced, features, readyDone } = yield* featureSource(settings, readyRuns)
    let readySession: Session.Session | undefined
    const runAll = (group: ReadonlyArray<Check>) =>
      Effect.forEach(group, (check) => {
        const result = runCheck(check, settings, features, (s) => {
          if (check.name === "ready") readySession = s
        })
        // Whatever happens to the ready check, the checks that wait for its features go on.
        return check.name === "ready" ? Effect.ensuring(result, Effect.suspend(() => readyDone(readySession))) : result
      }, { concurrency: settings.concurrency })
    // The timed checks after the others, apart from their start-up; the report in the battery's order.
    const done = [
      ...(yield* runAll(selected.filter((check) => check.timed !== true))),
      ...(yield* runAll(selected.filter((check) => check.timed === true)))
    ]
    const results = selected.map((check) => done.find((result) => result.name === check.name)!)
    const count = (status: Conformance.Status) => results.filter((r) => r.status === status).length
    return {
      command: settings.command,
      args: settings.args,
      protocol: 1,
      features: Option.getOrElse(announced(), () => []),
      checks: results,
      counts: { pass: count("pass"), fail: count("fail"), skipped: count("skipped") },
      diagnoses: [...new Set(results.flatMap((r) => r.diagnosis === undefined ? [] : [r.diagnosis]))],
      passed: count("fail") === 0,
      durationMillis: Math.round(performance.now() - began)
    }
  }
)

/**
 * Health of a running agent: what its heartbeat reports becomes events and store metrics, and a hung agent (too
 * many pings missed in a row) is killed so that its exit goes through the restart rules.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { RequestError } from "../../../Errors.js"
import * as Store from "../../../Store/Store.js"
import * as Health from "../../Health.js"
import * as Heartbeat from "../heartbeat.js"
import { type Core, crashError, type Incarnation, notRunningError, now } from "./core.js"

/** A reading of the supervisor's (of the process group), or else the agent's own report of it. */
const readingOf = (
  sample: Health.HealthSample,
  own: Option.Option<number>,
  reported: "cpu_percent" | "memory_mb"
): number | undefined =>
  Option.isSome(own) ? own.value : Option.isSome(sample.report) ? sample.report.value[reported] : undefined

/** A sample's CPU%. */
const cpuOf = (sample: Health.HealthSample) => readingOf(sample, sample.cpuPercent, "cpu_percent")

/** A sample's memory (MiB). */
const memoryOf = (sample: Health.HealthSample) => readingOf(sample, sample.memoryMb, "memory_mb")

/** A sample's health-check record, with the agent's state and restart count of now. */
const healthRecord = (core: Core, sample: Health.HealthSample): Store.HealthCheck =>
  Store.healthCheck({
    agent_name: core.name,
    state: core.state,
    cpu_percent: cpuOf(sample) ?? 0,
    memory_mb: memoryOf(sample) ?? 0,
    latency_ms: sample.latencyMillis,
    restart_count: core.restartCount,
    timestamp: sample.timestamp
  })

/** Notes a sample where it is read: the agent's last sample (`metadata`, `health`) and its metrics. */
const noteSample = (core: Core, sample: Health.HealthSample): void => {
  core.lastHealth.note(sample)
  core.metrics.sampled(sample.latencyMillis, cpuOf(sample), memoryOf(sample))
}

/** Hands a sample's health-check record to the store's writer. */
const recordSample = (core: Core, sample: Health.HealthSample): void =>
  core.writer.offerMetric(healthRecord(core, sample))

/**
 * A failed ping's event and warning: no answer in time, or an error answer (an adapter that can take no task says
 * so: a ping, not a task, failed then).
 */
const onMissed = (core: Core, missed: number, error: RequestError): Effect.Effect<void> =>
  Effect.gen(function*() {
    core.metrics.missedBeat()
    const why = error._tag === "AgentTaskError"
      ? `its ping was answered with an error: ${error.errorType}: ${error.errorMessage}`
      : error.message
    yield* core.publish({
      _tag: "HealthCheckFailed",
      agent: core.name,
      missed,
      error: why,
      timestamp: yield* now
    })
    yield* Effect.logWarning(`agent missed heartbeat ${missed} of ${core.settings.unhealthyAfter}: ${why}`)
  })

/** A hung agent is killed, so that its exit goes through the restart rules; unless `current` already ended. */
const onUnhealthy = (core: Core, current: Incarnation, missed: number): Effect.Effect<void> =>
  core.locked(Effect.gen(function*() {
    if (core.incarnation !== current) return
    yield* Effect.logError(`agent missed ${missed} heartbeats in a row: hung, killing it`)
    current.killReason = "heartbeat"
    yield* current.process.kill
  }))

/** How long stopping an incarnation waits for one of its heartbeat reports under way (its events come first). */
const REPORT_WAIT = Duration.seconds(1)

/**
 * Starts the heartbeat of `current`, whose process is `target`; it stops when `scope` closes. Its reports run
 * where the agent's owner runs them (`core.reports`: a tree's one runner for all its agents). A report that waits
 * when the incarnation ends is dropped, and one under way ends first (up to `REPORT_WAIT`), so that its events
 * come before those of the stop; unless the stop runs inside it (an `onEvent` that stops the agent).
 *
 * A sample's report, every beat of every agent, is the `HealthChecked` event alone in the run loop: the sample and
 * the metrics are noted when it starts, and its health-check record is handed to the writer when it ends (after
 * the event, with the state and restart count of that moment), both as plain calls: an `Effect` around each cost
 * a third of the beat. When nobody hears the event (no subscriber to any hub it goes through, no `onEvent` of the
 * user's: `core.unheard`), none is made and the report is those plain calls alone, in the beat's own callback:
 * the runner's fiber, its batch timer and the event's effects were a sixth of the beat's CPU at 1,000 agents.
 */
export const watchHealth = (
  core: Core,
  current: Incarnation,
  target: Heartbeat.Target,
  scope: Scope.Scope
): Effect.Effect<void> =>
  Effect.suspend(() => {
    let beating = true
    // Whether a report of this incarnation runs now, and the stop waiting for it to end.
    let reporting = false
    let stopWaiting: (() => void) | undefined
    const reported = () => {
      reporting = false
      stopWaiting?.()
      stopWaiting = undefined
    }
    const stop = Heartbeat.start(target, core.clock, {
      report: (report, handled) => {
        // Set when the report starts: one dropped (the incarnation ended first) tells nobody.
        let started = false
        if (report._tag === "Sample") {
          const sample = report.sample
          // Nobody hears the event: no fiber, no event, the same notes and record as plain calls, now. A throw (a
          // bug) is logged where the runner logs, and the heartbeat goes on, as it did when these ran in the runner.
          if (core.unheard()) {
            try {
              noteSample(core, sample)
              recordSample(core, sample)
            } catch (error) {
              core.reports.run(Effect.logError("a heartbeat report threw", error))
            }
            return handled()
          }
          return core.reports.run(
            Effect.suspend(() => {
              if (!beating) return Effect.void
              started = reporting = true
              noteSample(core, sample)
              return core.publish({ _tag: "HealthChecked", agent: core.name, sample })
            }),
            (succeeded) => {
              if (!started) return
              reported()
              // After the event: the state and restart count are those of that moment.
              if (succeeded) recordSample(core, sample)
              handled()
            }
          )
        }
        core.reports.run(
          Effect.suspend(() => {
            if (!beating) return Effect.void
            started = reporting = true
            return onMissed(core, report.missed, report.error).pipe(
              // The kill of a hung agent waits for its lock: in a fiber of the agent's, not in the runner's.
              Effect.zipRight(
                report.unhealthy ? Effect.asVoid(core.fork(onUnhealthy(core, current, report.missed))) : Effect.void
              ),
              Effect.annotateLogs({ module: "AgentSupervisor", agent: core.name })
            )
          }),
          () => {
            if (!started) return
            reported()
            handled()
          }
        )
      }
    })
    return Scope.addFinalizer(
      scope,
      Effect.fiberIdWith((self) => {
        beating = false
        stop()
        core.metrics.notRunning()
        // A sample of an ended process is no health of the agent: `status` showed a stopped agent's last CPU and
        // memory, and the next incarnation's pid with them until its first beat.
        core.lastHealth.clear()
        if (!reporting || core.reports.runsIn(self)) return Effect.void
        return Effect.async<void>((resume) => {
          // The report may have ended between the check above and this wait's start (a fiber of the timeout's).
          if (!reporting) return resume(Effect.void)
          stopWaiting = () => resume(Effect.void)
        }).pipe(Effect.timeout(REPORT_WAIT), Effect.ignore)
      })
    )
  })

/** Pings the agent now; fails at once when it is not running. Traced: `agent.health` is a public operation. */
export const check = (core: Core): Effect.Effect<Health.HealthSample, RequestError> =>
  Effect.gen(function*() {
    const current = yield* SubscriptionRef.get(core.route)
    // Waits for nothing: a start under way is not running yet
    if (current._tag === "Wait") return yield* Effect.fail(crashError(core, "exited", core.lastExit))
    if (current._tag !== "Up") return yield* Effect.fail(notRunningError(core, current, core.failedStarts))
    const [sample] = yield* Health.check(current.process, undefined)
    core.lastHealth.note(sample)
    return sample
  }).pipe(Effect.withSpan("AgentSupervisor.health", { attributes: { agent: core.name }, captureStackTrace: false }))

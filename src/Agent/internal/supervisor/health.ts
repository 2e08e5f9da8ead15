/**
 * Health of a running agent: what its heartbeat reports becomes events and store metrics, and a hung agent (too
 * many pings missed in a row) is killed so that its exit goes through the restart rules.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import type * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { AgentStoppedError, type RequestError } from "../../../Errors.js"
import * as Store from "../../../Store/Store.js"
import * as Health from "../../Health.js"
import * as Heartbeat from "../heartbeat.js"
import { type Core, crashError, type Incarnation, now } from "./core.js"

/** What the heartbeat of `current` reports, as events and metrics; a report about a stale incarnation is dropped. */
export const heartbeatCallbacks = (core: Core, current: Incarnation): Health.Callbacks => ({
  // Plain combinators rather than a generator: it runs at every beat of every agent.
  onSample: (sample) =>
    Effect.suspend(() => {
      core.lastHealth = sample
      // The supervisor's reading of the process group, or else the agent's own report.
      const cpuPercent = Option.isSome(sample.cpuPercent)
        ? sample.cpuPercent.value
        : Option.isSome(sample.report)
        ? sample.report.value.cpu_percent
        : undefined
      const memoryMb = Option.isSome(sample.memoryMb)
        ? sample.memoryMb.value
        : Option.isSome(sample.report)
        ? sample.report.value.memory_mb
        : undefined
      core.metrics.sampled(sample.latencyMillis, cpuPercent, memoryMb)
      return Effect.zipRight(
        core.publish({ _tag: "HealthChecked", agent: core.name, sample }),
        // Built once the event is out: the state and restart count are those of that moment, as before.
        Effect.suspend(() =>
          core.writer.saveMetric(Store.healthCheck({
            agent_name: core.name,
            state: core.state,
            cpu_percent: cpuPercent ?? 0,
            memory_mb: memoryMb ?? 0,
            latency_ms: sample.latencyMillis,
            restart_count: core.restartCount,
            timestamp: sample.timestamp
          }))
        )
      )
    }),
  onMissed: (missed, error) =>
    Effect.gen(function*() {
      core.metrics.missedBeat()
      yield* core.publish({
        _tag: "HealthCheckFailed",
        agent: core.name,
        missed,
        error: error.message,
        timestamp: yield* now
      })
      yield* Effect.logWarning(`agent missed heartbeat ${missed} of ${core.settings.unhealthyAfter}: ${error.message}`)
    }),
  onUnhealthy: (missed) =>
    core.locked(Effect.gen(function*() {
      if (core.incarnation !== current) return
      yield* Effect.logError(`agent missed ${missed} heartbeats in a row: hung, killing it`)
      current.killReason = "heartbeat"
      yield* current.process.signalGroup("SIGKILL")
    }))
})

/** How long stopping an incarnation waits for one of its heartbeat reports under way (its events come first). */
const REPORT_WAIT = Duration.seconds(1)

/**
 * Starts the heartbeat of `current`, whose process is `target`; it stops when `scope` closes. Its reports run
 * where the agent's owner runs them (`core.reports`: a tree's one runner for all its agents). A report that waits
 * when the incarnation ends is dropped, and one under way ends first (up to `REPORT_WAIT`), so that its events
 * come before those of the stop; unless the stop runs inside it (an `onEvent` that stops the agent).
 */
export const watchHealth = (
  core: Core,
  current: Incarnation,
  target: Heartbeat.Target,
  scope: Scope.Scope
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const callbacks = heartbeatCallbacks(core, current)
    let beating = true
    // The fiber running a report of this incarnation, and the stop waiting for that report to end.
    let reportingIn: FiberId.FiberId | undefined
    let stopWaiting: (() => void) | undefined
    const reported = () => {
      reportingIn = undefined
      stopWaiting?.()
      stopWaiting = undefined
    }
    const stop = Heartbeat.start(target, core.clock, {
      report: (report, handled) =>
        core.reports.run(Effect.withFiberRuntime((fiber) => {
          if (!beating) return Effect.void
          reportingIn = fiber.id()
          const done = Effect.sync(() => {
            reported()
            handled()
          })
          if (report._tag === "Sample") return Effect.ensuring(callbacks.onSample(report.sample), done)
          // The kill of a hung agent waits for its lock: in a fiber of the agent's, not in the runner's.
          return callbacks.onMissed(report.missed, report.error).pipe(
            Effect.zipRight(
              report.unhealthy ? Effect.asVoid(core.fork(callbacks.onUnhealthy(report.missed))) : Effect.void
            ),
            Effect.annotateLogs({ module: "AgentSupervisor", agent: core.name }),
            Effect.ensuring(done)
          )
        }))
    })
    return Scope.addFinalizer(
      scope,
      Effect.fiberIdWith((self) => {
        beating = false
        stop()
        core.metrics.notRunning()
        if (reportingIn === undefined || Equal.equals(reportingIn, self)) return Effect.void
        return Effect.async<void>((resume) => {
          stopWaiting = () => resume(Effect.void)
        }).pipe(Effect.timeout(REPORT_WAIT), Effect.ignore)
      })
    )
  })

/** Pings the agent now; fails at once when it is not running. Traced: `agent.health` is a public operation. */
export const check = (core: Core): Effect.Effect<Health.HealthSample, RequestError> =>
  Effect.gen(function*() {
    const current = yield* SubscriptionRef.get(core.route)
    if (current._tag !== "Up") {
      return yield* Effect.fail(
        current._tag === "Stopped"
          ? new AgentStoppedError({ agent: core.name })
          : crashError(core, current._tag === "Parked" ? "circuit_open" : "exited", core.lastExit)
      )
    }
    const [sample] = yield* Health.check(current.process, undefined)
    core.lastHealth = sample
    return sample
  }).pipe(Effect.withSpan("AgentSupervisor.health", { attributes: { agent: core.name }, captureStackTrace: false }))

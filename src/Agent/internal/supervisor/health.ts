/**
 * Health of a running agent: what its heartbeat reports becomes events and store metrics, and a hung agent (too
 * many pings missed in a row) is killed so that its exit goes through the restart rules.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { AgentStoppedError, type RequestError } from "../../../Errors.js"
import * as Store from "../../../Store/Store.js"
import * as Health from "../../Health.js"
import { type Core, crashError, type Incarnation, now } from "./core.js"

/** What the heartbeat of `current` reports, as events and metrics; a report about a stale incarnation is dropped. */
export const heartbeatCallbacks = (core: Core, current: Incarnation): Health.Callbacks => ({
  // Plain combinators rather than a generator: it runs at every beat of every agent.
  onSample: (sample) =>
    Effect.suspend(() => {
      core.lastHealth = sample
      return Effect.zipRight(
        core.publish({ _tag: "HealthChecked", agent: core.name, sample }),
        // Built once the event is out: the state and restart count are those of that moment, as before.
        Effect.suspend(() =>
          core.writer.saveMetric(Store.healthCheck({
            agent_name: core.name,
            state: core.state,
            cpu_percent: Option.isSome(sample.cpuPercent)
              ? sample.cpuPercent.value
              : Option.isSome(sample.report)
              ? sample.report.value.cpu_percent
              : 0,
            memory_mb: Option.isSome(sample.memoryMb)
              ? sample.memoryMb.value
              : Option.isSome(sample.report)
              ? sample.report.value.memory_mb
              : 0,
            latency_ms: sample.latencyMillis,
            restart_count: core.restartCount,
            timestamp: sample.timestamp
          }))
        )
      )
    }),
  onMissed: (missed, error) =>
    Effect.gen(function*() {
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

/** Pings the agent now; fails at once when it is not running. */
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
  })

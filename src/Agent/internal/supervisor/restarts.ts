/**
 * The controls an owner drives after an exit: schedule a restart and make it, park the agent (circuit open), or
 * let it be. Each takes the lock and does nothing when a manual operation changed the state first.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import { type AgentStartupError, AgentStoppedError } from "../../../Errors.js"
import type { ExitReason } from "../../AgentSupervisor.js"
import * as RestartPolicy from "../../RestartPolicy.js"
import { type Core, now, setRoute, STOPPED, stoppedError, transition, WAIT } from "./core.js"
import type { Controls } from "./owner.js"
import { beginStart } from "./starting.js"

/** The class of the exit a restart follows: a failed start or a hung agent is abnormal, an exit is classified. */
const exitClassOf = (core: Core, reason: ExitReason): RestartPolicy.ExitClass =>
  reason === "exit" && core.lastExit !== undefined ? RestartPolicy.classifyExit(core.lastExit) : "abnormal"

/** The controls of `core`'s owner; made once per agent. */
export const make = (core: Core): Controls => {
  const controls: Controls = {
    failures: Effect.sync(() => core.failures),
    scheduleRestart: ({ attempt, delayMillis, reason }) =>
      core.locked(Effect.gen(function*() {
        if (core.state !== "CRASHED") return false
        core.failures = attempt
        core.restartCount++
        const timestamp = yield* now
        // Counted where it is recorded (by the agent when it decides its own restarts, by the tree otherwise), and
        // before its event: whoever sees the event sees the count.
        if (core.recordRestarts) core.metrics.restarted(exitClassOf(core, reason), reason)
        yield* transition(core, "RESTARTING")
        yield* setRoute(core, WAIT)
        yield* core.publish({ _tag: "RestartScheduled", agent: core.name, attempt, delayMillis, reason, timestamp })
        if (!core.recordRestarts) return true
        yield* core.writer.recordRestart({
          agent_name: core.name,
          timestamp,
          reason,
          attempt,
          delay_ms: delayMillis,
          exit_code: core.lastExit?.exitCode ?? null,
          signal: core.lastExit?.signal ?? null,
          ...(core.lastExit?.leftBehind === true ? { left_behind: true as const } : {})
        })
        return true
      })),
    // Uninterruptible under the lock: a start is never left half-begun (STARTING with no start fiber).
    restartNow: Effect.flatten(core.locked(Effect.uninterruptible(Effect.gen(function*() {
      const waiter = yield* Deferred.make<void, AgentStartupError | AgentStoppedError>()
      // Stopped meanwhile, or its scope closing (its stop waits for this lock): no start to begin in a closed scope
      if (core.state !== "RESTARTING" || core.closed) {
        return Effect.fail(stoppedError(core, "start"))
      }
      core.startWaiters.push(waiter)
      yield* beginStart(core, controls, "restart")
      return Deferred.await(waiter)
    })))),
    park: (failures) =>
      core.locked(Effect.gen(function*() {
        if (core.state !== "CRASHED") return
        core.failures = failures
        core.circuitOpen = true
        yield* setRoute(core, { _tag: "Parked" })
        yield* core.publish({ _tag: "CircuitOpened", agent: core.name, failures, timestamp: yield* now })
        yield* Effect.logError(
          `agent "${core.name}" crashed ${failures} times in a row: circuit open, parked until a manual restart`
        ).pipe(Effect.annotateLogs({ agent: core.name }))
      })),
    finish: (exitClass) =>
      core.locked(Effect.gen(function*() {
        if (core.state !== "CRASHED") return
        if (exitClass === "normal") {
          // Finished its work and is not to be restarted: a clean stop.
          yield* transition(core, "STOPPING")
          yield* transition(core, "STOPPED")
          yield* setRoute(core, STOPPED)
        } else {
          yield* setRoute(core, { _tag: "Crashed", exit: core.lastExit })
        }
      }))
  }
  return controls
}

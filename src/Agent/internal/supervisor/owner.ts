/**
 * The owner protocol: what an agent reports when its process exits without being asked to, and what its owner
 * (the agent's own restart policy, or a parent supervisor) may then do about it.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { AgentStartupError, AgentStoppedError } from "../../../Errors.js"
import type { ExitReason } from "../../AgentSupervisor.js"
import * as RestartPolicy from "../../RestartPolicy.js"

/** An exit the supervisor did not ask for, as reported to the agent's owner. */
export interface ChildExit {
  readonly agent: string
  readonly exitClass: RestartPolicy.ExitClass
  readonly reason: ExitReason
  readonly pid: number
  readonly exitCode: number | null
  readonly signal: string | null
  /** The process outlived SIGKILL and was given up on (`ExitInfo.leftBehind`). */
  readonly leftBehind?: true | undefined
  /** How long the process had been RUNNING (0 for a failed start). */
  readonly uptimeMillis: number
}

/**
 * What the owner of a crashed agent can decide. Each call is ignored (answering `false` or failing with
 * `AgentStoppedError`) when a manual operation got there first.
 */
export interface Controls {
  /** Consecutive failures so far (reset by `resetAfter` of stable running, and by manual operations). */
  readonly failures: Effect.Effect<number>
  /** CRASHED -> RESTARTING: a restart is coming after `delayMillis`; requests wait for it. */
  readonly scheduleRestart: (
    restart: { readonly attempt: number; readonly delayMillis: number; readonly reason: ExitReason }
  ) => Effect.Effect<boolean>
  /** RESTARTING -> STARTING -> RUNNING, or the start-up error (the agent is then CRASHED, waiting for a decision). */
  readonly restartNow: Effect.Effect<void, AgentStartupError | AgentStoppedError>
  /** Opens the circuit: the agent stays CRASHED and requests fail at once until a manual restart. */
  readonly park: (failures: number) => Effect.Effect<void>
  /** Not restarted: STOPPED after a normal exit, CRASHED otherwise. */
  readonly finish: (exitClass: RestartPolicy.ExitClass) => Effect.Effect<void>
}

/** Decides what happens after an exit. Runs in its own fiber, interrupted by any manual operation. */
export type Owner = (exit: ChildExit, controls: Controls) => Effect.Effect<void>

/**
 * The owner of a standalone agent: a one-child, one-for-one supervisor applying restart rules 1, 2 and 4 of
 * DESIGN (restart type, consecutive failures and the circuit breaker, backoff). A failed restart counts as an
 * abnormal exit with uptime 0 and goes through the rules again.
 */
export const restartPolicyOwner = (settings: RestartPolicy.Settings): Owner => (exit, controls) =>
  Effect.gen(function*() {
    let current = exit
    while (true) {
      const before = RestartPolicy.failuresAfterRun(settings, yield* controls.failures, current.uptimeMillis)
      const decision = RestartPolicy.decide(settings, current.exitClass, before)
      switch (decision._tag) {
        case "Park":
          return yield* controls.park(decision.failures)
        case "Stop":
        case "Remove":
          return yield* controls.finish(current.exitClass)
        case "Restart": {
          const delay = yield* RestartPolicy.delay(settings, decision.failures)
          const scheduled = yield* controls.scheduleRestart({
            attempt: decision.failures,
            delayMillis: Duration.toMillis(delay),
            reason: current.reason
          })
          if (!scheduled) return
          yield* Effect.sleep(delay)
          const started = yield* Effect.either(controls.restartNow)
          if (started._tag === "Right" || started.left._tag === "AgentStoppedError") return
          current = {
            ...current,
            exitClass: "abnormal",
            reason: "start_failed",
            pid: started.left.pid ?? 0,
            exitCode: started.left.exitCode ?? null,
            signal: started.left.signal ?? null,
            leftBehind: undefined,
            uptimeMillis: 0
          }
        }
      }
    }
  })

/**
 * What happens in a supervision tree, as events (`Supervisor.events`, `subscribe`, the `onEvent` option) and as
 * the restart records of `restartHistory`. `Supervisor` re-exports both types.
 *
 * @since 0.1.0
 */
import type * as AgentSupervisor from "./Agent/AgentSupervisor.js"
import type * as RestartPolicy from "./Agent/RestartPolicy.js"
import type { SupervisorIntensityError } from "./Errors.js"

/**
 * One restart decision, as `restartHistory` keeps it.
 *
 * @since 0.1.0
 * @category views
 */
export interface RestartRecord {
  readonly child: string
  readonly timestamp: number
  readonly reason: string
  readonly attempt: number
  readonly delayMillis: number
  /** The children restarted together, in start order. */
  readonly affected: ReadonlyArray<string>
  /**
   * How the agent's process ended, when one did (an exit, a kill for a missed heartbeat or a limit, an exit before
   * `ready`): its exit code, or `null` when a signal ended it. Absent when none did: a nested supervisor's end
   * (escalation, auto-shutdown), a spawn that failed.
   */
  readonly exitCode?: number | null
  /** The signal that ended the agent's process (`"SIGKILL"`), or `null` when it exited with a code; absent as above. */
  readonly signal?: string | null
  /**
   * The agent's process outlived SIGKILL by 5 s and was given up on (`AgentProcess.ExitInfo.leftBehind`): it may
   * still be in the process table, in uninterruptible sleep. Absent otherwise.
   */
  readonly leftBehind?: true
}

/**
 * Everything that happens in a tree. Events of agents and of nested supervisors are forwarded up.
 *
 * @since 0.1.0
 * @category events
 */
export type SupervisorEvent =
  | {
    readonly _tag: "Agent"
    readonly supervisor: string
    readonly child: string
    readonly event: AgentSupervisor.AgentEvent
  }
  | { readonly _tag: "ChildStarted"; readonly supervisor: string; readonly child: string; readonly timestamp: number }
  | {
    readonly _tag: "ChildStopped"
    readonly supervisor: string
    readonly child: string
    readonly why: "shutdown" | "bystander" | "manual" | "escalation"
    readonly timestamp: number
  }
  | {
    readonly _tag: "ChildExited"
    readonly supervisor: string
    readonly child: string
    readonly exitClass: RestartPolicy.ExitClass
    readonly reason: string
    readonly timestamp: number
  }
  | {
    readonly _tag: "RestartScheduled"
    readonly supervisor: string
    readonly record: RestartRecord
  }
  | { readonly _tag: "ChildRemoved"; readonly supervisor: string; readonly child: string; readonly timestamp: number }
  | { readonly _tag: "ChildParked"; readonly supervisor: string; readonly child: string; readonly timestamp: number }
  | {
    readonly _tag: "Escalated"
    readonly supervisor: string
    readonly error: SupervisorIntensityError
    readonly timestamp: number
  }
  | { readonly _tag: "AutoShutdown"; readonly supervisor: string; readonly timestamp: number }

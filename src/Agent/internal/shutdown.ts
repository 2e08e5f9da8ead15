/**
 * The 3-phase stop of one incarnation, run as the first finalizer of its scope: ask, then SIGTERM, then SIGKILL,
 * each to the whole process group, and return once the process is reaped.
 *
 * Every wait is in real time (`setTimeout`, not Effect's `Clock`) and holds in a finalizer whose fiber is being
 * interrupted (Ctrl-C): a finalizer is uninterruptible, and the waits resume by themselves. The last wait has
 * no bound: after SIGKILL the kernel reaps the leader. The child's own release (SIGKILL to the group and wait)
 * runs after this one and finds the process gone.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Message from "../../Protocol/Message.js"
import type * as Config from "../Config.js"
import * as Child from "./child.js"
import type * as ExitWatch from "./exit.js"
import type * as Outbox from "./outbox.js"
import type * as Requests from "./requests.js"

/** What the stop acts on. @internal */
export interface Target {
  readonly pid: number
  readonly config: Pick<Config.AgentConfig, "gracefulTimeout" | "sigtermTimeout">
  readonly status: ExitWatch.Status
  readonly table: Requests.Table
  readonly outbox: Outbox.Outbox
  readonly exit: Pick<ExitWatch.ExitWatch, "within" | "stoppedError">
  /** Whether the agent sent its `ready`: before it, it speaks no protocol yet, and is not asked. */
  readonly ready: () => boolean
}

/**
 * Stops the process (once; a second call does nothing): `cancel` for every request in flight, then every
 * pending request fails at once (nobody waits through the phases, and late answers are dropped); `shutdown` on
 * stdin and stdin closed, wait `gracefulTimeout`; SIGTERM to the group, wait `sigtermTimeout`; SIGKILL to the
 * group, wait for the exit. An agent that never sent `ready` (it failed to start in time, or is stopped while it
 * starts) is not asked: its stdin is closed and SIGTERM follows at once, as systemd stops a unit whose start timed
 * out (`KillSignal`, then SIGKILL after `TimeoutStopSec`); it was waited for `startupTimeout` already.
 *
 * @internal
 */
export const stop = ({ config, exit, outbox, pid, ready, status, table }: Target): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (status.stopping) return
    status.stopping = true
    // The agent is told to drop the work whose results nobody will read, before it is asked to stop.
    table.cancelSent()
    table.failAll(exit.stoppedError())
    if (status.exited !== undefined) return
    if (ready()) {
      outbox.send(Message.shutdownLine)
      outbox.end()
      if (yield* exit.within(Duration.toMillis(config.gracefulTimeout))) return
      yield* Effect.logWarning(`agent ignored shutdown for ${Duration.format(config.gracefulTimeout)}: SIGTERM`)
    } else {
      outbox.end()
    }
    Child.killGroup(pid, "SIGTERM")
    if (yield* exit.within(Duration.toMillis(config.sigtermTimeout))) return
    yield* Effect.logWarning(`agent ignored SIGTERM for ${Duration.format(config.sigtermTimeout)}: SIGKILL`)
    Child.killGroup(pid, "SIGKILL")
    yield* exit.within(Infinity)
    // No SIGKILL after the exit: the exit handler swept the group when the leader exited, and by now its id may
    // belong to an unrelated process group.
  })

/**
 * The start of one incarnation: it is ready when the agent says so, and has failed when the process exits first
 * or `startupTimeout` passes.
 *
 * The timeout and the exit may be seen in either order: an agent may die as its timeout fires (its exit reported
 * on the event loop's next turn), or die of itself while it is stopped for the timeout. So a start that timed out
 * stops the process before it says why it failed: by the exit, when that was the agent's own (`Shutdown.ownExit`),
 * as a start whose process exited before `ready`; else by the timeout.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { AgentStartupError } from "../../Errors.js"
import type * as Message from "../../Protocol/Message.js"
import type * as Config from "../Config.js"
import type * as AgentProcess from "../Process.js"
import * as Spawn from "./spawn.js"

/** The incarnation being started: its settings, its pid, and the signals of its `ready` and its exit. @internal */
export interface Options {
  readonly config: Config.AgentConfig
  readonly pid: number
  readonly ready: Deferred.Deferred<Message.Ready>
  readonly awaitExit: Effect.Effect<AgentProcess.ExitInfo>
  readonly recentStderr: () => Array<string>
  /**
   * Stops the process once `startupTimeout` has passed (the 3-phase stop, whose later run in the scope's finalizer
   * then does nothing), and gives its exit if that was its own rather than the stop's.
   */
  readonly stopAfterTimeout: Effect.Effect<AgentProcess.ExitInfo | undefined>
}

/** Waits until the event loop has polled the pipes again: data already written by the agent is then read. */
const pollPipes = Effect.async<void>((resume) => {
  setImmediate(() => setImmediate(() => resume(Effect.void)))
})

/** Waits for the agent's `ready`; fails when the process exits before it, or when it does not come in time. @internal */
export const awaitReady = ({ awaitExit, config, pid, ready, recentStderr, stopAfterTimeout }: Options): Effect.Effect<
  void,
  AgentStartupError
> => {
  // By the exit, when there is one to tell; else by the timeout.
  const failure = (info: AgentProcess.ExitInfo | undefined) =>
    pollPipes.pipe(Effect.map(() =>
      new AgentStartupError({
        agent: config.name,
        reason: info === undefined ? "no_ready_in_time" : "exited_before_ready",
        command: Spawn.commandLine(config),
        pid,
        // Read after the pipes were polled once more: what the agent wrote just before is in the report.
        stderr: recentStderr(),
        timeoutMillis: Duration.toMillis(config.startupTimeout),
        ...(info !== undefined ? { exitCode: info.exitCode, signal: info.signal } : {})
      })
    ))
  return Deferred.await(ready).pipe(
    Effect.asVoid,
    Effect.raceFirst(awaitExit.pipe(Effect.flatMap((info) => Effect.flip(failure(info))))),
    Effect.timeout(config.startupTimeout),
    // A race's loser is interrupted; in a caller's uninterruptible region (a Layer being built) it could not be,
    // and the race would wait for it forever. The wait is bounded by startupTimeout, so it may always be cut.
    Effect.interruptible,
    // The stop runs to its end, as it would in the scope's finalizer; the error then says how the agent ended.
    Effect.catchTag(
      "TimeoutException",
      () => stopAfterTimeout.pipe(Effect.uninterruptible, Effect.flatMap(failure), Effect.flip)
    )
  )
}

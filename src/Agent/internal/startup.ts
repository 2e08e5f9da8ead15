/**
 * The start of one incarnation: it is ready when the agent says so, and has failed when the process exits first
 * or `startupTimeout` passes.
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
}

/** Waits until the event loop has polled the pipes again: data already written by the agent is then read. */
const pollPipes = Effect.async<void>((resume) => {
  setImmediate(() => setImmediate(() => resume(Effect.void)))
})

/** Waits for the agent's `ready`; fails when the process exits before it, or when it does not come in time. @internal */
export const awaitReady = ({ awaitExit, config, pid, ready, recentStderr }: Options): Effect.Effect<
  void,
  AgentStartupError
> => {
  const failure = (reason: "exited_before_ready" | "no_ready_in_time", info?: AgentProcess.ExitInfo) =>
    pollPipes.pipe(Effect.map(() =>
      new AgentStartupError({
        agent: config.name,
        reason,
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
    Effect.raceFirst(
      awaitExit.pipe(Effect.flatMap((info) => Effect.flip(failure("exited_before_ready", info))))
    ),
    Effect.timeout(config.startupTimeout),
    Effect.catchTag("TimeoutException", () => Effect.flip(failure("no_ready_in_time"))),
    // A race's loser is interrupted; in a caller's uninterruptible region (a Layer being built) it could not be,
    // and the race would wait for it forever. The wait is bounded by startupTimeout, so it may always be cut.
    Effect.interruptible
  )
}

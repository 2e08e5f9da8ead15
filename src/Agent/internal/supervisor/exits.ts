/**
 * Exits: an incarnation that exits by itself (or is killed for missed heartbeats) is recorded, the agent goes to
 * CRASHED with requests waiting, and its owner decides what happens next in a fiber of its own.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type * as AgentProcess from "../../Process.js"
import * as RestartPolicy from "../../RestartPolicy.js"
import { type Core, type Incarnation, leftBehindOf, now, setRoute, transition, WAIT } from "./core.js"
import type { ChildExit, Controls } from "./owner.js"

/** Handles the exit of `current` (under the lock); the exit of a stale incarnation is ignored. */
export const onExit = (
  core: Core,
  controls: Controls,
  current: Incarnation,
  info: AgentProcess.ExitInfo
): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (core.incarnation !== current) return // a stale incarnation: stop or restart already dealt with it
    core.incarnation = undefined
    core.lastExit = info
    yield* Scope.close(current.scope, Exit.void)
    const reason = current.killReason ?? info.limit ?? "exit"
    const exitClass = reason === "exit" ? RestartPolicy.classifyExit(info) : "abnormal"
    if (info.leftBehind === true) core.metrics.leftBehind()
    yield* core.publish({
      _tag: "Exited",
      agent: core.name,
      pid: info.pid,
      exitCode: info.exitCode,
      signal: info.signal,
      exitClass,
      reason,
      ...leftBehindOf(info),
      timestamp: yield* now
    })
    if (info.requested) return
    const uptimeMillis = Math.max(0, info.at - current.runningSince)
    // The run is over and its length known: a stable one resets the count now, so that the views read, while the
    // owner decides, the count it decides from (not the one from before the run).
    core.failures = RestartPolicy.failuresAfterRun(core.settings, core.failures, uptimeMillis)
    yield* transition(core, "CRASHED")
    yield* setRoute(core, WAIT)
    const exit: ChildExit = {
      agent: core.name,
      exitClass,
      reason,
      pid: info.pid,
      exitCode: info.exitCode,
      signal: info.signal,
      ...leftBehindOf(info),
      uptimeMillis
    }
    // The owner decides outside the lock: it calls back into `controls`, which take the lock.
    core.ownerFiber = yield* core.fork(core.owner(exit, controls))
  })

/**
 * Starting an incarnation: STARTING at once under the lock, the process spawned in a fiber of its own (so that a
 * stop can interrupt it), and the outcome committed under the lock: RUNNING with its exit and heartbeat watched,
 * or CRASHED with the start-up error answered to whoever waits.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { AgentStartupError } from "../../../Errors.js"
import type * as AgentProcess from "../../Process.js"
import * as ProcessInternal from "../process.js"
import * as Checkpoints from "./checkpoints.js"
import {
  type Core,
  type Incarnation,
  liveProcess,
  now,
  setRoute,
  settleStartWaiters,
  type StartKind,
  transition,
  WAIT
} from "./core.js"
import { onExit } from "./exits.js"
import { watchHealth } from "./health.js"
import { count } from "./metadata.js"
import type { Controls } from "./owner.js"

/**
 * Counts each incarnation and announces it as soon as it has a pid (a failed start had one too); its counters
 * are handed over here, and so are counted for failed starts as well. Its tasks in flight are metered for the agent,
 * and its checkpoints kept (`checkpoints.ts`).
 */
const hooksOf = (core: Core): ProcessInternal.Hooks => ({
  ...Checkpoints.hooks(core),
  onSpawned: (spawned) =>
    Effect.suspend(() => {
      core.incarnations++
      core.spawned = spawned
      const { pid, stats } = spawned
      return Effect.zipRight(
        count(core, stats),
        core.publish({
          _tag: "Spawned",
          agent: core.name,
          pid,
          incarnation: core.incarnations,
          timestamp: core.clock.unsafeCurrentTimeMillis()
        })
      )
    }),
  onStderrLine: (pid, text) => core.ownStderr.emit(core.stderr.push(pid, text, core.clock.unsafeCurrentTimeMillis())),
  onPublish: core.onTopicPublish,
  meter: core.metrics,
  onLimitExceeded: (exceeded) =>
    Effect.gen(function*() {
      const pid = liveProcess(core)?.pid ?? 0
      const shown = exceeded.limit === "memory"
        ? `memory ${mib(exceeded.observed)} above its limit of ${mib(exceeded.max)}`
        : `CPU ${exceeded.observed.toFixed(2)} cores above its limit of ${exceeded.max} over its window`
      yield* Effect.logWarning(`agent ${shown}${exceeded.killing ? ": restarting it" : ""}`)
      yield* core.publish({ _tag: "LimitExceeded", agent: core.name, pid, ...exceeded, timestamp: yield* now })
    })
})

const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`

/**
 * Logs how the agent's limits are enforced, once: at its first start, and again only when that changes (a cgroup
 * that could be made no longer can).
 */
const logLimits = (core: Core, inForce: AgentProcess.LimitsInForce): Effect.Effect<void> =>
  Effect.suspend(() => {
    const before = core.limits
    core.limits = inForce
    if (inForce.mode === "none" || (before?.mode === inForce.mode && before.why === inForce.why)) return Effect.void
    return Effect.logInfo(`limits enforced by ${inForce.mode}: ${inForce.why}`)
  })

/**
 * The start-up error of a failed start. A start that died instead of failing (a defect in the spawn) is still a
 * start that failed: it is reported as one, with the cause as its detail.
 */
const startupErrorOf = (core: Core, cause: Cause.Cause<AgentStartupError>): AgentStartupError =>
  Option.getOrElse(Cause.failureOption(cause), () =>
    new AgentStartupError({
      agent: core.name,
      reason: "spawn_failed",
      command: [core.settings.command, ...core.settings.args].join(" "),
      detail: Cause.pretty(cause)
    }))

/**
 * Begins a start (under the lock): STARTING now, the process in its own fiber, committed by `onStarted`. Only a
 * failed restart goes through the restart rules again; a failed first or manual start is answered to its caller
 * and leaves the agent CRASHED, as OTP answers `start_child` with an error.
 */
export const beginStart = (core: Core, controls: Controls, kind: StartKind): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* transition(core, "STARTING")
    yield* setRoute(core, WAIT)
    const processScope = yield* Scope.make()
    core.startFiber = yield* ProcessInternal.start(core.settings, hooksOf(core)).pipe(
      Scope.extend(processScope),
      Effect.exit,
      Effect.flatMap((exit) =>
        core.locked(Effect.uninterruptible(onStarted(core, controls, kind, processScope, exit)))
      ),
      // Interrupted by stop or by the supervisor closing before the start committed: nothing may survive it.
      Effect.onInterrupt(() => Scope.close(processScope, Exit.void)),
      core.fork
    )
  })

const onStarted = (
  core: Core,
  controls: Controls,
  kind: StartKind,
  processScope: Scope.CloseableScope,
  exit: Exit.Exit<ProcessInternal.Incarnation, AgentStartupError>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    core.startFiber = undefined
    if (Exit.isSuccess(exit)) {
      const process = exit.value
      const current: Incarnation = { process, scope: processScope, runningSince: yield* now, killReason: undefined }
      yield* logLimits(core, process.limits)
      core.metrics.ready(Math.max(0, current.runningSince - process.startedAt) / 1000)
      core.incarnation = current
      core.features = process.features
      // A start failed before this one is no longer why a request cannot be served (`notRunningError`)
      core.lastStartFailure = undefined
      // Sent in its restore, if it announced `checkpoint`: for nobody else.
      core.crashCheckpoints = undefined
      yield* transition(core, "RUNNING")
      yield* setRoute(core, { _tag: "Up", process })
      // Its exit is handled in a fiber forked when it comes (none waits for it meanwhile), unless the incarnation's
      // scope closed first (a stop or a restart deals with the exit then).
      const forget = process.onExit((info) => {
        Effect.runSync(core.fork(core.locked(Effect.uninterruptible(onExit(core, controls, current, info)))))
      })
      yield* Scope.addFinalizer(processScope, Effect.sync(forget))
      yield* watchHealth(core, current, process, processScope)
      yield* settleStartWaiters(core, Exit.void)
      return
    }
    yield* Scope.close(processScope, Exit.void)
    const error = startupErrorOf(core, exit.cause)
    yield* Effect.logWarning(`agent failed to start: ${error.message}`)
    core.failedStarts++
    core.lastStartFailure = error
    yield* settleStartWaiters(core, Exit.fail(error))
    yield* transition(core, "CRASHED")
    core.lastExit = {
      pid: error.pid ?? 0,
      exitCode: error.exitCode ?? null,
      signal: error.signal ?? null,
      requested: false,
      at: yield* now
    }
    // A failed restart goes back to the owner (still deciding, so requests keep waiting); a failed first or manual
    // start is answered to its caller.
    yield* setRoute(core, kind === "restart" ? WAIT : { _tag: "Crashed", exit: core.lastExit, startFailure: error })
  })

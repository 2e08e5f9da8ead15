/**
 * The 3-phase stop of one incarnation, run as the first finalizer of its scope (or before, by a start whose
 * `startupTimeout` passed: `startup.ts`): ask, then SIGTERM, then SIGKILL, each to the whole process group, and
 * return once the process is reaped. It also says whether an exit was its doing or the process's own (`ownExit`).
 *
 * Every wait is in real time (`setTimeout`, not Effect's `Clock`) and holds in a finalizer whose fiber is being
 * interrupted (Ctrl-C): a finalizer is uninterruptible, and the waits resume by themselves. Every wait is bounded:
 * after SIGKILL the kernel reaps the leader at once, unless it is in uninterruptible sleep (a hung filesystem or
 * device); after `Child.KILL_BOUND_MILLIS` such a process is left behind with a warning and reported as killed
 * (`ExitInfo.leftBehind`), as systemd gives up a unit whose processes outlive its final SIGKILL. The child's own
 * release (SIGKILL to the group and wait) runs after this one and finds the process gone, or left behind.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { isEndSignal, isEndSignalCode } from "../../internal/askedToEnd.js"
import * as Message from "../../Protocol/Message.js"
import type * as Config from "../Config.js"
import type * as AgentProcess from "../Process.js"
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
  readonly exit: Pick<ExitWatch.ExitWatch, "within" | "stoppedError" | "leaveBehind" | "kill">
  /** Whether the agent sent its `ready`: before it, it speaks no protocol yet, and is not asked. */
  readonly ready: () => boolean
}

/** The stops under way, each cut short by `forceStops` (SIGKILL to its group now). */
const underWay = new Set<() => void>()

/** Set by `forceStops`: every stop begun after it sends SIGKILL at once. */
let forced = false

/**
 * Cuts short every stop in this process, those under way and those to come: each sends SIGKILL to its agent's
 * process group now, skipping what is left of its phases (as docker compose's second Ctrl-C forces the stop of
 * its containers; each agent ends as by OTP's `brutal_kill`). For a host that is ending: nothing undoes it, and
 * every stop from then on is a SIGKILL (a restart's stop of the old process too). Returns how many stops were under
 * way.
 *
 * @internal
 */
export const forceStops = (): number => {
  forced = true
  for (const cut of underWay) cut()
  return underWay.size
}

/**
 * Stops the process (once; a second call does nothing): `cancel` for every request in flight, then every
 * pending request fails at once (nobody waits through the phases, and late answers are dropped); `shutdown` on
 * stdin and stdin closed, wait `gracefulTimeout`; SIGTERM to the group, wait `sigtermTimeout`; SIGKILL to the
 * group, wait for the exit (`Child.KILL_BOUND_MILLIS` at most: then it is left behind, with a warning). An agent
 * that never sent `ready` (it failed to start in time, or is stopped while it starts) is not asked: its stdin is
 * closed and SIGTERM follows at once, as systemd stops a unit whose start timed out (`KillSignal`, then SIGKILL after
 * `TimeoutStopSec`); it was waited for `startupTimeout` already. After `forceStops`, SIGKILL at once.
 *
 * @internal
 */
export const stop = (target: Target): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { exit, pid, status, table } = target
    if (status.stopping) return
    status.stopping = true
    // The agent is told to drop the work whose results nobody will read, before it is asked to stop.
    table.cancelSent()
    table.failAll(exit.stoppedError())
    if (status.exited !== undefined) return
    // Each step is noted only while the leader lives: one dead already (a zombie whose exit the event loop has not
    // reported yet) ended by itself, and no step ended it (`ownExit`). Its exit is not reported in between: the
    // pid read is still the child's.
    const step = (taken: ExitWatch.Status["asked"][number]) => {
      if (!Child.isDead(pid)) status.asked.push(taken)
    }
    // Never after the exit: by then the group's id may be an unrelated process's, and no step ended the process.
    const kill = () => {
      if (status.exited !== undefined) return
      step("SIGKILL")
      // (bounded: a cut short stop's phase waits on, and the bound gives up on a process that outlives it)
      exit.kill()
    }
    if (forced) {
      kill()
      return yield* reaped(target)
    }
    underWay.add(kill)
    yield* Effect.ensuring(phases(step, target), Effect.sync(() => underWay.delete(kill)))
  })

/** The phases of `stop`, each noted by `step` while the leader lives; a stop cut short ends them by the exit. */
const phases = (
  step: (taken: ExitWatch.Status["asked"][number]) => void,
  target: Target
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const { config, exit, outbox, pid, ready, status } = target
    if (ready()) {
      step("shutdown")
      outbox.send(Message.shutdownLine)
      outbox.end()
      const graceful = Duration.toMillis(config.gracefulTimeout)
      if (yield* exit.within(graceful)) return yield* warnFailed(status)
      // (no time given, none taken: `brutal-kill` and a 0 timeout ask for the next phase at once)
      if (graceful > 0) {
        const state = Child.processState(pid)
        // A stopped process cannot read its shutdown: said so, rather than that it ignored it
        yield* Effect.logWarning(
          state === "T" || state === "t"
            ? `agent is stopped (SIGSTOP, a debugger or job control: state ${state}) and did not take its shutdown ` +
              `in ${Duration.format(config.gracefulTimeout)}: SIGTERM, then SIGCONT to wake it`
            : `agent ignored shutdown for ${Duration.format(config.gracefulTimeout)}: SIGTERM`
        )
      }
    } else {
      outbox.end()
    }
    step("SIGTERM")
    Child.killGroup(pid, "SIGTERM")
    // A stopped process (SIGSTOP, a debugger, a job-control stop) holds SIGTERM pending until it runs again: wake
    // the group, as systemd follows its KillSignal with SIGCONT, or the stop waits out sigtermTimeout for SIGKILL.
    Child.killGroup(pid, "SIGCONT")
    const sigterm = Duration.toMillis(config.sigtermTimeout)
    // (one that never sent ready: its start's failure says how it ended)
    if (yield* exit.within(sigterm)) return ready() ? yield* warnFailed(status) : undefined
    if (sigterm > 0) {
      yield* Effect.logWarning(`agent ignored SIGTERM for ${Duration.format(config.sigtermTimeout)}: SIGKILL`)
    }
    step("SIGKILL")
    Child.killGroup(pid, "SIGKILL")
    yield* reaped(target)
    // No SIGKILL after the exit: the exit handler swept the group when the leader exited, and by now its id may
    // belong to an unrelated process group.
  })

/** Waits for the exit after SIGKILL, `Child.KILL_BOUND_MILLIS` at most; then the process is left behind. */
const reaped = ({ exit }: Target): Effect.Effect<void> =>
  Effect.flatMap(
    exit.within(Child.KILL_BOUND_MILLIS),
    (exited) => exited ? Effect.void : Effect.async<void>((resume) => exit.leaveBehind(() => resume(Effect.void)))
  )

/** Whether the stop sent `signal` to the process while it lived. */
const sentByStop = (status: ExitWatch.Status, signal: string): boolean => status.asked.some((taken) => taken === signal)

/**
 * A stop that ended in a failure of the agent's own (OTP's `shutdown_error` report): asked to shut down, it exited
 * with another code than 0; or a signal the stop did not send ended it (a crash as it stopped: SIGSEGV, SIGABRT;
 * the OOM killer's SIGKILL). Logged as a warning; the stop is still the stop asked for (nothing restarts it). Not a
 * failure: an exit by SIGTERM, SIGINT or SIGHUP, or with their codes (143, 130, 129), whoever sent them (systemd
 * stopping a unit signals the whole cgroup as the stop asks); any code after SIGTERM, the program's answer to it;
 * a kill for a limit (logged where it is decided).
 *
 * @internal
 */
export const stopFailure = (status: ExitWatch.Status): string | undefined => {
  const info = status.exited
  // (one left behind was warned of when it was given up on)
  if (info === undefined || status.asked.length === 0 || info.limit !== undefined || info.leftBehind) return undefined
  const signal = info.signal
  if (signal !== null) {
    if (isEndSignal(signal) || sentByStop(status, signal)) return undefined
    return `agent was killed by ${signal} as it stopped, a signal the stop did not send (` +
      (signal === "SIGKILL" ? "the kernel's OOM killer, or another process?" : "a crash in its shutdown?") +
      "): see its stderr"
  }
  const code = info.exitCode
  if (code === null || code === 0 || isEndSignalCode(code) || status.asked.at(-1) !== "shutdown") {
    return undefined
  }
  return `agent exited with code ${code} as it stopped: asked to shut down, it did not exit 0 (its shutdown ` +
    `failed?): see its stderr`
}

const warnFailed = (status: ExitWatch.Status): Effect.Effect<void> =>
  Effect.suspend(() => {
    const failure = stopFailure(status)
    return failure === undefined ? Effect.void : Effect.logWarning(failure)
  })

/**
 * The exit of a process being stopped, if it was the process's own doing rather than the stop's: reported before
 * the stop began, or before the stop did anything to the living process, or by a signal the stop did not send (a
 * crash, the OOM killer's SIGKILL in the SIGTERM phase). An exit with a code after the stop asked or signalled may
 * be its answer (a SIGTERM handler, the end of its stdin): the stop's. Undefined before the exit, and for the stop's.
 *
 * @internal
 */
export const ownExit = (status: ExitWatch.Status): AgentProcess.ExitInfo | undefined => {
  const info = status.exited
  if (info === undefined) return undefined
  const signal = info.signal
  const own = !info.requested || status.asked.length === 0 ||
    (signal !== null && !sentByStop(status, signal))
  return own ? info : undefined
}

/**
 * The end of one incarnation: its exit, reported on the child's `exit` event rather than on its pipes closing
 * (a descendant may hold them open for ever), what it does to the requests, and waits for it in real time.
 *
 * The exit is reported at once: by then the child has handed over everything the process wrote before dying
 * (`child.ts` reads what is left in the pipes without waiting for their end), so no wait for the pipes is
 * needed. Measured (issue 10): waiting up to 20 ms for the pipes to close, then a turn of the loop, cost an
 * agent whose descendant held them 20-21 ms of its 25 ms from SIGKILL to `Exited`.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { AgentCrashError, AgentStoppedError, type RequestError } from "../../Errors.js"
import type * as Config from "../Config.js"
import type * as AgentProcess from "../Process.js"
import * as Child from "./child.js"
import * as Requests from "./requests.js"

/** Where an incarnation is in its end, read by its requests and its shutdown. @internal */
export interface Status {
  /** Set once the exit is reported. */
  exited: AgentProcess.ExitInfo | undefined
  /** Set when the shutdown begins: an exit from then on was asked for. */
  stopping: boolean
  /** Set when the supervisor kills it for a limit it polls (`limits/soft.ts`). */
  killedFor: AgentProcess.LimitReason | undefined
  /**
   * What the stop did to the process while it lived, in order: asked it to stop (the `shutdown` message, stdin
   * closed) or signalled its group. Read by `Shutdown.ownExit`: an exit before any of it was the process's own.
   */
  asked: Array<"shutdown" | "SIGTERM" | "SIGKILL">
}

/** The longest delay a Node timer takes (2^31-1 ms); a longer one fires at once. */
const MAX_TIMER_MILLIS = 2_147_483_647

/** Neither exited nor stopping. @internal */
export const makeStatus = (): Status => ({ exited: undefined, stopping: false, killedFor: undefined, asked: [] })

/** What the child's exit listener calls, and what the requests and the shutdown ask of the end. @internal */
export interface ExitWatch {
  /** The child exited (Node's `exit` event), what it wrote before dying already handed over: reports the exit. */
  readonly onExit: (exit: Child.ChildExit) => void
  /**
   * Calls `callback` once the exit is reported (at once if it was); the function returned forgets it. The
   * callback runs in Node's `exit` handler: it must not throw, and forks what it has to do.
   */
  readonly onReported: (callback: (info: AgentProcess.ExitInfo) => void) => () => void
  /**
   * The start succeeded: from now on an exit not asked for is unexpected, and logged. One reported while the start
   * was still undecided (its `ready` came with the exit, and won the race) is logged now: had the start failed, it
   * would have been the start's failure, reported where the start is.
   */
  readonly started: () => void
  /** Waits for the exit at most `millis` (real time), also in a finalizer of a fiber being interrupted. */
  readonly within: (millis: number) => Effect.Effect<boolean>
  /**
   * Gives up on a process that outlived SIGKILL (unless it exited): a warning, `child.leaveBehind()`, and its exit
   * reported now as one by SIGKILL with `leftBehind` (the requests fail, `awaitExit` and the exit's listeners are
   * told); its real exit, if it comes, only sweeps its group. A process found dead (a zombie) gets one more turn of
   * the event loop first, for an exit already waiting behind the timers. `then` runs once it is settled.
   */
  readonly leaveBehind: (then?: () => void) => void
  /**
   * SIGKILL to the group of a process that has not exited, bounded: it is given up on (`leaveBehind`) if it has not
   * exited {@link Child.KILL_BOUND_MILLIS} after the first (a real-time timer that keeps no host alive). For a kill
   * the stop's last phase does not wait on: a hung agent, a limit, a stop cut short.
   */
  readonly kill: () => void
  /** Why a new request is refused at once (the process exited, or is being stopped), if it is. */
  readonly refusal: () => RequestError | undefined
  readonly stoppedError: () => AgentStoppedError
}

/** The incarnation's facts and parts that its exit reports to. @internal */
export interface Options {
  readonly agent: string
  readonly pid: number
  readonly status: Status
  readonly child: Pick<Child.Child, "exited" | "leaveBehind">
  readonly table: Requests.Table
  /** Completed with the exit once it is reported. */
  readonly exitDeferred: Deferred.Deferred<AgentProcess.ExitInfo>
  readonly now: () => number
  readonly recentStderr: () => Array<string>
  readonly log: (effect: Effect.Effect<void>) => void
  /** The incarnation's limits, named with their values by the error of an exit for one. */
  readonly limits?: Config.Limits | undefined
  /** The limit the kernel enforced, read at the exit from the incarnation's cgroup. */
  readonly limitHit: () => AgentProcess.LimitReason | undefined
  /**
   * Kills what is left of the incarnation outside its process group (its cgroup's other processes); after it was
   * left behind, removes its cgroup too.
   */
  readonly sweep: () => void
  /** At a crash, the checkpoints of the requests in flight that sent one (protocol 1.1), before they fail. */
  readonly onCrashCheckpoints?: ((checkpoints: Record<string, unknown>) => void) | undefined
}

/**
 * The facts of an exit for a limit that an `AgentCrashError` carries: the limit, and its value in `limits` (bytes,
 * cores, tasks) when set there. Nothing for an exit that was not for a limit.
 *
 * @internal
 */
export const limitFacts = (
  limit: AgentProcess.LimitReason | undefined,
  limits: Config.Limits | undefined
): { readonly limit?: AgentProcess.LimitReason; readonly limitValue?: number } => {
  if (limit === undefined) return {}
  const value = limit === "memory_limit" ? limits?.memory : limit === "cpu_limit" ? limits?.cpu : limits?.pids
  return value === undefined ? { limit } : { limit, limitValue: value }
}

const kernelLimit = (
  hit: AgentProcess.LimitReason | undefined,
  exit: Child.ChildExit
): AgentProcess.LimitReason | undefined => hit === "memory_limit" && exit.signal !== "SIGKILL" ? undefined : hit

/** Watches for the exit of one child; attach `onExit` to it. @internal */
export const make = (options: Options): ExitWatch => {
  const { agent, child, pid, status } = options
  const exitWaiters: Array<(info: AgentProcess.ExitInfo) => void> = []
  // Until the start succeeds, an exit is the start's failure (`AgentStartupError`, reported where the start is,
  // whether its `ready` was late or never came), not logged here as an unexpected exit: it is held.
  let isStarted = false
  let held: AgentProcess.ExitInfo | undefined

  const stoppedError = () => new AgentStoppedError({ agent, pid })
  const exitError = (info: AgentProcess.ExitInfo): Requests.EndError =>
    info.requested
      ? stoppedError()
      : new AgentCrashError({
        agent,
        pid,
        exitCode: info.exitCode,
        signal: info.signal,
        stderr: options.recentStderr(),
        ...limitFacts(info.limit, options.limits)
      })

  const onExit = (exit: Child.ChildExit): void => {
    // Descendants outlive a leader that exits 0 or by a signal: sweep the group now.
    Child.killGroup(pid, "SIGKILL")
    options.sweep()
    // (one given up on was reported then)
    if (status.exited === undefined) report(exit, undefined)
  }

  let bound: ReturnType<typeof setTimeout> | undefined
  // SIGKILL sent by `kill` (a hung agent, a polled limit): its exit is no surprise, whoever decided it said why
  let killed = false

  // A process found dead (a zombie) when its bound passes gets one more turn of the event loop: its exit may be
  // waiting in the loop's poll phase behind the timers (a loop stalled for the whole bound). Once. Two `setImmediate`s
  // in a row: whatever phase this runs in, a poll phase comes between them.
  let deferred = false

  const leaveBehind = (then?: () => void): void => {
    if (status.exited !== undefined) return then?.()
    if (!deferred && Child.isDead(pid)) {
      deferred = true
      setImmediate(() => setImmediate(() => leaveBehind(then)))
      return
    }
    options.log(Effect.logWarning(
      `agent outlived SIGKILL for ${Duration.format(Duration.millis(Child.KILL_BOUND_MILLIS))} (in uninterruptible ` +
        `sleep: a hung filesystem or device?): left behind, reported as killed`
    ))
    child.leaveBehind()
    report({ exitCode: null, signal: "SIGKILL" }, true)
    then?.()
  }

  const kill = (): void => {
    if (status.exited !== undefined) return
    killed = true
    Child.killGroup(pid, "SIGKILL")
    if (bound !== undefined) return
    bound = setTimeout(() => leaveBehind(), Child.KILL_BOUND_MILLIS)
    bound.unref()
  }

  const report = (exit: Child.ChildExit, leftBehind: true | undefined): void => {
    if (bound !== undefined) clearTimeout(bound)
    let info: AgentProcess.ExitInfo = {
      pid,
      exitCode: exit.exitCode,
      signal: exit.signal,
      requested: status.stopping,
      at: options.now(),
      ...(leftBehind ? { leftBehind } : {})
    }
    // The kernel's counters say a limit was met: an OOM kill is the reason of an exit by SIGKILL (the OOM killer's
    // signal; a crash of another kind after an OOM kill of a helper process is the crash's own), a refused fork of
    // an exit that is not a clean one.
    const limit = status.killedFor ?? (exit.exitCode === 0 ? undefined : kernelLimit(options.limitHit(), exit))
    if (limit !== undefined) info = { ...info, limit }
    status.exited = info
    // An error (and its stack trace) only for requests to fail, or for the log: a stop of 1,000 idle agents
    // made 1,000 of them for nothing.
    const waiting = options.table.size() > 0
    if (waiting && !info.requested && options.onCrashCheckpoints !== undefined) {
      const checkpoints = options.table.checkpoints()
      if (checkpoints !== undefined) options.onCrashCheckpoints(checkpoints)
    }
    // Neither a stop's nor the SIGKILL of `kill`: an exit nobody asked for
    const unasked = !info.requested && !killed
    const unexpected = unasked && isStarted
    if (unasked && !isStarted) held = info
    const error = waiting || unexpected ? exitError(info) : undefined
    if (waiting) options.table.failAll(error!)
    Deferred.unsafeDone(options.exitDeferred, Exit.succeed(info))
    for (const waiter of exitWaiters.splice(0)) waiter(info)
    if (unexpected) logUnexpected(error!)
  }

  // An exit with code 0 is a normal one (a transient or temporary agent's whose work is done): said, not warned of
  const logUnexpected = (error: Requests.EndError): void =>
    options.log(
      error._tag === "AgentCrashError" && error.exitCode === 0 && (error.signal ?? null) === null
        ? Effect.logInfo(`agent exited by itself with code 0 (not asked to): ${error.message}`)
        : Effect.logWarning(`agent exited unexpectedly: ${error.message}`)
    )

  const started = (): void => {
    isStarted = true
    if (held !== undefined) logUnexpected(exitError(held))
    held = undefined
  }

  const onReported = (callback: (info: AgentProcess.ExitInfo) => void): () => void => {
    if (status.exited !== undefined) {
      callback(status.exited)
      return () => {}
    }
    exitWaiters.push(callback)
    return () => {
      const index = exitWaiters.indexOf(callback)
      if (index >= 0) exitWaiters.splice(index, 1)
    }
  }

  const within = (millis: number) =>
    Effect.async<boolean>((resume) => {
      if (status.exited !== undefined) return resume(Effect.succeed(true))
      const waiter = () => {
        clearTimeout(timer)
        resume(Effect.succeed(true))
      }
      // (a wait past what a timer holds, 2^31-1 ms: about 24.8 days, is no bound: Node would fire it at once)
      const timer = millis <= MAX_TIMER_MILLIS
        ? setTimeout(() => {
          const index = exitWaiters.indexOf(waiter)
          if (index >= 0) exitWaiters.splice(index, 1)
          resume(Effect.succeed(false))
        }, millis)
        : undefined
      exitWaiters.push(waiter)
    })

  const refusal = (): RequestError | undefined => {
    if (status.exited !== undefined) return Requests.refuse(exitError(status.exited))
    // The child's exit is known a moment before it is reported (its pipes are read in between), or before its
    // owner attached: no request may be written any more.
    const childExit = child.exited()
    if (childExit !== undefined) {
      return Requests.refuse(
        new AgentCrashError({
          agent,
          pid,
          exitCode: childExit.exitCode,
          signal: childExit.signal,
          ...limitFacts(status.killedFor, options.limits)
        })
      )
    }
    return status.stopping ? Requests.refuse(stoppedError()) : undefined
  }

  return {
    onExit,
    onReported,
    started,
    within,
    leaveBehind,
    kill,
    refusal,
    stoppedError
  }
}

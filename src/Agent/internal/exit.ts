/**
 * The end of one incarnation: its exit, reported on the child's `exit` event rather than on its pipes closing
 * (a descendant may hold them open for ever), what it does to the requests, and waits for it in real time.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { AgentCrashError, AgentStoppedError, type RequestError } from "../../Errors.js"
import type * as AgentProcess from "../Process.js"
import * as Child from "./child.js"
import * as Requests from "./requests.js"

/**
 * After the exit, how long the pipes may stay open before the exit is reported anyway: data the process wrote
 * before dying is still in them, but a descendant that escaped the group may hold them open for ever. Data that
 * comes later is still logged.
 */
const PIPES_AFTER_EXIT_MILLIS = 20

/** Where an incarnation is in its end, read by its requests and its shutdown. @internal */
export interface Status {
  /** Set once the exit is reported. */
  exited: AgentProcess.ExitInfo | undefined
  /** Set when the shutdown begins: an exit from then on was asked for. */
  stopping: boolean
}

/** Neither exited nor stopping. @internal */
export const makeStatus = (): Status => ({ exited: undefined, stopping: false })

/** What the child's exit listeners call, and what the requests and the shutdown ask of the end. @internal */
export interface ExitWatch {
  /** The child exited (Node's `exit` event). */
  readonly onExit: (exit: Child.ChildExit) => void
  /** stdout and stderr have both closed. */
  readonly onPipesClosed: () => void
  /** Waits for the exit at most `millis` (real time), also in a finalizer of a fiber being interrupted. */
  readonly within: (millis: number) => Effect.Effect<boolean>
  /** Why a new request is refused at once (the process exited, or is being stopped), if it is. */
  readonly refusal: () => RequestError | undefined
  readonly stoppedError: () => AgentStoppedError
}

/** The incarnation's facts and parts that its exit reports to. @internal */
export interface Options {
  readonly agent: string
  readonly pid: number
  readonly status: Status
  readonly child: Pick<Child.Child, "exited">
  readonly table: Requests.Table
  /** Completed with the exit once it is reported. */
  readonly exitDeferred: Deferred.Deferred<AgentProcess.ExitInfo>
  readonly now: () => number
  readonly recentStderr: () => Array<string>
  readonly log: (effect: Effect.Effect<void>) => void
}

/** Watches for the exit of one child; attach `onExit` and `onPipesClosed` to it. @internal */
export const make = (options: Options): ExitWatch => {
  const { agent, child, pid, status } = options
  const exitWaiters: Array<(info: AgentProcess.ExitInfo) => void> = []
  let pipesClosed = false
  let onPipesClosed: (() => void) | undefined

  const stoppedError = () => new AgentStoppedError({ agent, pid })
  const exitError = (info: AgentProcess.ExitInfo): Requests.EndError =>
    info.requested
      ? stoppedError()
      : new AgentCrashError({
        agent,
        pid,
        exitCode: info.exitCode,
        signal: info.signal,
        stderr: options.recentStderr()
      })

  const onExit = (exit: Child.ChildExit): void => {
    // Descendants outlive a leader that exits 0 or by a signal: sweep the group now.
    Child.killGroup(pid, "SIGKILL")
    if (pipesClosed) return report(exit)
    // What the process wrote before dying is still in the pipes: let them hand it over, briefly.
    // On a busy loop the timer can fire before the pipes were polled: one more turn lets them be read first.
    const timer = setTimeout(() =>
      setImmediate(() => {
        if (onPipesClosed === undefined) return
        onPipesClosed = undefined
        report(exit)
      }), PIPES_AFTER_EXIT_MILLIS)
    onPipesClosed = () => {
      onPipesClosed = undefined
      clearTimeout(timer)
      report(exit)
    }
  }

  const report = (exit: Child.ChildExit): void => {
    const info: AgentProcess.ExitInfo = {
      pid,
      exitCode: exit.exitCode,
      signal: exit.signal,
      requested: status.stopping,
      at: options.now()
    }
    status.exited = info
    const error = exitError(info)
    options.table.failAll(error)
    Deferred.unsafeDone(options.exitDeferred, Exit.succeed(info))
    for (const waiter of exitWaiters.splice(0)) waiter(info)
    if (!info.requested) options.log(Effect.logWarning(`agent exited unexpectedly: ${error.message}`))
  }

  const within = (millis: number) =>
    Effect.async<boolean>((resume) => {
      if (status.exited !== undefined) return resume(Effect.succeed(true))
      const waiter = () => {
        clearTimeout(timer)
        resume(Effect.succeed(true))
      }
      const timer = Number.isFinite(millis)
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
    // Exited, its exit not reported yet (the pipes are being drained): no request may be written any more.
    const childExit = child.exited()
    if (childExit !== undefined) {
      return Requests.refuse(
        new AgentCrashError({ agent, pid, exitCode: childExit.exitCode, signal: childExit.signal })
      )
    }
    return status.stopping ? Requests.refuse(stoppedError()) : undefined
  }

  return {
    onExit,
    onPipesClosed: () => {
      pipesClosed = true
      onPipesClosed?.()
    },
    within,
    refusal,
    stoppedError
  }
}

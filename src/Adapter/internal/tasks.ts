/**
 * The tasks in flight: calling the user's function, answering with its outcome, cancelling (the task's signal
 * aborts and its outcome is dropped), and the two ways of ending: `drain` after `shutdown` (the tasks in flight
 * finish and are answered, then exit 0) and `abandon` after stdin EOF without `shutdown` (nobody can receive a
 * result: cancel them all, give them 0.5 s to settle, exit within 1 s whatever they do). An uncaught exception or
 * unhandled rejection raised by a task's code fails that task (the agent lives on); one that no task owns leaves
 * the process in an unknown state, so it is logged and the adapter exits 1.
 *
 * @internal
 */
import { AsyncLocalStorage } from "node:async_hooks"
import { describeError, errorLine, exit, log, okLine, send } from "./output.js"

/** Exit code when stdin ended without `shutdown` while tasks were in flight: they were cancelled, work was lost. */
const EXIT_ABANDONED = 4

/** After stdin EOF without `shutdown`: how long the cancelled tasks may take to settle. */
const ABANDON_GRACE_MS = 500

/** After stdin EOF without `shutdown`: when the process exits even if a flush of its output has not completed. */
const ABANDON_DEADLINE_MS = 900

/**
 * The second argument the user's function receives.
 *
 * @internal
 */
export interface TaskContext {
  readonly id: string
  readonly signal: AbortSignal
}

/**
 * The user's function.
 *
 * @internal
 */
export type Callback = (payload: unknown, context: TaskContext) => unknown

/** Which task the running code belongs to, so that an uncaught error can be reported as that task's failure. */
const taskStorage = new AsyncLocalStorage<Task>()
const tasks = new Map<string, Task>()
let totalRequests = 0
let draining = false
/** The tasks cancelled because stdin ended without `shutdown`; the drain waits (bounded) for them to settle. */
let abandoned: ReadonlyArray<Task> | undefined = undefined
let drainExitCode = 0
let callback: Callback = () => undefined

/**
 * A task in flight. It is also the context the user's function receives, so that one object per task is all the
 * bookkeeping costs; its state is private and its operations static, so that function sees only `id` and `signal`.
 */
class Task implements TaskContext {
  #controller: AbortController | undefined = undefined
  #cancelled = false
  #settled = false

  constructor(readonly id: string) {}

  /** Made on first use: most functions never look at it, and an AbortController is not free. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#cancelled) this.#controller.abort()
    }
    return this.#controller.signal
  }

  /** Whether the outcome is known (a late uncaught error can no longer be reported). */
  static isSettled(task: Task): boolean {
    return task.#settled
  }

  /** Aborts the signal; the outcome will not be sent, and a drain no longer waits for it (as in Python). */
  static cancel(task: Task): void {
    if (task.#cancelled) return
    task.#cancelled = true
    forget(task)
    const controller = task.#controller
    // Abort listeners are the user's code: run them as the task, so that one that throws fails only this task
    if (controller !== undefined) taskStorage.run(task, () => controller.abort())
    finishIfDrained()
  }

  /** Ends the task with its result. */
  static succeed(task: Task, result: unknown): void {
    if (task.#settled) return
    task.#settled = true
    forget(task)
    if (!task.#cancelled) send(okLine(task.id, result))
    finishIfDrained()
  }

  /** Ends the task with an error. */
  static fail(task: Task, error: unknown): void {
    if (task.#settled) return
    task.#settled = true
    forget(task)
    if (!task.#cancelled) send(errorLine(task.id, describeError(error)))
    finishIfDrained()
  }
}

/** Takes a task out of the ones in flight (only itself: a later task may reuse the id of a cancelled one). */
const forget = (task: Task): void => {
  if (tasks.get(task.id) === task) tasks.delete(task.id)
}

/**
 * Sets the user's function, which every task from now on calls.
 *
 * @internal
 */
export const setCallback = (f: Callback): void => {
  callback = f
}

/**
 * How many tasks were received (refused ones included), for the health report.
 *
 * @internal
 */
export const requestCount = (): number => totalRequests

/**
 * Calls the user's function for one task.
 *
 * @internal
 */
export const runTask = (id: string, payload: unknown): void => {
  totalRequests += 1
  if (draining) {
    send(errorLine(id, { message: "the agent is shutting down and accepts no new task", type: "AgentShuttingDown" }))
    return
  }
  if (tasks.has(id)) {
    // Answering would settle the first request with the second one's outcome: say it here and drop it
    log(`warning: ignoring task "${id}": a task with that id is already in flight`)
    return
  }
  const task = new Task(id)
  tasks.set(id, task)
  let result: unknown
  try {
    result = taskStorage.run(task, callback, payload, task)
  } catch (error) {
    Task.fail(task, error)
    return
  }
  if (typeof result === "object" && result !== null && typeof (result as PromiseLike<unknown>).then === "function") {
    // Promise.resolve returns a native promise as is and calls a foreign `then` safely
    Promise.resolve(result).then((value) => Task.succeed(task, value), (error) => Task.fail(task, error))
  } else {
    Task.succeed(task, result)
  }
}

/**
 * Cancels the task in flight with this id, if there is one.
 *
 * @internal
 */
export const cancelTask = (id: string): void => {
  // An unknown id is the ordinary race with a task that has just finished
  const task = tasks.get(id)
  if (task !== undefined) Task.cancel(task)
}

/**
 * Stops taking tasks; exits 0 once the tasks in flight have settled.
 *
 * @internal
 */
export const drain = (): void => {
  draining = true
  finishIfDrained()
}

/**
 * stdin ended without `shutdown`: nobody can receive a result, so rather than drain, cancels the tasks in flight
 * and exits once they have settled, within bounds, because settling is up to the user's code.
 *
 * @internal
 */
export const abandon = (): void => {
  const inFlight = [...tasks.values()]
  draining = true
  abandoned = inFlight
  drainExitCode = inFlight.length === 0 ? 0 : EXIT_ABANDONED
  const what = inFlight.length === 0 ? "exiting" : `cancelling ${inFlight.length} task(s) in flight and exiting`
  log(`stdin closed without shutdown: nobody can receive results; ${what}`)
  // A task that ignores its signal never settles; a flush into a pipe nobody reads never completes
  setTimeout(() => exit(drainExitCode), ABANDON_GRACE_MS)
  setTimeout(() => process.exit(drainExitCode), ABANDON_DEADLINE_MS)
  for (const task of inFlight) Task.cancel(task)
  finishIfDrained()
}

/** Exits once draining and nothing is in flight (after an EOF without `shutdown`: once the cancelled settled). */
const finishIfDrained = (): void => {
  if (draining && tasks.size === 0 && (abandoned === undefined || abandoned.every(Task.isSettled))) {
    exit(drainExitCode)
  }
}

/**
 * An error no task owns: the process state is unknown, so log it and exit 1.
 *
 * @internal
 */
export const fatal = (error: unknown): void => {
  const info = describeError(error)
  log(`uncaught ${info.type} outside any task, exiting: ${info.stack ?? info.message}`)
  exit(1)
}

/**
 * Routes an uncaught exception or unhandled rejection to the task whose code raised it. Node runs these handlers
 * in the async context of the failing callback or of the rejected promise, so the task storage still holds it.
 *
 * @internal
 */
export const onUncaught = (error: unknown): void => {
  const task = taskStorage.getStore()
  if (task === undefined) return fatal(error)
  if (!Task.isSettled(task)) return Task.fail(task, error)
  const info = describeError(error)
  log(`warning: uncaught ${info.type} from task "${task.id}" after it settled: ${info.stack ?? info.message}`)
}

/**
 * The tasks in flight: calling the user's function, answering with its outcome (or streaming it, when the function
 * returns an async iterable or a generator: chunk lines for a task sent with `"stream":true`, the pieces collected
 * into an array for one sent without), the context it is given (its id, signal, checkpoints, `publish` and what
 * the last `restore` said), cancelling (the task's signal aborts, a stream's iterator is closed, its outcome is
 * dropped), and the two ways of ending: `drain` after `shutdown` (the tasks in flight finish and are answered,
 * then exit 0) and `abandon` after stdin EOF without `shutdown` (nobody can receive a result: cancel them all,
 * give them 0.5 s to settle, exit within 1 s whatever they do). An uncaught exception or unhandled rejection raised by a task's
 * code (a generator's too) fails that task (the agent lives on); one that no task owns leaves the process in an
 * unknown state, so it is logged and the adapter exits 1.
 *
 * @internal
 */
import { AsyncLocalStorage } from "node:async_hooks"
import {
  checkpointLine,
  chunkPrefix,
  describeError,
  encode,
  type ErrorInfo,
  errorLine,
  exit,
  log,
  okLine,
  publishLine,
  send,
  whenWritable,
  writable
} from "./output.js"

/** Exit code when stdin ended without `shutdown` while tasks were in flight: they were cancelled, work was lost. */
const EXIT_ABANDONED = 4

/** After stdin EOF without `shutdown`: how long the cancelled tasks may take to settle. */
const ABANDON_GRACE_MS = 500

/** After stdin EOF without `shutdown`: when the process exits even if a flush of its output has not completed. */
const ABANDON_DEADLINE_MS = 900

/** When collecting a stream's pieces for a v1 task: how many between two turns of the event loop. */
const COLLECT_YIELD_EVERY = 1024

/**
 * The options of `checkpoint`.
 *
 * @internal
 */
export interface CheckpointOptions {
  /** `false` sends the agent's checkpoint (no `id`) rather than the task's. */
  readonly task?: boolean | undefined
}

/**
 * The second argument the user's function receives.
 *
 * @internal
 */
export interface TaskContext {
  /** The request's id, as the supervisor chose it. */
  readonly id: string
  /** Aborts when the task is cancelled (or the supervisor is gone). */
  readonly signal: AbortSignal
  /** Whether the task was sent with `"stream":true`: the caller takes chunks (else a stream's values are collected). */
  readonly stream: boolean
  /**
   * The caller's idempotency key (the task's `key`), the same on every delivery of one task: a cluster delivers at
   * least once, so an agent with side effects skips work already done for a key. Undefined when the caller gave none.
   */
  readonly key: string | undefined
  /** The `data` of the last `restore`: the agent checkpoint this incarnation started from, or undefined. */
  readonly restored: unknown
  /** The `requests` of the last `restore`: the checkpoints of the requests a crash cut short, by their old ids. */
  readonly restoredRequests: Readonly<Record<string, unknown>> | undefined
  /**
   * Sends a checkpoint: the task's (`{"type":"checkpoint","id","data"}`), or with `{ task: false }` the agent's.
   * Throws a TypeError when JSON cannot encode `data`; a task checkpoint after the task ended or was cancelled is
   * dropped (the supervisor has forgotten the request).
   */
  readonly checkpoint: (data: unknown, options?: CheckpointOptions) => void
  /**
   * Hands a task to a topic of the supervision tree (protocol 1.2): `{"type":"publish","topic","payload"}`, no
   * reply. The agent's, not the task's: sent whether or not the task is still in flight, so a function kept from
   * a context publishes from a timer or a worker too. Throws a TypeError for a topic that is not a non-empty
   * string, or a payload JSON cannot encode (`undefined` is `null`).
   */
  readonly publish: (topic: string, payload: unknown) => void
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
let restoredData: unknown = undefined
let restoredRequests: Readonly<Record<string, unknown>> | undefined = undefined

/**
 * A task in flight. It is also the context the user's function receives, so that one object per task is all the
 * bookkeeping costs; its state is private and its operations static, so that function sees only the context.
 */
class Task implements TaskContext {
  #controller: AbortController | undefined = undefined
  #cancelled = false
  #settled = false
  /** Resolves a stream's wait for room in the output, so that a cancel does not wait for stdout. */
  #wake: (() => void) | undefined = undefined

  constructor(readonly id: string, readonly stream: boolean, readonly key: string | undefined) {}

  get restored(): unknown {
    return restoredData
  }

  get restoredRequests(): Readonly<Record<string, unknown>> | undefined {
    return restoredRequests
  }

  /** A function of its own each time, so that a destructured `checkpoint` works. */
  get checkpoint(): (data: unknown, options?: CheckpointOptions) => void {
    return (data, options) => {
      const own = options?.task !== false
      if (own && (this.#settled || this.#cancelled)) return
      const line = checkpointLine(own ? this.id : undefined, data)
      if (typeof line !== "string") throw new TypeError(line.message)
      send(line)
    }
  }

  /** The same function for every task: a publish belongs to the agent. */
  get publish(): (topic: string, payload: unknown) => void {
    return publish
  }

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

  /** Whether nothing more is to be sent for the task: it was cancelled, or failed (an uncaught error of its code). */
  static isOver(task: Task): boolean {
    return task.#cancelled || task.#settled
  }

  /** Waits until the output has room (see `writable`), or the task is cancelled. */
  static waitWritable(task: Task): Promise<void> {
    return new Promise((resolve) => {
      task.#wake = resolve
      whenWritable(resolve)
    })
  }

  /** Aborts the signal; the outcome will not be sent, and a drain no longer waits for it (as in Python). */
  static cancel(task: Task): void {
    if (task.#cancelled) return
    task.#cancelled = true
    forget(task)
    task.#wake?.()
    task.#wake = undefined
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

  /** Ends the task with an error (described by `info` when given, else from `error`). */
  static fail(task: Task, error: unknown, info?: ErrorInfo): void {
    if (task.#settled) return
    task.#settled = true
    forget(task)
    if (!task.#cancelled) send(errorLine(task.id, info ?? describeError(error)))
    finishIfDrained()
  }
}

/**
 * Sends a publish line (protocol 1.2), through the batched writer as every other line; throws a TypeError for a
 * bad topic or a payload JSON cannot encode, so that the caller, not the agent, fails.
 *
 * @internal
 */
export const publish = (topic: string, payload: unknown): void => {
  if (typeof topic !== "string" || topic === "") {
    throw new TypeError(`publish needs a non-empty string topic, not ${topic === "" ? "\"\"" : typeof topic}`)
  }
  const line = publishLine(topic, payload)
  if (typeof line !== "string") throw new TypeError(line.message)
  send(line)
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
 * Remembers what a `restore` said, for the context of every task from now on.
 *
 * @internal
 */
export const restore = (data: unknown, requests: Readonly<Record<string, unknown>> | undefined): void => {
  restoredData = data
  restoredRequests = requests
}

/** The iterator of a result that streams (an async iterable, or a generator object), or undefined. */
const iteratorOf = (value: unknown): AsyncIterator<unknown> | Iterator<unknown> | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  const asyncIterator = (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator]
  if (typeof asyncIterator === "function") return asyncIterator.call(value) as AsyncIterator<unknown>
  // A sync generator streams too; other sync iterables (an array, a Map) are results
  if ((value as { readonly [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === "Generator") {
    return value as Iterator<unknown>
  }
  return undefined
}

/** Calls `return()` so that the producer's `finally` blocks run; its failure is the producer's, logged. */
const close = async (task: Task, iterator: AsyncIterator<unknown> | Iterator<unknown>): Promise<void> => {
  try {
    await iterator.return?.()
  } catch (error) {
    const info = describeError(error)
    log(`warning: closing the stream of task "${task.id}" failed: ${info.stack ?? info.message}`)
  }
}

/** Resolves on the next turn of the event loop, so that stdin is read (a cancel, a ping) during a long collect. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/**
 * Runs a stream to its end: each piece a chunk line (`stream`), or collected into the result (a v1 task); then the
 * final response with the generator's return value (or the pieces). The producer waits while the output is full,
 * so that a fast generator cannot pile its chunks up in memory. A cancel closes the iterator at its next step.
 */
const pump = async (task: Task, iterator: AsyncIterator<unknown> | Iterator<unknown>, stream: boolean) => {
  const prefix = stream ? chunkPrefix(task.id) : ""
  const pieces: Array<unknown> = []
  let result: unknown
  try {
    for (;;) {
      if (stream && !writable()) await Task.waitWritable(task)
      if (Task.isOver(task)) break
      const next = iterator.next()
      // A sync generator's step needs no turn of the microtask queue
      const step: IteratorResult<unknown> = typeof (next as Partial<PromiseLike<unknown>>).then === "function" ?
        await next :
        next as IteratorResult<unknown>
      if (Task.isOver(task)) break
      if (step.done) {
        result = stream ? step.value : pieces
        break
      }
      if (!stream) {
        pieces.push(step.value)
        if (pieces.length % COLLECT_YIELD_EVERY === 0) await nextTurn()
        continue
      }
      const json = encode(step.value, "a chunk", "chunk")
      if (typeof json !== "string") {
        await close(task, iterator)
        return Task.fail(task, undefined, json)
      }
      send(prefix + json + "}")
    }
  } catch (error) {
    return Task.fail(task, error)
  }
  if (Task.isOver(task)) await close(task, iterator)
  // After a cancel (or an uncaught error of the task's code) this sends nothing
  Task.succeed(task, result)
}

/** Answers a task with what its function gave, or streams it, as the task (for its uncaught errors). */
const settle = (task: Task, value: unknown, stream: boolean): void => {
  if (typeof value !== "object" || value === null) return Task.succeed(task, value)
  let iterator: AsyncIterator<unknown> | Iterator<unknown> | undefined
  try {
    // `[Symbol.asyncIterator]()` is the user's code
    iterator = taskStorage.run(task, iteratorOf, value)
  } catch (error) {
    return Task.fail(task, error)
  }
  if (iterator === undefined) Task.succeed(task, value)
  else void taskStorage.run(task, pump, task, iterator, stream)
}

/**
 * Calls the user's function for one task; `stream` when the task was sent with `"stream":true`.
 *
 * @internal
 */
export const runTask = (id: string, payload: unknown, stream: boolean, key?: string): void => {
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
  const task = new Task(id, stream, key)
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
    Promise.resolve(result).then((value) => settle(task, value, stream), (error) => Task.fail(task, error))
  } else {
    settle(task, result, stream)
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

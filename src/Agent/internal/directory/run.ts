/**
 * Running a program to its end with a bound: the installers (pip, npm) and the callback check. The program's
 * whole process group is killed when the bound passes or the run is interrupted, and only the end of its output
 * is kept, which is where installers say what went wrong.
 *
 * Spawned with the agents' own `child.ts` (not `@effect/platform`'s `Command`, which cannot set the user): a check
 * runs the user's module as the agent will run it, with the agent's whole environment and as its `user` and
 * `group` (systemd runs `ExecStartPre=` as `User=` too).
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { type ChildExit, KILL_BOUND_MILLIS, killGroup, spawn } from "../child.js"

/** The output kept for an error: the end of it is where pip and npm say what went wrong. @internal */
export const OUTPUT_LIMIT = 64 * 1024
/** How long output may keep flowing after the exit (a grandchild holding the pipe must not hang us). */
const DRAIN_MILLIS = 1000

/** Installs and checks run real programs: their timeouts follow the wall clock even under a `TestClock`. @internal */
export const liveClock = Clock.make()

/** What to run, and how. @internal */
export interface Program {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd?: string | undefined
  /** The program's whole environment (`PATH` in it is where `command` is looked for, as `execvp` looks). */
  readonly env: Record<string, string | undefined>
  /** Run as this user and group (only root may). */
  readonly uid?: number | undefined
  readonly gid?: number | undefined
}

/** The program did not start: Node's reason (`spawn python3 ENOENT`), with its errno `code` when it has one. @internal */
export class RunError extends Data.TaggedError("RunError")<{
  readonly message: string
  readonly code?: string | undefined
}> {}

interface Tail {
  readonly push: (chunk: Uint8Array) => void
  readonly text: () => string
}

/** The last `limit` bytes pushed, give or take one chunk until `text` trims them. */
const makeTail = (limit: number): Tail => {
  const chunks: Array<Uint8Array> = []
  let size = 0
  return {
    push: (chunk) => {
      chunks.push(chunk)
      size += chunk.length
      while (chunks.length > 1 && size - chunks[0].length >= limit) size -= chunks.shift()!.length
    },
    text: () => {
      const all = Buffer.concat(chunks)
      return all.subarray(Math.max(0, all.length - limit)).toString("utf8")
    }
  }
}

/** How a bounded run ended, with the end of its output. @internal */
export interface RunResult {
  readonly pid: number
  readonly exitCode: number | null
  readonly signal: string | null
  readonly timedOut: boolean
  readonly stdout: string
  readonly stderr: string
  /** stdout and stderr interleaved as they arrived. */
  readonly output: string
}

/**
 * Runs a program to its end, or kills its process group after `timeout`; stdin is closed at once (a program that
 * asks anything gets EOF instead of waiting for ever). A spawn failure is the only error. `onChunk` sees each chunk
 * of its output as it arrives (for progress).
 *
 * @internal
 */
export const runBounded = (
  program: Program,
  timeout: Duration.Duration,
  stdoutLimit: number,
  onChunk?: (chunk: Uint8Array) => void
): Effect.Effect<RunResult, RunError> =>
  Effect.scoped(Effect.gen(function*() {
    const child = yield* spawn(program).pipe(
      Effect.mapError(({ error }) => new RunError({ message: error.message, code: error.code }))
    )
    // Runs before the child's own release (finalizers are last-in first-out), and after its exit too: it sweeps
    // what the program left running in its group.
    yield* Effect.addFinalizer(() => Effect.sync(() => killGroup(child.pid, "SIGKILL")))
    const stdout = makeTail(stdoutLimit)
    const stderr = makeTail(OUTPUT_LIMIT)
    const output = makeTail(OUTPUT_LIMIT)
    const exited = yield* Deferred.make<ChildExit>()
    const closed = yield* Deferred.make<void>()
    const take = (into: Tail) => (chunk: Buffer) => {
      into.push(chunk)
      output.push(chunk)
      onChunk?.(chunk)
    }
    child.attach({
      onStdout: take(stdout),
      onStderr: take(stderr),
      onPipesClosed: () => Deferred.unsafeDone(closed, Effect.void),
      onExit: (exit) => Deferred.unsafeDone(exited, Effect.succeed(exit)),
      onStdinError: () => {}
    })
    child.end()

    const finished = yield* Deferred.await(exited).pipe(Effect.timeoutOption(timeout), Effect.withClock(liveClock))
    let exit = Option.getOrUndefined(finished)
    if (exit === undefined) {
      killGroup(child.pid, "SIGKILL")
      const reaped = yield* Deferred.await(exited).pipe(
        Effect.timeoutOption(KILL_BOUND_MILLIS),
        Effect.withClock(liveClock)
      )
      // Not reaped by then (uninterruptible sleep): left behind, and the child's release does not wait again.
      if (Option.isNone(reaped)) child.leaveBehind()
      exit = Option.getOrElse(reaped, () => ({ exitCode: null, signal: "SIGKILL" }))
    }
    // What the program wrote is in hand at its exit; what a descendant still writes gets a moment more.
    yield* Deferred.await(closed).pipe(Effect.timeoutOption(DRAIN_MILLIS), Effect.withClock(liveClock))
    return {
      pid: child.pid,
      exitCode: exit.exitCode,
      signal: exit.signal,
      // Timed out only if the SIGKILL sent here ended it: a program that ended by itself as the bound passed (its
      // exit seen just after, or it was dead when SIGKILL came) reports the end it had, success or failure.
      timedOut: Option.isNone(finished) && exit.signal === "SIGKILL",
      stdout: stdout.text(),
      stderr: stderr.text(),
      output: output.text()
    }
  }))

/** A command line as messages show it. @internal */
export const commandLine = (command: string, args: ReadonlyArray<string>): string => [command, ...args].join(" ")

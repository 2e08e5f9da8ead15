/**
 * Running a program to its end with a bound: the installers (pip, npm) and the callback check. The program's
 * whole process group is killed when the bound passes or the run is interrupted, and only the end of its output
 * is kept, which is where installers say what went wrong.
 *
 * @internal
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type { PlatformError } from "@effect/platform/Error"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { killGroup } from "../child.js"

/** The output kept for an error: the end of it is where pip and npm say what went wrong. @internal */
export const OUTPUT_LIMIT = 64 * 1024
/** How long output may keep flowing after the exit (a grandchild holding the pipe must not hang us). */
const DRAIN_MILLIS = 1000
/** How long a killed process gets to be reaped. */
const REAP_MILLIS = 5000
const SIGNAL_IN_MESSAGE = /signal: (SIG[A-Z0-9]+)/

/** Installs and checks run real programs: their timeouts follow the wall clock even under a `TestClock`. @internal */
export const liveClock = Clock.make()

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
 * Runs a program to its end, or kills its process group after `timeout`. A spawn failure is the only error.
 * `onChunk` sees each chunk of its output as it arrives (for progress).
 *
 * @internal
 */
export const runBounded = (
  command: Command.Command,
  timeout: Duration.Duration,
  stdoutLimit: number,
  onChunk?: (chunk: Uint8Array) => void
): Effect.Effect<RunResult, PlatformError, CommandExecutor.CommandExecutor> =>
  Effect.scoped(Effect.gen(function*() {
    const proc = yield* Command.start(command)
    const pid = proc.pid as number
    // Runs before Command's own release (finalizers are last-in first-out), which waits for the exit with no
    // bound: after SIGKILL that wait is short. It also sweeps what the installer left running in its group.
    yield* Effect.addFinalizer(() => Effect.sync(() => killGroup(pid, "SIGKILL")))
    const stdout = makeTail(stdoutLimit)
    const stderr = makeTail(OUTPUT_LIMIT)
    const output = makeTail(OUTPUT_LIMIT)
    const read = (stream: Stream.Stream<Uint8Array, PlatformError>, into: Tail) =>
      Stream.runForEach(stream, (chunk) =>
        Effect.sync(() => {
          into.push(chunk)
          output.push(chunk)
          onChunk?.(chunk)
        })).pipe(Effect.ignore, Effect.forkScoped)
    const readers = [yield* read(proc.stdout, stdout), yield* read(proc.stderr, stderr)]
    // Nothing is sent: closing stdin makes a program that asks anything get EOF instead of waiting forever.
    yield* Stream.run(Stream.empty, proc.stdin).pipe(Effect.ignore)

    const exitOf = proc.exitCode.pipe(
      Effect.map((code) => ({ exitCode: code as number | null, signal: null as string | null })),
      Effect.catchAll((error) =>
        Effect.succeed({ exitCode: null, signal: SIGNAL_IN_MESSAGE.exec(error.message)?.[1] ?? "unknown" })
      )
    )
    const finished = yield* exitOf.pipe(Effect.timeoutOption(timeout), Effect.withClock(liveClock))
    let exit = Option.getOrUndefined(finished)
    if (exit === undefined) {
      killGroup(pid, "SIGKILL")
      exit = Option.getOrElse(
        yield* exitOf.pipe(Effect.timeoutOption(REAP_MILLIS), Effect.withClock(liveClock)),
        () => ({ exitCode: null, signal: "SIGKILL" })
      )
    }
    yield* Fiber.joinAll(readers).pipe(Effect.timeoutOption(DRAIN_MILLIS), Effect.withClock(liveClock))
    return {
      pid,
      ...exit,
      // Timed out only if the SIGKILL sent here ended it (or an end by a signal the platform did not name): a
      // program that ended by itself as the bound passed (its exit seen just after, or it was dead when SIGKILL
      // came) reports the end it had, success or failure.
      timedOut: Option.isNone(finished) && (exit.signal === "SIGKILL" || exit.signal === "unknown"),
      stdout: stdout.text(),
      stderr: stderr.text(),
      output: output.text()
    }
  }))

/** A command line as messages show it. @internal */
export const commandLine = (command: string, args: ReadonlyArray<string>): string => [command, ...args].join(" ")

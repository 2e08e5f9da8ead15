/**
 * One child process over `node:child_process`, with every stream's error path held for the child's whole life.
 *
 * Why not `@effect/platform`'s `Command`: its stdin sink attaches an `error` listener only while a write is being
 * run and removes it when the writing fiber ends or is interrupted, so a write that fails after that (the agent
 * died, its exit not yet seen, the scope closing) raises an unhandled `EPIPE` that takes the host process down.
 * It does not expose the child's handle, so no listener of ours can be added; and its stream adapters cost a
 * Channel step per chunk on the request path. Here the handle's `error` events (spawn, stdin, stdout, stderr)
 * each have a listener from spawn to release, writes go straight to the pipe, and the exit is reported on the
 * `exit` event itself, whatever holds the pipes, once what the process left in them is read (`drainAtExit`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import type { Readable, Writable } from "node:stream"
import { ENDING_SIGNALS } from "../../internal/standalone/endingSignals.js"
import type * as ForkServer from "./forkServer.js"

/** How a child ended: an exit code, or the signal that killed it. @internal */
export interface ChildExit {
  readonly exitCode: number | null
  readonly signal: string | null
}

/** What the owner of a child hears from it. Called synchronously from Node's event handlers. @internal */
export interface ChildListeners {
  readonly onStdout: (chunk: Buffer) => void
  readonly onStderr: (chunk: Buffer) => void
  /**
   * stdout and stderr are both at their end: called once, before `onExit` when nothing else holds them at the
   * exit, else when the last holder (a descendant) closes them.
   */
  readonly onPipesClosed: () => void
  /**
   * The child exited (Node's `exit` event). Everything it wrote before dying has been handed to `onStdout` and
   * `onStderr` already, whatever still holds the pipes.
   */
  readonly onExit: (exit: ChildExit) => void
  /** A write to stdin failed (EPIPE: the child is gone): the exit follows. */
  readonly onStdinError: (error: Error) => void
}

/** A spawned child. @internal */
export interface Child {
  readonly pid: number
  /**
   * When `spawn` returned (`performance.now()`): the child was made then. Its `spawn` event, and whoever goes on
   * from it, may come much later on a busy event loop (a bulk start).
   */
  readonly spawnedAt: number
  /** Writes to stdin; returns false when the pipe's buffer is full (`onDrain` then says when to go on). */
  readonly write: (data: string) => boolean
  /** Calls back once when stdin's buffer has drained (at once if it has nothing buffered or is closed). */
  readonly onDrain: (callback: () => void) => void
  /** Closes stdin once what is buffered is written. */
  readonly end: () => void
  /** True once stdin can take no more writes (ended, failed, or the child is gone). */
  readonly stdinClosed: () => boolean
  readonly exited: () => ChildExit | undefined
  /**
   * Starts delivering output and the exit to `listeners` (once). Until then stdout and stderr stay paused in
   * their pipes, and an exit that already happened is delivered at once, after the output that precedes it.
   */
  readonly attach: (listeners: ChildListeners) => void
  readonly attached: () => boolean
  /**
   * Stops waiting for a child that outlived SIGKILL (see {@link KILL_BOUND_MILLIS}): this side of its pipes is
   * closed (nothing more is read from it or written to it), its handle no longer keeps the event loop alive, and
   * the release of its scope returns without waiting. Its exit, if it ever comes, is still delivered to `onExit`.
   * Does nothing once it has exited.
   */
  readonly leaveBehind: () => void
}

/** Why a spawn failed: Node's error, with its `code` (ENOENT, EACCES, E2BIG...) when it has one. @internal */
export interface SpawnError {
  readonly _tag: "SpawnError"
  readonly error: Error & { readonly code?: string | undefined; readonly errno?: number | undefined }
}

/** @internal */
export interface SpawnOptions {
  readonly command: string
  readonly args: ReadonlyArray<string>
  /** The whole environment of the child. */
  readonly env: Record<string, string | undefined>
  readonly cwd?: string | undefined
  /** Run the child as this user and group (Node's `uid` / `gid`: only root may). */
  readonly uid?: number | undefined
  readonly gid?: number | undefined
  /**
   * Called once if the child is left behind (it outlived SIGKILL by {@link KILL_BOUND_MILLIS}): what else would wait
   * for it (its cgroup's removal) need not.
   */
  readonly onLeftBehind?: (() => void) | undefined
  /** Spawn through this fork server (`forkServer.ts`) rather than from this process. */
  readonly forkServer?: ForkServer.ForkServer | undefined
}

/**
 * How long a process group SIGKILLed may take to be reaped before it is left behind (5 s): a process in
 * uninterruptible sleep (a hung filesystem or device) does not die of SIGKILL until the kernel wakes it, and
 * nothing that stops it may wait for ever. systemd waits again after its final SIGKILL, then gives the unit up
 * as failed ("Processes still around after final SIGKILL"). Also the bound of a cgroup's kill (`limits/cgroup.ts`).
 *
 * @internal
 */
export const KILL_BOUND_MILLIS = 5_000

/** The leaders this process spawned whose exit is not reported yet: what `killAll` reaches. */
const running = new Set<number>()

/**
 * While any agent runs, the first listener of each ending signal. A signal no other listener takes (a host without
 * handlers, or `NodeRuntime.runMain` after its first signal, which removes its own) would end the process by its
 * default action: this SIGKILLs every agent's process group first, then ends the process by the same signal, as
 * the default action would have (`up`'s third signal does the same). A signal another listener takes is left to it:
 * the host's own stop stops the agents.
 */
const onEndingSignal = (signal: NodeJS.Signals): void => {
  if (process.listenerCount(signal) > 1) return
  killAll("SIGKILL")
  setGuard(false)
  process.kill(process.pid, signal)
}

let guarded = false

/** Adds (while agents run) or removes (once none does) the listeners of {@link onEndingSignal}. */
const setGuard = (on: boolean): void => {
  if (guarded === on) return
  guarded = on
  for (const signal of ENDING_SIGNALS) {
    if (on) process.prependListener(signal, onEndingSignal)
    else process.removeListener(signal, onEndingSignal)
  }
}

/**
 * Sends `signal` to the process group of every child this process spawned that has not exited (every tree's, every
 * agent's), at once; returns how many. For a host that must end now. @internal
 */
export const killAll = (signal: NodeJS.Signals): number => {
  for (const pid of running) killGroup(pid, signal)
  return running.size
}

/** Sends a signal to a whole process group; a group that is already gone is not an error. @internal */
export const killGroup = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: the group is already gone; EPERM cannot happen for our own children.
  }
}

/**
 * Whether a child has exited and its exit is not reported yet: dead but not reaped (a zombie: its `/proc/<pid>/stat`
 * state is `Z`), Node reports the exit on a coming turn of the event loop; or gone from `/proc` already, reaped by a
 * fork server (`forkServer.ts`), whose message of its exit is on the way. Only for a child whose exit is not
 * reported yet: until then its pid cannot belong to another process (a fork server's child: but for the moment its
 * exit's message takes). False where `/proc` does not tell (not Linux); where it hides other processes (`hidepid`),
 * it still shows this process's own children.
 *
 * @internal
 */
export const isDead = (pid: number): boolean => {
  const state = processState(pid)
  if (state === undefined) return procTells()
  return state === "Z" || state === "X"
}

let procReadable: boolean | undefined

/** Whether this process can read `/proc` (a pid missing there is then no process). */
const procTells = (): boolean => (procReadable ??= Fs.existsSync("/proc/self/stat"))

/**
 * A process's state letter from `/proc/<pid>/stat` (`R`, `S`, `D`, `T` stopped, `t` stopped by a tracer, `Z`...),
 * or `undefined` where `/proc` does not tell. Only for a child whose exit is not reported yet (see `isDead`).
 *
 * @internal
 */
export const processState = (pid: number): string | undefined => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    // The command name, in parentheses, may hold anything: the state follows the last `)`.
    return stat.charAt(stat.lastIndexOf(")") + 2) || undefined
  } catch {
    return undefined
  }
}

/** Reads at the exit per pipe, at most: a descendant that writes without a pause must not hold the loop. */
const MAX_READS_AT_EXIT = 16

/** One buffer for the reads at an exit (each chunk read is copied out: listeners may keep it). */
const scratch = Buffer.allocUnsafe(64 * 1024)

/**
 * Hands over, at once, what a dead child left in one of its pipes, and says whether the pipe is at its end.
 *
 * By the `exit` event the kernel has closed the child's ends of its pipes (it closes a process's files before
 * it signals its parent), so whatever the child wrote is in them or already read. Waiting for the end of a pipe
 * would wait for every descendant that holds it, perhaps for ever; so the stream's own buffer is handed over
 * first, then the kernel's, read from the descriptor until it is empty (`EAGAIN`: libuv keeps its descriptors
 * non-blocking, as it reads them until `EAGAIN` itself) or at its end (0: no writer left). What a descendant
 * writes later comes through the stream's `data` events as before. This runs synchronously between two of
 * libuv's reads: nothing is read twice nor out of order.
 */
const drainAtExit = (stream: Readable, deliver: (chunk: Buffer) => void): boolean => {
  // A `data` listener is attached: each chunk `read` returns is emitted to it, in order.
  while (stream.readableLength > 0 && stream.read() !== null) {
    // delivered by the listener
  }
  const fd = (stream as Readable & { readonly _handle?: { readonly fd?: unknown } | null })._handle?.fd
  // No descriptor: the stream is closed (its end was delivered), or the platform does not expose it.
  if (typeof fd !== "number" || fd < 0) return stream.destroyed
  for (let i = 0; i < MAX_READS_AT_EXIT; i++) {
    let bytes: number
    try {
      bytes = Fs.readSync(fd, scratch, 0, scratch.length, null)
    } catch {
      // EAGAIN: empty, and a descendant holds it open. Any other error is the stream's to report.
      return false
    }
    if (bytes === 0) return true
    deliver(Buffer.from(scratch.subarray(0, bytes)))
  }
  return false
}

/** A child's pipes, as its owner sees them. */
interface Stdio {
  readonly stdin: Writable
  readonly stdout: Readable
  readonly stderr: Readable
}

/** The `readable` listener that holds a child's output in its streams until its owner attaches. */
const hold = () => {}

/**
 * Spawns a child in its own process group (`detached`, so `-pid` reaches its descendants). Succeeds on Node's
 * `spawn` event; fails with the error Node gives, whether `spawn` throws (E2BIG, bad arguments) or emits it
 * (ENOENT, EACCES). Releasing the scope of a child that is still running SIGKILLs its group and waits for the
 * exit, {@link KILL_BOUND_MILLIS} at most (then it is left behind: `leaveBehind`); the owner's graceful shutdown
 * runs before that.
 *
 * @internal
 */
export const spawn = (options: SpawnOptions): Effect.Effect<Child, SpawnError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<
      readonly [Child, Promise<void>, Stdio, () => boolean],
      SpawnError
    >((resume) => {
      // Called once, then dropped: the listeners below live as long as the child, and one that held `resume` held
      // the spawning fiber (ended long since) and all it refers to for the agent's whole life.
      let settle: typeof resume | undefined = resume
      const settleWith = (effect: Parameters<typeof resume>[0]) => {
        const done = settle
        settle = undefined
        done?.(effect)
      }
      let handle: ForkServer.ProcessHandle
      try {
        const how = {
          env: options.env,
          ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
          ...(options.uid !== undefined ? { uid: options.uid } : {}),
          ...(options.gid !== undefined ? { gid: options.gid } : {})
        }
        handle = options.forkServer !== undefined
          ? options.forkServer.spawn(options.command, options.args, how)
          : ChildProcess.spawn(options.command, options.args as Array<string>, {
            stdio: ["pipe", "pipe", "pipe"],
            ...how,
            detached: true
          })
      } catch (error) {
        return settleWith(Effect.fail({ _tag: "SpawnError", error: error as Error }))
      }
      const spawnedAt = performance.now()
      let spawned = false
      let exit: ChildExit | undefined
      let stdinFailed = false
      let stdoutEnded = false
      let stderrEnded = false
      let leftBehind = false
      let pipesReported = false
      let listeners: ChildListeners | undefined
      let resolveExit: () => void = () => {}
      const exitPromise = new Promise<void>((resolve) => {
        resolveExit = resolve
      })
      // A pipe ends when its stream closes, or when the read at the exit finds its end first.
      const pipeEnded = (stream: "stdout" | "stderr") => {
        if (stream === "stdout") stdoutEnded = true
        else stderrEnded = true
        if (stdoutEnded && stderrEnded && !pipesReported && listeners !== undefined) {
          pipesReported = true
          listeners.onPipesClosed()
        }
      }
      const deliverExit = (attached: ChildListeners, childExit: ChildExit) => {
        if (!stdoutEnded && drainAtExit(io!.stdout, attached.onStdout)) pipeEnded("stdout")
        if (!stderrEnded && drainAtExit(io!.stderr, attached.onStderr)) pipeEnded("stderr")
        attached.onExit(childExit)
      }
      // The handle's listener first: on EMFILE/ENFILE Node emits `error` without having made the stdio streams.
      handle.on("error", (error) => {
        if (!spawned) {
          // Never started: nothing to wait for; free the pipes Node opened, if it opened any.
          handle.stdin?.destroy()
          handle.stdout?.destroy()
          handle.stderr?.destroy()
          settleWith(Effect.fail({ _tag: "SpawnError", error }))
        }
        // After the spawn, `error` means a kill failed: the child is gone or not ours; its exit is reported.
      })
      // The streams, from the spawn on (a fork server's child has them by its `spawn` event).
      let io: Stdio | undefined
      const watch = (): Stdio | undefined => {
        const { stderr, stdin, stdout } = handle
        // (none at all when the spawn failed for want of descriptors: Node emits `error` without making them)
        if (io !== undefined || !stdin || !stdout || !stderr) return io
        io = { stdin, stdout, stderr }
        // Each stream keeps an error listener for the child's whole life: an error of a pipe is never unhandled.
        stdin.on("error", (error) => {
          stdinFailed = true
          listeners?.onStdinError(error)
        })
        stdout.on("error", () => {})
        stderr.on("error", () => {})
        // Until the owner attaches, the output stays in the streams: Node resumes the unread pipes of a child that
        // exited, throwing away what it wrote before dying, unless a `readable` listener is attached (`resume` has
        // no effect then).
        stdout.on("readable", hold)
        stderr.on("readable", hold)
        return io
      }
      watch()
      handle.once("exit", (code, signal) => {
        if (spawned && running.delete(handle.pid!) && running.size === 0) setGuard(false)
        exit = { exitCode: code, signal }
        resolveExit()
        if (listeners !== undefined) deliverExit(listeners, exit)
      })
      handle.once("spawn", () => {
        const stdio = watch()
        if (stdio === undefined) {
          return settleWith(
            Effect.fail({ _tag: "SpawnError", error: new Error("the child was spawned without pipes") })
          )
        }
        const { stderr, stdin, stdout } = stdio
        spawned = true
        // (before its exit: Node reports a child's `spawn` before its `exit`)
        if (exit === undefined) {
          running.add(handle.pid!)
          setGuard(true)
        }
        const child: Child = {
          pid: handle.pid!,
          spawnedAt,
          write: (data) => {
            if (stdinFailed || !stdin.writable) return true
            return stdin.write(data)
          },
          onDrain: (callback) => {
            if (stdinFailed || !stdin.writable || !stdin.writableNeedDrain) return callback()
            const done = () => {
              stdin.off("drain", done)
              stdin.off("close", done)
              callback()
            }
            stdin.on("drain", done)
            stdin.on("close", done)
          },
          end: () => {
            if (!stdinFailed && stdin.writable) stdin.end()
          },
          stdinClosed: () => stdinFailed || !stdin.writable,
          exited: () => exit,
          attached: () => listeners !== undefined,
          leaveBehind: () => {
            if (leftBehind || exit !== undefined) return
            leftBehind = true
            options.onLeftBehind?.()
            // Nothing waits for it any more: its handle must not keep the host's event loop alive.
            handle.unref()
            stdin.destroy()
            stdout.destroy()
            stderr.destroy()
          },
          attach: (attached) => {
            if (listeners !== undefined) return
            listeners = attached
            stdout.off("readable", hold)
            stderr.off("readable", hold)
            stdout.on("data", (chunk: Buffer) => attached.onStdout(chunk))
            stderr.on("data", (chunk: Buffer) => attached.onStderr(chunk))
            stdout.once("close", () => pipeEnded("stdout"))
            stderr.once("close", () => pipeEnded("stderr"))
            if (exit !== undefined) deliverExit(attached, exit)
          }
        }
        settleWith(Effect.succeed([child, exitPromise, stdio, () => leftBehind] as const))
      })
    }),
    ([child, exitPromise, stdio, leftBehind]) =>
      Effect.async<void>((resume) => {
        // A leader that exited before its owner attached was never swept: its descendants may still run.
        if (!child.attached()) {
          killGroup(child.pid, "SIGKILL")
          // Nobody will read them: their output is held (see `hold`), and they would stay open with it.
          stdio.stdout.destroy()
          stdio.stderr.destroy()
        }
        if (child.exited() !== undefined) return resume(Effect.void)
        killGroup(child.pid, "SIGKILL")
        // (one left behind by its owner's stop was waited for already)
        if (leftBehind()) return resume(Effect.void)
        const bound = setTimeout(() => {
          child.leaveBehind()
          resume(Effect.void)
        }, KILL_BOUND_MILLIS)
        void exitPromise.then(() => {
          clearTimeout(bound)
          resume(Effect.void)
        })
      })
  ).pipe(Effect.map(([child]) => child))

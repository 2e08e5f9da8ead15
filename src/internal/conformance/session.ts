/**
 * One run of the agent under test, over raw pipes: what the kit sends, every byte the agent writes (stdout split
 * into lines on the newline byte and decoded whole, so a multi-byte character split across reads survives), its
 * exit, each with the time since the spawn. A check reads this record and waits on it; nothing is interpreted on
 * the way, so what a check judges is what the agent did.
 *
 * The agent runs in a process group of its own (`detached`), as the supervisor runs it; closing the session's
 * scope sends SIGKILL to the whole group and waits (bounded) for the exit, so nothing is left behind, the children
 * a `spawn` started included.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import { performance } from "node:perf_hooks"
import * as Message from "../../Protocol/Message.js"
import type { Settings } from "./options.js"

/** The longest stdout line kept; the rest of a longer one is dropped, and the line marked `truncated`. */
const MAX_LINE_BYTES = 32 * 1024 * 1024
/** How much stderr text is kept, and how many of its lines go to the transcript. */
const MAX_STDERR_CHARS = 1024 * 1024
const MAX_STDERR_ENTRIES = 500
/** How long closing the session waits for the exit after SIGKILL (a process in uninterruptible I/O). */
const KILL_WAIT_MS = 5_000

/** One line the agent wrote to stdout. */
export interface Line {
  /** Milliseconds since the spawn. */
  readonly at: number
  readonly text: string
  /** Its length in bytes, without the newline. */
  readonly bytes: number
  /** The protocol message it is, or `undefined` when it is not one (not JSON, or not a message's shape). */
  readonly message: Message.Incoming | undefined
  /** It ended without a newline (the pipe closed), or was longer than the kit keeps. */
  readonly unterminated: boolean
  readonly truncated: boolean
}

/**
 * How long a summary waits for the exit of an agent whose stdout has ended (see `Session.ended`), in milliseconds.
 *
 * @internal
 */
export const EXIT_AFTER_STDOUT_MILLIS = 1000

/** How the agent ended. */
export interface ExitInfo {
  readonly at: number
  readonly code: number | null
  readonly signal: string | null
}

/** One event of a session, in the order the kit saw them. */
export type Entry =
  | { readonly _tag: "Sent"; readonly at: number; readonly text: string }
  | { readonly _tag: "Stdout"; readonly at: number; readonly line: Line }
  | { readonly _tag: "Stderr"; readonly at: number; readonly text: string }
  | { readonly _tag: "Exit"; readonly at: number; readonly exit: ExitInfo }
  | { readonly _tag: "Note"; readonly at: number; readonly text: string }

/** A running agent and everything it did so far. */
export interface Session {
  readonly pid: number
  readonly commandLine: string
  /** Milliseconds since the spawn. */
  readonly now: () => number
  /** Writes one line (the newline included), or several in one write, to the agent's stdin. */
  readonly send: (line: string) => void
  /** Ends the agent's stdin (its EOF). */
  readonly closeStdin: () => void
  /** Adds a line of the kit's own to the transcript. */
  readonly note: (text: string) => void
  readonly lines: () => ReadonlyArray<Line>
  readonly entries: () => ReadonlyArray<Entry>
  readonly stderr: () => string
  readonly exit: () => ExitInfo | undefined
  /**
   * The exit, for the summary of a wait that ended without what it waited for: `undefined` at once while stdout is
   * open (time ran out); once stdout has ended, the exit waited for up to {@link EXIT_AFTER_STDOUT_MILLIS} (Node may
   * report the end of an exiting agent's stdout before its exit: without the wait, a summary said time ran out).
   */
  readonly ended: Effect.Effect<ExitInfo | undefined>
  /** The first line `pick` accepts, seen already or to come; none once `within` ms pass or stdout has ended. */
  readonly waitLine: <A>(pick: (line: Line) => A | undefined, within: number) => Effect.Effect<Option.Option<A>>
  /** Waits until `done` holds (checked at each event); false once `within` ms pass or stdout has ended first. */
  readonly waitUntil: (done: () => boolean, within: number) => Effect.Effect<boolean>
  /** The exit, waited for `within` ms at most. */
  readonly waitExit: (within: number) => Effect.Effect<Option.Option<ExitInfo>>
  /** Waits until the agent has exited and both of its pipes are at their end (what it wrote is all read). */
  readonly waitClosed: (within: number) => Effect.Effect<boolean>
}

const parse = (text: string): Message.Incoming | undefined => {
  try {
    return Message.decodeIncoming(JSON.parse(text))
  } catch {
    return undefined
  }
}

/** The command line as a person would type it, for the transcript. */
export const showCommand = (command: string, args: ReadonlyArray<string>): string =>
  [command, ...args].map((part) => /^[\w@%+=:,./-]+$/.test(part) ? part : JSON.stringify(part)).join(" ")

/** Kills a process group; one already gone is not an error. */
const killGroup = (pid: number): void => {
  try {
    process.kill(-pid, "SIGKILL")
  } catch {
    // ESRCH: the group is gone already.
  }
}

/** Wires a spawned child's events into a session record. */
const record = (child: ChildProcess.ChildProcessWithoutNullStreams, commandLine: string, started: number) => {
  const now = () => Math.round(performance.now() - started)
  const entries: Array<Entry> = []
  const lines: Array<Line> = []
  const listeners = new Set<() => void>()
  let stderrText = ""
  let stderrEntries = 0
  let stderrPartial = ""
  let exit: ExitInfo | undefined
  let stdoutEnded = false
  let closed = false
  const changed = () => {
    for (const listener of [...listeners]) listener()
  }

  let pending: Array<Buffer> = []
  let pendingBytes = 0
  let truncated = false
  const pushLine = (bytes: Buffer, unterminated: boolean) => {
    const text = bytes.toString("utf8")
    const line: Line = {
      at: now(),
      text,
      bytes: bytes.length,
      message: truncated ? undefined : parse(text),
      unterminated,
      truncated
    }
    truncated = false
    lines.push(line)
    entries.push({ _tag: "Stdout", at: line.at, line })
  }
  child.stdout.on("data", (chunk: Buffer) => {
    let start = 0
    let newline = chunk.indexOf(10)
    while (newline !== -1) {
      const piece = chunk.subarray(start, newline)
      pushLine(pending.length === 0 ? piece : Buffer.concat([...pending, piece]), false)
      pending = []
      pendingBytes = 0
      start = newline + 1
      newline = chunk.indexOf(10, start)
    }
    if (start < chunk.length) {
      if (pendingBytes + chunk.length - start > MAX_LINE_BYTES) truncated = true
      else {
        pending.push(chunk.subarray(start))
        pendingBytes += chunk.length - start
      }
    }
    changed()
  })
  child.stdout.on("end", () => {
    if (pendingBytes > 0 || truncated) pushLine(Buffer.concat(pending), true)
    pending = []
    stdoutEnded = true
    changed()
  })
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    if (stderrText.length < MAX_STDERR_CHARS) stderrText += chunk.slice(0, MAX_STDERR_CHARS - stderrText.length)
    const parts = (stderrPartial + chunk).split("\n")
    stderrPartial = parts.pop() ?? ""
    for (const text of parts) {
      if (stderrEntries++ < MAX_STDERR_ENTRIES) entries.push({ _tag: "Stderr", at: now(), text })
    }
    changed()
  })
  child.stderr.on("end", () => {
    if (stderrPartial !== "" && stderrEntries++ < MAX_STDERR_ENTRIES) {
      entries.push({ _tag: "Stderr", at: now(), text: stderrPartial })
    }
  })
  // Every stream keeps an error listener for the child's whole life: an EPIPE is evidence, never a crash.
  child.stdin.on("error", (error) => entries.push({ _tag: "Note", at: now(), text: `stdin: ${error.message}` }))
  child.stdout.on("error", () => {})
  child.stderr.on("error", () => {})
  child.on("exit", (code, signal) => {
    exit = { at: now(), code, signal }
    entries.push({ _tag: "Exit", at: exit.at, exit })
    changed()
  })
  child.on("close", () => {
    closed = true
    stdoutEnded = true
    changed()
  })

  const waitUntil = <A>(probe: () => Option.Option<A> | undefined, within: number): Effect.Effect<Option.Option<A>> =>
    Effect.suspend(() => {
      const first = probe()
      if (first !== undefined) return Effect.succeed(first)
      return Effect.async<Option.Option<A>>((resume) => {
        const listener = () => {
          const result = probe()
          if (result === undefined) return
          listeners.delete(listener)
          resume(Effect.succeed(result))
        }
        listeners.add(listener)
        return Effect.sync(() => listeners.delete(listener))
      }).pipe(Effect.timeoutTo({
        duration: Duration.millis(Math.max(0, within)),
        onTimeout: () => Option.none<A>(),
        onSuccess: (result) => result
      }))
    })

  const waitExit = (within: number): Effect.Effect<Option.Option<ExitInfo>> =>
    waitUntil(() => exit === undefined ? undefined : Option.some(exit), within)

  const session: Session = {
    pid: child.pid!,
    commandLine,
    now,
    send: (line) => {
      for (const text of (line.endsWith("\n") ? line.slice(0, -1) : line).split("\n")) {
        entries.push({ _tag: "Sent", at: now(), text })
      }
      if (child.stdin.writable) child.stdin.write(line)
      else entries.push({ _tag: "Note", at: now(), text: "stdin is closed: the line was not written" })
    },
    closeStdin: () => {
      entries.push({ _tag: "Note", at: now(), text: "stdin closed (EOF)" })
      if (child.stdin.writable) child.stdin.end()
    },
    note: (text) => entries.push({ _tag: "Note", at: now(), text }),
    lines: () => lines,
    entries: () => entries,
    stderr: () => stderrText,
    exit: () => exit,
    ended: Effect.suspend(() =>
      exit !== undefined || !stdoutEnded
        ? Effect.succeed(exit)
        : Effect.map(waitExit(EXIT_AFTER_STDOUT_MILLIS), Option.getOrUndefined)
    ),
    waitLine: (pick, within) =>
      waitUntil(() => {
        for (const line of lines) {
          const value = pick(line)
          if (value !== undefined) return Option.some(value)
        }
        return stdoutEnded ? Option.none() : undefined
      }, within),
    waitUntil: (done, within) =>
      Effect.map(
        waitUntil(() => done() ? Option.some(true) : stdoutEnded ? Option.none() : undefined, within),
        Option.isSome
      ),
    waitExit,
    waitClosed: (within) => Effect.map(waitUntil(() => closed ? Option.some(true) : undefined, within), Option.isSome)
  }
  return session
}

/**
 * Spawns the agent in a process group of its own. Succeeds with the session, or with the reason it could not be
 * spawned (ENOENT, EACCES...) as text: that is a finding about the agent, not an error of the kit.
 */
export const open = (settings: Settings): Effect.Effect<Session | string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<readonly [ChildProcess.ChildProcessWithoutNullStreams | undefined, Session | string]>((resume) => {
      const commandLine = showCommand(settings.command, settings.args)
      let child: ChildProcess.ChildProcessWithoutNullStreams
      const started = performance.now()
      try {
        child = ChildProcess.spawn(settings.command, settings.args as Array<string>, {
          stdio: ["pipe", "pipe", "pipe"],
          env: { ...process.env, PYTHONUNBUFFERED: "1", ...settings.env },
          ...(settings.cwd !== undefined ? { cwd: settings.cwd } : {}),
          detached: true
        })
      } catch (error) {
        return resume(Effect.succeed([undefined, `could not spawn ${commandLine}: ${(error as Error).message}`]))
      }
      // `on`, not `once`: after the spawn an `error` (a failed kill) must still find a listener.
      child.on("error", (error) => {
        if (child.pid === undefined) {
          resume(Effect.succeed([undefined, `could not spawn ${commandLine}: ${error.message}`]))
        }
      })
      child.once("spawn", () => resume(Effect.succeed([child, record(child, commandLine, started)])))
    }),
    ([child, session]) => {
      if (child === undefined || typeof session === "string") return Effect.void
      return Effect.gen(function*() {
        if (session.exit() === undefined) session.note("the kit ends the session: SIGKILL to the process group")
        // Also after a clean exit: a child that `spawn` started may still hold the group.
        killGroup(session.pid)
        yield* Effect.interruptible(session.waitExit(KILL_WAIT_MS))
        child.stdin.destroy()
        child.stdout.destroy()
        child.stderr.destroy()
      })
    }
  ).pipe(Effect.map(([, session]) => session))

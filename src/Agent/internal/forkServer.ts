/**
 * A small process that spawns agents for this one (`forkServerMain.ts`), as OTP's `erl_child_setup` spawns the
 * ports of the Erlang VM and Python's `multiprocessing` forkserver its workers.
 *
 * Node's `spawn` forks the calling process: the kernel copies its page tables, and every page it writes afterwards
 * takes a copy-on-write fault. Its cost grows with the caller's memory (about 7 µs per MB of RSS measured here: a
 * supervisor of 1,000 agents holds 250-360 MB), and it is paid on the supervisor's one event loop. The server is a
 * process of about 40 MB that only spawns: its forks are cheap, on another core, and this process receives the
 * child's pipes over the IPC channel (Node's handle passing; a child's stdio are Unix socket pairs) and hears its
 * exit as a message.
 *
 * The handle returned by `spawn` has what `child.ts` uses of a `ChildProcess`: `pid`, the three streams (set
 * before `spawn` is emitted), the `spawn`, `error` and `exit` events, and `unref`. Signals go straight to the
 * agent's process group from this process (`process.kill(-pid)`), as for a child of its own. While any agent
 * spawned through it has not exited, the channel keeps this process's event loop alive, as a child does.
 *
 * If the server's process ends while agents run (killed by hand, or by the OOM killer), their exits can no longer
 * be heard: once its channel has closed (every message it sent read), each one's process group is sent SIGKILL and
 * its exit reported as by SIGKILL, so that its supervisor restarts it as after any crash, through a new server; a
 * spawn not yet answered fails (and the child it had forked, once its pid has come with its first pipe, is killed
 * in its group: nobody else knows it). A server that answers nothing for 30 s while spawns wait (stopped, hung) is
 * killed so (`watch`).
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ChildProcess from "node:child_process"
import { EventEmitter } from "node:events"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import type { Readable, Writable } from "node:stream"
import { fileURLToPath } from "node:url"
import { killGroup } from "./child.js"

/** What `child.ts` uses of a spawned process: a `ChildProcess`, or a child of the fork server. @internal */
export interface ProcessHandle {
  readonly pid?: number | undefined
  readonly stdin: Writable | null | undefined
  readonly stdout: Readable | null | undefined
  readonly stderr: Readable | null | undefined
  on(event: "error", listener: (error: Error) => void): this
  once(event: "exit", listener: (code: number | null, signal: NodeJS.Signals | null) => void): this
  once(event: "spawn", listener: () => void): this
  unref(): void
}

/** How to spawn: as `ChildProcess.spawn`'s options, the whole environment given. @internal */
export interface SpawnOptions {
  readonly env: Record<string, string | undefined>
  readonly cwd?: string | undefined
  readonly uid?: number | undefined
  readonly gid?: number | undefined
}

/** @internal */
export interface ForkServer {
  /** Spawns `command` in its own process group (`detached`), with three pipes, in the server's process. */
  readonly spawn: (command: string, args: ReadonlyArray<string>, options: SpawnOptions) => ProcessHandle
  /** The server's pid, or `undefined` while none runs (it starts at the first spawn, and again after it ended). */
  readonly pid: () => number | undefined
  /**
   * Retires the server: its process is told to exit (its channel closes) once no agent spawned through it runs, at
   * once if none does. A later spawn keeps it (or starts a new one): nothing that outlives the owner's scope fails.
   */
  readonly close: () => void
}

/**
 * The server's script: beside this module as built; from the sources (run by tsx), the built one, as
 * `Adapters.node` is.
 */
const mainScript = (): string => {
  const beside = fileURLToPath(new URL("./forkServerMain.js", import.meta.url))
  return Fs.existsSync(beside)
    ? beside
    : fileURLToPath(new URL("../../../dist/Agent/internal/forkServerMain.js", import.meta.url))
}

/** A pipe's libuv handle as Node hands it over (`net.Native`: a `Pipe`). */
interface PipeHandle {
  readonly close: () => void
}

/**
 * At a child's exit its stdin is destroyed, as Node does for a child of its own: nothing else would ever close it
 * (only a write could find the other end gone), and it would hold its descriptor and what listens to it for ever.
 */
const exited = (child: Forked) => {
  child.stdin?.destroy()
}

/** A child of the server, seen from here. */
class Forked extends EventEmitter implements ProcessHandle {
  /** Set once the server says it spawned (`spawned`): from then on an end is an exit. */
  pid: number | undefined = undefined
  /** The pid the server forked, known from its first pipe on (before `spawned`). */
  forked: number | undefined = undefined
  stdin: Net.Socket | null = null
  stdout: Net.Socket | null = null
  stderr: Net.Socket | null = null
  /** Counted among what keeps the channel (and so this process's event loop) alive. */
  counted = true
  /** When its spawn was asked (`performance.now()`): see `watch`. */
  readonly askedAt = performance.now()
  constructor(readonly server: ChildProcess.ChildProcess, private readonly uncount: (child: Forked) => void) {
    super()
  }
  unref(): void {
    this.uncount(this)
  }
}

/** A spawn that failed: what it received is closed, and its `error` is emitted. */
const failed = (child: Forked, error: Error) => {
  for (const stream of [child.stdin, child.stdout, child.stderr]) stream?.destroy()
  child.emit("error", error)
}

interface Reply {
  readonly t: "stdio" | "spawned" | "exit" | "error"
  readonly id: number
  readonly fd?: number
  readonly pid?: number
  readonly code?: number | null
  readonly signal?: NodeJS.Signals | null
  readonly error?: {
    readonly message: string
    readonly code?: string
    readonly errno?: number
    readonly syscall?: string
    readonly path?: string
  }
}

const errorOf = (facts: NonNullable<Reply["error"]>): Error =>
  Object.assign(new Error(facts.message), {
    ...(facts.code !== undefined ? { code: facts.code } : {}),
    ...(facts.errno !== undefined ? { errno: facts.errno } : {}),
    ...(facts.syscall !== undefined ? { syscall: facts.syscall } : {}),
    ...(facts.path !== undefined ? { path: facts.path } : {})
  })

/** The environment of the server's own process: no `NODE_OPTIONS` (a loader or a debugger is the host's). */
const serverEnv = (): Record<string, string | undefined> => {
  const { NODE_OPTIONS: _, ...env } = process.env
  return env
}

/**
 * How long spawns may wait while the server answers nothing before it is taken for hung (see `watch`): 30 s, far
 * beyond a spawn's milliseconds even with thousands asked at once (the server answers each in turn).
 */
const REPLY_TIMEOUT_MILLIS = 30_000

/** The `cwd` of a spawn request: absolute, resolved here; none when this process has no working directory. */
const cwdOf = (cwd: string | undefined): { readonly cwd?: string } => {
  try {
    return { cwd: Path.resolve(cwd ?? ".") }
  } catch {
    // This process's directory was removed: the server's own is used, or the spawn fails there (a relative `cwd`).
    return cwd === undefined ? {} : { cwd }
  }
}

/** A fork server; its process starts at the first spawn. @internal */
export const make = (
  options: {
    readonly replyTimeoutMillis?: number | undefined
    /** The server's script (tests: a server that fails in a given way); by default `forkServerMain.js`. */
    readonly script?: string | undefined
  } = {}
): ForkServer => {
  const replyTimeoutMillis = options.replyTimeoutMillis ?? REPLY_TIMEOUT_MILLIS
  let server: ChildProcess.ChildProcess | undefined
  // The owner's scope has closed: the server ends whenever no agent of it runs (a later spawn starts another).
  let closed = false
  let lastId = 0
  // When the server last answered: see `watch`.
  let heardAt = 0
  let watchdog: ReturnType<typeof setInterval> | undefined
  const children = new Map<number, Forked>()
  let counted = 0

  const refresh = () => {
    const channel = server?.channel
    if (channel === undefined || channel === null) return
    if (counted > 0) channel.ref()
    else channel.unref()
  }
  const uncount = (child: Forked) => {
    if (!child.counted) return
    child.counted = false
    counted--
    refresh()
  }
  const forget = (id: number, child: Forked) => {
    children.delete(id)
    uncount(child)
    if (closed) retire()
  }
  /** Ends the server's process now if no agent of it runs (its `exit` then finds no child to report). */
  const retire = () => {
    if (children.size > 0 || server === undefined) return
    const current = server
    server = undefined
    if (current.connected) current.disconnect()
  }

  const onReply = (reply: Reply, handle: PipeHandle | undefined) => {
    heardAt = performance.now()
    const child = children.get(reply.id)
    if (child === undefined) return void handle?.close()
    switch (reply.t) {
      case "stdio": {
        child.forked ??= reply.pid
        if (handle === undefined) return
        // As Node makes a child's own: stdin written, stdout and stderr read.
        const socket = new Net.Socket(
          { handle, readable: reply.fd !== 0, writable: reply.fd === 0 } as Net.SocketConstructorOpts
        )
        if (reply.fd === 0) child.stdin = socket
        else if (reply.fd === 1) child.stdout = socket
        else child.stderr = socket
        // (child.ts listens from the `spawn` on: an error before then is not unhandled)
        socket.on("error", () => {})
        return
      }
      case "spawned":
        child.pid = reply.pid
        if (child.stdin === null || child.stdout === null || child.stderr === null) return pipesLost(reply.id, child)
        child.emit("spawn")
        return
      case "exit":
        forget(reply.id, child)
        exited(child)
        child.emit("exit", reply.code ?? null, reply.signal ?? null)
        return
      case "error":
        forget(reply.id, child)
        failed(child, errorOf(reply.error ?? { message: "spawn failed in the fork server" }))
    }
  }

  /**
   * The agent was spawned, but a pipe of it did not arrive (Node drops a handle it could not receive: most likely no
   * descriptor was left in this process): it is killed, and its spawn fails.
   */
  const pipesLost = (id: number, child: Forked) => {
    forget(id, child)
    killGroup(child.pid!, "SIGKILL")
    failed(child, errorOf({ message: "spawn: the agent's pipes did not reach this process (EMFILE?)", code: "EMFILE" }))
  }

  /** The server's process ended: its children can no longer be heard (see the module's docs). */
  const lost = (process_: ChildProcess.ChildProcess, why: string) => {
    if (server === process_) server = undefined
    for (const [id, child] of children) {
      if (child.server !== process_) continue
      forget(id, child)
      // Announced, or forked with its pipes on their way: nobody else would ever stop it.
      const pid = child.pid ?? child.forked
      if (pid !== undefined) killGroup(pid, "SIGKILL")
      if (child.pid === undefined) {
        failed(child, errorOf({ message: `the fork server ${why} before the agent was spawned`, code: "ESRCH" }))
      } else {
        exited(child)
        child.emit("exit", null, "SIGKILL")
      }
    }
  }

  /**
   * While spawns wait for their answer, a server that has answered nothing for `replyTimeoutMillis` (stopped by
   * SIGSTOP or a debugger, or hung) is killed: its end fails them and reports its agents (`lost`), and the next
   * spawn starts a new server. A spawn from this process cannot hang; one through the server must not either.
   */
  const watch = () => {
    if (watchdog !== undefined) return
    watchdog = setInterval(() => {
      // The spawns asked and not answered yet (no pid, no error), and when the oldest was asked.
      let oldest = Infinity
      for (const child of children.values()) if (child.pid === undefined) oldest = Math.min(oldest, child.askedAt)
      if (oldest === Infinity) {
        clearInterval(watchdog)
        watchdog = undefined
        return
      }
      // Silent since the last answer, or since the oldest spawn waiting was asked if that came after it.
      if (performance.now() - Math.max(heardAt, oldest) < replyTimeoutMillis || server === undefined) return
      try {
        server.kill("SIGKILL")
      } catch {
        // gone already: its `disconnect` reports it
      }
    }, Math.min(1000, replyTimeoutMillis / 2))
    watchdog.unref()
  }

  const start = (): ChildProcess.ChildProcess => {
    const started = ChildProcess.spawn(process.execPath, [options.script ?? mainScript()], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      env: serverEnv(),
      serialization: "json",
      // A process group of its own, as each agent has: what signals this process's group does not reach it.
      detached: true
    })
    started.on("message", (reply: Reply, handle: PipeHandle | undefined) => onReply(reply, handle))
    started.on("error", (error) => lost(started, `could not run (${error.message})`))
    // Its end is handled once its channel is closed, not at its `exit`, which Node may report before the last
    // messages it sent have been read (a spawn answered, an exit's code).
    started.once("disconnect", () => {
      const how = started.signalCode ?? (started.exitCode === null ? undefined : `code ${started.exitCode}`)
      lost(started, how === undefined ? "ended" : `exited (${how})`)
    })
    // Its process never keeps this one alive; its channel does while an agent of it runs (`refresh`).
    started.unref()
    return started
  }

  return {
    spawn: (command, args, options) => {
      // Made before anything is registered (a throw here leaves nothing behind). A relative `cwd` is this
      // process's, now, as for a child of its own; none given, this process's working directory (if it has one).
      const request = {
        t: "spawn",
        id: ++lastId,
        command,
        args,
        env: options.env,
        ...cwdOf(options.cwd),
        ...(options.uid !== undefined ? { uid: options.uid } : {}),
        ...(options.gid !== undefined ? { gid: options.gid } : {})
      }
      if (server === undefined || !server.connected) server = start()
      const current = server
      const id = request.id
      const child = new Forked(current, uncount)
      children.set(id, child)
      counted++
      refresh()
      watch()
      current.send(request, (error) => {
        // Not asked (its channel closed: its `disconnect` reports the rest): this spawn fails.
        if (error === null || error === undefined || children.get(id) !== child) return
        forget(id, child)
        failed(child, errorOf({ message: `the fork server could not be asked: ${error.message}`, code: "ESRCH" }))
      })
      return child
    },
    pid: () => server?.pid,
    close: () => {
      closed = true
      retire()
    }
  }
}

/** The fork server that agents started in this context are spawned through. @internal */
export class Tag extends Context.Tag("effect-agent-supervisor/ForkServer")<Tag, ForkServer>() {}

/**
 * A fork server for the layer's scope: its process starts at the first spawn, and is retired when the scope closes
 * (it ends once no agent of it runs). @internal
 */
export const layer: Layer.Layer<Tag> = Layer.scoped(
  Tag,
  Effect.acquireRelease(Effect.sync(make), (forkServer) => Effect.sync(forkServer.close))
)

/** `AGENT_SUPERVISOR_FORK_SERVER=1`'s server, made at its first use and kept for the life of this process. */
let shared: ForkServer | undefined

/**
 * The fork server an agent with none in its context uses: one for the whole process when the environment variable
 * `AGENT_SUPERVISOR_FORK_SERVER` is `1` (read at each start), else none. @internal
 */
export const fromEnvironment = (): ForkServer | undefined =>
  process.env.AGENT_SUPERVISOR_FORK_SERVER === "1" ? (shared ??= make()) : undefined

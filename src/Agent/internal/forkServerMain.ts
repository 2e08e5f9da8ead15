/**
 * The fork server's own process (`forkServer.ts` starts it): spawns agents for the process that started it and
 * hands it their pipes, as OTP's `erl_child_setup` spawns the ports of the Erlang VM.
 *
 * Over its IPC channel (JSON), it is asked `{ t: "spawn", id, command, args, env, cwd, uid?, gid? }` and answers,
 * in order: the child's stdin, stdout and stderr (`{ t: "stdio", id, fd, pid }`, each with its pipe's handle: this
 * side's copy is closed once it is sent; the pid, so that an owner whose server died before the next message can
 * still kill the child), then `{ t: "spawned", id, pid }`, and at the child's
 * end `{ t: "exit", id, code, signal }`; or `{ t: "error", id, error }` when the spawn failed. Nothing is read from
 * the pipes here: stdout and stderr stop reading at once, so that the first line the agent writes reaches its
 * owner.
 *
 * It ignores the signals that end a process (a Ctrl-C reaches the terminal's whole process group, and its owner's
 * graceful stop of its agents needs their exits reported), and it exits when its owner is gone (its channel
 * closes), leaving the agents still running to their stdin's end, as they would be left without it.
 *
 * @internal
 */
import * as ChildProcess from "node:child_process"
import type * as Net from "node:net"
import { ENDING_SIGNALS } from "../../internal/standalone/endingSignals.js"
import { messageOf } from "../../internal/standalone/messageOf.js"

interface SpawnRequest {
  readonly t: "spawn"
  readonly id: number
  readonly command: string
  readonly args: Array<string>
  readonly env: Record<string, string>
  readonly cwd: string
  readonly uid?: number
  readonly gid?: number
}

for (const signal of ENDING_SIGNALS) process.on(signal, () => {})
process.on("disconnect", () => process.exit(0))

/** A stream's libuv handle (Node's `Pipe`), while the stream has one. */
interface PipeHandle {
  readonly readStop?: () => number
  readonly close: () => void
}

const handleOf = (stream: unknown): PipeHandle | undefined =>
  (stream as { _handle?: PipeHandle | null })._handle ?? undefined

/** Sends `message` to the owner, with `handle` (closed here once sent: the owner has its own descriptor then). */
const send = (message: object, handle?: PipeHandle): void => {
  // The owner is gone: nothing to tell (the `disconnect` listener ends this process).
  if (!process.connected) return void handle?.close()
  process.send!(message, handle as unknown as Net.Socket, undefined, () => handle?.close())
}

/** What an `Error` of Node's spawn says, as JSON can carry it. */
const facts = (error: unknown) => {
  const e = error as Error & { code?: unknown; errno?: unknown; syscall?: unknown; path?: unknown }
  return {
    message: messageOf(error),
    code: typeof e?.code === "string" ? e.code : undefined,
    errno: typeof e?.errno === "number" ? e.errno : undefined,
    syscall: typeof e?.syscall === "string" ? e.syscall : undefined,
    path: typeof e?.path === "string" ? e.path : undefined
  }
}

const spawn = (request: SpawnRequest): void => {
  let child: ChildProcess.ChildProcessWithoutNullStreams
  try {
    child = ChildProcess.spawn(request.command, request.args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: request.env,
      cwd: request.cwd,
      ...(request.uid !== undefined ? { uid: request.uid } : {}),
      ...(request.gid !== undefined ? { gid: request.gid } : {}),
      detached: true
    })
  } catch (error) {
    return send({ t: "error", id: request.id, error: facts(error) })
  }
  // Nothing of the output is read here (Node starts reading a child's pipes at once).
  for (const stream of [child.stdout, child.stderr]) handleOf(stream)?.readStop?.()
  let spawned = false
  child.on("error", (error) => {
    if (!spawned) send({ t: "error", id: request.id, error: facts(error) })
  })
  for (const stream of [child.stdin, child.stdout, child.stderr]) stream.on("error", () => {})
  child.once("spawn", () => {
    spawned = true
    // The pipes' handles are taken from their streams at once and each closed once sent: a handle still in its
    // stream while it waits its turn (Node sends one at a time) would be read here, or closed by Node at the
    // child's exit (it destroys a child's stdin then).
    const streams = [child.stdin, child.stdout, child.stderr]
    for (let fd = 0; fd < streams.length; fd++) {
      const handle = handleOf(streams[fd])
      if (handle === undefined) continue
      ;(streams[fd] as unknown as { _handle: unknown })._handle = null
      streams[fd].destroy()
      // With the pid: should this process end before `spawned`, its owner still knows whom to kill.
      send({ t: "stdio", id: request.id, fd, pid: child.pid }, handle)
    }
    send({ t: "spawned", id: request.id, pid: child.pid })
  })
  child.once("exit", (code, signal) => send({ t: "exit", id: request.id, code, signal }))
}

process.on("message", (message: SpawnRequest) => {
  if (message?.t === "spawn") spawn(message)
})

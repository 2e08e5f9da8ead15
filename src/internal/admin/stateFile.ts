/**
 * The state file: `{ "url", "token", "pid" }` as JSON, for the CLI to find a running admin API; before it, while
 * `up` starts its tree, `{ "pid", "starting": true }` (`claim`), so that a second `up` of the file refuses before it
 * starts a second tree, and the CLI says the first is starting rather than that none runs. It holds the token,
 * so it is created with mode 0600 (never readable by others, not even for a moment: the mode is given to `open`,
 * not set after), written whole under a temporary name and renamed into place (a reader never sees half of it), and
 * removed when the API closes, or when the process exits without closing it (`process.exit`, as `up`'s third signal
 * does), unless another process has replaced it since.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as net from "node:net"
import { isAlive } from "../alive.js"
import { messageOf } from "../standalone/messageOf.js"
import { AdminApiError } from "./errors.js"

/** What the file holds. */
export interface Contents {
  readonly url: string
  readonly token: Redacted.Redacted<string>
  readonly pid: number
}

/** Where the admin API listens (or is to), for an `AdminApiError`. */
type Address = { readonly host: string; readonly port: number }

/** The running process that holds a state file: its pid, and its API's URL (none while it starts its tree). */
type Holder = { readonly pid: number; readonly url: string | undefined }

/** The file's text. */
export const text = (contents: Contents): string =>
  JSON.stringify({ url: contents.url, token: Redacted.value(contents.token), pid: contents.pid }, null, 2) + "\n"

const write = (path: string, body: string): void => {
  const temporary = `${path}.${process.pid}.tmp`
  // `wx`: a leftover temporary file is never reused with whatever mode it has.
  fs.rmSync(temporary, { force: true })
  const fd = fs.openSync(temporary, "wx", 0o600)
  try {
    fs.writeFileSync(fd, body)
  } finally {
    fs.closeSync(fd)
  }
  try {
    fs.renameSync(temporary, path)
  } catch (error) {
    fs.rmSync(temporary, { force: true })
    throw error
  }
}

/** Removes the file if it still holds what this process wrote (another run may have taken the path over). */
const remove = (path: string, body: string): void => {
  try {
    if (fs.readFileSync(path, "utf8") === body) fs.rmSync(path, { force: true })
  } catch {
    // Gone already, or unreadable: nothing of ours to remove.
  }
}

/** Whether something accepts a connection at `url`'s host and port, within a second. */
const answers = (url: string): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    let target: URL
    try {
      target = new URL(url)
    } catch {
      return resume(Effect.succeed(false))
    }
    const socket = net.connect({ host: target.hostname.replace(/^\[|\]$/g, ""), port: Number(target.port) })
    let settled = false
    const done = (ok: boolean) => {
      if (settled) return
      settled = true
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.setTimeout(1000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
    return Effect.sync(() => socket.destroy())
  })

/**
 * The running process that holds the state file at `path`, if one does: another process whose pid is alive and
 * whose URL accepts a connection. A file left by a process that is gone (killed with SIGKILL) holds nothing.
 *
 * @internal
 */
export const holder = (
  path: string
): Effect.Effect<Holder | undefined> =>
  Effect.suspend((): Effect.Effect<Holder | undefined> => {
    let held: { readonly pid?: unknown; readonly url?: unknown; readonly starting?: unknown } | undefined
    try {
      held = JSON.parse(fs.readFileSync(path, "utf8"))
    } catch {
      return Effect.succeed(undefined)
    }
    const { pid, starting, url } = held ?? {}
    if (typeof pid !== "number" || pid === process.pid || !isAlive(pid)) return Effect.succeed(undefined)
    // Claimed by an `up` still starting its tree: no URL to answer yet
    if (starting === true) return Effect.succeed({ pid, url: undefined })
    if (typeof url !== "string") return Effect.succeed(undefined)
    return Effect.map(answers(url), (ok) => ok ? { pid, url } : undefined)
  })

/**
 * Fails with `state_file_in_use` when the state file at `path` is another running process's (see {@link holder}):
 * two `up`s of one tree file ran two trees, and the second took the file over, then removed it when it stopped.
 *
 * @internal
 */
export const checkFree = (
  path: string,
  address: Address
): Effect.Effect<void, AdminApiError> =>
  Effect.flatMap(holder(path), (held) =>
    held === undefined ? Effect.void : Effect.fail(
      new AdminApiError({
        reason: "state_file_in_use",
        host: address.host,
        port: address.port,
        path,
        detail: held.url === undefined ? `pid ${held.pid}, still starting its tree` : `pid ${held.pid}, ${held.url}`
      })
    ))

/**
 * Claims the state file at `path` for this process before its admin API exists (`up`, while it starts its tree):
 * `{ "pid", "starting": true }`, replaced by the API's own file (`make`), removed when the scope closes if it is
 * still the claim; fails first when the file is another running process's (`checkFree`).
 */
export const claim = (
  path: string,
  address: Address
): Effect.Effect<void, AdminApiError, Scope.Scope> =>
  own(path, JSON.stringify({ pid: process.pid, starting: true }, null, 2) + "\n", address)

/**
 * Writes the state file at `path` and removes it when the scope closes, or when the process exits first (Node's
 * `exit` event: `process.exit` runs no finalizer); fails first when it is another running process's (`checkFree`).
 */
export const make = (
  path: string,
  contents: Contents,
  address: Address
): Effect.Effect<void, AdminApiError, Scope.Scope> => own(path, text(contents), address)

/** Writes `body` at `path`, and removes it (if it still holds `body`) when the scope closes or the process exits. */
const own = (
  path: string,
  body: string,
  address: Address
): Effect.Effect<void, AdminApiError, Scope.Scope> =>
  Effect.zipRight(
    checkFree(path, address),
    Effect.asVoid(Effect.acquireRelease(
      Effect.try({
        try: () => {
          write(path, body)
          const onExit = () => remove(path, body)
          process.once("exit", onExit)
          return onExit
        },
        catch: (error) =>
          new AdminApiError({
            reason: "state_file_failed",
            host: address.host,
            port: address.port,
            path,
            ...(typeof (error as NodeJS.ErrnoException)?.code === "string"
              ? { code: (error as NodeJS.ErrnoException).code }
              : {}),
            detail: messageOf(error)
          })
      }),
      (onExit) =>
        Effect.sync(() => {
          process.off("exit", onExit)
          remove(path, body)
        })
    ))
  )

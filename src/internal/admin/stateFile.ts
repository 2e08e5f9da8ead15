/**
 * The state file: `{ "url", "token", "pid" }` as JSON, for the CLI to find a running admin API. It holds the token,
 * so it is created with mode 0600 (never readable by others, not even for a moment: the mode is given to `open`,
 * not set after), written whole under a temporary name and renamed into place (a reader never sees half of it), and
 * removed when the API closes, unless another process has replaced it since.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import { AdminApiError } from "./errors.js"

/** What the file holds. */
export interface Contents {
  readonly url: string
  readonly token: Redacted.Redacted<string>
  readonly pid: number
}

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

/** Writes the state file at `path` and removes it when the scope closes. */
export const make = (
  path: string,
  contents: Contents,
  address: { readonly host: string; readonly port: number }
): Effect.Effect<void, AdminApiError, Scope.Scope> => {
  const body = text(contents)
  return Effect.acquireRelease(
    Effect.try({
      try: () => write(path, body),
      catch: (error) =>
        new AdminApiError({
          reason: "state_file_failed",
          host: address.host,
          port: address.port,
          path,
          ...(typeof (error as NodeJS.ErrnoException)?.code === "string"
            ? { code: (error as NodeJS.ErrnoException).code }
            : {}),
          detail: error instanceof Error ? error.message : String(error)
        })
    }),
    () => Effect.sync(() => remove(path, body))
  )
}

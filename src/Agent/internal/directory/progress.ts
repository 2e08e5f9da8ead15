/**
 * Who hears about dependency installs while they run (`Directory.InstallProgress`): by default nobody, beyond
 * the log's "installing" and "installed" lines; `agent-supervisor up` shows a spinner with the installer's last
 * line and the time taken, so that a long `pip install` is never silence.
 *
 * @internal
 */
import * as Context from "effect/Context"

/** What an install reports while it runs: its start, each chunk of its output, and its end. */
export interface Progress {
  /** The install of `agent`'s dependencies starts: `installer` is the command a user would run by hand. */
  readonly onStart: (agent: string, installer: string) => void
  /** A chunk of the installer's output (stdout or stderr, as it arrives; not split into lines). */
  readonly onOutput: (agent: string, chunk: Uint8Array) => void
  /** The install ended: `ok` when it succeeded. Called once after every `onStart`, interrupted ones included. */
  readonly onEnd: (agent: string, ok: boolean) => void
}

const silent: Progress = { onStart: () => {}, onOutput: () => {}, onEnd: () => {} }

/** The progress reporter in the context (`Effect.provideService`, `Layer.succeed`); silent by default. */
export class InstallProgress extends Context.Reference<InstallProgress>()(
  "effect-agent-supervisor/Directory/InstallProgress",
  { defaultValue: () => silent }
) {}

/**
 * `progress` with each callback's exception caught: a reporter is the user's code, and its bug must not stop the
 * installer's output from being read (a full pipe would block the installer) nor fail the install.
 */
export const guarded = (progress: Progress): Progress => {
  const safe = <A extends ReadonlyArray<unknown>>(f: (...args: A) => void) => (...args: A) => {
    try {
      f(...args)
    } catch {
      // The reporter's own failure: the install goes on.
    }
  }
  return { onStart: safe(progress.onStart), onOutput: safe(progress.onOutput), onEnd: safe(progress.onEnd) }
}

/**
 * Dependency installs as `agent-supervisor up` shows them (`Directory.Progress`), so that a long install is never
 * silence: on a terminal a spinner with the installer's last line and the time so far, redrawn in place; elsewhere
 * a log line at the start, one every `QUIET_MILLIS` while it runs, and one at the end.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type { InstallProgress } from "../../Agent/Directory.js"

const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
const FRAME_MILLIS = 100
/** Without a terminal: how often a running install says it still runs. */
export const QUIET_MILLIS = 15_000
// Escape sequences (CSI, OSC...) whole, then every other control character but tab: an installer's output must not
// move the cursor, retitle the terminal or ring it.
const ANSI = new RegExp(
  // eslint-disable-next-line no-control-regex
  "\u001b(\\[[0-9;?]*[ -/]*[@-~]|\\][^\u0007\u001b]*(\u0007|\u001b\\\\)?|[@-Z\\\\-_])|[\u0000-\u0008\u000b-\u001f\u007f-\u009f]",
  "g"
)

/** The last non-empty line of what an installer wrote, without colour codes. */
export const lastLine = (text: string): string | undefined => {
  const lines = text.split(/[\r\n]+/).map((line) => line.replace(ANSI, "").trim()).filter((line) => line !== "")
  return lines.at(-1)
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(1)} s`

interface Running {
  readonly installer: string
  readonly started: number
  last: string
}

/** Where the progress goes: a terminal's stream (`write`, `columns`), or a log. */
export interface Sink {
  readonly terminal: { readonly write: (text: string) => void; readonly columns: () => number } | undefined
  readonly log: (message: string) => void
}

/** The reporter, and a `stop` that clears what it drew (for the end of the program). */
export const make = (sink: Sink, now: () => number = Date.now): InstallProgress & { readonly stop: () => void } => {
  const running = new Map<string, Running>()
  let timer: ReturnType<typeof setInterval> | undefined
  let frame = 0
  let drawnAt = -Infinity
  const draw = () => {
    const terminal = sink.terminal
    if (terminal === undefined) return
    drawnAt = now()
    const entry = [...running.entries()].at(-1)
    if (entry === undefined) return
    const [agent, install] = entry
    const head = `${FRAMES[frame++ % FRAMES.length]} installing ${agent}'s dependencies (${install.installer}) ` +
      seconds(now() - install.started)
    const room = terminal.columns() - head.length - 3
    const tail = install.last === "" || room < 10 ? "" : `: ${install.last.slice(0, room)}`
    terminal.write(`\r\u001b[K${head}${tail}`)
  }
  const nudge = () => {
    for (const [agent, install] of running) {
      sink.log(
        `still installing ${agent}'s dependencies (${seconds(now() - install.started)})` +
          (install.last === "" ? "" : `: ${install.last}`)
      )
    }
  }
  const stopTimer = () => {
    if (timer !== undefined) clearInterval(timer)
    timer = undefined
  }
  return {
    onStart: (agent, installer) => {
      running.set(agent, { installer, started: now(), last: "" })
      if (timer === undefined) {
        timer = setInterval(
          sink.terminal === undefined ? nudge : draw,
          sink.terminal === undefined ? QUIET_MILLIS : FRAME_MILLIS
        )
        timer.unref()
      }
      if (sink.terminal === undefined) sink.log(`installing ${agent}'s dependencies with ${installer}`)
      else draw()
    },
    onOutput: (agent, chunk) => {
      const install = running.get(agent)
      const line = lastLine(Buffer.from(chunk).toString("utf8"))
      if (install === undefined || line === undefined) return
      install.last = line
      // A new line shows at once, but the line is redrawn at most once a frame.
      if (now() - drawnAt >= FRAME_MILLIS) draw()
    },
    onEnd: (agent, ok) => {
      const install = running.get(agent)
      if (install === undefined) return
      running.delete(agent)
      if (running.size === 0) stopTimer()
      sink.terminal?.write("\r\u001b[K")
      sink.log(
        `${ok ? "installed" : "failed to install"} ${agent}'s dependencies in ${seconds(now() - install.started)}`
      )
      if (running.size > 0) draw()
    },
    stop: () => {
      stopTimer()
      if (running.size > 0) sink.terminal?.write("\r\u001b[K")
    }
  }
}

/** The reporter of `up`: a spinner on stderr when it is a terminal, log lines otherwise (and for each end). */
export const forUp = Effect.map(Effect.runtime<never>(), (runtime) => {
  const stderr = process.stderr
  const log = (message: string) => Runtime.runSync(runtime)(Effect.logInfo(message))
  return make({
    terminal: stderr.isTTY === true
      ? { write: (text) => void stderr.write(text), columns: () => stderr.columns ?? 80 }
      : undefined,
    log
  })
})

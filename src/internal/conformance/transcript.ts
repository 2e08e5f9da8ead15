/**
 * The evidence of a check as text: what the check found, then the transcript of each agent it started (most start
 * one), one event a line with the milliseconds since its spawn: `->` a line sent to the agent's stdin, `<-` a
 * protocol message from its stdout, `<!` a stdout line that is not one, `2>` a line of stderr, `**` the kit's own
 * notes, and the exit. Long lines are cut (their length in bytes kept), and a long transcript keeps its beginning
 * and its end.
 *
 * @internal
 */
import type { Entry, Session } from "./session.js"

/** How much of one line is shown. */
const LINE_CHARS = 200
/** How many events are shown from each end of a long transcript. */
const EDGE_ENTRIES = 25

const cut = (text: string, bytes: number = Buffer.byteLength(text)): string =>
  text.length <= LINE_CHARS ? text : `${text.slice(0, LINE_CHARS - 40)}... (${bytes} bytes)`

const describeEntry = (entry: Entry): string => {
  switch (entry._tag) {
    case "Sent":
      return `->  ${cut(entry.text)}`
    case "Stdout": {
      const { line } = entry
      const flags = [
        ...(line.unterminated ? ["no newline at the end"] : []),
        ...(line.truncated ? ["longer than the kit keeps"] : [])
      ]
      const text = cut(line.text, line.bytes) + (flags.length > 0 ? `  (${flags.join(", ")})` : "")
      return `${line.message === undefined ? "<!" : "<-"}  ${text}`
    }
    case "Stderr":
      return `2>  ${cut(entry.text)}`
    case "Note":
      return `**  ${entry.text}`
    case "Exit":
      return entry.exit.signal !== null ? `exit: killed by ${entry.exit.signal}` : `exit: code ${entry.exit.code}`
  }
}

const stamp = (at: number): string => `+${at} ms`.padStart(10)

/** The transcript of a session, one event a line. */
export const transcript = (session: Session): ReadonlyArray<string> => {
  const entries = session.entries()
  const shown = entries.length <= EDGE_ENTRIES * 2 + 1
    ? entries.map((entry) => `${stamp(entry.at)}  ${describeEntry(entry)}`)
    : [
      ...entries.slice(0, EDGE_ENTRIES).map((entry) => `${stamp(entry.at)}  ${describeEntry(entry)}`),
      `${"".padStart(10)}  ... ${entries.length - EDGE_ENTRIES * 2} more events ...`,
      ...entries.slice(-EDGE_ENTRIES).map((entry) => `${stamp(entry.at)}  ${describeEntry(entry)}`)
    ]
  return [`${stamp(0)}  spawned pid ${session.pid}: ${cut(session.commandLine)}`, ...shown]
}

const LEGEND = "-> stdin, <- stdout, <! stdout but not protocol, 2> stderr, ** the kit"

/** The whole evidence of a check: what it found, then the transcript of each agent it started. */
export const evidence = (details: ReadonlyArray<string>, sessions: ReadonlyArray<Session>): string =>
  [
    ...details,
    ...sessions.flatMap((session, i) => [
      ...(details.length > 0 || i > 0 ? [""] : []),
      sessions.length === 1
        ? `transcript (ms since the spawn; ${LEGEND}):`
        : `transcript of agent ${i + 1} of ${sessions.length} (ms since its spawn; ${LEGEND}):`,
      ...transcript(session)
    ])
  ].join("\n")

/**
 * Server-Sent Events read from a byte stream, as the WHATWG spec parses them: lines split on LF, CRLF or CR;
 * `event`, `data` (several joined by "\n") and `id` fields; a blank line dispatches; comments (":") ignored.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

export interface Event {
  /** `message` when the event names none. */
  readonly event: string
  readonly data: string
  readonly id: string | undefined
}

interface State {
  readonly event: string
  readonly data: ReadonlyArray<string>
  readonly id: string | undefined
}

const initial: State = { event: "", data: [], id: undefined }

/** One line into the state, and the event it dispatches (a blank line after data), if any. */
export const step = (state: State, line: string): readonly [State, ReadonlyArray<Event>] => {
  if (line === "") {
    const next = { ...initial, id: state.id }
    if (state.data.length === 0) return [next, []]
    return [next, [{ event: state.event === "" ? "message" : state.event, data: state.data.join("\n"), id: state.id }]]
  }
  if (line.startsWith(":")) return [state, []]
  const colon = line.indexOf(":")
  const field = colon === -1 ? line : line.slice(0, colon)
  let value = colon === -1 ? "" : line.slice(colon + 1)
  if (value.startsWith(" ")) value = value.slice(1)
  switch (field) {
    case "event":
      return [{ ...state, event: value }, []]
    case "data":
      return [{ ...state, data: [...state.data, value] }, []]
    case "id":
      return [{ ...state, id: value }, []]
    default:
      return [state, []]
  }
}

/** The longest line read: a server that sends more without a line break is not the admin API. */
export const MAX_LINE = 1024 * 1024

/** The whole lines of `partial` and then `chunks` (LF, CRLF or CR), and what is left; throws past `MAX_LINE`. */
export const lines = (chunks: ReadonlyArray<string>, partial: string): { lines: Array<string>; partial: string } => {
  const out: Array<string> = []
  let rest = partial
  for (const chunk of chunks) {
    rest += chunk
    let at: number
    while ((at = rest.search(/\r\n|\r|\n/)) !== -1) {
      // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
      if (rest[at] === "\r" && at === rest.length - 1) break
      out.push(rest.slice(0, at))
      rest = rest.slice(at + (rest.startsWith("\r\n", at) ? 2 : 1))
    }
    if (rest.length > MAX_LINE) throw new Error(`a line of more than ${MAX_LINE} characters`)
  }
  return { lines: out, partial: rest }
}

/** The events of a stream of bytes, in order; a line longer than `MAX_LINE` fails the stream with `onTooLong`. */
export const decode = <E, R, E2>(
  bytes: Stream.Stream<Uint8Array, E, R>,
  onTooLong: () => E2
): Stream.Stream<Event, E | E2, R> =>
  bytes.pipe(
    Stream.decodeText(),
    Stream.mapAccumEffect("", (partial, text) =>
      Effect.try({
        try: () => {
          const split = lines([text], partial)
          return [split.partial, split.lines] as const
        },
        catch: onTooLong
      })),
    Stream.flattenIterables,
    Stream.mapAccum(initial, step),
    Stream.flattenIterables
  )

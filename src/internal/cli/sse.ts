/**
 * Server-Sent Events read from a byte stream, as the WHATWG spec parses them: lines split on LF, CRLF or CR;
 * `event`, `data` (several joined by "\n") and `id` fields; a blank line dispatches; comments (":") ignored.
 *
 * @internal
 */
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

/** The events of a stream of bytes, in order. */
export const decode = <E, R>(bytes: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Event, E, R> =>
  bytes.pipe(Stream.decodeText(), Stream.splitLines, Stream.mapAccum(initial, step), Stream.flattenIterables)

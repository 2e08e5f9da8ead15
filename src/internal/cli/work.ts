/**
 * `call ID [JSON]` and `publish TOPIC [JSON]`: work sent to a running `up` through its admin API. The payload is the
 * JSON argument, or stdin when the argument is `-` or absent and stdin is not a terminal (`jq ... | agent-supervisor
 * call summarizer`); the answer is printed as JSON on stdout (the agent's result, the task's id), so a script pipes
 * it on; a failure is `error: ...` on stderr and exit code 1, as every command's.
 *
 * @internal
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { MAX_PAYLOAD_BYTES } from "../admin/workApi.js"
import type { Address } from "./address.js"
import * as Client from "./client.js"
import { CliError } from "./errors.js"

/** The argument that says "read the payload from stdin", as `cat -` and `kubectl apply -f -` have it. */
export const STDIN = "-"

/** How the payload was given, for the messages about it. */
type Source = "argument" | "stdin"

/** `text` as JSON, or why it is none (with the quotes a string needs on a shell's command line). */
const parse = (text: string, source: Source): Effect.Effect<unknown, CliError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (error) => {
      const trimmed = text.trim()
      const hint = source === "argument" && trimmed !== "" && !/^[[{"\d-]|^(true|false|null)$/.test(trimmed)
        ? ` (a string goes in JSON's quotes, inside the shell's: '"${trimmed}"')`
        : ""
      return new CliError({
        message: `The payload ${source === "argument" ? "argument" : "on stdin"} is not JSON: ` +
          `${(error as Error).message}${hint}`
      })
    }
  })

const readStdin = NodeStream.toString(() => process.stdin, {
  maxBytes: MAX_PAYLOAD_BYTES,
  onFailure: (error) =>
    new CliError({
      message: (error as Error).message === "maxBytes exceeded"
        ? `The payload on stdin is over ${MAX_PAYLOAD_BYTES} bytes, the most the admin API takes: send large data ` +
          "to an agent by reference (a file path or URL)"
        : `Could not read the payload from stdin: ${(error as Error).message}`
    })
})

/**
 * The payload: the JSON argument; stdin's whole text when the argument is `-`, or absent and stdin is not a terminal
 * (a terminal with no argument is a mistake, not a wait for Ctrl-D).
 */
export const payloadOf = (argument: Option.Option<string>, usage: string): Effect.Effect<unknown, CliError> => {
  if (Option.isSome(argument) && argument.value !== STDIN) return parse(argument.value, "argument")
  if (Option.isNone(argument) && process.stdin.isTTY === true) {
    return Effect.fail(
      new CliError({
        message: `No payload: give it as JSON after the ${usage}, or on stdin ("-" reads it from a terminal too)`
      })
    )
  }
  return Effect.flatMap(readStdin, (text) =>
    text.trim() === ""
      ? Effect.fail(
        new CliError({ message: `No payload: stdin was empty (a payload of none is null: echo null | ...)` })
      )
      : parse(text, "stdin"))
}

/** A number of milliseconds typed as digits is a number for the API; any other text a duration (`"30 seconds"`). */
export const timeoutOf = (text: string): string | number => /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text

/** The answer as JSON: indented for a person, on one line with `--json` (for a script that reads line by line). */
const print = (value: unknown, compact: boolean) =>
  Console.log(compact ? JSON.stringify(value) : JSON.stringify(value, null, 2))

/** `call ID [JSON]`: the agent's result, as JSON. */
export const call = (
  address: Address,
  id: string,
  payload: unknown,
  options: { readonly timeout: Option.Option<string>; readonly json: boolean }
): Effect.Effect<void, CliError> =>
  Effect.flatMap(
    Client.call(address, (client) =>
      client.work.call({
        path: { id: encodeURIComponent(id) },
        payload: Option.match(options.timeout, {
          onNone: () => ({ payload }),
          onSome: (timeout) => ({ payload, timeout: timeoutOf(timeout) })
        })
      })),
    (answer) => print(answer.result, options.json)
  )

/** `publish TOPIC [JSON]`: the task's id, as `{ "taskId": ... }`. */
export const publish = (
  address: Address,
  topic: string,
  payload: unknown,
  options: { readonly fanout: boolean; readonly json: boolean }
): Effect.Effect<void, CliError> =>
  Effect.flatMap(
    Client.call(address, (client) =>
      client.work.publish({
        path: { name: encodeURIComponent(topic) },
        payload: options.fanout ? { payload, fanout: true } : { payload }
      })),
    (answer) => print(answer, options.json)
  )

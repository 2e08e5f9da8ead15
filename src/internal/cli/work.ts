/**
 * `call ID [JSON]`, `publish TOPIC [JSON]` and `result TASK_ID`: work sent to a running `up` through its admin API,
 * and a published task's outcome. The payload is the
 * JSON argument, or stdin when the argument is `-` or absent and stdin is not a terminal (`jq ... | agent-supervisor
 * call summarizer`); the answer is printed as JSON on stdout (the agent's result, the task's id), so a script pipes
 * it on; a failure is `error: ...` on stderr and exit code 1, as every command's.
 *
 * @internal
 */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import {
  durationOf,
  MAX_PAYLOAD_BYTES,
  type TaskView,
  timeoutProblem,
  type TopicView,
  waitProblem
} from "../admin/workApi.js"
import { fromTyped } from "../durationText.js"
import type { Address } from "./address.js"
import * as Client from "./client.js"
import { bareMillisWarning } from "./durations.js"
import { CliError } from "./errors.js"
import { colourFor, render } from "./table.js"

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

/** The answer as JSON: indented for a person, on one line with `--json` (for a script that reads line by line). */
const print = (value: unknown, compact: boolean) =>
  Console.log(compact ? JSON.stringify(value) : JSON.stringify(value, null, 2))

/** `call ID [JSON]`: the agent's result, as JSON. */
export const call = (
  address: Address,
  id: string,
  payload: unknown,
  options: { readonly timeout: Option.Option<string>; readonly json: boolean }
): Effect.Effect<void, CliError> => {
  // Refused here, with what was given, as result's --wait is (the API's refusal would not repeat it)
  const problem = Option.flatMapNullable(options.timeout, (timeout) => timeoutProblem(fromTyped(timeout)))
  if (Option.isSome(problem)) {
    return Effect.fail(
      new CliError({ message: `Not sent: --timeout ${problem.value}` })
    )
  }
  return Effect.flatMap(
    Effect.zipRight(
      bareMillisWarning("--timeout", options.timeout),
      Client.call(address, (client) =>
        client.work.call({
          path: { id: encodeURIComponent(id) },
          payload: Option.match(options.timeout, {
            onNone: () => ({ payload }),
            onSome: (timeout) => ({ payload, timeout: fromTyped(timeout) })
          })
        }))
    ),
    (answer) => print(answer.result, options.json)
  )
}

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

/**
 * How long one request of `result` asks the API to wait: a longer wait is several requests, each well within the
 * API's own bound (`MAX_TASK_WAIT_MILLIS`), so no proxy or client between sits on one answer for minutes.
 */
const POLL_MILLIS = 60_000

/**
 * The task's view once it ends, or as it is once `waitMillis` have passed: one request per `pollMillis` at most
 * (default `POLL_MILLIS`), as many as the wait takes.
 */
export const awaitTask = (
  address: Address,
  id: string,
  waitMillis: number,
  pollMillis = POLL_MILLIS
): Effect.Effect<TaskView, CliError> =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + waitMillis
    for (;;) {
      const left = Math.max(0, deadline - (yield* Clock.currentTimeMillis))
      const view = yield* Client.call(address, (client) =>
        client.work.task({
          path: { id: encodeURIComponent(id) },
          urlParams: { wait: String(Math.min(left, pollMillis)) }
        }))
      if (view.status !== "pending" || left <= pollMillis) return view
    }
  })

/**
 * `result TASK_ID`: a published task's outcome, once it ends, waiting `wait` at most ("30 seconds", or
 * milliseconds). Succeeded: its result as JSON. Dead-lettered, or not ended within `wait`: `error: ...` (exit 1).
 * With `json`, the task's whole view on one line whatever its status (`{ taskId, status, result | errors }`).
 */
export const result = (
  address: Address,
  id: string,
  options: { readonly wait: string; readonly json: boolean }
): Effect.Effect<void, CliError> =>
  Effect.gen(function*() {
    // any length: asked a minute at a time
    const problem = waitProblem(options.wait, Infinity)
    if (problem !== undefined) {
      return yield* Effect.fail(new CliError({ message: `--wait ${problem}` }))
    }
    yield* bareMillisWarning("--wait", Option.some(options.wait))
    const waitMillis = Duration.toMillis(durationOf(fromTyped(options.wait)))
    const view = yield* awaitTask(address, id, waitMillis)
    if (options.json) return yield* print(view, true)
    switch (view.status) {
      case "succeeded":
        return yield* print(view.result, false)
      case "dead_lettered":
        return yield* Effect.fail(new CliError({ message: view.message ?? `Task ${id} was dead-lettered` }))
      case "pending":
        return yield* Effect.fail(
          new CliError({
            message: `Task ${id} has not ended${
              waitMillis > 0 ? ` within ${Duration.format(Duration.millis(waitMillis))}` : ""
            }: it is still in flight, or waits for a subscriber (--wait for longer)`
          })
        )
    }
  })

/**
 * The `topics` table: one row per topic, its tasks not yet ended (PENDING: waiting for a subscriber, being handled
 * or waiting for a retry, as a task's `pending` status), its subscribers by path.
 */
export const topicsTable = (topics: ReadonlyArray<TopicView>, withColour: boolean): string =>
  render(
    ["TOPIC", "DECLARED", "PENDING", "SUBSCRIBERS"],
    topics.map((topic) => [
      topic.name,
      topic.declared ? "yes" : "no",
      String(topic.queued),
      topic.subscribers.length === 0 ? "-" : topic.subscribers.join(", ")
    ]),
    withColour
  )

/**
 * `topics`: the tree's topics (declared, taken by a child, or with tasks in flight), each with its tasks not yet
 * ended and its subscribers; `--json` for scripts.
 */
export const topics = (address: Address, asJson: boolean): Effect.Effect<void, CliError> =>
  Effect.flatMap(
    Client.call(address, (client) => client.work.topics()),
    (list) =>
      asJson
        ? print(list, true)
        : Console.log(list.length === 0 ? "No topics." : topicsTable(list, colourFor(process.stdout)))
  )

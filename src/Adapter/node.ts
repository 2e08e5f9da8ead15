#!/usr/bin/env node
/**
 * The Node callback adapter: runs a user's JavaScript function as an agent that speaks wire protocol v1 with the
 * 1.1 features `stream` and `checkpoint` and the 1.2 feature `publish` (its `ready` announces all three;
 * `docs/PROTOCOL.md`).
 *
 * `node dist/Adapter/node.js path/to/module.(js|mjs|cjs)[:exportName] [--check]`
 *
 * Without `:exportName` the module's `default` export is used when it is a function, else `handleRequest`.
 *
 * The function is called as `f(payload, context)` for each task. It answers with a value (or a promise of one),
 * which is the result (`undefined` is `null`); a thrown error (or a rejection) is an error response. The context:
 *
 * - `id`: the request's id; `signal`: an `AbortSignal` that aborts on `cancel` (and when the supervisor is gone);
 *   `stream`: whether the task was sent with `"stream":true` (the caller takes chunks).
 * - `checkpoint(data)`: sends the task's checkpoint, `{"type":"checkpoint","id","data"}`;
 *   `checkpoint(data, { task: false })` sends the agent's, without `id`. It throws a TypeError when JSON cannot
 *   encode `data`; a task's checkpoint after its response (or its cancel) is dropped. A destructured
 *   `checkpoint` works.
 * - `publish(topic, payload)` (protocol 1.2): hands a task to a topic of the supervision tree,
 *   `{"type":"publish","topic","payload"}`; the supervisor sends no reply. It belongs to the agent, not the task: it
 *   is sent whether or not the task is still in flight, and a function kept from a context (it is the same
 *   function for every task, destructured too) publishes from a timer or a background loop. It throws a TypeError
 *   for a topic that is not a non-empty string or a payload JSON cannot encode (`undefined` is `null`).
 * - `restored`: the `data` of the last `restore` message (the agent checkpoint this incarnation starts from), or
 *   undefined; `restoredRequests`: its `requests` (the checkpoints of the requests cut short by the last crash,
 *   by their old ids), or undefined. A `restore` comes right after `ready`, so the first task already sees it.
 *
 * Streaming: a function that returns an async iterable (an async generator, or a promise of one) or a generator
 * object (a `function*`) streams. For a task sent with `"stream":true`, each value it yields is a
 * `{"id","type":"chunk","data"}` line, in order, and its return value (`return x`, `undefined` is `null`) is the
 * final response's `result`; a throw after chunks is an error response after them. For a task sent without it (a
 * v1 caller), the values are collected into an array, which is the result (the return value is dropped). A value
 * JSON cannot encode fails the task with a SerializationError. Chunks share the batched writer with every other
 * line, and the generator is not asked for its next value while the batch is past 64 KiB or stdout is full, so a
 * fast generator cannot outrun the supervisor in memory. A `cancel` aborts the signal and, at the generator's next
 * step, calls its `return()` (its `finally` blocks run); nothing more is queued for the task (chunks already
 * queued in the current batch may still leave, and the supervisor drops them).
 *
 * Other message types are ignored (with one warning per type on stderr), as protocol 1.1 asks.
 *
 * `shutdown` drains: no new task is accepted, the tasks in flight (streams too) finish and are answered, then the
 * process exits (stdin EOF after `shutdown` changes nothing). stdin EOF without `shutdown` means the supervisor is
 * gone (killed, say) and nobody can receive a result: the tasks in flight are cancelled (their signals abort),
 * get 0.5 s to settle, and the process exits within 1 s even when one ignores its signal. Responses sent before
 * stay sent.
 *
 * Exit codes: 0 after `shutdown`, or after stdin EOF with nothing in flight; 1 on an uncaught error outside any
 * task (or when stdout fails); 2 when the module fails to load (or the command line is wrong); 3 when the
 * function is missing; 4 on stdin EOF without `shutdown` while tasks were in flight (they were cancelled).
 *
 * This file and its `internal/` modules run on plain `node` with no loader and import only `node:` built-ins and
 * each other, never the rest of the library: every dependency would be paid for at each agent start (so is every
 * module: each costs about half a millisecond of start-up, which is why there are four). This file holds the entry
 * point; `internal/` holds `load` (the user's module and its function), `input` (stdin split into lines and
 * dispatched, a ping's health report, `restore`), `tasks` (the tasks in flight and their context, streams,
 * cancellation, drain and abandon, uncaught errors, publish) and `output` (stdout taken over for the protocol,
 * response, chunk, checkpoint and publish lines, batched writes with backpressure, the log on stderr, an `exit`
 * that lets both pipes empty).
 *
 * @since 0.1.0
 */
// output.js takes stdout over as it is evaluated, with these imports: before main loads any user code
import { listen } from "./internal/input.js"
import { loadCallback, loadFailed, USAGE } from "./internal/load.js"
import { describeError, exit, log, protocolWrite, send } from "./internal/output.js"
import { fatal, onUncaught, setCallback } from "./internal/tasks.js"

/** The ready line: protocol version 1 with the 1.1 and 1.2 features this adapter speaks. */
const READY = `{"type":"ready","protocol":1,"features":["stream","checkpoint","publish"]}\n`

/** Loads the callback, then serves the protocol (or, with `--check`, reports and exits). */
const main = async (): Promise<void> => {
  const args = process.argv.slice(2)
  const check = args.includes("--check")
  const positional = args.filter((arg) => arg !== "--check")
  if (positional.length !== 1 || positional[0].startsWith("-")) {
    const message = `expected one module and optionally --check, got ${JSON.stringify(args)}`
    return loadFailed(check, { message, type: "UsageError" }, USAGE)
  }
  const callback = await loadCallback(positional[0], check)
  // undefined: the failure is reported and the exit under way
  if (callback === undefined) return
  if (check) {
    send(`{"type":"check","ok":true}`)
    return exit(0)
  }
  setCallback(callback)
  protocolWrite(READY)
  listen()
}

// With stderr gone the log has nowhere to go, which is no reason to stop serving
process.stderr.on("error", () => {})
process.stdout.on("error", (error) => {
  // The supervisor is gone (EPIPE): nobody can read a response any more, and waiting for a flush would hang
  log(`stdout failed, exiting: ${describeError(error).message}`)
  process.exit(1)
})
process.on("uncaughtException", onUncaught)
process.on("unhandledRejection", onUncaught)
main().catch(fatal)

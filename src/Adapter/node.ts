#!/usr/bin/env node
/**
 * The Node callback adapter: runs a user's JavaScript function as an agent that speaks wire protocol v1.
 *
 * `node dist/Adapter/node.js path/to/module.(js|mjs|cjs)[:exportName] [--check]`
 *
 * Without `:exportName` the module's `default` export is used when it is a function, else `handleRequest`.
 *
 * `shutdown` drains: no new task is accepted, the tasks in flight finish and are answered, then the process exits
 * (stdin EOF after `shutdown` changes nothing). stdin EOF without `shutdown` means the supervisor is gone (killed,
 * say) and nobody can receive a result: the tasks in flight are cancelled (their signals abort), get 0.5 s to
 * settle, and the process exits within 1 s even when one ignores its signal. Responses sent before stay sent.
 *
 * Exit codes: 0 after `shutdown`, or after stdin EOF with nothing in flight; 1 on an uncaught error outside any
 * task (or when stdout fails); 2 when the module fails to load (or the command line is wrong); 3 when the
 * function is missing; 4 on stdin EOF without `shutdown` while tasks were in flight (they were cancelled).
 *
 * This file and its `internal/` modules run on plain `node` with no loader and import only `node:` built-ins and
 * each other, never the rest of the library: every dependency would be paid for at each agent start (so is every
 * module: each costs about half a millisecond of start-up, which is why there are four). This file holds the entry
 * point; `internal/` holds `load` (the user's module and its function), `input` (stdin split into lines and
 * dispatched, a ping's health report), `tasks` (the tasks in flight, cancellation, drain and abandon, uncaught
 * errors) and `output` (stdout taken over for the protocol, response lines, batched writes with backpressure, the
 * log on stderr, an `exit` that lets both pipes empty).
 *
 * @since 0.1.0
 */
// output.js takes stdout over as it is evaluated, with these imports: before main loads any user code
import { listen } from "./internal/input.js"
import { loadCallback, loadFailed, USAGE } from "./internal/load.js"
import { describeError, exit, log, protocolWrite, send } from "./internal/output.js"
import { fatal, onUncaught, setCallback } from "./internal/tasks.js"

/** The protocol version announced in the ready line. */
const PROTOCOL_VERSION = 1

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
  protocolWrite(`{"type":"ready","protocol":${PROTOCOL_VERSION}}\n`)
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

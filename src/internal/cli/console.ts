/**
 * The command line's `Console`: `@effect/cli` renders its help, its errors and its wizard with colour codes
 * whatever the output is. Where colour does not go (a pipe, a file, `NO_COLOR`: `colourFor`), they are taken out of
 * what is printed, so `agent-supervisor --help | less` and a CI log read as plain text.
 *
 * @internal
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { colourFor } from "./table.js"

// Select Graphic Rendition sequences: the only ones @effect/printer-ansi writes.
// eslint-disable-next-line no-control-regex
const SGR = /\u001b\[[0-9;]*m/g

/** `text` without colour codes. */
export const stripColour = (text: string): string => text.replace(SGR, "")

const strip = (args: ReadonlyArray<unknown>): Array<unknown> =>
  args.map((arg) => typeof arg === "string" ? stripColour(arg) : arg)

/**
 * `console` with colour codes taken out of what goes to stdout (`log`, `info`, `debug`) unless `stdout` takes colour,
 * and out of what goes to stderr (`error`, `warn`) unless `stderr` does.
 */
export const plainWhereNoColour = (
  console: Console.Console,
  stdout: { readonly isTTY?: boolean | undefined },
  stderr: { readonly isTTY?: boolean | undefined }
): Console.Console => {
  const toStdout = colourFor(stdout)
  const toStderr = colourFor(stderr)
  if (toStdout && toStderr) return console
  const out = <F extends (...args: ReadonlyArray<any>) => any>(f: F, colour: boolean): F =>
    (colour ? f : (...args: ReadonlyArray<unknown>) => f(...strip(args))) as F
  return {
    ...console,
    log: out(console.log, toStdout),
    info: out(console.info, toStdout),
    debug: out(console.debug, toStdout),
    error: out(console.error, toStderr),
    warn: out(console.warn, toStderr),
    unsafe: {
      ...console.unsafe,
      log: out(console.unsafe.log, toStdout),
      info: out(console.unsafe.info, toStdout),
      debug: out(console.unsafe.debug, toStdout),
      error: out(console.unsafe.error, toStderr),
      warn: out(console.unsafe.warn, toStderr)
    }
  }
}

/** Runs `effect` with the current `Console` made plain where colour does not go (the process's own streams). */
export const withPlainConsole = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Console.consoleWith((console) =>
    Console.withConsole(effect, plainWhereNoColour(console, process.stdout, process.stderr))
  )

/**
 * The checks that stdout carries the protocol and nothing else: after the agent's code prints (`stdout-print`) and
 * after a child process it runs writes to the stdout it inherits (`stdout-child`), every line of stdout, from the
 * spawn to the exit, is a protocol message, and the text printed went to stderr or nowhere. Two checks, not one:
 * an adapter can redirect its language's print and still hand the real descriptor 1 to its children (the Node
 * adapter does, as the README says).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { type Check, closeGracefully, expectResult, fail, pass, show, task } from "./check.js"
import type { CheckName } from "./options.js"

const stdoutCheck = (
  name: CheckName,
  op: "print" | "spawn",
  answer: string,
  what: string,
  description: string
): Check => ({
  name,
  description,
  run: ({ settings, start }) =>
    Effect.gen(function*() {
      const session = yield* start
      const marker = `conformance-${op}-${Math.random().toString(36).slice(2, 10)}`
      session.send(task(`${op}-1`, op, { text: marker }))
      yield* expectResult(session, `${op}-1`, answer, settings.requestTimeout)
      // Everything the agent writes, its children's output included, is read once it has exited.
      const gone = yield* closeGracefully(session, settings.exitTimeout)
      const lines = session.lines()
      const junk = lines.filter((line) => line.message === undefined)
      const seen = junk.some((line) => line.text.includes(marker))
        ? "on stdout"
        : session.stderr().includes(marker)
        ? "on stderr"
        : "nowhere"
      const watched = gone ? "" : ` (watched for ${settings.exitTimeout} ms after shutdown: the agent had not exited)`
      if (junk.length > 0) {
        return yield* fail(
          `${junk.length} of ${lines.length} stdout line(s) were not protocol messages; ${what} was seen ${seen}`,
          junk.slice(0, 5).map((line) => `+${line.at} ms on stdout: ${show(line.text, 120)}`)
        )
      }
      return pass(`all ${lines.length} stdout lines were protocol messages; ${what} was seen ${seen}${watched}`)
    })
})

export const stdoutPrint = stdoutCheck(
  "stdout-print",
  "print",
  "printed",
  "the printed text",
  `The agent's own print to stdout (print, console.log) does not reach the protocol: every stdout line is a ` +
    `protocol message, and the text shows on stderr or nowhere.`
)

export const stdoutChild = stdoutCheck(
  "stdout-child",
  "spawn",
  "spawned",
  "the child's output",
  `A child process that inherits the agent's stdout (sh -c 'echo "$1"') does not write into the protocol: every ` +
    `stdout line is a protocol message, and the child's text shows on stderr or nowhere.`
)

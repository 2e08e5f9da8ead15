/**
 * The command line's duration options (`call --timeout`, `result --wait`, `conformance --startup-timeout`...): a
 * bare number is milliseconds, as in a tree file, and one under a second is said on stderr, where seconds were
 * likelier meant (`--timeout 5`), as `validate` and `up` warn of one in a file.
 *
 * @internal
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { bareMillisNote, fromTyped } from "../durationText.js"

/** `warning: --timeout: 5 is 5 milliseconds ...` on stderr for a bare number under 1000 given to `flag`; else nothing. */
export const bareMillisWarning = (flag: string, given: Option.Option<string>): Effect.Effect<void> =>
  Option.match(Option.flatMapNullable(given, (text) => bareMillisNote(flag, fromTyped(text))), {
    onNone: () => Effect.void,
    onSome: (note) => Console.error(`warning: ${note}`)
  })

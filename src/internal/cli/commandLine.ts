/**
 * The command line's arguments as they were given (after the program's name), for a command that must compare
 * what @effect/cli made of them with what was typed (`conformance`: see `Conformance.misread`).
 *
 * @internal
 */
import * as Context from "effect/Context"

export class CommandLine extends Context.Tag("agent-supervisor/CommandLine")<CommandLine, ReadonlyArray<string>>() {}

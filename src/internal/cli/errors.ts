/**
 * The CLI's own error: a message for the terminal, printed alone (no stack), and exit code 1.
 *
 * @internal
 */
import * as Schema from "effect/Schema"

export class CliError extends Schema.TaggedError<CliError>()("CliError", { message: Schema.String }) {}

/**
 * The host's own Effect log in a rotated file: an Effect `Logger` whose lines (logfmt or JSON, Effect's own
 * formats, annotations and spans included) go to a writer's queue; the writer's fiber writes them.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { ConfigError } from "../../Errors.js"
import * as Edge from "../schema.js"
import * as Registry from "./registry.js"
import { fields, objectOf, setting, type Settings } from "./settings.js"

/** The line format: Effect's `logfmtLogger` or `jsonLogger`. */
export type Format = "logfmt" | "json"

/** The logger's options, decoded. */
export interface LoggerSettings extends Settings {
  /** The file's name before `.log` (made safe as an agent's is). */
  readonly name: string
  readonly format: Format
}

/** The file of the host's log when no name is given: `supervisor.log`. */
export const DEFAULT_NAME = "supervisor"

const isName = (input: unknown): input is string => typeof input === "string" && input.length > 0
const isFormat = (input: unknown): input is Format => input === "logfmt" || input === "json"

const LoggerSchema: Schema.Schema<LoggerSettings, unknown> = objectOf(
  Schema.Struct({
    ...fields,
    name: setting("must be a non-empty string", isName, DEFAULT_NAME),
    format: setting(`must be "logfmt" or "json"`, isFormat, "logfmt" as Format)
  }),
  "{ dir, name?, format?, maxBytes?, keep? }"
)

/** Decodes the logger's options: a `ConfigError` names each bad field (`maxBytes`, `format`). */
export const decode = (input: unknown): Either.Either<LoggerSettings, ConfigError> =>
  Edge.decodeOptions(LoggerSchema, input, { whole: "(options)", undefinedIsAbsent: true })

/** A logger writing to `<dir>/<name>.log` until the scope closes (the last lines flushed then). */
export const make = (settings: LoggerSettings): Effect.Effect<Logger.Logger<unknown, void>, never, Scope.Scope> =>
  Effect.map(
    Registry.acquire(settings.name, settings),
    (writer) =>
      Logger.map(settings.format === "json" ? Logger.jsonLogger : Logger.logfmtLogger, (line) => writer.offer(line))
  )

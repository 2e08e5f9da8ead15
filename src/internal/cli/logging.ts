/**
 * The log of `agent-supervisor up`, on stderr: human-readable on a terminal, one JSON object per line otherwise
 * (what journald, Docker and Kubernetes collect), or logfmt, as `--log-format` says.
 *
 * @internal
 */
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"

export const FORMATS = ["auto", "pretty", "json", "logfmt"] as const
export type Format = typeof FORMATS[number]

/** `auto` as it is decided: pretty on a terminal, JSON lines otherwise. */
export const decide = (format: Format, stderr: { readonly isTTY?: boolean | undefined }): Exclude<Format, "auto"> =>
  format !== "auto" ? format : stderr.isTTY === true ? "pretty" : "json"

const loggerOf = (format: Exclude<Format, "auto">): Logger.Logger<unknown, void> => {
  switch (format) {
    case "pretty":
      return Logger.prettyLogger({ stderr: true })
    case "json":
      return Logger.withConsoleError(Logger.jsonLogger)
    case "logfmt":
      return Logger.withConsoleError(Logger.logfmtLogger)
  }
}

/**
 * The logger of `up`, in place of Effect's default (the level is @effect/cli's own `--log-level`); `auto` decided
 * by `stderr`, the process's own unless a test gives another.
 */
export const layer = (
  format: Format,
  stderr: { readonly isTTY?: boolean | undefined } = process.stderr
): Layer.Layer<never> => Logger.replace(Logger.defaultLogger, loggerOf(decide(format, stderr)))

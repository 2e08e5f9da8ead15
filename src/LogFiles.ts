/**
 * Log files with size-based rotation and a bounded number of files, as PM2's pm2-logrotate and logrotate keep
 * them: each agent's stderr (the `logs` option of `AgentSupervisor.make` and `Supervisor.make`), and the host's
 * own Effect log ({@link logger}, {@link layer}).
 *
 * **Files.** Lines go to `<dir>/<name>.log`. Before a line would make it pass `maxBytes`, the file is renamed
 * `<name>.log.1`, the older ones shift to `.2` ... `.<keep>`, and the one past `keep` is removed (`keep: 0` removes
 * the file itself); rotated files past `keep` left by an earlier run are removed when the file is first written.
 * The directory is created when missing, and again if it is removed while lines are written.
 *
 * **Off the hot path.** Whoever logs only enqueues the line (an agent's pipe reader, a fiber that logs); one fiber
 * per file writes the lines in order, in batches of at most 256 KiB.
 *
 * **Bounds**, for each file (`maxBytes` M, `keep` K):
 * - Disk: no file written here passes M bytes, so the files of a log hold at most (K + 1) × M bytes (files from an
 *   earlier run with a larger `maxBytes` count until they rotate out). A line longer than min(M, 64 KiB) is cut,
 *   ending with `[N bytes cut]`.
 * - Memory: the lines waiting or being written weigh at most min(4 × M, 4 MiB), counting each line's UTF-8 bytes
 *   plus 32; the write in progress adds two copies of its batch (the joined text and its bytes, 256 KiB each at
 *   most).
 * - A line that does not fit is dropped and counted, and so is every line after it until everything held has been
 *   written; then one line takes their place: `<ISO time> [N lines dropped: the log file could not keep up]`.
 * - A file that cannot be written (disk full, permission, a path that is not a directory) never fails the agent
 *   or the host: a warning is logged once until a write succeeds again, and writing is tried again every second;
 *   meanwhile lines wait within the bound above, and those given up on (a failed append's, the overflow's) are
 *   reported by one line once writing works: `[N lines dropped: the log file could not be written (CODE)]`.
 *
 * **One writer per file in a process**: agents of the same name (in two subtrees, say) share theirs, their lines
 * interleaved as they come (each names its pid); the first to open a file sets its `maxBytes` and `keep`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as Scope from "effect/Scope"
import type { ConfigError } from "./Errors.js"
import * as FileName from "./internal/logFiles/fileName.js"
import * as internalLogger from "./internal/logFiles/logger.js"
import * as internal from "./internal/logFiles/settings.js"

/**
 * Where and how much to keep: `logs: { dir, maxBytes, keep }`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The directory of the files (relative to the working directory, or absolute); created when missing. */
  readonly dir: string
  /** The most bytes one file holds, a whole number of at least 1024; {@link DEFAULT_MAX_BYTES} (10 MiB) by default. */
  readonly maxBytes?: number | undefined
  /** How many rotated files are kept (`.1` the newest), 0 to 1000; {@link DEFAULT_KEEP} (5) by default. */
  readonly keep?: number | undefined
}

/**
 * Options of {@link logger} and {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoggerOptions extends Options {
  /** The file's name before `.log`, made safe as an agent's is ({@link fileName}); `"supervisor"` by default. */
  readonly name?: string | undefined
  /**
   * `"logfmt"` (Effect's `Logger.logfmtLogger`, the default) or `"json"` (`Logger.jsonLogger`, one JSON object a
   * line): both carry the time, level, fiber, message, annotations and spans.
   */
  readonly format?: "logfmt" | "json" | undefined
}

/**
 * 10 MiB: the default `maxBytes`, pm2-logrotate's `max_size`.
 *
 * @since 0.1.0
 * @category defaults
 */
export const DEFAULT_MAX_BYTES: number = internal.DEFAULT_MAX_BYTES

/**
 * 5: the default `keep`, so that a log takes at most 60 MiB by default (pm2-logrotate keeps 30).
 *
 * @since 0.1.0
 * @category defaults
 */
export const DEFAULT_KEEP: number = internal.DEFAULT_KEEP

/**
 * The file name of an agent's (or a logger's) log: `<name>.log`, where letters, digits, `_`, `-` and `.` (not
 * first) stay as they are and every other byte is written `%XX` (`%` included), so that distinct names get
 * distinct files and none escapes the directory; a name whose encoding passes 200 bytes is cut and ends with `~`
 * and 16 hex digits of its SHA-256.
 *
 * @since 0.1.0
 * @category utils
 * @example
 * ```ts
 * LogFiles.fileName("billing")      // "billing.log"
 * LogFiles.fileName("team/a:b c")   // "team%2Fa%3Ab%20c.log"
 * ```
 */
export const fileName: (name: string) => string = FileName.fileName

/**
 * A `Logger` writing the host's Effect log lines to `<dir>/<name>.log`, rotated and bounded as described above.
 * Scoped: closing the scope writes the last lines (within 5 seconds) and closes the file. Bad options are a
 * `ConfigError` naming each field (`maxBytes`, `keep`, `format`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const logger: (
  options: LoggerOptions
) => Effect.Effect<Logger.Logger<unknown, void>, ConfigError, Scope.Scope> = Effect.fn("LogFiles.logger")(
  function*(options: LoggerOptions) {
    return yield* internalLogger.make(yield* internalLogger.decode(options))
  }
)

/**
 * {@link logger} added beside the loggers already there (Effect's `Logger.addScoped`): the log goes to the file
 * too, for as long as the layer lives. Replace the default logger with `Logger.replaceScoped` to keep the file only.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * const App = Supervisor.layer({ children, logs: { dir: "logs" } }).pipe(
 *   Layer.provide(Store.layerMemory),
 *   Layer.provide(LogFiles.layer({ dir: "logs", format: "json" })) // logs/supervisor.log
 * )
 * ```
 */
export const layer = (options: LoggerOptions): Layer.Layer<never, ConfigError> => Logger.addScoped(logger(options))

/**
 * How a process ends when it is asked to: by SIGTERM, SIGINT or SIGHUP (a stop's, or systemd's stopping a unit,
 * which signals the whole cgroup), or with the exit code of a shell or runtime such a signal ended (128 + n: 143,
 * 130, 129). An agent's stop warns of any other end (`Agent/internal/shutdown.ts`) and the CLI's `stop` shows it.
 *
 * @internal
 */

const SIGNALS: ReadonlyArray<string> = ["SIGTERM", "SIGINT", "SIGHUP"]
const CODES: ReadonlyArray<number> = [143, 130, 129]

/** A signal that asks a process to end. @internal */
export const isEndSignal = (signal: string): boolean => SIGNALS.includes(signal)

/** The exit code of a process such a signal ended. @internal */
export const isEndSignalCode = (code: number): boolean => CODES.includes(code)

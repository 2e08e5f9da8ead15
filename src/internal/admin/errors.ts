/**
 * Why the admin API could not start: its address could not be listened on, or its state file could not be written.
 *
 * @internal
 */
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { TypeId } from "../../Errors.js"

/**
 * The admin API could not start: `listen` failed on `host`:`port` (`code`: `EADDRINUSE`, `EACCES`,
 * `EADDRNOTAVAIL`...), or the state file at `path` could not be written, or it is another running admin API's.
 *
 * @internal
 */
export class AdminApiError extends Schema.TaggedError<AdminApiError>("effect-agent-supervisor/AdminApiError")(
  "AdminApiError",
  {
    reason: Schema.Literal("listen_failed", "state_file_failed", "state_file_in_use"),
    host: Schema.String,
    port: Schema.Number,
    /** The state file, for `state_file_failed` and `state_file_in_use`. */
    path: Schema.optional(Schema.String),
    /** The errno name, such as `"EADDRINUSE"`. */
    code: Schema.optional(Schema.String),
    detail: Schema.String
  }
) {
  readonly [TypeId]: TypeId = TypeId
  get message(): string {
    return this.reason === "listen_failed"
      ? `The admin API cannot listen on ${this.host}:${this.port}: ${this.detail}`
      : this.reason === "state_file_in_use"
      ? `The state file ${this.path} is another running admin API's (${this.detail}): this tree may be running ` +
        `already, and taking the file over would leave that one unreachable by the CLI`
      : `The admin API cannot write its state file ${this.path}: ${this.detail}`
  }
  get remediation(): string {
    if (this.reason === "state_file_failed") {
      return "Give a state file in a directory that exists and that this process may write to."
    }
    if (this.reason === "state_file_in_use") {
      return "Stop the process holding it first (its pid is above; agent-supervisor status shows its tree; " +
        "agent-supervisor up, and a program under NodeRuntime.runMain, stop on SIGTERM). " +
        "A second tree from the same file would run the same agents again, under the same names and on the same " +
        "store: for another tree, copy the file under another name (its state file is its own) and give its " +
        "agents other names and another store (a program of its own: AdminApi.layer's stateFile)."
    }
    switch (this.code) {
      case "EADDRINUSE":
        return `Another process listens on port ${this.port}: choose another port, or 0 for any free one.`
      case "EACCES":
        return `Ports below 1024 need privileges: choose a port from 1024 up, or 0 for any free one.`
      case "EADDRNOTAVAIL":
      case "ENOTFOUND":
        return `"${this.host}" is not an address of this machine: use "127.0.0.1" (the default) or one it has.`
      default:
        return "Check the host and port given to the admin API."
    }
  }
}

/**
 * True for an {@link AdminApiError}.
 *
 * @internal
 */
export const isAdminApiError = (u: unknown): u is AdminApiError => Predicate.isTagged(u, "AdminApiError")

/**
 * The sections of a tree file for those who operate it: `admin`, the admin API and dashboard that
 * `agent-supervisor up` serves, `logs`, the rotated files of the agents' stderr (and of `up`'s own log), and
 * `metrics`, where `up` exports metrics and spans.
 *
 * @internal
 */
import * as Schema from "effect/Schema"
import { Port, Token } from "../admin/options.js"
import { DEFAULT_KEEP, DEFAULT_MAX_BYTES, MAX_KEEP, MIN_MAX_BYTES } from "../logFiles/settings.js"
import { DurationInput } from "../schema.js"
import { optional, required, says } from "./storeSchema.js"

/** `admin`: where `agent-supervisor up` serves the admin API and dashboard. */
export const AdminSection = Schema.Struct({
  enabled: optional(
    Schema.Boolean.annotations(says("must be true or false")),
    "Serve the admin API and dashboard. true by default."
  ),
  host: optional(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a host name or address" })),
    `The address to listen on. "127.0.0.1" by default: only this machine reaches it.`
  ),
  port: optional(Port, "The port; 0 takes any free one (printed, and in the state file). 0 by default."),
  token: optional(
    Token,
    "The bearer token of state-changing calls: 16 or more visible ASCII characters (write \"${ADMIN_TOKEN}\"). " +
      "Generated at start by default."
  )
}).annotations({
  title: "Admin API",
  description: "The admin API and dashboard of `agent-supervisor up`; its state file beside this file holds the " +
    "URL and token for the CLI (mode 0600)."
})
export type AdminSection = typeof AdminSection.Type

const whole = (min: number, max: number, message: string) =>
  Schema.Number.pipe(
    Schema.filter((n) => Number.isSafeInteger(n) && n >= min && n <= max, {
      message: () => message,
      jsonSchema: { type: "integer", minimum: min, maximum: max }
    })
  )

/** `logs`: `Supervisor.Options.logs` (`LogFiles.Options`), as a file writes it. */
export const LogsSection = Schema.Struct({
  dir: required(
    Schema.String.pipe(Schema.minLength(1, { message: () => "must be a directory" })),
    "Where the files go, relative to this file's directory; made when missing. One file per agent: NAME.log."
  ),
  maxBytes: optional(
    whole(MIN_MAX_BYTES, Number.MAX_SAFE_INTEGER, `must be a whole number of bytes of at least ${MIN_MAX_BYTES}`),
    `A file is rotated (NAME.log.1, .2, ...) before it would pass this size. ${DEFAULT_MAX_BYTES} (10 MiB) by default.`
  ),
  keep: optional(
    whole(0, MAX_KEEP, `must be a whole number from 0 to ${MAX_KEEP}`),
    `Rotated files kept beside the current one; older ones are deleted. ${DEFAULT_KEEP} by default.`
  )
}).annotations({
  title: "Log files",
  description: "Each agent's stderr in a rotated file, written off its pipe; `agent-supervisor up` writes its own " +
    "log to agent-supervisor.log there too."
})

const Text = (what: string) => Schema.String.pipe(Schema.minLength(1, { message: () => `must be ${what}` }))

/** `metrics.otlp`: `Metrics.layerOtel`'s options, as a file writes them. */
const OtlpSection = Schema.Struct({
  url: required(
    Text("a URL").pipe(Schema.pattern(/^https?:\/\//, { message: () => "must be an http:// or https:// URL" })),
    "The collector's OTLP/HTTP endpoint: metrics go to <url>/v1/metrics, spans to <url>/v1/traces (JSON)."
  ),
  serviceName: required(Text("a name"), "The service the metrics and spans are reported under."),
  serviceVersion: optional(Text("a version"), "Reported with the service name. None by default."),
  exportInterval: optional(DurationInput, "How often metrics are exported. 10 seconds by default."),
  headers: optional(
    Schema.Record({ key: Schema.String, value: Schema.String }).annotations(
      says("must be a mapping of header names to text")
    ),
    "Sent with every export (an API key: write \"${OTLP_API_KEY}\")."
  )
})

/** `metrics`: what `agent-supervisor up` exports. */
export const MetricsSection = Schema.Struct({
  otlp: optional(OtlpSection, "Export metrics and spans over OTLP/HTTP (needs @effect/opentelemetry). None by default.")
}).annotations({
  title: "Metrics",
  description: "Where `agent-supervisor up` exports its metrics and spans; the admin API serves /metrics regardless."
})

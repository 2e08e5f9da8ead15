/**
 * The options of the OTLP export (`Metrics.layerOtel`), and their decoding. Apart from the exporter so that the
 * core can name them without loading `@effect/opentelemetry`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { ConfigError } from "../../Errors.js"
import type { DurationInput } from "../durationText.js"
import * as Edge from "../schema.js"

/**
 * Options of the OTLP export. @internal
 */
export interface OtelOptions {
  /**
   * The collector's OTLP/HTTP endpoint (`http://localhost:4318`, as `OTEL_EXPORTER_OTLP_ENDPOINT`): metrics are
   * posted to `<url>/v1/metrics`, spans to `<url>/v1/traces`, as JSON.
   */
  readonly url: string
  /** The `service.name` of the resource every metric and span is reported under. */
  readonly serviceName: string
  /** Its `service.version`. */
  readonly serviceVersion?: string | undefined
  /** How often metrics and spans are sent (and once more when the layer's scope closes). 10 seconds by default. */
  readonly exportInterval?: DurationInput | undefined
  /** Headers sent with every export (an API key, say). */
  readonly headers?: Readonly<Record<string, string>> | undefined
}

/** The options decoded. @internal */
export interface OtelSettings {
  /** Without a trailing slash. */
  readonly url: string
  readonly serviceName: string
  readonly serviceVersion: string | undefined
  readonly exportInterval: Duration.Duration
  readonly headers: Readonly<Record<string, string>>
}

/** The export interval when none is given. @internal */
export const DEFAULT_EXPORT_INTERVAL: Duration.Duration = Duration.seconds(10)

const isHttpUrl = (text: string): boolean => {
  try {
    const url = new URL(text)
    return (url.protocol === "http:" || url.protocol === "https:") && url.search === "" && url.hash === ""
  } catch {
    return false
  }
}

const OtelOptionsSchema = Schema.Struct({
  url: Schema.String.pipe(
    Schema.filter(isHttpUrl, {
      message: () => `must be an http(s) URL with no query, such as "http://localhost:4318"`
    })
  ),
  serviceName: Schema.String.pipe(Schema.filter((name) => name.trim() !== "", { message: () => "must not be empty" })),
  // Exact: keys set to `undefined` are dropped before the decode (`undefinedIsAbsent`).
  serviceVersion: Schema.optionalWith(Schema.String, { exact: true }),
  exportInterval: Schema.optionalWith(
    Edge.DurationInput.pipe(
      Schema.filter((duration) => Duration.isFinite(duration) && Duration.greaterThan(duration, Duration.zero), {
        message: () => "must be more than 0 and finite"
      })
    ),
    { exact: true }
  ),
  headers: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { exact: true })
})

/** Decodes the options: every problem in one `ConfigError`, each with its field. @internal */
export const decode = (options: OtelOptions): Effect.Effect<OtelSettings, ConfigError> =>
  Effect.map(
    Edge.decodeOptions(OtelOptionsSchema, options, { whole: "(OTLP options)", undefinedIsAbsent: true }),
    (decoded) => ({
      url: decoded.url.replace(/\/+$/, ""),
      serviceName: decoded.serviceName,
      serviceVersion: decoded.serviceVersion,
      exportInterval: decoded.exportInterval ?? DEFAULT_EXPORT_INTERVAL,
      headers: decoded.headers ?? {}
    })
  )

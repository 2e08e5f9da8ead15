/**
 * The OTLP export of the supervisor's metrics and spans, through `@effect/opentelemetry` (an optional peer
 * dependency: install it to use this module). `Metrics.layerOtel` loads this module when its layer is built, so
 * that an application that does not export never loads the package; import it directly to fail at start-up
 * instead when the package is missing.
 *
 * @since 0.1.0
 */
import type * as Layer from "effect/Layer"
import type { ConfigError } from "../Errors.js"
import * as internal from "../internal/metrics/otel.js"
import type * as internalOptions from "../internal/metrics/otelOptions.js"

/**
 * Options of the OTLP export: the collector's OTLP/HTTP endpoint (`url`: metrics go to `<url>/v1/metrics`, spans
 * to `<url>/v1/traces`, as JSON), the `serviceName` (and `serviceVersion`) they are reported under,
 * `exportInterval` (10 seconds by default) and `headers` sent with every export.
 *
 * @since 0.1.0
 * @category models
 */
export type OtelOptions = internalOptions.OtelOptions

/**
 * Exports every metric of Effect's global registry (the supervisor's, see `Metrics`, and the application's own)
 * and every span of the program it is provided to (it installs a tracer: request spans are made from then on),
 * every `exportInterval` and once more when its scope closes. Its HTTP client is `fetch`'s: it needs nothing else.
 * An export that fails is retried, then the exporter pauses a minute: a missing collector never fails the program.
 * Bad options fail the layer with a `ConfigError` naming each field.
 *
 * @since 0.1.0
 * @category layers
 * @example
 * ```ts
 * import * as MetricsOtel from "effect-agent-supervisor/Metrics/Otel"
 *
 * const program = Supervisor.make(options).pipe(
 *   Effect.provide(MetricsOtel.layer({ url: "http://localhost:4318", serviceName: "agents" }))
 * )
 * ```
 */
export const layer: (options: OtelOptions) => Layer.Layer<never, ConfigError> = internal.layer

/**
 * The OTLP export: Effect's global metric registry and the spans of the program, posted as OTLP/HTTP JSON by
 * `@effect/opentelemetry`'s pure-HTTP exporters over `fetch` (no OpenTelemetry SDK). The only module that imports
 * `@effect/opentelemetry`, an optional peer: only `Metrics/Otel.ts` imports it, and the core loads that one when
 * `Metrics.layerOtel` is built.
 *
 * @internal
 */
import * as OtlpMetrics from "@effect/opentelemetry/OtlpMetrics"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { ConfigError } from "../../Errors.js"
import * as Options from "./otelOptions.js"

/**
 * Exports every metric of the global registry to `<url>/v1/metrics` and installs a tracer whose spans go to
 * `<url>/v1/traces`, every `exportInterval` and once more when the layer's scope closes. Needs nothing: its HTTP
 * client is `fetch`'s. @internal
 */
export const layer = (options: Options.OtelOptions): Layer.Layer<never, ConfigError> =>
  Layer.unwrapEffect(Effect.map(Options.decode(options), (settings) => {
    const resource = {
      serviceName: settings.serviceName,
      ...(settings.serviceVersion !== undefined ? { serviceVersion: settings.serviceVersion } : {})
    }
    const common = { resource, headers: settings.headers, exportInterval: settings.exportInterval }
    return Layer.mergeAll(
      OtlpMetrics.layer({ url: `${settings.url}/v1/metrics`, ...common }),
      OtlpTracer.layer({ url: `${settings.url}/v1/traces`, ...common })
    ).pipe(Layer.provide(OtlpSerialization.layerJson), Layer.provide(FetchHttpClient.layer))
  }))

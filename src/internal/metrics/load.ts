/**
 * The OTLP exporter module (`Metrics/Otel.ts`), loaded when `Metrics.layerOtel` is built: an application that
 * never exports never loads `@effect/opentelemetry`, an optional peer. The core's only edge to it, and no load-time
 * cycle (`dpdm` is told `--skip-dynamic-imports circular`). A module that does not load is a broken install: it
 * fails the layer with a `ConfigError` that says what to install.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import { ConfigError } from "../../Errors.js"
import { installCommand } from "../peers.js"
import { messageOf } from "../standalone/messageOf.js"

/** `Metrics/Otel.ts`, loaded. @internal */
export const otel = Effect.tryPromise({
  try: () => import("../../Metrics/Otel.js"),
  catch: (error) =>
    new ConfigError({
      field: "Metrics.layerOtel",
      rule: "needs the optional peer dependency @effect/opentelemetry, which did not load (" +
        messageOf(error).split("\n")[0] +
        `): install it beside effect-agent-supervisor (${installCommand("@effect/opentelemetry")})`
    })
})

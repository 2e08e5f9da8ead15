/**
 * `Metrics.layerOtel` against a collector stand-in: a real HTTP server in this process that takes OTLP/HTTP JSON
 * on /v1/metrics and /v1/traces. A real agent's request must arrive as the agent-tagged metrics and as a request
 * span with the agent and the request's id, under the resource and headers given.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as AgentSupervisor from "../src/Agent/AgentSupervisor.js"
import * as Metrics from "../src/Metrics.js"
import * as MetricsOtel from "../src/Metrics/Otel.js"
import { agentConfig, takeUntil, TestLive } from "./support.js"

interface Received {
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: any
}

interface Attribute {
  readonly key: string
  readonly value: { readonly stringValue?: string; readonly intValue?: number; readonly doubleValue?: number }
}

/** A collector stand-in on a free port: every request it takes, in order (its body parsed as JSON). */
const collector = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly received: Queue.Queue<Received>; readonly server: http.Server }>(
    (resume) => {
      const received = Effect.runSync(Queue.unbounded<Received>())
      const server = http.createServer((request, response) => {
        const chunks: Array<Buffer> = []
        request.on("data", (chunk: Buffer) => chunks.push(chunk))
        request.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          Queue.unsafeOffer(received, { path: request.url ?? "", headers: request.headers, body: JSON.parse(text) })
          response.writeHead(200, { "content-type": "application/json" }).end("{}")
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, received, server }))
      })
    }
  ),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

const attributes = (list: ReadonlyArray<Attribute>): Record<string, unknown> =>
  Object.fromEntries(list.map((a) => [a.key, a.value.stringValue ?? a.value.intValue ?? a.value.doubleValue]))

/** The data points of metric `name` in an OTLP metrics body, with their attributes as a record. */
const points = (
  body: any,
  name: string
): Array<{ readonly attributes: Record<string, unknown>; readonly point: any }> =>
  (body.resourceMetrics ?? []).flatMap((rm: any) =>
    rm.scopeMetrics.flatMap((sm: any) =>
      sm.metrics.filter((m: any) => m.name === name).flatMap((m: any) =>
        (m.sum ?? m.gauge ?? m.histogram).dataPoints.map((point: any) => ({
          attributes: attributes(point.attributes),
          point
        }))
      )
    )
  )

/** The spans in an OTLP traces body, with their attributes as a record. */
const spansOf = (body: any): Array<{ readonly name: string; readonly attributes: Record<string, unknown> }> =>
  (body.resourceSpans ?? []).flatMap((rs: any) =>
    rs.scopeSpans.flatMap((ss: any) =>
      ss.spans.map((span: any) => ({ name: span.name, attributes: attributes(span.attributes) }))
    )
  )

const resourceOf = (body: any, key: "resourceMetrics" | "resourceSpans") => attributes(body[key][0].resource.attributes)

describe.sequential("Metrics.layerOtel", () => {
  it.scopedLive("exports the agent's metrics and its request spans to an OTLP/HTTP collector", () =>
    Effect.gen(function*() {
      const { received, url } = yield* collector
      const name = `metrics-otel-${process.pid}`
      yield* Effect.gen(function*() {
        const agent = yield* AgentSupervisor.make(agentConfig("echo", { name }))
        yield* agent.handleEvent({ echo: 1 })
        yield* agent.handleEvent({ echo: 2 })

        // Every span exported, whatever the order of the exports.
        const spans: Array<{ readonly name: string; readonly attributes: Record<string, unknown> }> = []
        let traces: Received | undefined
        const collect = (r: Received) => {
          if (r.path !== "/v1/traces") return
          traces = r
          spans.push(...spansOf(r.body))
        }

        // Metrics: the exporter sends the whole registry every interval; wait for one that has this agent's.
        const requestsOk = (r: Received) => {
          collect(r)
          return r.path === "/v1/metrics" &&
            points(r.body, "agent_supervisor_requests_total").some((p) =>
              p.attributes.agent === name && p.attributes.outcome === "ok" && p.point.asDouble === 2
            )
        }
        const metrics = (yield* takeUntil(received, requestsOk)).pop()!
        assert.strictEqual(metrics.headers["x-api-key"], "secret")
        assert.strictEqual(metrics.headers["content-type"], "application/json")
        assert.deepInclude(resourceOf(metrics.body, "resourceMetrics"), {
          "service.name": "agents-under-test",
          "service.version": "1.2.3"
        })
        const latency = points(metrics.body, "agent_supervisor_request_duration_seconds")
          .find((p) => p.attributes.agent === name)
        assert.isDefined(latency)
        assert.strictEqual(Number(latency!.point.count), 2)
        assert.deepStrictEqual(latency!.attributes, { agent: name })
        const ready = points(metrics.body, "agent_supervisor_time_to_ready_seconds").find((p) =>
          p.attributes.agent === name
        )
        assert.strictEqual(Number(ready?.point.count), 1)
        const description = metrics.body.resourceMetrics[0].scopeMetrics[0].metrics
          .find((m: any) => m.name === "agent_supervisor_requests_total").description
        assert.match(description, /Requests to agents/)

        // Spans: each request's, named, with the agent and the id it was sent under; and the agent's start.
        const requestSpans = () =>
          spans.filter((s) => s.name === "AgentSupervisor.handleEvent" && s.attributes.agent === name)
        if (requestSpans().length < 2) {
          yield* takeUntil(received, (r) => {
            collect(r)
            return requestSpans().length === 2
          })
        }
        assert.strictEqual(traces!.headers["x-api-key"], "secret")
        assert.deepInclude(resourceOf(traces!.body, "resourceSpans"), { "service.name": "agents-under-test" })
        const requests = requestSpans()
        assert.strictEqual(requests.length, 2)
        for (const span of requests) assert.match(String(span.attributes["request.id"]), /^\d+$/)
        assert.notStrictEqual(requests[0].attributes["request.id"], requests[1].attributes["request.id"])
        assert.isTrue(spans.some((s) => s.name === "AgentSupervisor.make" && s.attributes.agent === name))
      }).pipe(
        Effect.provide(Metrics.layerOtel({
          url,
          serviceName: "agents-under-test",
          serviceVersion: "1.2.3",
          exportInterval: "100 millis",
          headers: { "x-api-key": "secret" }
        }))
      )
    }).pipe(Effect.provide(TestLive)))

  it.effect("bad options fail the layer with a ConfigError naming each field", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Effect.provide(
          Effect.void,
          Metrics.layerOtel({ url: "localhost:4318?x=1", serviceName: " ", exportInterval: "soon" as never })
        )
      )
      assert.strictEqual(error._tag, "ConfigError")
      assert.deepStrictEqual(error.problems.map((p) => p.field), ["url", "serviceName", "exportInterval"])
      // The module users may import directly decodes the same way.
      const direct = yield* Effect.flip(
        Effect.provide(Effect.void, MetricsOtel.layer({ url: "ftp://x", serviceName: "s" }))
      )
      assert.deepStrictEqual(direct.problems.map((p) => p.field), ["url"])
    }))
})

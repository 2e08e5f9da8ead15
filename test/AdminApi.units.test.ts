/**
 * The admin API's pure parts: the Prometheus rendering of a known set of metrics, the token (generated, read,
 * compared in constant time), plain JSON of the library's values, SSE frames, the options' decoding.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as crypto from "node:crypto"
import { vi } from "vitest"
import { SupervisorIntensityError } from "../src/Errors.js"
import * as Auth from "../src/internal/admin/auth.js"
import * as Guard from "../src/internal/admin/guard.js"
import * as Json from "../src/internal/admin/json.js"
import * as Options from "../src/internal/admin/options.js"
import * as Prometheus from "../src/internal/admin/prometheus.js"
import { urlOf } from "../src/internal/admin/server.js"
import * as Sse from "../src/internal/admin/sse.js"
import { failureOf } from "./support.js"

// Every comparison of the token must go through `timingSafeEqual`: watched here, still the real one.
vi.mock("node:crypto", async (importOriginal) => {
  const original = await importOriginal<typeof import("node:crypto")>()
  return { ...original, timingSafeEqual: vi.fn(original.timingSafeEqual) }
})

const pair = MetricPair.unsafeMake
const labels = (entries: Record<string, string>) => Object.entries(entries).map(([k, v]) => MetricLabel.make(k, v))

describe("AdminApi Prometheus rendering", () => {
  it("counters, gauges, labels, help and escaping, families sorted and declared once", () => {
    const requests = MetricKey.counter("http.requests-total", {
      description: "Requests\nby route \\ method",
      incremental: true
    })
    const text = Prometheus.render([
      pair(
        MetricKey.taggedWithLabels(requests, labels({ route: "/a\"b", "method-name": "GET" })),
        MetricState.counter(3)
      ),
      pair(MetricKey.taggedWithLabels(requests, labels({ route: "line\nbreak\\" })), MetricState.counter(1)),
      pair(MetricKey.counter("updown"), MetricState.counter(-2)),
      pair(MetricKey.gauge("1st_gauge", { bigint: true }), MetricState.gauge(BigInt("12345678901234567890"))),
      pair(
        MetricKey.taggedWithLabels(MetricKey.gauge("temp"), labels({ __reserved: "x" })),
        MetricState.gauge(Number.NaN)
      )
    ])
    assert.strictEqual(
      text,
      [
        "# TYPE _1st_gauge gauge",
        "_1st_gauge 12345678901234567890",
        "# HELP http_requests_total Requests\\nby route \\\\ method",
        "# TYPE http_requests_total counter",
        "http_requests_total{route=\"/a\\\"b\",method_name=\"GET\"} 3",
        "http_requests_total{route=\"line\\nbreak\\\\\"} 1",
        "# TYPE temp gauge",
        "temp{_reserved=\"x\"} NaN",
        "# TYPE updown gauge",
        "updown -2",
        ""
      ].join("\n")
    )
  })

  it("a histogram: cumulative buckets with le, +Inf once, sum and count", () => {
    const key = MetricKey.histogram("latency", MetricBoundaries.fromIterable([0.5, 1]), "Latency in seconds")
    const state = MetricState.histogram({
      buckets: [[0.5, 1], [1, 3], [Number.POSITIVE_INFINITY, 4]],
      count: 4,
      min: 0.1,
      max: 7,
      sum: 9.25
    })
    const noInf = MetricState.histogram({ buckets: [[2, 1]], count: 2, min: 1, max: 5, sum: 6 })
    const text = Prometheus.render([
      pair(MetricKey.taggedWithLabels(key, labels({ agent: "a" })), state),
      pair(MetricKey.taggedWithLabels(key, labels({ agent: "b" })), noInf)
    ])
    assert.strictEqual(
      text,
      [
        "# HELP latency Latency in seconds",
        "# TYPE latency histogram",
        "latency_bucket{agent=\"a\",le=\"0.5\"} 1",
        "latency_bucket{agent=\"a\",le=\"1\"} 3",
        "latency_bucket{agent=\"a\",le=\"+Inf\"} 4",
        "latency_sum{agent=\"a\"} 9.25",
        "latency_count{agent=\"a\"} 4",
        "latency_bucket{agent=\"b\",le=\"2\"} 1",
        "latency_bucket{agent=\"b\",le=\"+Inf\"} 2",
        "latency_sum{agent=\"b\"} 6",
        "latency_count{agent=\"b\"} 2",
        ""
      ].join("\n")
    )
  })

  it("a frequency is a counter per value (`key`), a summary has quantiles (NaN without samples), sum, count", () => {
    const summary = MetricKey.summary({
      name: "sizes",
      maxAge: "1 minute",
      maxSize: 10,
      error: 0.01,
      quantiles: [0.5, 0.99]
    })
    const text = Prometheus.render([
      pair(
        MetricKey.frequency("exits", { description: "exit classes" }),
        MetricState.frequency(new Map([["normal", 2], ["abnormal", 1]]))
      ),
      pair(
        summary,
        MetricState.summary({
          error: 0.01,
          quantiles: [[0.5, Option.some(3)], [0.99, Option.none()]],
          count: 5,
          min: 1,
          max: 9,
          sum: 20
        })
      )
    ])
    assert.strictEqual(
      text,
      [
        "# HELP exits exit classes",
        "# TYPE exits counter",
        "exits{key=\"normal\"} 2",
        "exits{key=\"abnormal\"} 1",
        "# TYPE sizes summary",
        "sizes{quantile=\"0.5\"} 3",
        "sizes{quantile=\"0.99\"} NaN",
        "sizes_sum 20",
        "sizes_count 5",
        ""
      ].join("\n")
    )
  })

  it("a name taken by another type gets its type as a suffix; no metrics, no text", () => {
    const text = Prometheus.render([
      pair(MetricKey.gauge("dup"), MetricState.gauge(1)),
      pair(MetricKey.counter("dup", { incremental: true }), MetricState.counter(2))
    ])
    assert.strictEqual(text, "# TYPE dup gauge\ndup 1\n# TYPE dup_counter counter\ndup_counter 2\n")
    assert.strictEqual(Prometheus.render([]), "")
  })

  it.effect("real metrics of the registry, read with Metric.unsafeSnapshot", () =>
    Effect.gen(function*() {
      const name = `units_${Date.now()}`
      const histogram = Metric.histogram(`${name}_latency`, MetricBoundaries.linear({ start: 0, width: 10, count: 4 }))
      yield* Effect.forEach([5, 15, 15, 100], (v) => Metric.update(Metric.tagged(histogram, "agent", "x"), v))
      yield* Metric.update(Metric.frequency(`${name}_reasons`), "exit")
      const mine = Metric.unsafeSnapshot().filter((p) => p.metricKey.name.startsWith(name))
      const lines = Prometheus.render(mine).trimEnd().split("\n")
      assert.deepStrictEqual(lines, [
        `# TYPE ${name}_latency histogram`,
        `${name}_latency_bucket{agent="x",le="0"} 0`,
        `${name}_latency_bucket{agent="x",le="10"} 1`,
        `${name}_latency_bucket{agent="x",le="20"} 3`,
        `${name}_latency_bucket{agent="x",le="+Inf"} 4`,
        `${name}_latency_sum{agent="x"} 135`,
        `${name}_latency_count{agent="x"} 4`,
        `# TYPE ${name}_reasons counter`,
        `${name}_reasons{key="exit"} 1`
      ])
    }))

  it("names, label names and values as the format allows them", () => {
    assert.strictEqual(Prometheus.metricName("a.b-c/d:e"), "a_b_c_d:e")
    assert.strictEqual(Prometheus.metricName("9lives"), "_9lives")
    assert.strictEqual(Prometheus.metricName(""), "_")
    assert.strictEqual(Prometheus.labelName("a:b"), "a_b")
    assert.strictEqual(Prometheus.labelName("__name__"), "_name__")
    assert.strictEqual(Prometheus.escapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd")
    assert.deepStrictEqual(
      [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 0.1, 1e21].map(Prometheus.formatValue),
      ["+Inf", "-Inf", "NaN", "0.1", "1e+21"]
    )
  })

  it("a tag named like a bucket's le keeps its own value; the series' other samples are unchanged", () => {
    const key = MetricKey.histogram("h", MetricBoundaries.fromIterable([1]))
    const text = Prometheus.render([
      pair(
        MetricKey.taggedWithLabels(key, labels({ le: "mine", agent: "a\"1" })),
        MetricState.histogram({ buckets: [[1, 2]], count: 3, min: 0, max: 2, sum: 4 })
      )
    ])
    assert.strictEqual(
      text,
      [
        "# TYPE h histogram",
        "h_bucket{le=\"mine\",agent=\"a\\\"1\"} 2",
        "h_bucket{le=\"mine\",agent=\"a\\\"1\"} 3",
        "h_sum{le=\"mine\",agent=\"a\\\"1\"} 4",
        "h_count{le=\"mine\",agent=\"a\\\"1\"} 3",
        ""
      ].join("\n")
    )
  })

  it.effect("renderChunked: the same text as render, a chunk of metrics per turn of the event loop", () =>
    Effect.gen(function*() {
      const key = MetricKey.histogram("latency", MetricBoundaries.linear({ start: 0, width: 1, count: 5 }))
      const pairs = Array.from({ length: Prometheus.RENDER_CHUNK * 2 + 7 }, (_, i) =>
        pair(
          MetricKey.taggedWithLabels(key, labels({ agent: `a${i}` })),
          MetricState.histogram({ buckets: [[0, i], [1, i + 1]], count: i + 2, min: 0, max: 1, sum: i })
        ))
      // A turn of the loop between chunks: what I/O would run meanwhile runs.
      const immediates: Array<number> = []
      const watch = () => {
        immediates.push(Date.now())
        if (immediates.length < 10) setImmediate(watch)
      }
      setImmediate(watch)
      const chunked = yield* Prometheus.renderChunked(pairs)
      assert.strictEqual(chunked, Prometheus.render(pairs))
      // Three chunks: the loop came round at least twice while they were formatted.
      assert.isAtLeast(immediates.length, 2)
      assert.strictEqual(yield* Prometheus.renderChunked([]), "")
    }))
})

describe("AdminApi token", () => {
  it("a generated token: 32 random bytes as base64url, a new one each time", () => {
    const a = Redacted.value(Auth.generate())
    assert.match(a, /^[A-Za-z0-9_-]{43}$/)
    assert.strictEqual(Buffer.from(a, "base64url").length, 32)
    assert.notStrictEqual(a, Redacted.value(Auth.generate()))
  })

  it("compared in constant time: both hashed, then timingSafeEqual on equal lengths, whatever was given", () => {
    const token = Redacted.make("the-right-token-0123456789")
    const spy = vi.mocked(crypto.timingSafeEqual)
    spy.mockClear()
    assert.isTrue(Auth.matches(token, "the-right-token-0123456789"))
    for (
      const wrong of ["", "x", "the-right-token-012345678", "the-right-token-01234567890", "THE-RIGHT-TOKEN-0123456789"]
    ) {
      assert.isFalse(Auth.matches(token, wrong), wrong)
    }
    assert.strictEqual(spy.mock.calls.length, 6)
    for (const [a, b] of spy.mock.calls) {
      assert.strictEqual((a as Buffer).length, 32)
      assert.strictEqual((b as Buffer).length, 32)
    }
  })

  it("read from a Bearer header (scheme case-insensitive); anything else is refused with why", () => {
    assert.strictEqual(Auth.bearerOf("Bearer abc"), "abc")
    assert.strictEqual(Auth.bearerOf("bearer   abc "), "abc")
    for (const header of [undefined, "Basic abc", "Bearer", "Bearer a b", "abc"]) {
      assert.isUndefined(Auth.bearerOf(header), String(header))
    }
    const token = Redacted.make("the-right-token-0123456789")
    assert.isUndefined(Auth.refusal(token, "Bearer the-right-token-0123456789"))
    assert.include(Auth.refusal(token, undefined)!, "needs the admin token")
    assert.include(Auth.refusal(token, "Basic x")!, "Bearer")
    assert.include(Auth.refusal(token, "Bearer wrong")!, "not the admin token")
  })
})

describe("AdminApi plain JSON and frames", () => {
  it("Options become values or null, errors their fields with message and remediation, never a stack", () => {
    const error = new SupervisorIntensityError({ supervisor: "root", maxRestarts: 1, windowMillis: 5000 })
    const value = Json.plain({ a: Option.some(Option.none()), b: [Option.some(2)], n: BigInt(7), error })
    assert.deepStrictEqual(value, {
      a: null,
      b: [2],
      n: 7,
      error: {
        _tag: "SupervisorIntensityError",
        supervisor: "root",
        maxRestarts: 1,
        windowMillis: 5000,
        message: error.message,
        remediation: error.remediation
      }
    })
    assert.notInclude(Json.stringify(new Error("boom")), "stack")
  })

  it("frames: `event:` without line breaks, `data:` one line of JSON, a blank line after", () => {
    assert.strictEqual(
      Sse.eventFrame("Child\nStarted", { x: "a\nb" }),
      "event: ChildStarted\ndata: {\"x\":\"a\\nb\"}\n\n"
    )
    assert.strictEqual(Sse.dataFrame({ pid: 1 }), "data: {\"pid\":1}\n\n")
  })
})

describe("AdminApi guard", () => {
  const token = Redacted.make("the-right-token-0123456789")
  const run = (
    request: Request,
    app: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown>,
    loopbackOnly = false
  ) => {
    const logged: Array<string> = []
    const logger = Logger.make(({ cause, message }) => logged.push(`${String(message)} ${Cause.pretty(cause)}`))
    return Guard.make(token, loopbackOnly)(app as any).pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, HttpServerRequest.fromWeb(request)),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Effect.flatMap((response) =>
        Effect.promise(() => HttpServerResponse.toWeb(response).text().then((text) => ({ response, text })))
      ),
      Effect.map((result) => ({ ...result, logged }))
    )
  }

  it.effect("a defect is a 500 with a JSON body; its details only in the log", () =>
    Effect.gen(function*() {
      const { logged, response, text } = yield* run(
        new Request("http://x/api/tree"),
        Effect.die(new Error("secret detail"))
      )
      assert.strictEqual(response.status, 500)
      assert.deepStrictEqual(JSON.parse(text)._tag, "InternalError")
      assert.notInclude(text, "secret detail")
      assert.isTrue(logged.some((line) => line.includes("secret detail")))
    }))

  it.effect("a state-changing call without the token never reaches the app", () =>
    Effect.gen(function*() {
      let reached = false
      const app = Effect.sync(() => {
        reached = true
        return HttpServerResponse.empty()
      })
      const { response } = yield* run(new Request("http://x/api/anything", { method: "DELETE" }), app)
      assert.deepStrictEqual([response.status, reached], [401, false])
      const { response: ok } = yield* run(
        new Request("http://x/api/anything", {
          method: "DELETE",
          headers: { authorization: "Bearer the-right-token-0123456789" }
        }),
        app
      )
      assert.deepStrictEqual([ok.status, reached], [204, true])
    }))
})

describe("AdminApi guard: the Host header", () => {
  it.effect("on loopback, only requests for this machine are answered (no DNS rebinding)", () =>
    Effect.gen(function*() {
      const app = Effect.succeed(HttpServerResponse.empty())
      const status = (host: string, loopbackOnly: boolean) =>
        Effect.map(
          Guard.make(Redacted.make("the-right-token-0123456789"), loopbackOnly)(app as any).pipe(
            Effect.provideService(
              HttpServerRequest.HttpServerRequest,
              HttpServerRequest.fromWeb(new Request("http://x/api/tree")).modify({ headers: { host } as any })
            )
          ),
          (response) => (response as HttpServerResponse.HttpServerResponse).status
        )
      for (const host of ["localhost:8080", "127.0.0.1:1", "127.1.2.3", "[::1]:9", "LOCALHOST"]) {
        assert.strictEqual(yield* status(host, true), 204, host)
      }
      for (const host of ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "192.168.1.2:80"]) {
        assert.strictEqual(yield* status(host, true), 403, host)
        assert.strictEqual(yield* status(host, false), 204, host)
      }
    }))
})

describe("AdminApi options", () => {
  it.effect("defaults: 127.0.0.1, port 0, a token to generate, no state file, keep-alive every 15 s", () =>
    Effect.gen(function*() {
      const settings = yield* Options.decode(undefined)
      assert.deepStrictEqual(
        [settings.host, settings.port, settings.token, settings.stateFile, Duration.toMillis(settings.keepAlive)],
        ["127.0.0.1", 0, undefined, undefined, 15000]
      )
      const given = yield* Options.decode({ token: "0123456789abcdef", stateFile: "rel/state.json", port: undefined })
      assert.strictEqual(Redacted.value(given.token!), "0123456789abcdef")
      assert.strictEqual(given.stateFile, `${process.cwd()}/rel/state.json`)
    }))

  it.effect("each bad option is a problem of one ConfigError, a token shown as <redacted>", () =>
    Effect.gen(function*() {
      const error = failureOf(yield* Effect.exit(Options.decode({ port: 1.5, token: "with a space 0123" })))
      assert.deepStrictEqual(error.problems.map((p) => p.field), ["port", "token"])
      assert.notInclude(error.message, "with a space")
      assert.include(error.message, "HTTP header")
    }))

  it("the URL a local client uses: a wildcard address through loopback, IPv6 in brackets", () => {
    assert.strictEqual(urlOf("127.0.0.1", 80), "http://127.0.0.1:80")
    assert.strictEqual(urlOf("0.0.0.0", 81), "http://127.0.0.1:81")
    assert.strictEqual(urlOf("::", 82), "http://[::1]:82")
    assert.strictEqual(urlOf("::1", 83), "http://[::1]:83")
  })
})

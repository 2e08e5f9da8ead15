/**
 * Effect metrics in the Prometheus text exposition format, version 0.0.4: one family per metric name (`# HELP`
 * from the metric's description, `# TYPE`), one sample per line, a metric's tags as labels.
 *
 * Types follow `@effect/opentelemetry`'s export: a counter made with `incremental: true` is a `counter`, any other
 * counter a `gauge` (it may go down); a gauge a `gauge`; a histogram a `histogram` (`_bucket` with cumulative
 * counts and `le`, `+Inf` included, `_sum`, `_count`); a summary a `summary` (`quantile` labels, `NaN` for a
 * quantile without samples, `_sum`, `_count`); a frequency a `counter` with one sample per value seen, the value in
 * a `key` label.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricLabel from "effect/MetricLabel"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"

/** The `Content-Type` of the format. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

type Kind = "counter" | "gauge" | "histogram" | "summary"

interface Family {
  readonly name: string
  readonly kind: Kind
  readonly help: string | undefined
  readonly lines: Array<string>
}

const sanitize = (name: string, invalid: RegExp): string => {
  const cleaned = name.replace(invalid, "_")
  return cleaned === "" || /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned
}

/** A metric name as the format allows it (`[a-zA-Z_:][a-zA-Z0-9_:]*`): every other character becomes `_`. */
export const metricName = (name: string): string => sanitize(name, /[^a-zA-Z0-9_:]/g)

/**
 * A label name as the format allows it (`[a-zA-Z_][a-zA-Z0-9_]*`), every other character becoming `_`; a leading
 * `__` (reserved for Prometheus itself) becomes one `_`.
 */
export const labelName = (name: string): string => sanitize(name, /[^a-zA-Z0-9_]/g).replace(/^__+/, "_")

const needsEscape = /[\\\n"]/

/** A label value between double quotes: backslash, double quote and line feed escaped. */
export const escapeLabelValue = (value: string): string =>
  needsEscape.test(value) ? value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"") : value

/** `# HELP` text: backslash and line feed escaped. */
export const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

/** A sample value: Go's float syntax, `+Inf`, `-Inf`, `NaN`; a bigint in full. */
export const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

/**
 * A series' labels, formatted once for all its samples (a histogram has a sample per bucket: formatting its tags
 * for each made a scrape of 1,000 agents' metrics hold the event loop for 60-80 ms): `a="x",b="y"`, a name that
 * comes twice keeping its first value, and the names it has.
 */
interface Labels {
  readonly text: string
  readonly names: ReadonlySet<string>
}

const labelsOf = (tags: ReadonlyArray<MetricLabel.MetricLabel>): Labels => {
  const names = new Set<string>()
  let text = ""
  for (const { key, value } of tags) {
    const clean = cachedLabelName(key)
    if (names.has(clean)) continue
    names.add(clean)
    text += `${text === "" ? "" : ","}${clean}="${escapeLabelValue(value)}"`
  }
  return { text, names }
}

/** Label names are few (the code's, not the data's): each is cleaned once, up to a bound. */
const labelNames = new Map<string, string>()
const cachedLabelName = (name: string): string => {
  let clean = labelNames.get(name)
  if (clean === undefined) {
    clean = labelName(name)
    if (labelNames.size < 1000) labelNames.set(name, clean)
  }
  return clean
}

/** `{a="x",b="y"}` with `extra` last (unless the series has a label of its name), or nothing without labels. */
const braces = (labels: Labels, extra?: readonly [string, string]): string => {
  let text = labels.text
  if (extra !== undefined) {
    const name = cachedLabelName(extra[0])
    if (!labels.names.has(name)) text += `${text === "" ? "" : ","}${name}="${escapeLabelValue(extra[1])}"`
  }
  return text === "" ? "" : `{${text}}`
}

const sample = (name: string, labels: Labels, value: number | bigint, extra?: readonly [string, string]): string =>
  `${name}${braces(labels, extra)} ${formatValue(value)}`

const kindOf = (keyType: MetricKeyType.MetricKeyType<any, any>): Kind => {
  if (MetricKeyType.isCounterKey(keyType)) return keyType.incremental ? "counter" : "gauge"
  if (MetricKeyType.isHistogramKey(keyType)) return "histogram"
  if (MetricKeyType.isSummaryKey(keyType)) return "summary"
  if (MetricKeyType.isFrequencyKey(keyType)) return "counter"
  return "gauge"
}

const histogramLines = (
  lines: Array<string>,
  name: string,
  labels: Labels,
  state: MetricState.MetricState.Histogram
): void => {
  let infinite = false
  const bucket = `${name}_bucket`
  for (const [bound, count] of state.buckets) {
    if (bound === Number.POSITIVE_INFINITY) infinite = true
    lines.push(sample(bucket, labels, count, ["le", formatValue(bound)]))
  }
  if (!infinite) lines.push(sample(bucket, labels, state.count, ["le", "+Inf"]))
  lines.push(sample(`${name}_sum`, labels, state.sum), sample(`${name}_count`, labels, state.count))
}

const summaryLines = (
  lines: Array<string>,
  name: string,
  labels: Labels,
  state: MetricState.MetricState.Summary
): void => {
  for (const [quantile, value] of state.quantiles) {
    lines.push(sample(name, labels, Option.getOrElse(value, () => Number.NaN), ["quantile", formatValue(quantile)]))
  }
  lines.push(sample(`${name}_sum`, labels, state.sum), sample(`${name}_count`, labels, state.count))
}

/** The samples of one metric (one set of tags), added to `lines`. */
const addLines = (
  lines: Array<string>,
  name: string,
  tags: ReadonlyArray<MetricLabel.MetricLabel>,
  state: unknown
): void => {
  const labels = labelsOf(tags)
  if (MetricState.isCounterState(state)) lines.push(sample(name, labels, state.count))
  else if (MetricState.isGaugeState(state)) lines.push(sample(name, labels, state.value))
  else if (MetricState.isHistogramState(state)) histogramLines(lines, name, labels, state)
  else if (MetricState.isSummaryState(state)) summaryLines(lines, name, labels, state)
  else if (MetricState.isFrequencyState(state)) {
    for (const [key, count] of state.occurrences) lines.push(sample(name, labels, count, ["key", key]))
  }
}

/** The families of the metrics seen so far, by name. */
type Families = Map<string, Family>

/** Adds `pairs[from..to)` to `families`. */
const collect = (families: Families, pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>, from: number, to: number) => {
  for (let i = from; i < to; i++) {
    const { metricKey, metricState } = pairs[i]
    const kind = kindOf(metricKey.keyType)
    let name = metricName(metricKey.name)
    if (families.has(name) && families.get(name)!.kind !== kind) name = `${name}_${kind}`
    let family = families.get(name)
    if (family === undefined) {
      family = { name, kind, help: Option.getOrUndefined(metricKey.description), lines: [] }
      families.set(name, family)
    }
    addLines(family.lines, name, metricKey.tags, metricState)
  }
}

/** The exposition of `families`, sorted by name. */
const expose = (families: Families): string => {
  const out: Array<string> = []
  for (const family of [...families.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (family.help !== undefined) out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    out.push(`# TYPE ${family.name} ${family.kind}`)
    for (const line of family.lines) out.push(line)
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}

/**
 * The metrics as one exposition, families sorted by name. Metrics of one name and type are one family (one per set
 * of tags); a metric whose name is taken by another type gets its type as a suffix (`latency_summary`), so the
 * exposition stays valid.
 */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families: Families = new Map()
  collect(families, pairs, 0, pairs.length)
  return expose(families)
}

/**
 * How many metrics {@link renderChunked} formats in one turn of the event loop: about a millisecond and a half on a
 * 2-core VM (1,000 agents have about 4,000, about 35,000 lines: 20-30 ms in one go, every ping and request waiting).
 */
export const RENDER_CHUNK = 250

/** One turn of Node's event loop: I/O callbacks (pipes, sockets) run before what follows. */
const turn: Effect.Effect<void> = Effect.async<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})

/** {@link render} spread over turns of the event loop, {@link RENDER_CHUNK} metrics a turn: the same text. */
export const renderChunked = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): Effect.Effect<string> =>
  Effect.suspend(() => {
    const families: Families = new Map()
    const step = (from: number): Effect.Effect<string> => {
      const to = Math.min(pairs.length, from + RENDER_CHUNK)
      collect(families, pairs, from, to)
      return to < pairs.length
        ? Effect.zipRight(turn, Effect.suspend(() => step(to)))
        : Effect.sync(() => expose(families))
    }
    return step(0)
  })

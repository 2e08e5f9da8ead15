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

/** A label value between double quotes: backslash, double quote and line feed escaped. */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")

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

/** `{a="x",b="y"}`, or nothing without labels; a name that comes twice keeps its first value. */
const formatLabels = (labels: ReadonlyArray<readonly [string, string]>): string => {
  const seen = new Set<string>()
  const parts: Array<string> = []
  for (const [name, value] of labels) {
    const clean = labelName(name)
    if (seen.has(clean)) continue
    seen.add(clean)
    parts.push(`${clean}="${escapeLabelValue(value)}"`)
  }
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

const sample = (
  name: string,
  labels: ReadonlyArray<readonly [string, string]>,
  value: number | bigint
): string => `${name}${formatLabels(labels)} ${formatValue(value)}`

const kindOf = (keyType: MetricKeyType.MetricKeyType<any, any>): Kind => {
  if (MetricKeyType.isCounterKey(keyType)) return keyType.incremental ? "counter" : "gauge"
  if (MetricKeyType.isHistogramKey(keyType)) return "histogram"
  if (MetricKeyType.isSummaryKey(keyType)) return "summary"
  if (MetricKeyType.isFrequencyKey(keyType)) return "counter"
  return "gauge"
}

const histogramLines = (
  name: string,
  tags: ReadonlyArray<readonly [string, string]>,
  state: MetricState.MetricState.Histogram
): Array<string> => {
  const lines: Array<string> = []
  let infinite = false
  for (const [bound, count] of state.buckets) {
    if (bound === Number.POSITIVE_INFINITY) infinite = true
    lines.push(sample(`${name}_bucket`, [...tags, ["le", formatValue(bound)]], count))
  }
  if (!infinite) lines.push(sample(`${name}_bucket`, [...tags, ["le", "+Inf"]], state.count))
  lines.push(sample(`${name}_sum`, tags, state.sum), sample(`${name}_count`, tags, state.count))
  return lines
}

const summaryLines = (
  name: string,
  tags: ReadonlyArray<readonly [string, string]>,
  state: MetricState.MetricState.Summary
): Array<string> => [
  ...state.quantiles.map(([quantile, value]) =>
    sample(name, [...tags, ["quantile", formatValue(quantile)]], Option.getOrElse(value, () => Number.NaN))
  ),
  sample(`${name}_sum`, tags, state.sum),
  sample(`${name}_count`, tags, state.count)
]

/** The samples of one metric (one set of tags). */
const linesOf = (name: string, tags: ReadonlyArray<MetricLabel.MetricLabel>, state: unknown): Array<string> => {
  const labels = tags.map((tag) => [tag.key, tag.value] as const)
  if (MetricState.isCounterState(state)) return [sample(name, labels, state.count)]
  if (MetricState.isGaugeState(state)) return [sample(name, labels, state.value)]
  if (MetricState.isHistogramState(state)) return histogramLines(name, labels, state)
  if (MetricState.isSummaryState(state)) return summaryLines(name, labels, state)
  if (MetricState.isFrequencyState(state)) {
    return [...state.occurrences].map(([key, count]) => sample(name, [...labels, ["key", key]], count))
  }
  return []
}

/**
 * The metrics as one exposition, families sorted by name. Metrics of one name and type are one family (one per set
 * of tags); a metric whose name is taken by another type gets its type as a suffix (`latency_summary`), so the
 * exposition stays valid.
 */
export const render = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, Family>()
  for (const { metricKey, metricState } of pairs) {
    const kind = kindOf(metricKey.keyType)
    let name = metricName(metricKey.name)
    if (families.has(name) && families.get(name)!.kind !== kind) name = `${name}_${kind}`
    let family = families.get(name)
    if (family === undefined) {
      family = { name, kind, help: Option.getOrUndefined(metricKey.description), lines: [] }
      families.set(name, family)
    }
    family.lines.push(...linesOf(name, metricKey.tags, metricState))
  }
  const out: Array<string> = []
  for (const family of [...families.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (family.help !== undefined) out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`)
    out.push(`# TYPE ${family.name} ${family.kind}`, ...family.lines)
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}

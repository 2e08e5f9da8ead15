/**
 * Topic settings decoded at the edge (`Supervisor.Options.topics`, `publish`'s options): every problem in one
 * `ConfigError` with its path (`topics["doc.uploaded"].maxQueued`), every default applied here once.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { ConfigError } from "../../Errors.js"
import type { PublishOptions, TopicOptions } from "../../Topic.js"
import * as Edge from "../schema.js"

/** One topic's settings, decoded. */
export interface Decoded {
  readonly retry: Schedule.Schedule<unknown, unknown>
  readonly maxQueued: number
  readonly backpressure: boolean
  readonly timeout: Duration.Duration | undefined
}

/** Every topic the options name; the others take {@link DEFAULTS}. */
export type DecodedTopics = ReadonlyMap<string, Decoded>

/** What one task runs with. */
export interface ForTask {
  readonly fanout: boolean
  readonly retry: Schedule.Schedule<unknown, unknown>
  readonly timeout: Duration.Duration | undefined
}

/** 3 retries, 100 ms apart and doubling. */
export const DEFAULT_RETRY: Schedule.Schedule<unknown, unknown> = Schedule.exponential(Duration.millis(100)).pipe(
  Schedule.intersect(Schedule.recurs(3))
)

/** The settings of a topic the options do not name. */
export const DEFAULTS: Decoded = { retry: DEFAULT_RETRY, maxQueued: 1000, backpressure: false, timeout: undefined }

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const KNOWN = new Set(["retry", "maxQueued", "backpressure", "timeout"])

/** A duration as every setting takes it (`Edge.DurationInput`: `"30 seconds"`, `"30s"`, milliseconds), or its problem. */
const durationAt = (field: string, value: unknown, problems: Array<Edge.Problem>): Duration.Duration | undefined => {
  const decoded = Edge.decodeDurationInput(value)
  if (decoded._tag === "Right" && Duration.greaterThan(decoded.right, Duration.zero)) return decoded.right
  problems.push({
    field,
    rule: `must be a duration longer than 0, such as "30 seconds" or "30s"`,
    value: Edge.show(value) ?? ""
  })
  return undefined
}

const scheduleAt = (
  field: string,
  value: unknown,
  problems: Array<Edge.Problem>
): Schedule.Schedule<unknown, unknown> | undefined => {
  if (Schedule.isSchedule(value)) return value as Schedule.Schedule<unknown, unknown>
  problems.push({ field, rule: "must be a Schedule (effect/Schedule)", value: Edge.show(value) ?? "" })
  return undefined
}

const decodeOne = (at: string, input: unknown, problems: Array<Edge.Problem>): Decoded | undefined => {
  const before = problems.length
  if (!isRecord(input)) {
    problems.push({ field: at, rule: "must be an object of topic settings", value: Edge.show(input) ?? "" })
    return undefined
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) {
      problems.push({ field: Edge.pathOf(at, [key]), rule: `is not a topic setting (${[...KNOWN].join(", ")})` })
    }
  }
  const retry = input.retry === undefined ? DEFAULT_RETRY : scheduleAt(`${at}.retry`, input.retry, problems)
  const maxQueued = input.maxQueued ?? DEFAULTS.maxQueued
  if (typeof maxQueued !== "number" || !Number.isSafeInteger(maxQueued) || maxQueued < 1) {
    problems.push({
      field: `${at}.maxQueued`,
      rule: "must be a whole number of 1 or more",
      value: Edge.show(maxQueued) ?? ""
    })
  }
  const backpressure = input.backpressure ?? false
  if (typeof backpressure !== "boolean") {
    problems.push({ field: `${at}.backpressure`, rule: "must be true or false", value: Edge.show(backpressure) ?? "" })
  }
  const timeout = input.timeout === undefined ? undefined : durationAt(`${at}.timeout`, input.timeout, problems)
  if (problems.length > before || retry === undefined) return undefined
  return { retry, maxQueued: maxQueued as number, backpressure: backpressure as boolean, timeout }
}

/**
 * The tree's `topics` option: every topic's settings, its problems added to `problems` (the tree's decoding reports
 * them with the rest of its own).
 */
export const decodeInto = (
  topics: Readonly<Record<string, TopicOptions>> | undefined,
  problems: Array<Edge.Problem>
): DecodedTopics => {
  const decoded = new Map<string, Decoded>()
  if (topics === undefined) return decoded
  if (!isRecord(topics)) {
    problems.push({
      field: "topics",
      rule: "must be an object of topic names to settings",
      value: Edge.show(topics) ?? ""
    })
    return decoded
  }
  for (const [name, input] of Object.entries(topics)) {
    const one = decodeOne(Edge.pathOf(undefined, ["topics", name]), input, problems)
    if (one !== undefined) decoded.set(name, one)
  }
  return decoded
}

/** A topic's settings: the options' for it, else the defaults. */
export const of = (topics: DecodedTopics, name: string): Decoded => topics.get(name) ?? DEFAULTS

/** The keys of `publish`'s options: any other is a problem (`fanOut` was dropped without a word). */
const PUBLISH_OPTIONS = Edge.allKeysOf<PublishOptions>()(["fanout", "retry", "timeout"])

/** What one `publish` runs with: the topic's settings, its own options on top. */
export const forPublish = (topic: Decoded, options: PublishOptions | undefined): Effect.Effect<ForTask, ConfigError> =>
  Effect.suspend(() => {
    const problems: Array<Edge.Problem> = Edge.unknownKeys(options, PUBLISH_OPTIONS, undefined)
    const fanout = options?.fanout ?? false
    if (typeof fanout !== "boolean") {
      problems.push({ field: "fanout", rule: "must be true or false", value: Edge.show(fanout) ?? "" })
    }
    const retry = options?.retry === undefined ? topic.retry : scheduleAt("retry", options.retry, problems)
    const timeout = options?.timeout === undefined ? topic.timeout : durationAt("timeout", options.timeout, problems)
    if (problems.length > 0 || retry === undefined) {
      return Effect.fail(Edge.configError(problems as [Edge.Problem, ...Array<Edge.Problem>]))
    }
    return Effect.succeed({ fanout: fanout as boolean, retry, timeout })
  })

/** `ConfigError` is what `decode` and `forPublish` fail with. */
export type { ConfigError }

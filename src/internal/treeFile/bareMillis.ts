/**
 * Durations written in a tree file as a bare number under a second (`heartbeatInterval: 30`): a number is
 * milliseconds, as Effect's `Duration` and PM2's `kill_timeout` read it, where systemd (`TimeoutStopSec=90`) and
 * supervisord (`stopwaitsecs`) read seconds. Such a number is taken as written, and said: a heartbeat every 30 ms or
 * a stop that waits 10 ms is rarely what was meant. Nothing is said of 0, of a number of a second or more, nor of
 * a duration with a unit (`"30ms"` says milliseconds on purpose), nor of the settings under a second by nature
 * (`SUB_SECOND`).
 *
 * The durations are found by the file's JSON Schema (every `Duration` in it), so that a setting added to the
 * schema is looked at without a list kept here.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as JSONSchema from "effect/JSONSchema"
import { bareMillisNote } from "../durationText.js"
import * as Edge from "../schema.js"
import { TreeFileSchema } from "./fileSchema.js"

/**
 * Settings whose values are under a second by nature (defaults: the store's `busyTimeout` 50 ms, a watch's
 * `debounce` 500 ms, a topic's `retry.backoff` 100 ms): a bare number there is no sign of seconds meant.
 */
const SUB_SECOND = new Set(["busyTimeout", "debounce", "backoff"])

/** The reference of a duration in the file's JSON Schema. */
const DURATION_REF = "#/$defs/Duration"

/** What of a JSON Schema's node the walk reads. */
interface Node {
  readonly $ref?: string
  readonly anyOf?: ReadonlyArray<Node>
  readonly allOf?: ReadonlyArray<Node>
  readonly oneOf?: ReadonlyArray<Node>
  readonly properties?: Record<string, Node>
  readonly additionalProperties?: boolean | Node
  readonly items?: Node | ReadonlyArray<Node>
  readonly enum?: ReadonlyArray<unknown>
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** `children[0].config.heartbeatInterval`, `topics["doc.uploaded"].timeout`: as a `ConfigError` writes it. */
const pathText = (path: ReadonlyArray<string | number>): string => Edge.pathOf(undefined, path)

/**
 * The warnings of `file` (a parsed tree file, durations as written) against `root`, the file's JSON Schema: one
 * per duration written as a number above 0 and under 1000, in the file's order.
 */
export const bareMillis = (file: unknown, root: JSONSchema.JsonSchema7Root): Array<string> => {
  const defs = (root.$defs ?? {}) as unknown as Record<string, Node>
  const found = new Map<string, string>()
  const resolved = (node: Node): Node | undefined =>
    node.$ref === undefined
      ? node
      : node.$ref.startsWith("#/$defs/")
      ? defs[node.$ref.slice("#/$defs/".length)]
      : undefined
  // A branch the value is not: an object whose tag (a property of one literal value, a child's `type: "pool"`) the
  // value gives otherwise. Its durations are not the value's.
  const otherKind = (value: unknown, branch: Node): boolean => {
    const properties = resolved(branch)?.properties
    if (!isRecord(value) || properties === undefined) return false
    return Object.entries(properties).some(([key, property]) =>
      property.enum?.length === 1 && key in value && value[key] !== property.enum[0]
    )
  }
  const visit = (value: unknown, node: Node | boolean | undefined, path: ReadonlyArray<string | number>): void => {
    if (node === undefined || typeof node === "boolean") return
    if (node.$ref !== undefined) {
      if (node.$ref === DURATION_REF) {
        const key = path.at(-1)
        const natural = typeof key === "string" && SUB_SECOND.has(key)
        const note = natural ? undefined : bareMillisNote(pathText(path), value)
        if (note !== undefined) {
          found.set(pathText(path), note)
        }
        return
      }
      visit(value, resolved(node), path)
      return
    }
    // Each alternative a value may be read as, but those of another kind: a duration in any of them is one (a
    // number can be read as no other setting's value of the same key and also meant as a duration).
    for (const branch of [...(node.anyOf ?? []), ...(node.oneOf ?? [])]) {
      if (!otherKind(value, branch)) visit(value, branch, path)
    }
    for (const part of node.allOf ?? []) visit(value, part, path)
    if (Array.isArray(value)) {
      const items = node.items
      if (items === undefined) return
      value.forEach((item, i) => visit(item, Array.isArray(items) ? items[i] : items as Node, [...path, i]))
      return
    }
    if (!isRecord(value)) return
    for (const [key, child] of Object.entries(value)) {
      const schema = node.properties?.[key] ?? node.additionalProperties
      visit(child, schema, [...path, key])
    }
  }
  visit(file, root as unknown as Node, [])
  return [...found.values()]
}

let treeFileSchema: JSONSchema.JsonSchema7Root | undefined

/** The warnings of a parsed tree file's bare numbers of milliseconds (see the module's doc). */
export const warnings = (file: unknown): Array<string> =>
  bareMillis(file, treeFileSchema ??= JSONSchema.make(TreeFileSchema))

/** Logs each of `warnings(file)` as a warning, as a tree's start logs what it warns of. */
export const logWarnings = (file: unknown): Effect.Effect<void> =>
  Effect.forEach(warnings(file), (line) => Effect.logWarning(line), { discard: true })

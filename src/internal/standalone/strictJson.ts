/**
 * JSON for what a caller hands an agent (a task's payload): `JSON.stringify`, but a value it would change without a
 * word is refused with a `TypeError` that names where it is and what to do, as `JSON.stringify` refuses a BigInt or a
 * cycle. Refused: a `Map` or a `Set` (sent as `{}`), a typed array (sent as an object of its indices), `NaN` and
 * `Infinity` (sent as `null`), boxed in a `Number` or not, a function or a symbol (a key dropped, `null` in an array),
 * an invalid `Date` (its `toJSON` answers `null`). Kept as JSON has them: `undefined` (a key left out, `null` in an
 * array: how an optional field is written) and an array's hole alike, `-0` (sent as `0`: JSON has no other way to
 * write it), and whatever has a `toJSON` (a valid `Date`, a `Buffer`), which stands for its value.
 *
 * It is on the request path (a few microseconds a request at 256 in flight): a payload of plain objects, arrays and
 * JSON's own values is checked by a walk of its own (tens of nanoseconds for a small one) and encoded by the plain
 * `JSON.stringify`, V8's fast one, as are a valid `Date` and a `Buffer` in it (their own `toJSON`s answer plain
 * JSON); anything else (a class instance, a `toJSON`, what the walk refuses, a nesting
 * deeper than it goes) by `JSON.stringify` with a replacer that refuses (half a microsecond more for a small
 * payload: the replacer keeps V8 off its fast serializer). The path of a refused value is found by a third walk, on
 * a refusal only.
 *
 * @internal
 */
import { messageOf } from "./messageOf.js"

/** Why `value` would not arrive as it is, or `undefined`: a value `toJSON` has already stood in for. */
const lossOf = (value: unknown): string | undefined => {
  switch (typeof value) {
    case "number":
      // NaN and the infinities: `value - value` is NaN for them, 0 for every finite number
      return value - value === 0 ? undefined : `is ${value}, which JSON sends as null`
    case "function":
      return "is a function, which JSON leaves out"
    case "symbol":
      return "is a symbol, which JSON leaves out"
    case "object":
      if (value === null) return undefined
      // JSON sends a boxed number as the number it holds
      if (value instanceof Number) {
        const held = value.valueOf()
        return held - held === 0 ? undefined : `is a Number object holding ${held}, which JSON sends as null`
      }
      if (value instanceof Map) return "is a Map, which JSON sends as {} (convert it: Object.fromEntries(map))"
      if (value instanceof Set) return "is a Set, which JSON sends as {} (convert it: [...set])"
      if (value instanceof WeakMap || value instanceof WeakSet) return "is a weak collection, which JSON sends as {}"
      if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
        return `is a ${value.constructor.name}, which JSON sends as an object of its indices (convert it: ` +
          "Array.from(array))"
      }
      return undefined
    default:
      return undefined
  }
}

/** `Date.prototype`'s own, as this module loaded: a program that replaces them later changes no rule here. */
const DATE_TO_JSON = Date.prototype.toJSON
const DATE_GET_TIME = Date.prototype.getTime

/** A Date's time, or `undefined` for what is no Date (a proxy of one, an object made from its prototype). */
const timeOf = (value: object): number | undefined => {
  try {
    return DATE_GET_TIME.call(value)
  } catch {
    return undefined
  }
}

/**
 * A `Date` JSON sends as `null`: its time is not a number (`new Date("soon")`) and its `toJSON` is Date's own (a
 * `toJSON` of its own stands for it, whatever it answers).
 */
const isNullDate = (value: unknown): boolean =>
  value instanceof Date && (value as { readonly toJSON?: unknown }).toJSON === DATE_TO_JSON &&
  Number.isNaN(timeOf(value))

/** Node's `Buffer.prototype` (absent outside Node): a `Buffer`'s own `toJSON` answers `{ type, data }`, plain JSON. */
const BUFFER_PROTO: object | undefined = typeof Buffer === "function" ? Buffer.prototype : undefined
const BUFFER_TO_JSON: unknown = typeof Buffer === "function" ? Buffer.prototype.toJSON : undefined

/** How deep the fast walk goes; a payload nested deeper (or a cycle) takes the replacer's way. */
const PLAIN_DEPTH = 32

/**
 * Whether `value` is plain JSON all the way down: strings, booleans, finite numbers, null, `undefined` (left out as
 * JSON leaves it), arrays of the same whose prototype is `Array.prototype`, and objects of the same whose prototype
 * is `Object.prototype` or null, neither with a `toJSON`; a valid `Date` and a `Buffer` with their own `toJSON`s
 * (each answers plain JSON). False sends it the replacer's way, which decides: false is no refusal.
 */
const isPlain = (value: unknown, depth: number): boolean => {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return true
    case "number":
      return value - value === 0
    case "object": {
      if (value === null) return true
      if (depth >= PLAIN_DEPTH) return false
      if (Array.isArray(value)) {
        // An array of a class of its own, or with a toJSON of its own, takes the replacer's way: JSON has its toJSON
        if (Object.getPrototypeOf(value) !== Array.prototype) return false
        if (typeof (value as { readonly toJSON?: unknown }).toJSON === "function") return false
        for (let i = 0; i < value.length; i++) if (!isPlain(value[i], depth + 1)) return false
        return true
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) {
        const toJSON = (value as { readonly toJSON?: unknown }).toJSON
        if (proto === Date.prototype) return toJSON === DATE_TO_JSON && Number.isFinite(timeOf(value))
        return proto === BUFFER_PROTO && toJSON === BUFFER_TO_JSON
      }
      if (typeof (value as { readonly toJSON?: unknown }).toJSON === "function") return false
      for (const key in value) if (!isPlain((value as Record<string, unknown>)[key], depth + 1)) return false
      return true
    }
    default:
      return false
  }
}

/** The marker a refusal throws from the replacer: the message is written once the path is known. */
class Refused extends Error {}

const replacer = function(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // The common case first: a string, a finite number, a boolean, a plain object or array
  if (typeof value === "string" || typeof value === "boolean") return value
  // A null the value held as such, or what an invalid Date's toJSON answered (`this` holds the value before toJSON)
  if (value === null) {
    if (isNullDate(this[key])) throw new Refused()
    return value
  }
  if (lossOf(value) !== undefined) throw new Refused()
  return value
}

/** What `JSON.stringify` would hand its replacer for `value` under `key`: its `toJSON`'s value, if it has one. */
const jsonValue = (value: unknown, key: string): unknown => {
  const toJSON = typeof value === "object" && value !== null
    ? (value as { readonly toJSON?: unknown }).toJSON
    : undefined
  return typeof toJSON === "function" ? (toJSON as (key: string) => unknown).call(value, key) : value
}

/** The first refused value under `value` (at `path`), walked as `JSON.stringify` walks it. */
const findLoss = (value: unknown, key: string, path: string, seen: Set<object>): string | undefined => {
  if (isNullDate(value)) return `${path} is an invalid Date, which JSON sends as null`
  const json = jsonValue(value, key)
  const loss = lossOf(json)
  if (loss !== undefined) return `${path} ${loss}`
  if (typeof json !== "object" || json === null || seen.has(json)) return undefined
  seen.add(json)
  if (Array.isArray(json)) {
    for (let i = 0; i < json.length; i++) {
      const found = findLoss(json[i], String(i), `${path}[${i}]`, seen)
      if (found !== undefined) return found
    }
    return undefined
  }
  for (const name of Object.keys(json)) {
    const child = (json as Record<string, unknown>)[name]
    // An undefined value is left out, as JSON does: not a loss
    const found = child === undefined
      ? undefined
      : findLoss(
        child,
        name,
        /^[A-Za-z_$][\w$]*$/.test(name) ? `${path}.${name}` : `${path}[${JSON.stringify(name)}]`,
        seen
      )
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * Why `value` cannot be sent as JSON as it is (the message {@link stringify} throws: `payload.tags is a Set, ...`, a
 * BigInt, a cycle), or `undefined` when it can: for a caller that sends it some other way (a topic's queue, the
 * cluster's RPC), checked before it goes.
 */
export const problemOf = (value: unknown, name: string): string | undefined => {
  try {
    // Plain JSON all the way down: nothing to refuse, and no need to encode it to know
    if (isPlain(value, 0)) return undefined
    return stringify(value, name) === undefined && value !== undefined ? `${name} is not JSON` : undefined
  } catch (error) {
    return messageOf(error)
  }
}

/**
 * `JSON.stringify(value)`, refusing what it would change (see the module's docs): throws a `TypeError` such as
 * `payload.tags is a Set, which JSON sends as {} (convert it: [...set])`, where `name` is the root's name; and what
 * `JSON.stringify` throws (a BigInt, a cycle). `undefined` for `undefined` alone, as `JSON.stringify`.
 */
export const stringify = (value: unknown, name: string): string | undefined => {
  if (isPlain(value, 0)) return JSON.stringify(value)
  try {
    return JSON.stringify(value, replacer)
  } catch (error) {
    if (!(error instanceof Refused)) throw error
    throw new TypeError(findLoss(value, "", name, new Set()) ?? `${name} holds a value JSON cannot send as it is`)
  }
}

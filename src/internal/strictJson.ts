/**
 * JSON for what a caller hands an agent (a task's payload): `JSON.stringify`, but a value it would change without a
 * word is refused with a `TypeError` that names where it is and what to do, as `JSON.stringify` refuses a BigInt or a
 * cycle. Refused: a `Map` or a `Set` (sent as `{}`), a typed array (sent as an object of its indices), `NaN` and
 * `Infinity` (sent as `null`), a function or a symbol (a key dropped, `null` in an array). Kept as JSON has them:
 * `undefined` (a key left out, `null` in an array: how an optional field is written), and whatever has a `toJSON`
 * (a `Date`, a `Buffer`), which stands for its value.
 *
 * The check is `JSON.stringify`'s replacer, on its own walk (about half a microsecond for a small payload); the path
 * of a refused value is found by a second walk, on a refusal only.
 *
 * @internal
 */

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

/** The marker a refusal throws from the replacer: the message is written once the path is known. */
class Refused extends Error {}

const replacer = function(_key: string, value: unknown): unknown {
  // The common case first: a string, a finite number, a boolean, null, a plain object or array
  if (typeof value === "string" || typeof value === "boolean" || value === null) return value
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
 * `JSON.stringify(value)`, refusing what it would change (see the module's docs): throws a `TypeError` such as
 * `payload.tags is a Set, which JSON sends as {} (convert it: [...set])`, where `name` is the root's name; and what
 * `JSON.stringify` throws (a BigInt, a cycle). `undefined` for `undefined` alone, as `JSON.stringify`.
 */
export const stringify = (value: unknown, name: string): string | undefined => {
  try {
    return JSON.stringify(value, replacer)
  } catch (error) {
    if (!(error instanceof Refused)) throw error
    throw new TypeError(findLoss(value, "", name, new Set()) ?? `${name} holds a value JSON cannot send as it is`)
  }
}

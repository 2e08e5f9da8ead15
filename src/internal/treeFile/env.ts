/**
 * Environment references in a file's strings: `${NAME}` is the variable's value, `${NAME:-default}` the default
 * when it is unset or empty, and `$${` a literal `${`. Only string values are read (never keys), and what a
 * reference gives is text: a number written as `${N}` stays a string.
 *
 * @internal
 */
import type * as Edge from "../schema.js"
import { fieldOf } from "./problems.js"

/** The variables references are read from (`process.env` unless a caller passes its own). */
export type Env = Readonly<Record<string, string | undefined>>

const REFERENCE = /\$\$\{|\$\{([^}]*)(\})?/g
const INSIDE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/

/** Replaces the references in one string; each one that cannot be replaced adds a problem at `at`. */
const substitute = (text: string, env: Env, at: string, problems: Array<Edge.Problem>): string =>
  text.replace(REFERENCE, (match, inside: string | undefined, closed: string | undefined) => {
    if (match === "$${") return "${"
    const parts = closed === undefined ? null : INSIDE.exec(inside ?? "")
    if (parts === null) {
      problems.push({
        field: at,
        rule: `has a malformed environment reference ${JSON.stringify(match)}: write \${NAME} or ` +
          `\${NAME:-default} (and $\${ for a literal "\${")`,
        value: JSON.stringify(text)
      })
      return match
    }
    const [, name, fallback] = parts
    const value = env[name]
    if (value !== undefined && (value !== "" || fallback === undefined)) return value
    if (fallback !== undefined) return fallback
    problems.push({
      field: at,
      rule: `refers to the environment variable ${name}, which is not set: set it, or give a default ` +
        `(\${${name}:-default})`,
      value: JSON.stringify(text)
    })
    return match
  })

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * Replaces the references in every string of `value` (a parsed file), depth first. A reference that cannot be
 * replaced (unset without a default, malformed) is a problem with its path and stays as written.
 */
export const substituteAll = (
  value: unknown,
  env: Env
): { readonly value: unknown; readonly problems: ReadonlyArray<Edge.Problem> } => {
  const problems: Array<Edge.Problem> = []
  const go = (node: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
    if (typeof node === "string") {
      return node.includes("$") ? substitute(node, env, fieldOf(path), problems) : node
    }
    if (Array.isArray(node)) return node.map((item, i) => go(item, [...path, i]))
    if (isPlainObject(node)) {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, go(item, [...path, key])]))
    }
    return node
  }
  return { value: go(value, []), problems }
}

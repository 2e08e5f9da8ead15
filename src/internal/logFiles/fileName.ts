/**
 * A log file's name for any agent or logger name: safe on every file system (no separator, no `..`, no hidden
 * file, no control character) and distinct for distinct names, so that two agents never share a file by accident.
 *
 * @internal
 */
import { createHash } from "node:crypto"

/** Characters kept as they are; every other one is written `%XX` per UTF-8 byte, as in a URL. */
const SAFE = /^[A-Za-z0-9_-]$/

/** The longest name kept whole (bytes): `.log.1000` still fits the usual 255-byte limit of a file name. */
const MAX_NAME = 200

/**
 * The name without its `.log`: letters, digits, `_` and `-` as they are, `.` too except first, every other byte
 * as `%XX` (`%` itself included, so that the encoding is one-to-one; a lone UTF-16 surrogate as `%uXXXX`). A name whose encoding would pass 200 bytes
 * keeps its first 180 and ends with `~` and 16 hex digits of its SHA-256 (`~` never appears otherwise).
 */
export const encode = (name: string): string => {
  let out = ""
  for (const char of name) {
    const code = char.codePointAt(0)!
    if (SAFE.test(char) || (char === "." && out !== "")) out += char
    // A lone surrogate has no UTF-8 bytes of its own (it would encode as U+FFFD does): written as `%uXXXX`.
    else if (code >= 0xd800 && code <= 0xdfff) out += `%u${code.toString(16).toUpperCase()}`
    else for (const byte of Buffer.from(char, "utf8")) out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  if (out.length > 0 && out.length <= MAX_NAME) return out
  // Cut before a `%XX` rather than through it: the prefix stays readable.
  let cut = Math.min(out.length, MAX_NAME - 20)
  const percent = out.lastIndexOf("%", cut)
  if (percent !== -1 && percent > cut - 3) cut = percent
  return `${out.slice(0, cut)}~${createHash("sha256").update(name, "utf8").digest("hex").slice(0, 16)}`
}

/** The current file of `name`: its encoding and `.log`. */
export const fileName = (name: string): string => `${encode(name)}.log`

/**
 * The bearer token of the admin API's state-changing calls: generated when none is given, read from the
 * `Authorization` header, compared in constant time.
 *
 * @internal
 */
import * as Redacted from "effect/Redacted"
import * as crypto from "node:crypto"

/** 32 random bytes, base64url: 43 characters, 256 bits. */
export const generate = (): Redacted.Redacted<string> => Redacted.make(crypto.randomBytes(32).toString("base64url"))

const digest = (text: string): Buffer => crypto.createHash("sha256").update(text, "utf8").digest()

/**
 * Whether `given` is the token, in time that does not depend on where they differ or on their lengths: both are
 * hashed to 32 bytes, which `timingSafeEqual` compares.
 */
export const matches = (token: Redacted.Redacted<string>, given: string): boolean =>
  crypto.timingSafeEqual(digest(Redacted.value(token)), digest(given))

/** The credentials of an `Authorization: Bearer <token>` header (the scheme is case-insensitive), if it is one. */
export const bearerOf = (header: string | undefined): string | undefined => {
  if (header === undefined) return undefined
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return match === null ? undefined : match[1]
}

/** Why a request is refused, or undefined when it carries the token. */
export const refusal = (token: Redacted.Redacted<string>, header: string | undefined): string | undefined => {
  if (header === undefined) return "this call needs the admin token: send \"Authorization: Bearer <token>\""
  const given = bearerOf(header)
  if (given === undefined) return "the Authorization header must be \"Bearer <token>\""
  return matches(token, given) ? undefined : "the token is not the admin token"
}

/**
 * What a thrown value says, for an error's message or detail: an `Error`'s `message`, anything else (a thrown
 * string, a number, `undefined`) as `String` writes it.
 *
 * @internal
 */
export const messageOf = (thrown: unknown): string => thrown instanceof Error ? thrown.message : String(thrown)

/**
 * At most `max` of `items`, then one more item saying how many were left out (`more(count)`): a message or a log
 * line that names many things (each of a batch of 1,000 children) stays readable.
 *
 * @internal
 */
export const atMost = (
  items: ReadonlyArray<string>,
  max: number,
  more: (count: number) => string
): ReadonlyArray<string> => items.length <= max ? items : [...items.slice(0, max), more(items.length - max)]

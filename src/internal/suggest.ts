/**
 * "Did you mean": the known name closest to a misspelt one, when one is close enough to be what was meant.
 *
 * @internal
 */

/**
 * The optimal string alignment distance between `a` and `b`: insertions, deletions, substitutions and swaps of
 * two neighbours each count 1 (`requestTimout` is 1 from `requestTimeout`, `reqeustTimeout` 1 too).
 */
export const distance = (a: string, b: string): number => {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: Array<Array<number>> = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => i + j))
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
      }
    }
  }
  return d[a.length][b.length]
}

/**
 * The candidate closest to `name`, ignoring case, when it is within about a third of the name's length (at least
 * 1 edit, at most 3); the first of equals in the candidates' order; `undefined` when none is that close.
 */
export const closest = (name: string, candidates: ReadonlyArray<string>): string | undefined => {
  const wanted = name.toLowerCase()
  const limit = Math.min(3, Math.max(1, Math.floor(name.length / 3)))
  let best: { readonly candidate: string; readonly distance: number } | undefined
  for (const candidate of candidates) {
    const d = distance(wanted, candidate.toLowerCase())
    if (d <= limit && (best === undefined || d < best.distance)) best = { candidate, distance: d }
  }
  return best?.candidate
}

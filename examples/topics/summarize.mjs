// The pipeline's second agent (Node): takes the parsed words of a document (topic "document.parsed") and answers
// a summary. A document holding the word "poison" fails every attempt: its task is retried, then dead-lettered.
export default ({ title, words }) => {
  if (words.includes("poison")) throw new Error(`cannot summarize "${title}": it holds a poisoned word`)
  const counts = new Map()
  for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1)
  const top = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 3).map(([w]) => w)
  return { title, words: words.length, top }
}

// A Node agent for the demo: the supervisor's Node adapter loads the default export of this module.
const positive = ["good", "great", "love", "fast", "reliable"]
const negative = ["bad", "slow", "hate", "crash", "broken"]

export default async function classify(event) {
  // The demo sends {"type": "data", "payload": {"text": ...}}; a bare {"text": ...} (a `call` by hand) works too.
  const text = String((event?.payload ?? event)?.text ?? "").toLowerCase()
  const score = positive.filter((w) => text.includes(w)).length - negative.filter((w) => text.includes(w)).length
  return { sentiment: score > 0 ? "positive" : score < 0 ? "negative" : "neutral", score, pid: process.pid }
}

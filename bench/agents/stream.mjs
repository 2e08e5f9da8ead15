// The streaming bench's agent, for the Node adapter: `{ n, size }` yields n chunks of `size` characters, then
// returns n. The same agent for the bare client and the library: the ratio isolates the supervisor side.
export default async function* stream(payload) {
  const piece = "x".repeat(payload.size ?? 8)
  for (let i = 0; i < payload.n; i++) yield piece
  return payload.n
}

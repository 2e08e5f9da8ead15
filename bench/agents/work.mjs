// The pool benchmark's Node agent: spins the CPU for `ms` milliseconds per task (a model's work stand-in), so a
// pool's throughput shows how its members share the machine's cores.
export default ({ ms = 2 } = {}) => {
  const until = performance.now() + ms
  let spins = 0
  while (performance.now() < until) spins++
  return spins > 0
}

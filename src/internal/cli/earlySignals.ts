/**
 * The first SIGINT or SIGTERM that comes while the CLI's modules load, held until the command begins: then `up`
 * ends before its start and says so (`take`), and any other command has it raised again (`passOn`) for its own
 * handling, once that is in place (a command that ends by itself says it was interrupted and exits 130 or 143:
 * `interrupted.ts`). Loading takes half a second to a second on a small machine, before any handler of the CLI's is
 * in place, and Node's default would end the process at once meanwhile, nothing said (a shell reads 130 or 143,
 * whatever the command). A second signal before the command begins finds Node's default: the process ends, as a
 * second Ctrl-C ends a command that holds the first.
 *
 * Imports nothing: the entry loads it alone, before the rest (`bin/agent-supervisor.ts`).
 *
 * @internal
 */

const SIGNALS = ["SIGINT", "SIGTERM"] as const

let holding = false
let held: NodeJS.Signals | undefined

function hold(signal: NodeJS.Signals): void {
  if (held === undefined) {
    held = signal
    return
  }
  release()
  process.kill(process.pid, signal)
}

const release = (): void => {
  if (!holding) return
  holding = false
  for (const signal of SIGNALS) process.removeListener(signal, hold)
}

/** From now on, the first SIGINT or SIGTERM is held (see the module's docs) until `take` or `passOn`. @internal */
export const holdSignals = (): void => {
  if (holding) return
  holding = true
  for (const signal of SIGNALS) process.on(signal, hold)
}

/** Lets go of the signals; the one held, if any, is the caller's to act on (it is not raised again). @internal */
export const take = (): NodeJS.Signals | undefined => {
  release()
  const signal = held
  held = undefined
  return signal
}

/**
 * Lets go of the signals, and raises the one held, if any, again: for the handlers in place by now (Node delivers
 * it once the event loop turns). @internal
 */
export const passOn = (): void => {
  const signal = take()
  if (signal !== undefined) process.kill(process.pid, signal)
}

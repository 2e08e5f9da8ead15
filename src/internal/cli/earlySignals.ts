/**
 * The first SIGINT or SIGTERM that comes while the CLI's modules load, before any handler of the CLI's is in place,
 * held for the command: `up` then ends before its start, exit 0, and a command that ends by itself says it was
 * interrupted and exits 130 or 143, without running (`interrupted.ts`). Loading takes half a second to a second on a
 * small machine, and Node's default would end the process at once meanwhile, nothing said (a shell reads 130 or 143,
 * whatever the command). Once the CLI's own handlers are in place (`handlersInPlace`), nothing more is held: a
 * signal from then on is theirs. A second signal while the CLI loads finds Node's default: the process ends, as a
 * second Ctrl-C ends a command that holds the first.
 *
 * Imports nothing: the entry loads it alone, before the rest (`bin/agent-supervisor.ts`).
 *
 * @internal
 */

const SIGNALS = ["SIGINT", "SIGTERM"] as const

/** The signals held. @internal */
export type Held = (typeof SIGNALS)[number]

let holding = false
let held: Held | undefined

function hold(signal: NodeJS.Signals): void {
  if (held === undefined) {
    held = signal as Held
    return
  }
  handlersInPlace()
  process.kill(process.pid, signal)
}

/** From now on, the first SIGINT or SIGTERM is held (see the module's docs) until `handlersInPlace`. @internal */
export const holdSignals = (): void => {
  if (holding) return
  holding = true
  for (const signal of SIGNALS) process.on(signal, hold)
}

/** The CLI's own handlers are in place: no signal is held from now on (the one held, if any, stays held). @internal */
export const handlersInPlace = (): void => {
  if (!holding) return
  holding = false
  for (const signal of SIGNALS) process.removeListener(signal, hold)
}

/** The signal held while the CLI loaded, if any, now the caller's to act on (it is held no longer). @internal */
export const take = (): Held | undefined => {
  const signal = held
  held = undefined
  return signal
}

/**
 * Raises the signal held, if no command took it (its help, a bad argument): the program ends by it, as Node's
 * default would have ended it. For the program's end, once no handler of the CLI's is left. @internal
 */
export const passOn = (): void => {
  const signal = take()
  if (signal !== undefined) process.kill(process.pid, signal)
}

/**
 * A command that ends by itself (`call`, `status`, `result`...) interrupted by SIGINT (Ctrl-C) or SIGTERM says so on
 * stderr and exits 128 + the signal's number (130, 143), as a shell reports a command a signal ended: a script
 * tells it from success. The commands that run until a signal (`up`, `logs -f`, `events`) exit 0 on it, their
 * normal end (`NodeRuntime.runMain`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"

const CODES = { SIGINT: 130, SIGTERM: 143 } as const

let received: keyof typeof CODES | undefined
let code: number | undefined

/**
 * Notes which signal comes first. Once: a second signal finds only Node's own handling (the process ends), as
 * `NodeRuntime.runMain` leaves it after the first.
 */
export const watchSignals = (): void => {
  const listeners = (Object.keys(CODES) as Array<keyof typeof CODES>).map((signal) => {
    const listener = () => {
      received = signal
      for (const [name, other] of listeners) process.removeListener(name, other)
    }
    return [signal, listener] as const
  })
  for (const [name, listener] of listeners) process.on(name, listener)
}

/** `effect`, which says `error: interrupted: <what>` on stderr when interrupted, and sets the exit code. */
export const oneShot = (what: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.onInterrupt(effect, () =>
    Effect.sync(() => {
      code = CODES[received ?? "SIGINT"]
      process.stderr.write(`error: interrupted: ${what}\n`)
    }))

/** The exit code of a program that would exit with `normal`: a one-shot command's interruption's, if it was one. */
export const exitCode = (normal: number): number => normal === 0 ? code ?? 0 : normal

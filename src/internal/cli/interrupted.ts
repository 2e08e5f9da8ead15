/**
 * A command that ends by itself (`call`, `status`, `result`...) interrupted by SIGINT (Ctrl-C) or SIGTERM says so on
 * stderr and exits 128 + the signal's number (130, 143), as a shell reports a command a signal ended: a script
 * tells it from success. The commands that run until a signal (`up`, `logs -f`, `events`) exit 0 on it, their
 * normal end (`NodeRuntime.runMain`).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Os from "node:os"
import * as EarlySignals from "./earlySignals.js"

/** The signals every command watches (`watchSignals`); `up` notes the others that end it itself (`noteSignal`). */
const WATCHED = ["SIGINT", "SIGTERM"] as const

/** The exit code of a command a signal ended, as a shell reports it: 128 + its number (130, 143). */
export const codeOf = (signal: NodeJS.Signals): number => 128 + (Os.constants.signals[signal] ?? 15)

let received: NodeJS.Signals | undefined
let code: number | undefined

/** The listeners `watchSignals` added, while they are there. */
let watching: ReadonlyArray<readonly [NodeJS.Signals, () => void]> = []

/** Takes away the listeners `watchSignals` added, if still there: a signal then finds Node's own handling. */
export const unwatchSignals = (): void => {
  for (const [name, listener] of watching) process.removeListener(name, listener)
  watching = []
}

/**
 * Notes which signal comes first. Once: a second signal finds only Node's own handling (the process ends), as
 * `NodeRuntime.runMain` leaves it after the first. The program's end takes them away too (`unwatchSignals`): left
 * while something held the event loop, they would keep a signal from ending the process.
 */
export const watchSignals = (): void => {
  watching = WATCHED.map((signal) =>
    [signal, () => {
      received = signal
      unwatchSignals()
    }] as const
  )
  for (const [name, listener] of watching) process.on(name, listener)
}

/**
 * Notes a signal that ends `up` other than those watched (SIGHUP, SIGQUIT...: `up` interrupts itself on them), unless
 * one came first: its end before its start says which (`beforeBegun`), as for SIGINT.
 */
export const noteSignal = (signal: NodeJS.Signals): void => {
  received ??= signal
}

/** Whether a command's handler began: from then on its own handling says what a signal interrupted. */
let commandBegun = false

/** The command the arguments name (read before they are parsed), and whether it runs until a signal. @internal */
export interface Invoked {
  readonly name: string
  readonly follower: boolean
}

/** A command's handler begins (`begun` says so; `up`, which does not go through it, says so itself). */
export const markBegun = (): void => {
  commandBegun = true
}

/**
 * The whole program, which a signal may interrupt once the CLI's handlers are in place but before the command's
 * handler began (its arguments were being read and checked; or one held while the CLI loaded, taken by `up`'s
 * `unlessHeld`), where no `oneShot` hears it: as if the command had
 * taken it at its start (`begun`), a one-shot says `error: interrupted: before <name> ran` and exits 130 or 143; a
 * follower ends, exit 0 (`up` says `<signal> before the start: up ends, nothing started` through `say`); a program
 * that named no command (its help) exits 130 or 143. Before, it exited 0 with nothing said: `validate f && deploy`
 * went on.
 */
export const beforeBegun =
  (invoked: Invoked | undefined, say: (line: string) => Effect.Effect<void>) =>
  <A, E, R>(program: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.onInterrupt(program, () =>
      Effect.suspend(() => {
        if (received === undefined || commandBegun) return Effect.void
        if (invoked?.follower === true) {
          return invoked.name === "up" ? say(`${received} before the start: up ends, nothing started`) : Effect.void
        }
        code = codeOf(received)
        if (invoked === undefined) return Effect.void
        return Effect.sync(() => process.stderr.write(`error: interrupted: before ${invoked.name} ran\n`))
      }))

/**
 * `effect`, unless a signal came while the CLI loaded (`earlySignals.ts`): then it is interrupted before it runs, as
 * for that signal. `up` begins so: not begun yet, its end before its start is said by `beforeBegun`.
 */
export const unlessHeld = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const early = EarlySignals.take()
    if (early === undefined) return effect
    received = early
    return Effect.interrupt
  })

/**
 * `effect`, a command, begun (`markBegun`), unless a signal came while the CLI loaded (`unlessHeld`): then it is
 * interrupted before it runs, as for that signal (`oneShot` says so and sets the exit code; a follower ends, exit 0).
 * Every command but `up` begins so; `oneShot` does.
 */
export const begun = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    markBegun()
    return unlessHeld(effect)
  })

/**
 * `effect`, which, interrupted because of a signal, says `error: interrupted: <what>` on stderr and sets the exit
 * code (an interruption of another cause leaves both as they are).
 */
export const oneShot = (what: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.onInterrupt(begun(effect), () =>
    Effect.sync(() => {
      if (received === undefined) return
      code = codeOf(received)
      process.stderr.write(`error: interrupted: ${what}\n`)
    }))

/** The exit code of a program that would exit with `normal`: a one-shot command's interruption's, if it was one. */
export const exitCode = (normal: number): number => normal === 0 ? code ?? 0 : normal

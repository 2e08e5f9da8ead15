/**
 * The signals whose default action ends the host at once, leaving its agents to their stdin's end: one that
 * ignores it (or is busy) would run on, orphaned, with its descendants. Not SIGUSR1 (Node's own, to start its
 * inspector), SIGPROF and SIGVTALRM (profilers' timers), nor the faults a process raises in itself (SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL, SIGTRAP, SIGSYS), which a listener cannot handle. `up` stops its tree on each of them.
 *
 * @internal
 */
export const ENDING_SIGNALS: ReadonlyArray<NodeJS.Signals> = [
  "SIGINT",
  "SIGTERM",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR2",
  "SIGALRM",
  "SIGXCPU",
  "SIGXFSZ"
]

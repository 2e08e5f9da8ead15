/**
 * A heartbeat with no fiber: the shared ticker calls a beat when it is due, the beat sends its ping with a
 * callback, the answer reads the agent's process group from the shared scan of /proc, and the outcome goes to the
 * owner, which calls `handled` once it has handled it; the next beat is due one interval after the outcome.
 *
 * A fiber per agent that woke for each beat and again for each answer cost two fiber resumes and about 18 KiB of
 * short-lived objects per beat (Effect's run loop, continuations, the ping's `Effect.async`): at 1,000 agents
 * beating every second, twice the CPU of the same pings sent from a plain loop. Only the owner's handling of an
 * outcome (events, the store) runs as an `Effect`.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { RequestError } from "../../Errors.js"
import * as Ticker from "../../internal/ticker.js"
import type * as Config from "../Config.js"
import type * as Health from "../Health.js"
import type * as AgentProcess from "../Process.js"
import * as ProcessTree from "../ProcessTree.js"
import * as ProcessTable from "./processTable.js"

/** What a heartbeat beats: an agent process that can be pinged with a callback. @internal */
export interface Target {
  readonly name: string
  readonly pid: number
  readonly config: Pick<Config.AgentConfig, "heartbeatInterval" | "unhealthyAfter" | "pingTimeout">
  /**
   * Sends a ping; `done` is called exactly once with its outcome, and never throws. Returns, when the ping's
   * timeout is the heartbeat's to keep, the function that times it out: the heartbeat calls it `pingTimeout` after
   * the ping, on its ticker (see `Calls.pingWith`); otherwise the ping times out by itself.
   */
  readonly pingWith: (done: (exit: Exit.Exit<AgentProcess.PingResult, RequestError>) => void) => (() => void) | void
}

/** The outcome of one beat, for the owner. @internal */
export type Report =
  | { readonly _tag: "Sample"; readonly sample: Health.HealthSample }
  /** A ping failed (`missed` in a row); with `unhealthy`, `unhealthyAfter` were missed and the heartbeat ends. */
  | { readonly _tag: "Missed"; readonly missed: number; readonly error: RequestError; readonly unhealthy: boolean }

/** What the owner does with the outcomes. @internal */
export interface Handlers {
  /**
   * Handles one outcome; call `handled` once, when done. The next beat is due an interval after the outcome, and
   * waits for `handled` if it comes first (a slow owner delays beats, it does not pile reports up). After an
   * unhealthy miss, `handled` ends the heartbeat instead.
   */
  readonly report: (report: Report, handled: () => void) => void
  /**
   * The heartbeat ended by itself: the agent exited (its exit is the exit watcher's business), or was unhealthy;
   * or a ping died or was interrupted (`cause`: not a missed beat).
   */
  readonly end?: ((cause?: Cause.Cause<unknown>) => void) | undefined
}

/**
 * How long a heartbeat report waits for others before a fiber runs them (real milliseconds): the reports of a
 * tree's agents run a batch at a time (see `Serial`).
 *
 * @internal
 */
export const REPORT_BATCH_MILLIS = 10

/** One MiB. */
const MIB = 1024 * 1024

/** The RSS of a group's reading, in MiB. */
const memoryOf = (tree: ProcessTree.Sample | undefined): Option.Option<number> =>
  tree === undefined ? Option.none() : Option.some(tree.rssBytes / MIB)

/**
 * A health sample of `agent` from a ping's answer and its group's reading (none without /proc), at `timestamp`
 * (epoch millis): what `Health.check` and the heartbeat report.
 *
 * @internal
 */
export const healthSampleOf = (
  agent: { readonly name: string; readonly pid: number },
  pong: AgentProcess.PingResult,
  tree: ProcessTree.Sample | undefined,
  cpuPercent: Option.Option<number>,
  timestamp: number,
  memoryMb: Option.Option<number> = memoryOf(tree)
): Health.HealthSample => ({
  agent: agent.name,
  pid: agent.pid,
  latencyMillis: pong.latencyMillis,
  report: pong.report,
  memoryMb,
  cpuPercent,
  processes: tree?.processes ?? 0,
  timestamp
})

/**
 * Where in its interval an incarnation's beats fall, in [0, 1): a hash of the agent's name and pid, so agents
 * started together (a tree's children, a group restart) ping at spread moments instead of all at once, and one
 * incarnation's phase is the same from run to run (no `Random` to seed in tests).
 */
const phaseOf = (name: string, pid: number): number => {
  const key = `${name}\u0000${pid}`
  let hash = 0x811c9dc5 // FNV-1a, then murmur3's finalizer: names that differ in one digit land far apart
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b)
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35)
  return ((hash ^ (hash >>> 16)) >>> 0) / 2 ** 32
}

/**
 * Starts the heartbeat of `target` on `clock` (semantics in `Health.heartbeat`); the function returned stops it
 * (a ping or a report under way is then ignored when it ends). Callbacks run in Node's handlers and the ticker's
 * fiber; nothing here throws.
 *
 * @internal
 */
export const start = (target: Target, clock: Clock.Clock, handlers: Handlers): () => void => {
  const intervalMillis = Duration.toMillis(target.config.heartbeatInterval)
  const pingTimeoutMillis = Duration.toMillis(target.config.pingTimeout)
  const unhealthyAfter = target.config.unhealthyAfter
  const grid = Ticker.gridOf(intervalMillis)
  const ticker = Ticker.forClock(clock)
  let stopped = false
  // The next beat's waiter.
  let waiter: Ticker.Waiter | undefined
  // A ping is out; when the heartbeat keeps its timeout, the function that times it out and when (Clock millis).
  let pinging = false
  let expire: (() => void) | undefined
  let pingDeadline = 0
  // The waiter that checks the ping's timeout. It is not cancelled when a ping is answered: it checks the ping out
  // at its moment, if any, and waits for that one's deadline (a ping is answered in a millisecond and sent every
  // interval, so it wakes about once per `pingTimeout`, not once per ping: a waiter made and cancelled per ping
  // lived as long as the timeout, past the young generation of the heap).
  let timeoutWaiter: Ticker.Waiter | undefined
  let missed = 0
  // A report handed over and not handled yet; a beat that came due meanwhile (it goes once the report is handled).
  let reporting = false
  let due = false
  // When the last table read was taken, the group's sample of it (the first beat's CPU baseline is the spawn: no
  // scan of /proc at start-up), and the CPU% and memory measured when it was read: they hold, as they are, for the beats that
  // read the same table (four in five, with a 1 s interval and the 5 s sampling period), which make nothing again.
  let tableTakenAt: number | undefined
  let previous: ProcessTree.Sample | undefined
  // Whether a reading was made (the spawn is the first one's baseline only).
  let readBefore = false
  let cpuPercent: Option.Option<number> = Option.none()
  let memoryMb: Option.Option<number> = Option.none()

  const end = (cause?: Cause.Cause<unknown>) => {
    stopped = true
    if (timeoutWaiter !== undefined) ticker.cancel(timeoutWaiter)
    handlers.end?.(cause)
  }
  // The CPU% of the last two scans read; the same for the beats that read the same scan.
  const sample = (pong: AgentProcess.PingResult, read: ProcessTable.ProcessTable | undefined): Health.HealthSample => {
    if (read === undefined) {
      previous = tableTakenAt = undefined
      cpuPercent = memoryMb = Option.none()
    } else if (read.takenAt !== tableTakenAt) {
      const tree = ProcessTable.usageSample(read.groups.get(target.pid), read.takenAt)
      // The very first reading: its average since the spawn, when this process spawned it (not after a reading
      // with no /proc, which left no baseline: an average over the agent's life is no reading of now).
      const before = previous ??
        (readBefore ? undefined : ProcessTable.spawnSample(target.pid))
      readBefore = true
      cpuPercent = before === undefined ? Option.none() : Option.some(ProcessTree.cpuPercent(before, tree))
      memoryMb = memoryOf(tree)
      previous = tree
      // Its time, not the table: an agent on a long interval would hold a stale table of every process.
      tableTakenAt = read.takenAt
    } else if (Option.isNone(cpuPercent)) cpuPercent = Option.some(0)
    return healthSampleOf(target, pong, previous, cpuPercent, clock.unsafeCurrentTimeMillis(), memoryMb)
  }
  const handled = () => {
    reporting = false
    if (due) {
      due = false
      beat()
    }
  }
  // The next beat an interval after this outcome, then the report.
  const send = (report: Report) => {
    if (stopped) return
    reporting = true
    waiter = ticker.waiter(clock.unsafeCurrentTimeMillis() + intervalMillis, grid)
    ticker.schedule(waiter, beat)
    handlers.report(report, handled)
  }
  const checkTimeout = () => {
    timeoutWaiter = undefined
    if (stopped || expire === undefined) return
    if (clock.unsafeCurrentTimeMillis() < pingDeadline) return armTimeout()
    const timeOut = expire
    expire = undefined
    timeOut() // the ping's timeout error, to `onPong`
  }
  const armTimeout = () => {
    timeoutWaiter = ticker.waiter(pingDeadline, 0)
    ticker.schedule(timeoutWaiter, checkTimeout)
  }
  const onPong = (exit: Exit.Exit<AgentProcess.PingResult, RequestError>) => {
    if (stopped) return
    pinging = false
    expire = undefined
    if (Exit.isSuccess(exit)) {
      const pong = exit.value
      // The table the beat before read, still fresh: the same reading of the group, so no lookup (the lookup's two
      // maps and clock reads, every beat of every agent, were about 4% of a thousand agents' heartbeat CPU). The
      // next table is looked up as before, which keeps the group asked for and starts the scan once it is stale.
      const current = ProcessTable.shared.current(ProcessTable.HEARTBEAT_MAX_AGE_MILLIS)
      if (current !== undefined && current.takenAt === tableTakenAt) {
        missed = 0
        return send({ _tag: "Sample", sample: sample(pong, current) })
      }
      return ProcessTable.shared.groupWith(target.pid, ProcessTable.HEARTBEAT_MAX_AGE_MILLIS, "serve", (read) => {
        if (stopped) return
        missed = 0
        send({ _tag: "Sample", sample: sample(pong, read) })
      })
    }
    const failure = Cause.failureOption(exit.cause)
    // A defect or an interruption of the ping is no missed beat: the heartbeat ends with it.
    if (Option.isNone(failure)) return end(exit.cause)
    const error = failure.value
    // An exit is the exit watcher's business, not a missed beat.
    if (error._tag === "AgentCrashError" || error._tag === "AgentStoppedError") return end()
    missed++
    if (missed < unhealthyAfter) return send({ _tag: "Missed", missed, error, unhealthy: false })
    reporting = true
    handlers.report({ _tag: "Missed", missed, error, unhealthy: true }, end)
  }
  const beat = () => {
    if (stopped) return
    if (reporting) {
      due = true
      return
    }
    pinging = true
    waiter = undefined
    const timeOut = target.pingWith(onPong)
    // Unless it was answered already (a refusal is answered at once).
    if (pinging && typeof timeOut === "function") {
      expire = timeOut
      pingDeadline = clock.unsafeCurrentTimeMillis() + pingTimeoutMillis
      // A waiter of an earlier ping checks this one at its moment; unless the clock went back meanwhile (the
      // `Clock`'s millis are the wall clock's), which would leave it due after this ping's deadline.
      if (timeoutWaiter === undefined) armTimeout()
      else if (timeoutWaiter.due > pingDeadline) {
        ticker.cancel(timeoutWaiter)
        armTimeout()
      }
    }
  }

  // The first beat within the first interval, at the incarnation's phase of it.
  const startedAt = clock.unsafeCurrentTimeMillis()
  waiter = ticker.waiter(
    startedAt + intervalMillis * (1 - phaseOf(target.name, target.pid)),
    grid,
    startedAt + intervalMillis
  )
  ticker.schedule(waiter, beat)
  return () => {
    if (stopped) return
    stopped = true
    if (waiter !== undefined) ticker.cancel(waiter)
    if (timeoutWaiter !== undefined) ticker.cancel(timeoutWaiter)
  }
}

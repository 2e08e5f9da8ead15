/**
 * What an agent says about itself: its process counters summed over every incarnation, and the `Metadata`
 * snapshot.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Metadata } from "../../AgentSupervisor.js"
import type * as AgentProcess from "../../Process.js"
import * as RestartPolicy from "../../RestartPolicy.js"
import { type Core, type Counted, liveProcess, now, viewState } from "./core.js"

const addCounters = (into: Counted, stats: AgentProcess.Stats): void => {
  into.lateResponses += stats.lateResponses
  into.lateChunks += stats.lateChunks
  into.droppedCheckpoints += stats.droppedCheckpoints
  into.protocolErrors += stats.protocolErrors
  into.outputLines += stats.outputLines
  into.stderrLines += stats.stderrLines
}

/** Counts a new incarnation: its reader goes live, and the oldest live one, if a third, is read and retired. */
export const count = (core: Core, stats: Effect.Effect<AgentProcess.Stats>): Effect.Effect<void> =>
  Effect.suspend(() => {
    core.readers.push(stats)
    return core.readers.length <= 2
      ? Effect.void
      : Effect.map(core.readers.shift()!, (last) => addCounters(core.counted, last))
  })

/** The counters over the agent's whole life. */
export const totals = (core: Core): Effect.Effect<Counted> =>
  Effect.map(Effect.all(core.readers), (live) => {
    const sum = { ...core.counted }
    for (const stats of live) addCounters(sum, stats)
    return sum
  })

/** A snapshot of the agent. */
export const metadata = (core: Core): Effect.Effect<Metadata> =>
  Effect.gen(function*() {
    // Read in one step, before anything yields: the state, the incarnation and the process agree.
    const state = viewState(core)
    const current = core.incarnation
    const live = liveProcess(core)
    const stats = live === undefined ? undefined : yield* live.stats
    const all = yield* totals(core)
    const timestamp = yield* now
    return {
      name: core.name,
      state,
      pid: Option.fromNullable(live?.pid),
      startedAt: Option.fromNullable(live?.startedAt),
      restartCount: core.restartCount,
      // The count the next decision would start from: a stable run past resetAfter has already reset it.
      consecutiveFailures: current === undefined || core.state !== "RUNNING"
        ? core.failures
        : RestartPolicy.failuresAfterRun(core.settings, core.failures, timestamp - current.runningSince),
      circuitOpen: core.circuitOpen,
      lastHealth: Option.fromNullable(core.lastHealth.get()),
      lastExit: Option.fromNullable(core.lastExit),
      limits: Option.fromNullable(core.limits),
      inFlight: stats?.inFlight ?? 0,
      incarnations: core.incarnations,
      lateResponses: all.lateResponses,
      lateChunks: all.lateChunks,
      droppedCheckpoints: all.droppedCheckpoints,
      features: core.features,
      checkpoint: core.checkpoint === undefined ? Option.none() : Option.some(core.checkpoint.data),
      protocolErrors: all.protocolErrors,
      outputLines: all.outputLines,
      stderrLines: all.stderrLines
    }
  })

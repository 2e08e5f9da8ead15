/**
 * Checkpoints (protocol 1.1 `checkpoint`) over an agent's incarnations: the agent's latest one kept in memory and
 * written to the store (through the writer, never waited for), the checkpoints of the requests in flight at a crash,
 * and the `restore` message that gives both to the next incarnation right after its `ready`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Message from "../../../Protocol/Message.js"
import type * as ProcessInternal from "../process.js"
import { type Core, now } from "./core.js"

/**
 * The hooks of one incarnation about checkpoints. What it is restored from is the checkpoint known when it is
 * started: one it sends itself before its `restore` (racing it) does not replace what it is sent.
 */
export const hooks = (
  core: Core
): Pick<ProcessInternal.Hooks, "onCheckpoint" | "onCrashCheckpoints" | "restore"> => {
  const before = core.checkpoint
  return {
    onCheckpoint: (data) => {
      core.checkpoint = { data }
      core.writer.offerCheckpoint({ agent_name: core.name, data, updated_at: core.clock.unsafeCurrentTimeMillis() })
    },
    onCrashCheckpoints: (checkpoints) => {
      core.crashCheckpoints = checkpoints
    },
    restore: (pid) => restoreOf(core, before, pid)
  }
}

/**
 * The `restore` message of a new incarnation, if there is anything to restore; at the first restore of an agent
 * with no checkpoint yet, the store is asked for one from an earlier run (a read bounded by the store's timeout,
 * made only for agents that announced `checkpoint`). The crash checkpoints go with this restore only.
 */
const restoreOf = (
  core: Core,
  before: { readonly data: unknown } | undefined,
  pid: number
): Effect.Effect<Message.Restore | undefined> =>
  Effect.gen(function*() {
    let from = before
    if (from === undefined && !core.checkpointLoaded) {
      core.checkpointLoaded = true
      const stored = yield* core.writer.loadCheckpoint(core.name)
      if (Option.isSome(stored)) {
        from = { data: stored.value.data }
        // Unless the new incarnation sent one of its own meanwhile: that one is the latest.
        core.checkpoint ??= from
      }
    }
    const requests = core.crashCheckpoints
    core.crashCheckpoints = undefined
    if (from === undefined && requests === undefined) return undefined
    yield* core.publish({
      _tag: "Restored",
      agent: core.name,
      pid,
      checkpoint: from !== undefined,
      requests: requests === undefined ? [] : Object.keys(requests),
      timestamp: yield* now
    })
    return {
      type: "restore",
      ...(from !== undefined ? { data: from.data } : {}),
      ...(requests !== undefined ? { requests } : {})
    }
  })

/**
 * The store writer's checkpoints (protocol 1.1): the one waiting in its buffer per agent (a newer one replaces its
 * record, so an agent that checkpoints at every step costs one write per wake-up of the writer), and the latest
 * given per agent until the store has it, which `loadCheckpoint` reads back (read your writes).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Store from "../Store.js"

/** A checkpoint waiting in the writer's buffer; its record is replaced by a newer one of its agent. @internal */
export interface Entry {
  readonly _tag: "Checkpoint"
  readonly seq: number
  record: Store.CheckpointRecord
}

/** An agent forgotten (`Writer.forgetAgent`), waiting in the writer's buffer. @internal */
export interface ForgetEntry {
  readonly _tag: "Forget"
  readonly seq: number
  readonly agent: string
}

/** The writer's checkpoints (see the module's summary). @internal */
export const make = (store: Store.ResilientStore) => {
  const waiting = new Map<string, Entry>()
  const unwritten = new Map<string, Store.CheckpointRecord>()
  // The last `Forget` of an agent the store has not been handed yet: until it has, the store's checkpoint is stale
  const forgotten = new Map<string, ForgetEntry>()
  return {
    /** Keeps `record` as its agent's latest; true when it replaced the one waiting (no new entry is needed). */
    replace: (record: Store.CheckpointRecord): boolean => {
      unwritten.set(record.agent_name, record)
      const entry = waiting.get(record.agent_name)
      if (entry === undefined) return false
      entry.record = record
      return true
    },
    /** A new entry waits in the buffer. */
    add: (entry: Entry): Entry => {
      waiting.set(entry.record.agent_name, entry)
      return entry
    },
    /** The entry's write, its record as it is now: a newer one waits in an entry of its own. */
    write: (entry: Entry): Effect.Effect<void> => {
      const record = entry.record
      // (a newer entry of its agent, after a `forget`, stays)
      if (waiting.get(record.agent_name) === entry) waiting.delete(record.agent_name)
      return Effect.ensuring(
        store.saveCheckpoint(record),
        Effect.sync(() => {
          if (unwritten.get(record.agent_name) === record) unwritten.delete(record.agent_name)
        })
      )
    },
    /**
     * The agent is forgotten, in the entry returned: until the store has been handed it, nothing of the agent is
     * read back but a checkpoint given after this, which waits in a new entry after it (it does not replace the
     * one before).
     */
    forget: (agent: string, seq: number): ForgetEntry => {
      waiting.delete(agent)
      unwritten.delete(agent)
      const entry: ForgetEntry = { _tag: "Forget", seq, agent }
      forgotten.set(agent, entry)
      return entry
    },
    /** The forgetting's write (`Store.deleteAgent`). */
    writeForget: (entry: ForgetEntry): Effect.Effect<void> =>
      Effect.ensuring(
        store.deleteAgent(entry.agent),
        Effect.sync(() => {
          if (forgotten.get(entry.agent) === entry) forgotten.delete(entry.agent)
        })
      ),
    load: (agent: string): Effect.Effect<Option.Option<Store.CheckpointRecord>> =>
      Effect.suspend(() => {
        const record = unwritten.get(agent)
        if (record !== undefined) return Effect.succeedSome(record)
        return forgotten.has(agent) ? Effect.succeedNone : store.loadCheckpoint(agent)
      })
  }
}

/**
 * The in-memory store (`Store.makeMemory`): bounded logs, the latest state and checkpoint of the agents written
 * last, the child records of trees that restore, and a bounded set of task records. And `Store.restore`, which reads any store back.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { defaultTaskLimit } from "../Records.js"
import type * as Store from "../Store.js"
import { DEFAULT_MAX_TASKS } from "./taskBounds.js"

/** A bound as given (`undefined` or `NaN`: `fallback`), made a whole number of 0 or more. */
export const bound = (value: number | undefined, fallback: number): number =>
  value === undefined || Number.isNaN(value) ? fallback : Math.max(0, Math.floor(value))

/** Appends `item`, dropping the oldest items past `max`. */
export const append = <A>(log: Chunk.Chunk<A>, item: A, max: number): Chunk.Chunk<A> => {
  const next = Chunk.append(log, item)
  return Chunk.size(next) > max ? Chunk.drop(next, Chunk.size(next) - max) : next
}

/** Appends `items` in order, dropping the oldest items past `max`. */
export const appendAll = <A>(log: Chunk.Chunk<A>, items: ReadonlyArray<A>, max: number): Chunk.Chunk<A> => {
  const next = Chunk.appendAll(log, Chunk.fromIterable(items))
  return Chunk.size(next) > max ? Chunk.drop(next, Chunk.size(next) - max) : next
}

/** Newest first: by timestamp, descending, and among equal timestamps the later write first. */
export const newestFirst = <A extends { readonly timestamp: number }>(
  log: Chunk.Chunk<A>,
  keep: (item: A) => boolean
): Array<A> => {
  const items = Chunk.toReadonlyArray(log)
  const selected: Array<A> = []
  for (let i = items.length - 1; i >= 0; i--) {
    if (keep(items[i])) selected.push(items[i])
  }
  // Stable: equal timestamps keep the later-write-first order built above.
  return selected.sort((a, b) => b.timestamp - a.timestamp)
}

/** Whether a record of `supervisor` is at or below the path `path` (the records `deleteChild` forgets with it). */
export const isBelow = (supervisor: string, path: string): boolean =>
  supervisor === path || supervisor.startsWith(`${path}/`)

/**
 * A map of at most `max` entries, in write order (an entry written again moves to the end): past `max`, the least
 * recently written go. A `Map` keeps that order and finds, replaces, deletes and drops the oldest in constant time.
 * Each operation is one synchronous step, as a `Ref`'s is.
 */
const makeBounded = <V>(max: number) => {
  const entries = new Map<string, V>()
  return {
    entries,
    set: (key: string, value: V) => {
      entries.delete(key)
      entries.set(key, value)
      for (const oldest of entries.keys()) {
        if (entries.size <= max) break
        entries.delete(oldest)
      }
    },
    get: (key: string): Option.Option<V> => Option.fromNullable(entries.get(key)),
    delete: (key: string): void => void entries.delete(key)
  }
}

/** The task records, the least recently written dropped past `maxTasks`. */
const makeTasks = (maxTasks: number): Pick<
  Store.Store["Type"],
  "saveTask" | "getTask" | "listTasks" | "deleteTask"
> => {
  const tasks = makeBounded<Store.TaskRecord>(maxTasks)
  return {
    saveTask: (record) => Effect.sync(() => tasks.set(record.task_id, record)),
    getTask: (taskId) => Effect.sync(() => tasks.get(taskId)),
    listTasks: (query) =>
      Effect.sync(() => {
        const limit = bound(query?.limit, defaultTaskLimit)
        const selected: Array<Store.TaskRecord> = []
        for (const record of tasks.entries.values()) {
          if (
            (query?.topic === undefined || record.topic === query.topic) &&
            (query?.status === undefined || record.status === query.status)
          ) selected.push(record)
        }
        // Later write first, then (a stable sort) the latest `updated_at` first.
        selected.reverse().sort((a, b) => b.updated_at - a.updated_at)
        return selected.length > limit ? selected.slice(0, limit) : selected
      }),
    deleteTask: (taskId) => Effect.sync(() => tasks.delete(taskId))
  }
}

/** What the in-memory store holds. */
interface Contents {
  /** Oldest first, in write order. */
  readonly metrics: Chunk.Chunk<Store.MetricEvent>
  /** Oldest first, in write order. */
  readonly restarts: Chunk.Chunk<Store.RestartRecord>
  /** In the order first saved. */
  readonly children: ReadonlyArray<Store.ChildRecord>
}

const sameChild = (a: Store.ChildRecord, supervisor: string, childId: string) =>
  a.supervisor === supervisor && a.child_id === childId

/** The in-memory store's operations (`Store.makeMemory` tags them). */
export const make = (
  options: Store.MemoryOptions | undefined,
  defaultMetricLimit: number
): Effect.Effect<Store.Store["Type"]> =>
  Effect.gen(function*() {
    const maxMetrics = bound(options?.maxMetrics, 10_000)
    const maxRestarts = bound(options?.maxRestarts, 1_000)
    const tasks = makeTasks(bound(options?.maxTasks, DEFAULT_MAX_TASKS))
    // An agent's last state and checkpoint, for as many agents as written last: names come and go with dynamic
    // children, and a host that makes new ones for ever must not keep every one it had
    const maxAgents = bound(options?.maxAgents, 10_000)
    const states = makeBounded<Store.StateRecord>(maxAgents)
    const checkpoints = makeBounded<Store.CheckpointRecord>(maxAgents)
    const contents = yield* Ref.make<Contents>({ metrics: Chunk.empty(), restarts: Chunk.empty(), children: [] })

    return {
      saveState: (record) => Effect.sync(() => states.set(record.agent_name, record)),
      saveMetric: (event) => Ref.update(contents, (c) => ({ ...c, metrics: append(c.metrics, event, maxMetrics) })),
      saveMetrics: (events) =>
        Ref.update(contents, (c) => ({ ...c, metrics: appendAll(c.metrics, events, maxMetrics) })),
      recordRestart: (record) =>
        Ref.update(contents, (c) => ({ ...c, restarts: append(c.restarts, record, maxRestarts) })),
      getState: (agent) => Effect.sync(() => states.get(agent)),
      listMetrics: (query) =>
        Effect.map(Ref.get(contents), (c) => {
          const limit = bound(query?.limit, defaultMetricLimit)
          const selected = newestFirst(c.metrics, (event) =>
            (query?.agent === undefined || event.agent_name === query.agent) &&
            (query?.event === undefined || event.event === query.event) &&
            (query?.since === undefined || event.timestamp >= query.since))
          return selected.length > limit ? selected.slice(0, limit) : selected
        }),
      restartHistory: (agent) =>
        Effect.map(
          Ref.get(contents),
          (c) => newestFirst(c.restarts, (record) => agent === undefined || record.agent_name === agent)
        ),
      saveChild: (record) =>
        Ref.update(contents, (c) => {
          const at = c.children.findIndex((r) => sameChild(r, record.supervisor, record.child_id))
          const children = at < 0 ? [...c.children, record] : c.children.map((r, i) => i === at ? record : r)
          return { ...c, children }
        }),
      deleteChild: (supervisor, childId) =>
        Ref.update(contents, (c) => {
          const path = `${supervisor}/${childId}`
          const children = c.children.filter((r) => !sameChild(r, supervisor, childId) && !isBelow(r.supervisor, path))
          return { ...c, children }
        }),
      listChildren: (supervisor) =>
        Effect.map(
          Ref.get(contents),
          (c) => supervisor === undefined ? c.children : c.children.filter((r) => r.supervisor === supervisor)
        ),
      deleteAgent: (agent) =>
        Effect.sync(() => {
          states.delete(agent)
          checkpoints.delete(agent)
        }),
      saveCheckpoint: (record) => Effect.sync(() => checkpoints.set(record.agent_name, record)),
      loadCheckpoint: (agent) => Effect.sync(() => checkpoints.get(agent)),
      ...tasks
    }
  })

/** `Store.restore` over a resilient store: the agent's last state and restart history, read together. */
export const restore = (store: Store.ResilientStore, agent: string): Effect.Effect<Store.Restored> =>
  Effect.map(
    Effect.all([store.getState(agent), store.restartHistory(agent)], { concurrency: 2 }),
    ([state, history]) => ({
      agent,
      state,
      restartCount: Option.match(state, { onNone: () => 0, onSome: (s) => s.restart_count }),
      history
    })
  )

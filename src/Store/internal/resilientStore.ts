/**
 * `Store.resilient`: each operation of a store through the guard of `resilient.ts` (bounded, its failures counted
 * and logged per outage), with what it answers when the store fails: nothing for a write, an empty answer for a
 * read. The optional operations of a store that lacks them answer as a failure would, without a call.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Store from "../Store.js"
import * as Resilient from "./resilient.js"

/** A resilient store over `store` (see `Store.resilient`), with its defaults unless told. @internal */
export const make = (
  store: Store.Store["Type"],
  settings: Resilient.Settings = Resilient.DEFAULTS
): Store.ResilientStore => {
  const { failures, guard } = Resilient.make(store, settings)
  return {
    saveState: (record) => guard("saveState", "write", () => store.saveState(record), () => undefined),
    saveMetric: (event) => guard("saveMetric", "write", () => store.saveMetric(event), () => undefined),
    saveMetrics: (events) =>
      guard(
        "saveMetrics",
        "write",
        () =>
          store.saveMetrics !== undefined
            ? store.saveMetrics(events)
            : Effect.forEach(events, (event) => store.saveMetric(event), { discard: true }),
        () => undefined
      ),
    recordRestart: (record) => guard("recordRestart", "write", () => store.recordRestart(record), () => undefined),
    getState: (agent) => guard("getState", "read", () => store.getState(agent), Option.none),
    listMetrics: (query) =>
      guard(
        "listMetrics",
        "read",
        () => query === undefined ? store.listMetrics() : store.listMetrics(query),
        (): ReadonlyArray<Store.MetricEvent> => []
      ),
    restartHistory: (agent) =>
      guard(
        "restartHistory",
        "read",
        () => agent === undefined ? store.restartHistory() : store.restartHistory(agent),
        (): ReadonlyArray<Store.RestartRecord> => []
      ),
    saveChild: (record) =>
      store.saveChild === undefined
        ? Effect.succeed(false)
        : guard("saveChild", "write", () => Effect.as(store.saveChild!(record), true), () => false),
    deleteChild: (supervisor, childId) =>
      store.deleteChild === undefined
        ? Effect.succeed(false)
        : guard("deleteChild", "write", () => Effect.as(store.deleteChild!(supervisor, childId), true), () => false),
    listChildren: (supervisor) =>
      store.listChildren === undefined ? Effect.succeedNone : guard(
        "listChildren",
        "read",
        () => Effect.asSome(supervisor === undefined ? store.listChildren!() : store.listChildren!(supervisor)),
        Option.none
      ),
    saveCheckpoint: (record) =>
      store.saveCheckpoint === undefined
        ? Effect.void
        : guard("saveCheckpoint", "write", () => store.saveCheckpoint!(record), () => undefined),
    loadCheckpoint: (agent) =>
      store.loadCheckpoint === undefined
        ? Effect.succeedNone
        : guard("loadCheckpoint", "read", () => store.loadCheckpoint!(agent), Option.none),
    saveTask: (record) =>
      store.saveTask === undefined
        ? Effect.void
        : guard("saveTask", "write", () => store.saveTask!(record), () => undefined),
    deleteTask: (taskId) =>
      store.deleteTask === undefined
        ? Effect.void
        : guard("deleteTask", "write", () => store.deleteTask!(taskId), () => undefined),
    deleteAgent: (agent) =>
      store.deleteAgent === undefined
        ? Effect.void
        : guard("deleteAgent", "write", () => store.deleteAgent!(agent), () => undefined),
    getTask: (taskId) =>
      store.getTask === undefined
        ? Effect.succeedNone
        : guard("getTask", "read", () => store.getTask!(taskId), Option.none),
    listTasks: (query) =>
      store.listTasks === undefined ? Effect.succeed([]) : guard(
        "listTasks",
        "read",
        () => query === undefined ? store.listTasks!() : store.listTasks!(query),
        (): ReadonlyArray<Store.TaskRecord> => []
      ),
    failures
  }
}

/**
 * The tree's record of its children in the store, under its `restore` option: the specs of the children added by
 * `startChild`, and which children are parked. Writes are queued and return at once; one fiber hands them to the
 * store in order, only the latest of each child, and tries a failed one again until the store takes it, so that the
 * store comes to agree with the tree once it answers. `startChild` and `deleteChild` wait for theirs, for at most
 * the tree's `storeFlushTimeout`; closing the tree waits as long for the rest.
 *
 * Apart from the store writer (states, metrics and restarts, best effort): a child record that is lost changes what
 * the next run of the application starts, so it is never dropped while the tree runs, and waited for.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { ConfigError } from "../../Errors.js"
import * as ResilientStore from "../../Store/internal/resilientStore.js"
import * as Store from "../../Store/Store.js"
import { forkIn, repeatUntilStopped } from "../fork.js"
import { withoutParentSpan } from "../forker.js"
import { isolate } from "../wait.js"
import type { Child, Instance } from "./state.js"
import * as Stored from "./stored.js"

/** What a tree that restores writes and reads of its children. */
export interface Keeper {
  /** The records of `supervisor`'s children, writes still queued included; `None` when the store failed. */
  readonly list: (supervisor: string) => Effect.Effect<Option.Option<ReadonlyArray<Store.ChildRecord>>>
  /** Queues a child's record (it replaces any queued for the child); returns at once. */
  readonly save: (record: Omit<Store.ChildRecord, "updated_at">) => Effect.Effect<void>
  /** Queues forgetting a child and the records below its path; returns at once. */
  readonly remove: (supervisor: string, childId: string) => Effect.Effect<void>
  /** Waits, for at most the tree's flush timeout, until what was queued for the child is in the store: whether it is. */
  readonly settled: (supervisor: string, childId: string) => Effect.Effect<boolean>
}

/** The latest write queued for one child: forget it (and what is below it) first, then save a record. */
interface Op {
  readonly supervisor: string
  readonly childId: string
  remove: boolean
  readonly save: Store.ChildRecord | undefined
  /** Completed once this write, or a later one of the same child, is in the store. */
  readonly done: Deferred.Deferred<void>
  warned: boolean
}

const keyOf = (supervisor: string, childId: string) => `${supervisor}\u0000${childId}`

const isBelow = (supervisor: string, path: string) => supervisor === path || supervisor.startsWith(`${path}/`)

/** The records the store gave for `supervisor`, with the queued writes applied, in order. */
const overlay = (
  supervisor: string,
  stored: ReadonlyArray<Store.ChildRecord>,
  queued: Iterable<Op>
): Array<Store.ChildRecord> => {
  let records = [...stored]
  for (const op of queued) {
    if (op.remove && isBelow(supervisor, `${op.supervisor}/${op.childId}`)) records = []
    if (op.supervisor !== supervisor) continue
    const others = records.filter((r) => r.child_id !== op.childId)
    const at = records.findIndex((r) => r.child_id === op.childId)
    if (op.save === undefined) records = others
    else if (op.remove || at < 0) records = [...others, op.save]
    else records = records.map((r, i) => i === at ? op.save! : r)
  }
  return records
}

/**
 * Makes the keeper of a tree over `store`: a `ConfigError` when the store keeps no child records (one written for
 * an earlier version of the `Store` interface). Scoped: closing the scope waits up to `flushTimeout` for the queued
 * writes, then gives up on them with a warning.
 */
export const make = (
  store: Store.Store["Type"],
  options: { readonly flushTimeout: Duration.Duration; readonly retryAfter: Duration.Duration }
): Effect.Effect<Keeper, ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    if (store.saveChild === undefined || store.deleteChild === undefined || store.listChildren === undefined) {
      return yield* Effect.fail(
        new ConfigError({
          field: "restore",
          rule: "needs a store that keeps child records (saveChild, deleteChild and listChildren): the memory, " +
            "SQLite and PostgreSQL stores do; this one was written without them"
        })
      )
    }
    const writes = ResilientStore.make(store)
    const reads = ResilientStore.make(store)
    // Insertion order is write order: a replaced write keeps its place, as the store keeps a replaced record's.
    const queued = new Map<string, Op>()
    const wake = yield* Effect.makeLatch(false)

    const enqueue = (supervisor: string, childId: string, remove: boolean, save: Store.ChildRecord | undefined) =>
      Effect.sync(() => {
        const key = keyOf(supervisor, childId)
        const previous = queued.get(key)
        queued.set(key, {
          supervisor,
          childId,
          // A save after a queued removal must not skip it: the records below the path go first.
          remove: remove || (previous?.remove ?? false),
          save,
          done: previous?.done ?? Deferred.unsafeMake<void>(FiberId.none),
          warned: false
        })
        wake.unsafeOpen()
      })

    const run = (op: Op): Effect.Effect<boolean> =>
      Effect.gen(function*() {
        if (op.remove) {
          if (!(yield* writes.deleteChild(op.supervisor, op.childId))) return false
          op.remove = false
        }
        return op.save === undefined ? true : yield* writes.saveChild(op.save)
      })

    const warn = (op: Op) =>
      Effect.logWarning(
        `Supervisor: the store did not take the record of child "${op.childId}" of "${op.supervisor}" ` +
          `(${op.save === undefined ? "forgotten" : op.save.parked ? "parked" : "its spec"}); trying again every ` +
          `${Duration.format(options.retryAfter)}. Until it does, a restart of the application would not see it.`
      )

    // Set before the drain's interruption: a write that lost it ends the drain at its next check (`fork.ts`).
    let stopped = false
    // Woken by a write: hands the store what is queued, in order, until nothing is (or the tree has stopped).
    const drain = repeatUntilStopped(
      () => stopped,
      Effect.gen(function*() {
        yield* wake.await
        yield* wake.close
        while (queued.size > 0 && !stopped) {
          const [key, op] = queued.entries().next().value!
          if (!(yield* run(op))) {
            if (!op.warned) yield* warn(op)
            op.warned = true
            yield* Effect.sleep(options.retryAfter)
            continue
          }
          // Replaced meanwhile: the newer write of this child goes next, and completes `done`.
          if (queued.get(key) === op) {
            queued.delete(key)
            yield* Deferred.succeed(op.done, undefined)
          }
        }
      })
    )

    const waitFor = (ops: ReadonlyArray<Op>) => Effect.forEach(ops, (op) => Deferred.await(op.done), { discard: true })

    yield* forkIn(yield* Effect.scope)(withoutParentSpan(drain))
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const drained = yield* isolate(waitFor([...queued.values()]).pipe(Effect.timeoutOption(options.flushTimeout)))
        if (Option.isNone(drained) && queued.size > 0) {
          yield* Effect.logWarning(
            `Supervisor: the store did not take ${queued.size} child record(s) within ` +
              `${Duration.format(options.flushTimeout)}; the next run of the application may not restore those ` +
              `children as they were`
          )
        }
        stopped = true
      })
    )

    return {
      list: (supervisor) =>
        Effect.map(
          reads.listChildren(supervisor),
          Option.map((stored) => overlay(supervisor, stored, queued.values()))
        ),
      save: (record) =>
        Effect.flatMap(
          Effect.clockWith((clock) => clock.currentTimeMillis),
          (updated_at) => enqueue(record.supervisor, record.child_id, false, { ...record, updated_at })
        ),
      remove: (supervisor, childId) => enqueue(supervisor, childId, true, undefined),
      settled: (supervisor, childId) =>
        Effect.suspend(() => {
          const op = queued.get(keyOf(supervisor, childId))
          if (op === undefined) return Effect.succeed(true)
          return Deferred.await(op.done).pipe(Effect.timeoutOption(options.flushTimeout), Effect.map(Option.isSome))
        })
    }
  })

/** The record of `child` as it stands. */
const recordOf = (self: Instance, child: Child): Omit<Store.ChildRecord, "updated_at"> => ({
  supervisor: self.name,
  child_id: child.spec.id,
  parked: child.parked,
  ...(child.stored !== undefined ? { spec: child.stored } : {})
})

/** Waits for the child's write, warning when the store has not taken it in time. */
const awaitWrite = (self: Instance, keeper: Keeper, id: string, what: string): Effect.Effect<void> =>
  Effect.flatMap(keeper.settled(self.name, id), (done) =>
    done ? Effect.void : Effect.logWarning(
      `Supervisor: ${what} of child "${id}" is not in the store yet; it is written as soon as the store takes it, ` +
        `but if the application ends first, its next run will not see it`
    ))

/** A dynamic child was added (`startChild`): its spec is written, and waited for. */
export const added = (self: Instance, child: Child): Effect.Effect<void> =>
  Effect.suspend(() => {
    const keeper = self.shared.keeper
    if (keeper === undefined || child.stored === undefined) return Effect.void
    return Effect.zipRight(keeper.save(recordOf(self, child)), awaitWrite(self, keeper, child.spec.id, "the spec"))
  })

/**
 * The child's spec changed as it runs (`scale` of a pool, `reload` with a new configuration): under `restore`, a
 * dynamic child's record is written again with the spec as it now is, and waited for (bounded), so that the next
 * run starts it so. A child with no record of its own is part of its supervisor's spec: that one's record is
 * written again, up to a child that has one (a pool in a nested supervisor added by `startChild`). A static
 * child's spec is the code's: it has no record to change.
 */
export const respecified = (self: Instance, id: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    const keeper = self.shared.keeper
    if (keeper === undefined) return Effect.void
    // Under the lock: a `deleteChild` meanwhile has removed the child, and its record stays removed.
    return Effect.flatMap(
      self.locked(Effect.suspend(() => {
        const child = self.children.find((c) => c.spec.id === id)
        if (child === undefined) return Effect.succeed("gone" as const)
        if (child.stored === undefined) return Effect.succeed("parent's" as const)
        child.stored = Stored.encode(child.spec)
        return Effect.as(keeper.save(recordOf(self, child)), "saved" as const)
      })),
      (done) =>
        done === "saved"
          ? awaitWrite(self, keeper, id, "the new spec")
          : done === "parent's"
          ? self.toParent?.respecified() ?? Effect.void
          : Effect.void
    )
  })

/** The child's circuit opened: parked, and kept parked by the next run until restarted by hand. */
export const park = (self: Instance, child: Child): Effect.Effect<void> =>
  Effect.suspend(() => {
    child.parked = true
    return self.shared.keeper === undefined ? Effect.void : self.shared.keeper.save(recordOf(self, child))
  })

/** The child is no longer parked (a manual restart or stop, a group restart): its record says so. */
export const unpark = (self: Instance, child: Child): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (!child.parked) return Effect.void
    child.parked = false
    const keeper = self.shared.keeper
    if (keeper === undefined) return Effect.void
    // A static child's record only said that it was parked.
    return child.stored === undefined
      ? keeper.remove(self.name, child.spec.id)
      : keeper.save(recordOf(self, child))
  })

/**
 * The child was removed from the tree: its record goes, with those of a nested supervisor's children. A static
 * agent that is not parked has none.
 */
export const removed = (self: Instance, child: Child): Effect.Effect<void> =>
  Effect.suspend(() => {
    const keeper = self.shared.keeper
    if (keeper === undefined || (child.stored === undefined && !child.parked && child.spec._tag === "Agent")) {
      return Effect.void
    }
    return keeper.remove(self.name, child.spec.id)
  })

/** `deleteChild` answers once the child's record is gone from the store (or after the flush timeout, warned of). */
export const deleted = (self: Instance, id: string): Effect.Effect<void> =>
  self.shared.keeper === undefined ? Effect.void : awaitWrite(self, self.shared.keeper, id, "the removal")

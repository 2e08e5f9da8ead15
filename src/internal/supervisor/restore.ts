/**
 * A supervisor's children at its start: the static ones, in order, and, in a tree that restores, the dynamic ones
 * the store keeps (in the order they were added), with every child that was parked kept parked.
 *
 * Under `restore`, every start of a supervisor reads the store: the root's at `make`, a nested one's at each of its
 * starts, a restart by its parent included (OTP's would lose its dynamic children there: these are kept, so that the
 * tree and the store agree).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { ConfigError, type SupervisorChildError } from "../../Errors.js"
import type * as Store from "../../Store/Store.js"
import type * as Supervisor from "../../Supervisor.js"
import type * as Keeper from "./keeper.js"
import * as Operations from "./operations.js"
import * as Spec from "./spec.js"
import type { Instance } from "./state.js"
import * as Stored from "./stored.js"

/** Adds and starts every child of the supervisor at its start, under the lock; a static child that fails fails it. */
export const startChildren = (self: Instance): Effect.Effect<void, Supervisor.StartError | SupervisorChildError> =>
  Effect.gen(function*() {
    const keeper = self.shared.keeper
    if (keeper === undefined) {
      return yield* Effect.forEach(self.tree.children, (spec) => Operations.addChild(self, spec), { discard: true })
    }
    const listed = yield* keeper.list(self.name)
    if (Option.isNone(listed)) {
      yield* Effect.logWarning(
        `Supervisor "${self.name}": the store could not be read, so its children start as without restore: the ` +
          `static ones, none parked, and no dynamic one (their records stay in the store for its next start)`
      )
    }
    const records = Option.getOrElse(listed, (): ReadonlyArray<Store.ChildRecord> => [])
    const parked = new Set(records.filter((r) => r.parked).map((r) => r.child_id))
    const statics = new Set(self.tree.children.map((spec) => spec.id))
    for (const spec of self.tree.children) {
      yield* parked.has(spec.id) ? Operations.addParked(self, spec, undefined) : Operations.addChild(self, spec)
    }
    for (const record of records) {
      yield* statics.has(record.child_id) ? staticNow(self, keeper, record) : restoreChild(self, keeper, record)
    }
  })

/** A record whose id is a static child's: the static spec wins; a dynamic spec of the same id is dropped. */
const staticNow = (self: Instance, keeper: Keeper.Keeper, record: Store.ChildRecord): Effect.Effect<void> =>
  record.spec === undefined ? Effect.void : Effect.zipRight(
    Effect.logWarning(
      `Supervisor "${self.name}": child "${record.child_id}" is static now; the spec it was added with by ` +
        `startChild is dropped from the store: ${record.spec}`
    ),
    keeper.save({ supervisor: record.supervisor, child_id: record.child_id, parked: record.parked })
  )

/** The spec in a record, decoded as `startChild` decodes one; its id must be the record's. */
const decodeRecord = (self: Instance, id: string, stored: string): Effect.Effect<Spec.ChildSpec, ConfigError> => {
  const at = `children[${self.children.length}]`
  const input = Stored.decode(stored)
  if (Either.isLeft(input)) return Effect.fail(new ConfigError({ field: at, rule: `cannot be read: ${input.left}` }))
  return Effect.filterOrFail(
    Spec.decodeAdded(self.tree, Operations.siblings(self), input.right),
    (spec) => spec.id === id,
    (spec) => new ConfigError({ field: `${at}.id`, rule: `is "${spec.id}", but the record is of "${id}"` })
  )
}

/** A dynamic child of the previous run, back (parked if it was); one whose spec no longer decodes is reported. */
const restoreChild = (self: Instance, keeper: Keeper.Keeper, record: Store.ChildRecord): Effect.Effect<void> =>
  Effect.gen(function*() {
    // A record without a spec and no static child of its id: a static child that was parked, gone from the code.
    if (record.spec === undefined) return yield* keeper.remove(self.name, record.child_id)
    const stored = record.spec
    const decoded = yield* Effect.either(decodeRecord(self, record.child_id, stored))
    if (Either.isLeft(decoded)) {
      yield* Effect.logError(
        `Supervisor "${self.name}": the spec of child "${record.child_id}" in the store no longer decodes; the ` +
          `child is not restored, and its record is removed. Its spec was: ${stored}`,
        Cause.fail(decoded.left)
      )
      return yield* keeper.remove(self.name, record.child_id)
    }
    const add = record.parked ? Operations.addParked : Operations.addRestored
    // Its id is free (static ids are handled apart, records are one per id): a refusal would be a bug; logged.
    yield* add(self, decoded.right, stored).pipe(
      Effect.catchAll((error) => Effect.logError(`Supervisor "${self.name}": child not restored`, Cause.fail(error)))
    )
  })

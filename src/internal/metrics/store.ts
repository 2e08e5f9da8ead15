/**
 * The store's instruments: failed operations (`Store.resilient`) and writes given up (the store writer). Not per
 * agent: a tree's agents share one writer and one store. Their series are few (an operation name and a reason
 * each), kept once resolved: during an outage every write fails, and a failure then costs a map lookup.
 *
 * @internal
 */
import { type DropReason, keys } from "./definitions.js"
import { counter } from "./hooks.js"

/** A store operation failed (`timedOut`: it did not answer in time). @internal */
export const failed = (operation: string, timedOut: boolean): void =>
  counter(keys.storeFailures, [["operation", operation], ["reason", timedOut ? "timeout" : "failure"]]).update(1)

/** The store writer gave up on `count` writes. @internal */
export const dropped = (reason: DropReason, count: number): void => {
  if (count > 0) counter(keys.storeDrops, [["reason", reason]]).update(count)
}

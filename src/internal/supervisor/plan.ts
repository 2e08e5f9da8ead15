/**
 * Which children a restart touches, as a pure function (OTP's `restart/2` for one_for_one, one_for_all and
 * rest_for_one), so that the rules can be property-tested without processes.
 *
 * @internal
 */
import type * as Config from "../../Agent/Config.js"
import type * as Supervisor from "../../Supervisor.js"

/** What the plan reads of a child: its restart type. */
export interface Plannable {
  readonly spec: { readonly restart: Config.RestartType }
}

/** A group restart, computed before anything is stopped. */
export interface Plan<A> {
  /** The affected set in start order: their pending restarts are cancelled, this restart subsumes them. */
  readonly members: ReadonlyArray<A>
  /**
   * The bystanders to stop, in reverse start order: every member but the crashed child (whose process has exited
   * already), running or not, since a stopped one may still hold an agent to stop.
   */
  readonly stop: ReadonlyArray<A>
  /** The stopped bystanders that are removed instead of restarted: the temporary ones, as in OTP. */
  readonly remove: ReadonlyArray<A>
  /**
   * The children to start again after the backoff, in start order: the crashed child and every bystander that is
   * not temporary, parked or terminated ones included. `significant` plays no part: it matters only when a child
   * ends for good, and a bystander removed here does not trigger auto-shutdown.
   */
  readonly start: ReadonlyArray<A>
}

/**
 * The plan after the restart decision for `crashed`, among `children` in start order. Only a child that is to
 * restart is asked about, so `crashed` is never temporary (its exit removes it) and always starts again. A child no
 * longer in the list is restarted alone.
 */
export const plan = <A extends Plannable>(
  children: ReadonlyArray<A>,
  strategy: Supervisor.Strategy,
  crashed: A
): Plan<A> => {
  const index = children.indexOf(crashed)
  const members = index < 0 || strategy === "one-for-one"
    ? [crashed]
    : strategy === "one-for-all"
    ? [...children]
    : children.slice(index)
  const stop = members.filter((member) => member !== crashed).reverse()
  return {
    members,
    stop,
    remove: stop.filter((member) => member.spec.restart === "temporary"),
    start: members.filter((member) => member === crashed || member.spec.restart !== "temporary")
  }
}

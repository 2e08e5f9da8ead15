/**
 * The state of one running supervisor, shared by its parts (child runtimes, decisions, manual operations, views):
 * what it was made with, its children in start order, and the few helpers they all use.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import type * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import type * as Owned from "../../Agent/internal/owned.js"
import type * as Serial from "../../Agent/internal/serial.js"
import type * as Hub from "../../Agent/internal/supervisor/hub.js"
import type * as RestartPolicy from "../../Agent/RestartPolicy.js"
import { SupervisorChildError, type SupervisorIntensityError } from "../../Errors.js"
import type * as Writer from "../../Store/internal/writer.js"
import type * as Supervisor from "../../Supervisor.js"
import type * as Forker from "../forker.js"
import type * as LogSettings from "../logFiles/settings.js"
import type * as Bus from "../topics/bus.js"
import type * as Keeper from "./keeper.js"
import type * as Spec from "./spec.js"

/** What every supervisor of one tree shares. */
export interface Shared {
  /** The tree's one store writer: every agent and nested supervisor in the tree writes through it. */
  readonly writer: Writer.Writer
  /** The tree's child records in the store, when it restores (its `restore` option). */
  readonly keeper: Keeper.Keeper | undefined
  /** Where the heartbeat reports of every agent in the tree run, a batch at a time. */
  readonly reports: Serial.Serial
  /** Where every agent of the tree writes its stderr (`<dir>/<agent name>.log`), if anywhere. */
  readonly logs: LogSettings.Settings | undefined
  /** The tree's topics. */
  readonly topics: Bus.Bus
  /**
   * Every supervisor of the tree that runs (the root, nested ones, pools): where an agent name is looked for before
   * the store forgets it (`removeChild`). Each adds itself when made and leaves once its children have stopped.
   */
  readonly instances: Set<Instance>
}

/** What a tree's supervisors share, from its root's parts, with no supervisor running yet. */
export const makeShared = (parts: Omit<Shared, "instances">): Shared => ({ ...parts, instances: new Set() })

/** An exit of a child as the decisions read it (an agent's exit, or a nested supervisor's end). */
export interface ChildExitInfo {
  readonly exitClass: RestartPolicy.ExitClass
  readonly reason: string
  readonly uptimeMillis: number
  readonly exitCode?: number | null | undefined
  readonly signal?: string | null | undefined
  readonly leftBehind?: true | undefined
}

/** What runs for a child: an agent (kept across its restarts) or a nested supervisor (built anew each time). */
export type Runtime =
  | {
    readonly _tag: "Agent"
    readonly agent: Owned.OwnedAgent
    readonly scope: Scope.CloseableScope
    controls: Owned.Controls | undefined
  }
  | {
    readonly _tag: "Supervisor"
    readonly instance: Supervisor.Supervisor
    readonly scope: Scope.CloseableScope
  }

/** One child. Written only under the supervisor's lock. */
export interface Child {
  /** Replaced only by a reload with a new configuration. */
  spec: Spec.ChildSpec
  /** A dynamic child's spec as the store keeps it, in a tree that restores; `undefined` for a static child. */
  stored: string | undefined
  /**
   * Added by `startChild`, `startChildren` or restored: dynamic children stop together when the supervisor stops
   * (as OTP's `simple_one_for_one` children do), before the static ones stop one by one in reverse start order.
   */
  readonly dynamic: boolean
  status: "running" | "restarting" | "stopped"
  /** Stopped because its circuit opened, until it starts again. */
  parked: boolean
  failures: number
  runtime: Runtime | undefined
  /**
   * An agent child's agent while the start that makes it (the tree's start, `startChild`, a restore) is under way,
   * before `runtime` is set: the views show its state and pid, calls reach it (they wait for its start), and
   * `child(id)` waits for `started` (done when the start has ended, either way).
   */
  starting?: { readonly agent: Owned.Starting; readonly started: Deferred.Deferred<void> } | undefined
  /** The pending restart covering this child, if any. */
  pending: Fiber.RuntimeFiber<void> | undefined
  /** Terminated by hand while a group restart that includes it was pending: that restart skips it. */
  skip: boolean
  /** Takes it out of the tree's topics' subscribers (set for a child with topics; see `subscriptions.ts`). */
  unsubscribe?: (() => void) | undefined
  /** A reload of it is under way (one at a time: `replace.ts`). */
  reloading?: boolean | undefined
  /** Stops its watch mode (set for a child with `watch`; see `watch.ts`). */
  unwatch?: Effect.Effect<unknown> | undefined
  /**
   * A nested supervisor's or pool's agents when it stopped (its dynamic children and scaled members too, which its
   * spec does not name), until it starts again: what the store forgets if it is deleted (`agentNames.ts`).
   */
  agentsAtStop?: ReadonlyArray<string> | undefined
}

/** Why a child was stopped, as `ChildStopped` says. */
export type StopReason = "shutdown" | "bystander" | "manual" | "escalation"

/** A running supervisor's state. The mutable fields are written only under `locked`. */
export interface Instance {
  readonly name: string
  readonly tree: Spec.Tree
  readonly shared: Shared
  readonly writer: Writer.Writer
  /** The scope the children's scopes hang below. */
  readonly childScopes: Scope.Scope
  readonly fork: Forker.Forker
  /**
   * Runs an operation for a caller (a manual operation, a reload, a pool's scale) as the supervisor's own: with the
   * fiber refs of the fiber that made the supervisor (its `supervisor` log annotation), as its first start and its
   * restarts run, never the caller's, which what the operation starts (an agent's fibers, its log lines) would keep
   * for life. See `Forker.makeRunner`.
   */
  readonly asOwn: Forker.Runner
  readonly events: Hub.OwnHub<Supervisor.SupervisorEvent>
  /** Completed when the supervisor shut itself down, failed when it escalated. */
  readonly done: Deferred.Deferred<void, SupervisorIntensityError>
  readonly intensity: RestartPolicy.Intensity
  readonly locked: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** A nested supervisor publishes into its parent directly, so events of its own start are not lost. */
  readonly toParent: Upstream | undefined
  /** Hands an exit to the decisions (they import the child runtimes, so the runtimes reach them through here). */
  readonly onExit: (child: Child, exit: ChildExitInfo) => Effect.Effect<void>
  /** `Supervisor.reload` of a child without options (for watch mode; the instance module wires it). */
  readonly reloadChild: (id: string) => Effect.Effect<void, unknown>
  /** Builds a nested supervisor publishing into this one (the instance module builds; it imports the runtimes). */
  readonly makeNested: (tree: Spec.Tree) => Effect.Effect<Supervisor.Supervisor, Supervisor.StartError, Scope.Scope>
  /** Children in start order. */
  children: Array<Child>
  terminating: boolean
  /** Set when the supervisor escalates, before it stops its children: every operation fails with it from then on. */
  escalated: SupervisorIntensityError | undefined
  /** Restart decisions, newest first. */
  readonly history: Array<Supervisor.RestartRecord>
}

/** How many restart decisions `restartHistory` keeps. */
export const HISTORY_LIMIT = 1000

/** The time events and records carry. */
export const now = Clock.currentTimeMillis

/**
 * Where a supervisor's events go before its own hub: its parent's `publish` for a nested one, the root's `onEvent`
 * (which is never `unheard`: it is the user's).
 */
export interface Upstream {
  readonly publish: (event: Supervisor.SupervisorEvent) => Effect.Effect<void>
  /** Whether what `publish` does now reaches nobody (see {@link unheard}). */
  readonly unheard: () => boolean
  /**
   * The nested supervisor's spec changed as it runs (a `scale` of a pool in it): its parent writes its record again
   * (see `Keeper.respecified`), or asks its own parent, up to a child that has one.
   */
  readonly respecified: () => Effect.Effect<void>
}

/** Published in the fiber that caused the event, to the parent (or the root's onEvent) first: one order. */
export const publish = (self: Instance, event: Supervisor.SupervisorEvent): Effect.Effect<void> =>
  self.toParent === undefined
    ? self.events.publish(event)
    : self.events.publishAfter(self.toParent.publish(event), event)

/**
 * Whether an event published now reaches nobody: this supervisor's hub has no subscriber, nor has any above it, and
 * the root has no `onEvent`. A child's heartbeat then makes no `HealthChecked` event.
 */
export const unheard = (self: Instance): boolean =>
  self.events.idle() && (self.toParent === undefined || self.toParent.unheard())

/** The child with this id, if any. */
export const find = (self: Instance, id: string): Child | undefined => self.children.find((c) => c.spec.id === id)

/** The error of a manual operation on a child. */
export const childError = (
  self: Instance,
  child: string,
  operation: string,
  reason: SupervisorChildError["reason"],
  kind?: SupervisorChildError["kind"]
): SupervisorChildError =>
  new SupervisorChildError({ supervisor: self.name, child, operation, reason, ...(kind === undefined ? {} : { kind }) })

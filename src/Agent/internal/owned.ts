/**
 * The agent supervisor put together: one agent whose exits an owner decides (its own restart policy for
 * `AgentSupervisor.make`, a parent for a tree's child). It takes a decoded configuration and decoded options:
 * the public constructors decode what users write, at the edge.
 *
 * The parts, one concern each, live in `supervisor/` and share one `Core`: starting an incarnation
 * (`starting.ts`), its exit (`exits.ts`) and what the owner does about it (`restarts.ts`, `owner.ts`), its
 * heartbeat (`health.ts`), manual operations (`operations.ts`), requests (`router.ts`), the snapshot
 * (`metadata.ts`) and the events (`hub.ts`).
 *
 * @internal
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type AgentStartupError, ConfigError } from "../../Errors.js"
import { withoutParentSpan } from "../../internal/forker.js"
import type * as LogSettings from "../../internal/logFiles/settings.js"
import * as StderrFile from "../../internal/logFiles/stderr.js"
import * as ResilientStore from "../../Store/internal/resilientStore.js"
import * as Writer from "../../Store/internal/writer.js"
import * as Store from "../../Store/Store.js"
import type { AgentEvent, AgentSupervisor, StderrLine } from "../AgentSupervisor.js"
import type * as Config from "../Config.js"
import type { AgentState } from "../State.js"
import * as Heartbeat from "./heartbeat.js"
import * as Serial from "./serial.js"
import * as Core from "./supervisor/core.js"
import * as Health from "./supervisor/health.js"
import * as Hub from "./supervisor/hub.js"
import * as Metadata from "./supervisor/metadata.js"
import * as Operations from "./supervisor/operations.js"
import type { Owner } from "./supervisor/owner.js"
import * as Restarts from "./supervisor/restarts.js"
import * as Router from "./supervisor/router.js"
import type * as StderrTail from "./supervisor/stderrTail.js"
import * as Streaming from "./supervisor/streaming.js"

export type { EventHub } from "./supervisor/hub.js"
export { type ChildExit, type Controls, type Owner, restartPolicyOwner } from "./supervisor/owner.js"

/**
 * An agent as its owner holds it: the public interface, and a synchronous look at its state and pid for the
 * views of a tree (`whichChildren`, `countChildren`), which read a thousand children in well under a millisecond.
 */
export interface OwnedAgent extends AgentSupervisor {
  readonly peek: () => { readonly state: AgentState; readonly pid: number | undefined }
  /** Its state alone, as `peek` reads it, with nothing made (`countChildren`, a pool's pick, at a thousand children). */
  readonly peekState: () => AgentState
  /** Its stderr tail, for the agent that replaces it in a reload to go on with (`OwnedOptions.stderr`). */
  readonly stderrTail: StderrTail.StderrTail
}

/**
 * Whether two agents write to one stderr tail: the same agent, or a reload's new agent and the one it replaced
 * (`OwnedOptions.stderr`). A follower of a child's stderr goes on with its subscription then, rather than take up
 * the new agent's lines again. Agents made otherwise share none.
 */
export const sameStderr = (a: AgentSupervisor, b: AgentSupervisor): boolean =>
  a === b || ("stderrTail" in a && "stderrTail" in b && a.stderrTail === b.stderrTail)

/** How many stderr lines a reader of `stderr` may fall behind before the oldest are dropped. */
const STDERR_BUFFER = 4096

/**
 * An agent being made, during its first start (`OwnedOptions.onStarting`): its state and pid as the views read them,
 * and its calls, which wait for the start to end as any call to a STARTING agent does.
 */
export type Starting = Pick<OwnedAgent, "peek" | "peekState" | "handleEvent" | "handleEventStream">

/** Options of {@link makeOwned}, decoded. */
export interface OwnedOptions {
  /**
   * How long closing the scope waits for the store to take the last writes, when the agent has a writer of its
   * own (no `writer` given). `Writer.DEFAULT_FLUSH_TIMEOUT` by default.
   */
  readonly storeFlushTimeout?: Duration.Duration | undefined
  /**
   * Called with every event, in order, in the fiber that caused it, before the event is published: a parent
   * sees a child's events in causal order with its own.
   */
  readonly onEvent?: ((event: AgentEvent) => Effect.Effect<void>) | undefined
  /**
   * Whether what `onEvent` does now reaches nobody (a tree's: its hubs have no subscriber and no handler of the
   * user's runs above it). When it says so and the agent's own hub is idle too (`Hub.EventHub.idle`), a heartbeat
   * makes no `HealthChecked` event; every other event is still made and goes through `onEvent`. Without it, every
   * `HealthChecked` event is made.
   */
  readonly onEventUnheard?: (() => boolean) | undefined
  /**
   * Whether this agent writes a restart record to the store for each restart scheduled (`true` by default). A
   * tree records the restarts it decides itself, under the child's path, and turns this off: one restart, one
   * record.
   */
  readonly recordRestarts?: boolean | undefined
  /**
   * A store writer shared with others (a tree's): the agent writes to it and neither makes a writer nor flushes
   * one; whoever made it flushes it when its scope closes. By default the agent makes its own over the `Store` in
   * the context (which must be there: see {@link storeFromContext}), flushed when the agent's scope closes.
   */
  readonly writer?: Writer.Writer | undefined
  /**
   * Where the agent's events go after `onEvent`, and where its `events` and `subscribe` read them: its
   * `subscribe` must deliver this agent's events only. The agent never shuts it down. By default the agent has
   * a hub of its own, whose buffer is made on the first subscription.
   */
  readonly events?: Hub.EventHub | undefined
  /**
   * Where the heartbeat's reports run (events and metrics of each beat): a tree's runner, shared by its agents, so
   * that one fiber runs the reports of many. By default the agent makes its own (see {@link makeReports}).
   */
  readonly reports?: Serial.Serial | undefined
  /**
   * Writes the agent's stderr to `<dir>/<name>.log`, rotated (`LogFiles`): opened when the agent is made, closed
   * when its scope closes, after its last stop, with every line read by then in the file. None by default.
   */
  readonly logs?: LogSettings.Settings | undefined
  /**
   * Where the tasks the agent publishes to topics go (protocol 1.2 `publish`): its tree's topics. Outside a tree
   * there are none, and such a message is counted and logged as a protocol error.
   */
  readonly onTopicPublish?: ((topic: string, payload: unknown) => void) | undefined
  /**
   * The stderr tail of the agent this one replaces (a tree's rolling reload: `stderrTail` of the old agent): the
   * lines kept, `recentStderr`, and the subscribers of `stderr` go on over both agents' processes. Its log file
   * gets its own lines only, so a line is written once while the two run side by side. A new tail by default.
   */
  readonly stderr?: StderrTail.StderrTail | undefined
  /**
   * Called once the agent exists, before its first start (its process is spawned from then on): a tree's views
   * show the child's state and pid while it starts, and calls reach it. Nothing can stop it through this, so
   * that the first start ends by itself (or with the scope).
   */
  readonly onStarting?: ((starting: Starting) => void) | undefined
}

/**
 * A runner of heartbeat reports in the current context, without its span (it lives as long as its scope), a
 * batch every `Heartbeat.REPORT_BATCH_MILLIS`; what runs or waits is interrupted when the scope closes.
 */
export const makeReports: Effect.Effect<Serial.Serial, never, Scope.Scope> = Effect.acquireRelease(
  withoutParentSpan(Serial.make({ batchMillis: Heartbeat.REPORT_BATCH_MILLIS })),
  (reports) => reports.interrupt
)

/**
 * The `Store` in the context. A supervisor's type requires one; a caller that bypassed the type (JavaScript, a
 * cast, a store merged beside the tree instead of provided to it) gets a `ConfigError` saying what to provide,
 * never a silent in-memory store that loses what the user meant to keep.
 */
export const storeFromContext: Effect.Effect<Store.Store["Type"], ConfigError> = Effect.flatMap(
  Effect.serviceOption(Store.Store),
  Option.match({
    onSome: Effect.succeed,
    onNone: () =>
      Effect.fail(
        new ConfigError({
          field: "Store",
          rule: "is missing from the supervisor's context: provide Store.layerMemory (or Store.layerSqlite, " +
            "Store.layerPg) to it with Layer.provide or Effect.provide; a store merged beside it (Layer.merge) " +
            "is not provided to it"
        })
      )
  })
)

/** The agent's own store writer, over the `Store` in the context; flushed with the scope. */
const ownWriter = (
  flushTimeout: Duration.Duration | undefined
): Effect.Effect<Writer.Writer, ConfigError, Scope.Scope | Store.Store> =>
  Effect.flatMap(
    storeFromContext,
    (store) => Writer.make(ResilientStore.make(store), { flushTimeout: flushTimeout ?? Writer.DEFAULT_FLUSH_TIMEOUT })
  )

/**
 * Starts an agent whose exits are decided by `owner`; fails if its first start fails. Closing the scope stops it
 * (3-phase shutdown), then flushes its own writer. Given a `writer` (a tree's), it needs no `Store`; without one
 * it writes to the `Store` in the context.
 */
export function makeOwned(
  settings: Config.AgentConfig,
  owner: Owner,
  options: OwnedOptions & { readonly writer: Writer.Writer }
): Effect.Effect<OwnedAgent, AgentStartupError, Scope.Scope>
export function makeOwned(
  settings: Config.AgentConfig,
  owner: Owner,
  options?: OwnedOptions
): Effect.Effect<OwnedAgent, AgentStartupError | ConfigError, Scope.Scope | Store.Store>
export function makeOwned(
  settings: Config.AgentConfig,
  owner: Owner,
  options?: OwnedOptions
): Effect.Effect<OwnedAgent, AgentStartupError | ConfigError, Scope.Scope | Store.Store> {
  return Effect.gen(function*() {
    const writer = options?.writer ?? (yield* ownWriter(options?.storeFlushTimeout))
    const reports = options?.reports ?? (yield* makeReports)
    const own = options?.events === undefined ? Hub.makeLazy() : undefined
    const hub: Hub.EventHub = options?.events ?? own!
    const onEvent = options?.onEvent
    const core = yield* Core.make(settings, owner, {
      writer,
      reports,
      publish: onEvent === undefined ? hub.publish : (event) => hub.publishAfter(onEvent(event), event),
      unheard: onEvent === undefined ? hub.idle : () => hub.idle() && options?.onEventUnheard?.() === true,
      recordRestarts: options?.recordRestarts ?? true,
      onTopicPublish: options?.onTopicPublish,
      stderr: options?.stderr
    })
    const controls = Restarts.make(core)
    const operations = Operations.make(core, controls)
    // Before the stop below, so that it closes after it: the lines of the last shutdown reach the file too.
    if (options?.logs !== undefined) yield* StderrFile.follow(core.ownStderr, settings.name, options.logs)

    // Added after the writer and the forker so it runs before them: stop first, then flush what it wrote.
    // Closed at once, before the lock: a start waiting for it fails instead of beginning in a closed scope.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => (core.closed = true)).pipe(
        Effect.zipRight(core.locked(Operations.stopLocked(core))),
        Effect.zipRight(own === undefined ? Effect.void : own.shutdown)
      )
    )

    const handleEvent = Router.handleEvent(core)
    const handleEventStream = Streaming.handleEventStream(core)
    const peekState = () => Core.viewState(core)
    const peek = () => ({ state: peekState(), pid: Core.liveProcess(core)?.pid })
    options?.onStarting?.({ peek, peekState, handleEvent, handleEventStream })
    // The first start: make fails if it fails, and the scope's finalizers clean up. Nobody can stop the agent
    // before make returns it (`onStarting` gives no stop), so "stopped" cannot happen here.
    yield* Effect.flatten(core.locked(Operations.startLocked(core, controls, "first"))).pipe(
      Effect.catchTag("AgentStoppedError", Effect.die)
    )

    const subscribeStderr = Effect.acquireRelease(
      Effect.map(Queue.sliding<StderrLine>(STDERR_BUFFER), (queue) => {
        const forget = core.stderr.listen((line) => void queue.unsafeOffer(line))
        return { queue, forget }
      }),
      ({ forget, queue }) => Effect.zipRight(Effect.sync(forget), Queue.shutdown(queue))
    ).pipe(Effect.map(({ queue }): Queue.Dequeue<StderrLine> => queue))
    const agent: OwnedAgent = {
      name: settings.name,
      config: settings,
      handleEvent,
      handleEventStream,
      state: Effect.sync(peekState),
      metadata: Metadata.metadata(core),
      start: operations.start,
      stop: operations.stop,
      restart: operations.restart,
      health: Health.check(core),
      events: Stream.flatMap(Stream.scoped(hub.subscribe), (queue) => Stream.fromQueue(queue)),
      subscribe: hub.subscribe,
      recentStderr: Effect.sync(core.stderr.recent),
      stderr: Stream.unwrapScoped(Effect.map(subscribeStderr, (queue) => Stream.fromQueue(queue))),
      subscribeStderr,
      peek,
      peekState,
      stderrTail: core.stderr
    }
    return agent
  }).pipe(
    // Every fiber of this agent is forked below this point, so every log line of it names the agent.
    Effect.annotateLogs({ module: "AgentSupervisor", agent: settings.name })
  )
}

/**
 * An agent's stderr followed as `tail -F` follows a file: over its restarts (a tree keeps a child's agent across
 * them) and its reloads (a reload's new agent writes to the stderr tail of the one it replaces: the subscription
 * goes on, and has the new process's lines from its first), and on to a new agent when the child is replaced
 * (removed and added again with the same id). A child that is not there, or has no agent yet, is followed from its
 * next start. A new agent is followed from the first line it keeps: by the time its start is heard of, its process
 * has written the lines of its start-up.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as AgentSupervisor from "../../Agent/AgentSupervisor.js"
import { sameStderr } from "../../Agent/internal/owned.js"
import type * as Supervisor from "../../Supervisor.js"
import { locate } from "./locate.js"

/** The agent running for the child at `path` now, if one does. */
const agentAt = (
  root: Supervisor.Supervisor,
  path: string
): Effect.Effect<Option.Option<AgentSupervisor.AgentSupervisor>> =>
  locate(root, path).pipe(
    Effect.flatMap(({ info, parent }) => parent.child(info.id)),
    Effect.option
  )

/**
 * The stderr lines of the agent at `path` (below `root`, in the supervisor named `supervisor`, with id `id`), from
 * the agent running now and each agent started for that child after it. `events` is a subscription to the tree's
 * events made before (so that no start is missed). The agent running now is subscribed to at once, in the scope:
 * a line it writes as soon as this returns is in the stream.
 */
export const stderrLines = (
  root: Supervisor.Supervisor,
  events: Queue.Dequeue<Supervisor.SupervisorEvent>,
  at: { readonly path: string; readonly supervisor: string; readonly id: string }
): Effect.Effect<Stream.Stream<AgentSupervisor.StderrLine>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const now = yield* agentAt(root, at.path)
    const first = Option.isSome(now)
      ? Stream.make({ agent: now.value, lines: Stream.fromQueue(yield* now.value.subscribeStderr) })
      : Stream.empty
    const later = Stream.fromQueue(events).pipe(
      Stream.filter((event) =>
        event._tag === "ChildStarted" && event.supervisor === at.supervisor && event.child === at.id
      ),
      Stream.mapEffect(() => agentAt(root, at.path)),
      Stream.filterMap((agent) => agent),
      Stream.map((agent) => ({ agent, lines: fromFirstKept(agent) }))
    )
    return Stream.concat(first, later).pipe(
      // A restart starts the same agent again, a reload one on the same tail: the subscription has its lines.
      Stream.changesWith((a, b) => sameStderr(a.agent, b.agent)),
      Stream.flatMap((source) => source.lines, { switch: true })
    )
  })

/**
 * A new agent's lines from the first it keeps on: subscribed before its kept lines are read, so that none falls
 * between; a line that is in both (written in the meantime) comes from the kept ones alone. The tail hands the
 * same object to its ring and its subscribers, so the line is known by its identity.
 */
const fromFirstKept = (agent: AgentSupervisor.AgentSupervisor): Stream.Stream<AgentSupervisor.StderrLine> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const live = yield* agent.subscribeStderr
    const kept = yield* agent.recentStderr
    const known = new Set(kept)
    return Stream.concat(Stream.fromIterable(kept), Stream.filter(Stream.fromQueue(live), (line) => !known.has(line)))
  }))

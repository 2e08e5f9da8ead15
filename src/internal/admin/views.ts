/**
 * The admin API's views of the tree (`TreeView`, `ChildView`, `RestartView`), read through the public `Supervisor`
 * and `AgentSupervisor` APIs: `whichChildren`, `child(id).metadata`, `childSupervisor`, `poolInfo`,
 * `restartHistory`.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as AgentSupervisor from "../../Agent/AgentSupervisor.js"
import * as ProcessTable from "../../Agent/internal/processTable.js"
import type * as Supervisor from "../../Supervisor.js"
import type { ChildView, PoolView, ResourcesView, RestartView, TreeView } from "./api.js"
import { childPath, type Located } from "./locate.js"

const MIB = 1024 * 1024

/** A pool's own part of its view: its size, its bound, its routing. */
const poolView = ({ maxSize, routing, size }: Supervisor.PoolInfo): PoolView => ({ size, maxSize, routing })

/** What the supervisor's view alone tells of a child: a nested supervisor, or an agent that is not running. */
export const bareView = (path: string, info: Supervisor.ChildInfo): ChildView => ({
  id: path,
  name: info.name,
  kind: info.kind,
  state: info.state,
  status: info.status,
  parked: info.parked,
  pid: Option.getOrNull(info.pid),
  startedAt: null,
  restarts: 0,
  inFlight: 0,
  lastExit: null,
  limits: null,
  health: null,
  resources: null,
  pool: null,
  children: []
})

/** An agent child, from its metadata. */
export const agentView = (
  path: string,
  info: Supervisor.ChildInfo,
  metadata: AgentSupervisor.Metadata
): ChildView => ({
  ...bareView(path, info),
  name: metadata.name,
  state: metadata.state,
  pid: Option.getOrNull(metadata.pid),
  // (some exactly while `pid` is: both are the live process's)
  startedAt: Option.getOrNull(metadata.startedAt),
  restarts: metadata.restartCount,
  inFlight: metadata.inFlight,
  lastExit: Option.getOrNull(Option.map(metadata.lastExit, (exit) => ({
    pid: exit.pid,
    exitCode: exit.exitCode,
    signal: exit.signal,
    requested: exit.requested,
    at: exit.at,
    limit: exit.limit ?? null,
    ...(exit.leftBehind === true ? { leftBehind: true as const } : {})
  }))),
  limits: Option.getOrNull(Option.map(metadata.limits, (limits) => ({
    mode: limits.mode,
    why: limits.why,
    memory: limits.memory ?? null,
    cpu: limits.cpu ?? null,
    pids: limits.pids ?? null
  }))),
  health: Option.getOrNull(Option.map(metadata.lastHealth, (sample) => ({
    latencyMillis: sample.latencyMillis,
    cpuPercent: Option.getOrNull(sample.cpuPercent),
    memoryMb: Option.getOrNull(sample.memoryMb),
    processes: sample.processes,
    timestamp: sample.timestamp
  })))
})

/**
 * How old the shared scan of /proc may be for a view: the heartbeats' bound (5 s). An older table is scanned again
 * first, once for the whole view (every agent after the first finds it fresh), and shared with the heartbeats: a
 * dashboard polling every second scans no more often than that.
 */
const RESOURCES_MAX_AGE_MILLIS = ProcessTable.HEARTBEAT_MAX_AGE_MILLIS

/**
 * The running agent's group from the shared scan of /proc, read as the table has it (no wait per agent: a group
 * younger than the table is not in it yet); null when none runs, before a scan saw it, without /proc.
 */
const resourcesOf = (metadata: AgentSupervisor.Metadata): Effect.Effect<ResourcesView | null> =>
  Option.match(metadata.pid, {
    onNone: () => Effect.succeed(null),
    onSome: (pid) =>
      Effect.map(ProcessTable.shared.table(RESOURCES_MAX_AGE_MILLIS), () => {
        const reading = ProcessTable.shared.peek(pid)
        return reading?.usage === undefined ? null : {
          memoryMb: reading.usage.rssBytes / MIB,
          processes: reading.usage.processes,
          timestamp: Math.round(performance.timeOrigin + reading.takenAt)
        }
      })
  })

/** One child as it is now; a nested supervisor with its whole subtree. */
export const childView = (located: Located): Effect.Effect<ChildView> => {
  const { info, parent, path } = located
  if (info.kind === "worker") {
    return parent.child(info.id).pipe(
      Effect.flatMap((agent) => agent.metadata),
      Effect.flatMap((metadata) =>
        Effect.map(resourcesOf(metadata), (resources) => ({ ...agentView(path, info, metadata), resources }))
      ),
      // Stopped (no agent runs for it), or gone since `whichChildren`: what the supervisor said.
      Effect.orElseSucceed(() => bareView(path, info))
    )
  }
  return parent.childSupervisor(info.id).pipe(
    Effect.flatMap((sup) => childrenViews(sup, path)),
    Effect.zip(Effect.option(parent.poolInfo(info.id))),
    Effect.map(([children, pool]): ChildView => ({
      ...bareView(path, info),
      pool: Option.getOrNull(Option.map(pool, poolView)),
      children
    })),
    // Not running: no children to show, but a pool is still a pool (its size and routing from its spec)
    Effect.orElse(() =>
      Effect.map(Effect.option(parent.poolInfo(info.id)), (pool): ChildView => ({
        ...bareView(path, info),
        pool: Option.getOrNull(Option.map(pool, poolView))
      }))
    )
  )
}

/** The children of `sup` (at `prefix` below the root), in the order it started them. */
export const childrenViews = (sup: Supervisor.Supervisor, prefix: string): Effect.Effect<ReadonlyArray<ChildView>> =>
  Effect.flatMap(sup.whichChildren, (infos) =>
    // `whichChildren` is newest first.
    Effect.forEach(
      [...infos].reverse(),
      (info) => childView({ path: childPath(prefix, info.id), parent: sup, info })
    ))

/** The whole tree, and when it was read. */
export const treeView = (root: Supervisor.Supervisor): Effect.Effect<TreeView> =>
  Effect.gen(function*() {
    const children = yield* childrenViews(root, "")
    const now = yield* Clock.currentTimeMillis
    return { name: root.name, now, children }
  })

const recordView = (prefix: string, record: Supervisor.RestartRecord): RestartView => ({
  child: childPath(prefix, record.child),
  timestamp: record.timestamp,
  reason: record.reason,
  attempt: record.attempt,
  delayMillis: record.delayMillis,
  affected: record.affected.map((id) => childPath(prefix, id)),
  ...(record.exitCode !== undefined ? { exitCode: record.exitCode } : {}),
  ...(record.signal !== undefined ? { signal: record.signal } : {}),
  ...(record.leftBehind === true ? { leftBehind: true as const } : {})
})

const historyOf = (sup: Supervisor.Supervisor, prefix: string): Effect.Effect<Array<RestartView>> =>
  Effect.gen(function*() {
    const own = (yield* sup.restartHistory).map((record) => recordView(prefix, record))
    const nested = yield* Effect.forEach(
      (yield* sup.whichChildren).filter((info) => info.kind === "supervisor"),
      (info) =>
        sup.childSupervisor(info.id).pipe(
          Effect.flatMap((child) => historyOf(child, childPath(prefix, info.id))),
          Effect.orElseSucceed((): Array<RestartView> => [])
        )
    )
    return [...own, ...nested.flat()]
  })

/**
 * The restart decisions of the whole tree (each running supervisor keeps its last 1,000), newest first, with
 * paths below the root; when `child` is given, only those that restarted it or a child below it (a nested
 * supervisor's or a pool's: decided for it, or restarting it with another).
 */
export const history = (
  root: Supervisor.Supervisor,
  child?: string | undefined
): Effect.Effect<ReadonlyArray<RestartView>> =>
  Effect.map(historyOf(root, ""), (records) => {
    const about = (path: string) => child === undefined || path === child || path.startsWith(`${child}/`)
    return records
      .filter((record) => about(record.child) || record.affected.some(about))
      .sort((a, b) => b.timestamp - a.timestamp)
  })

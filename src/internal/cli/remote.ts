/**
 * The commands that talk to a running `up` through its admin API: `status`, `restart`, `stop`, `start`, `reload`,
 * `scale`, `logs`, `history`, `events`, `cluster`. Each prints for a person (a table, colour on a terminal) or, with
 * `--json`, for a script.
 *
 * @internal
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ChildView, ExitView, PlacementView, RestartView, StderrLineView, TreeView } from "../admin/api.js"
import { Routes } from "../admin/api.js"
import { isEndSignal, isEndSignalCode } from "../askedToEnd.js"
import * as StderrFile from "../logFiles/stderr.js"
import type { Address } from "./address.js"
import * as Client from "./client.js"
import type { CliError } from "./errors.js"
import { type Cell, colourFor, duration, render, stateColour } from "./table.js"

const colour = () => colourFor(process.stdout)

/** Every child of the tree, depth first, in start order. */
const flatten = (children: ReadonlyArray<ChildView>): Array<ChildView> =>
  children.flatMap((child) => [child, ...flatten(child.children)])

/** How a process ended: its signal (`SIGKILL`) or `code N`. */
const ended = (exitCode: number | null | undefined, signal: string | null | undefined): string =>
  signal !== null && signal !== undefined ? signal : `code ${exitCode ?? "?"}`

/** ` (left behind)` for an exit given up on after SIGKILL (`ExitInfo.leftBehind`). */
const leftBehindText = (exit: { readonly leftBehind?: true | undefined }): string =>
  exit.leftBehind === true ? " (left behind)" : ""

const lastExit = (exit: ExitView | null, now: number): string => {
  if (exit === null) return "-"
  const how = ended(exit.exitCode, exit.signal)
  const why = exit.requested ? " (asked)" : exit.limit !== null ? ` (${exit.limit})` : ""
  return `${how}${why}${leftBehindText(exit)}, ${duration(now - exit.at)} ago`
}

const mib = (mb: number | null | undefined) => mb === null || mb === undefined ? "-" : `${mb.toFixed(1)} MiB`

/** The `status` table of a tree. */
export const statusTable = (tree: TreeView, withColour: boolean): string =>
  render(
    ["ID", "KIND", "STATE", "PID", "UPTIME", "RESTARTS", "CPU%", "RSS", "LAST EXIT"],
    flatten(tree.children).map((child): ReadonlyArray<Cell | string> => [
      child.id,
      child.kind === "worker" ? "agent" : child.pool !== null ? "pool" : "supervisor",
      { text: child.parked ? `${child.state} (parked)` : child.state, colour: stateColour(child.state) },
      child.pid === null ? "-" : String(child.pid),
      child.startedAt === null ? "-" : duration(tree.now - child.startedAt),
      String(child.restarts),
      child.health?.cpuPercent === null || child.health === null ? "-" : child.health.cpuPercent.toFixed(1),
      // now, from the scan of /proc; else the last heartbeat's
      mib(child.resources?.memoryMb ?? child.health?.memoryMb),
      lastExit(child.lastExit, tree.now)
    ]),
    withColour
  )

/** `--json`: one document on one line, as every command prints it (`call`, `result`, `publish` too): a script reads it line by line. */
const json = (value: unknown) => Console.log(JSON.stringify(value))

export const status = (address: Address, asJson: boolean): Effect.Effect<void, CliError> =>
  Effect.flatMap(Client.call(address, (client) => client.tree.tree()), (tree) =>
    asJson
      ? json(tree)
      : Console.log(
        tree.children.length === 0 ? `${tree.name}: no children` : `${tree.name}\n${statusTable(tree, colour())}`
      ))

/**
 * How a stopped agent's last process ended, when its stop did not go as asked (as systemd shows a stop's result
 * other than `success`): another code than 0, or a signal past SIGTERM (SIGKILL after the stop's timeouts, a crash).
 */
const stopResult = (child: ChildView): string => {
  const exit = child.lastExit
  if (child.state !== "STOPPED" || exit === null || !exit.requested) return ""
  if (exit.signal !== null && !isEndSignal(exit.signal)) {
    return ` (it ended by ${exit.signal}${exit.signal === "SIGKILL" ? ": it outlived the stop's timeouts" : ""})`
  }
  if (exit.exitCode !== null && exit.exitCode !== 0 && !isEndSignalCode(exit.exitCode)) {
    return ` (it exited with code ${exit.exitCode})`
  }
  return ""
}

/**
 * A child after an operation, as one line: its state and pid, a pool's size and its members' pids; a stop that
 * did not go as asked, how the process ended.
 *
 * @internal
 */
export const afterLine = (child: ChildView): string => {
  const pid = child.pid === null ? "" : ` (pid ${child.pid})`
  if (child.pool === null) return `${child.id}: ${child.state}${pid}${stopResult(child)}`
  const members = child.children.map((member) => member.pid ?? "-").join(", ")
  return `${child.id}: ${child.state}, pool of ${child.pool.size}${members === "" ? "" : ` (pids ${members})`}`
}

const path = (id: string) => ({ id: encodeURIComponent(id) })

/** An operation on one child (`restart`, `stop`, `start`, `reload`, `scale`); prints the child after it. */
export const control = (
  address: Address,
  operation: "restart" | "stop" | "start" | "reload" | { readonly scale: number },
  id: string,
  asJson: boolean
): Effect.Effect<void, CliError> =>
  Effect.flatMap(
    Client.call(address, (client) =>
      typeof operation !== "string"
        ? client.control.scale({ path: path(id), payload: { size: operation.scale } })
        : operation === "reload"
        ? client.control.reload({ path: path(id), payload: {} })
        : client.control[operation]({ path: path(id) })),
    (child) => asJson ? json(child) : Console.log(afterLine(child))
  )

/**
 * On stderr (stdout keeps only what was asked for): a follower is live, the server has subscribed, and whatever
 * happens from now on reaches it. A script that starts a follower and then acts waits for this line.
 */
const following = (address: Address, what: string) =>
  Console.error(`Following ${what} at ${address.url} (Ctrl-C to stop)`)

/**
 * Which lines of a follow to show after `recent` were shown: the stream starts with the lines read between its
 * start and the read of `recent` (it listened first), which are skipped by number (`seq`, above every line read
 * before it, whatever agent: a tail started over numbers on), up to the last shown, those older than `recent`'s
 * first (`-n N`, when more than N came between) as well.
 */
export const unseen = (recent: ReadonlyArray<StderrLineView>): (line: StderrLineView) => boolean => {
  const last = recent.length === 0 ? 0 : recent[recent.length - 1].seq
  return (line) => line.seq > last
}

/** `logs ID`: the last lines, then, with `follow`, each new one until interrupted. */
export const logs = (
  address: Address,
  id: string,
  options: { readonly lines: Option.Option<number>; readonly follow: boolean; readonly json: boolean }
): Effect.Effect<void, CliError> =>
  Effect.gen(function*() {
    const show = (line: StderrLineView) => Console.log(options.json ? JSON.stringify(line) : StderrFile.format(line))
    // Following listens (the server has subscribed) before the last lines are read: no line falls between.
    const pull = options.follow
      ? yield* Effect.flatMap(
        Client.events(address, Routes.stderrFollow(id)),
        (events) => Stream.toPull(Stream.map(events, (event) => JSON.parse(event.data) as StderrLineView))
      )
      : undefined
    const recent = yield* Client.call(
      address,
      (client) =>
        client.tree.stderr({
          path: { id: encodeURIComponent(id) },
          urlParams: { lines: Option.getOrUndefined(options.lines) }
        })
    )
    yield* Effect.forEach(recent, show, { discard: true })
    // Said on stderr: stdout (JSON lines with --json) holds the lines alone, none here
    if (recent.length === 0 && Option.getOrElse(options.lines, () => 1) > 0) {
      yield* Console.error(`"${id}" has no stderr lines kept: it has written none`)
    }
    if (pull === undefined) return
    // Once the last lines are out: from here on, only the stream can fail
    yield* following(address, `${id}'s stderr`)
    const fresh = unseen(recent)
    while (true) {
      const chunk = yield* pull.pipe(
        Effect.catchAll(Option.match({ onNone: () => Effect.succeed(null), onSome: Effect.fail }))
      )
      if (chunk === null) return
      for (const line of chunk) if (fresh(line)) yield* show(line)
    }
  }).pipe(Effect.scoped)

/** One row of `history`'s table: TIME, CHILD, ATTEMPT, DELAY, RESTARTED, REASON (with how the process ended). */
export const restartRow = (record: RestartView): ReadonlyArray<string> => [
  new Date(record.timestamp).toISOString(),
  record.child,
  String(record.attempt),
  record.delayMillis === 0 ? "-" : `${Math.round(record.delayMillis)} ms`,
  record.affected.join(", "),
  record.exitCode === undefined && record.signal === undefined
    ? record.reason
    : `${record.reason} (${ended(record.exitCode, record.signal)}${leftBehindText(record)})`
]

/** `history [ID]`: restart decisions, newest first. */
export const history = (
  address: Address,
  child: Option.Option<string>,
  asJson: boolean
): Effect.Effect<void, CliError> =>
  Effect.flatMap(
    Client.call(address, (client) => client.tree.history({ urlParams: { child: Option.getOrUndefined(child) } })),
    (records) =>
      asJson
        ? json(records)
        : Console.log(
          records.length === 0
            ? "No restarts (the supervisor's own decisions are listed; a restart asked for by hand is not one)."
            : render(["TIME", "CHILD", "ATTEMPT", "DELAY", "RESTARTED", "REASON"], records.map(restartRow), colour())
        )
  )

const scalar = (value: unknown): string =>
  typeof value === "object" && value !== null ? JSON.stringify(value) : String(value)

const healthFields = (sample: unknown): Array<string> => {
  const s = sample as { latencyMillis?: number; cpuPercent?: number | null; memoryMb?: number | null; pid?: number }
  return [
    `pid=${s.pid}`,
    `latency=${s.latencyMillis?.toFixed(1)}ms`,
    ...(typeof s.cpuPercent === "number" ? [`cpu=${s.cpuPercent.toFixed(1)}%`] : []),
    ...(typeof s.memoryMb === "number" ? [`rss=${s.memoryMb.toFixed(1)}MiB`] : [])
  ]
}

/**
 * Where an event happened as `status`, `restart` and the dashboard name it: the path below the root
 * (`workers/classifier`, where the event says supervisor `demo/workers`, child `classifier`); the root's own events
 * by its name.
 */
const whereOf = (root: string | undefined, supervisor: unknown, child: unknown): string => {
  const of = typeof supervisor === "string" ? supervisor : ""
  const base = of === root ? "" : root !== undefined && of.startsWith(`${root}/`) ? of.slice(root.length + 1) : of
  const path = [base, child].filter((part) => typeof part === "string" && part !== "").join("/")
  return path === "" ? of : path
}

/**
 * One event as a line: when, where (below the root named `root`, when known), what, then its other fields as
 * `key=value`.
 */
export const describeEvent = (data: string, root?: string): string => {
  const event = JSON.parse(data) as Record<string, unknown>
  const inner = event._tag === "Agent" ? event.event as Record<string, unknown> : event
  const at = typeof inner.timestamp === "number" ? new Date(inner.timestamp).toISOString() : new Date().toISOString()
  const where = whereOf(root, event.supervisor, event.child)
  if (inner._tag === "HealthChecked") return [at, where, "HealthChecked", ...healthFields(inner.sample)].join(" ")
  const skip = new Set(["_tag", "supervisor", "child", "agent", "timestamp", "event"])
  const rest = Object.entries(inner).filter(([name]) => !skip.has(name)).map(([name, value]) =>
    `${name}=${scalar(value)}`
  )
  return [at, where, String(inner._tag), ...rest].join(" ")
}

/** `events`: the tree's lifecycle events as they happen, one per line, until interrupted. */
export const events = (address: Address, asJson: boolean): Effect.Effect<void, CliError> =>
  Effect.flatMap(
    // The root's name, to say where each event happened as the other commands name children
    asJson
      ? Effect.succeed(undefined)
      : Effect.map(Client.call(address, (client) => client.tree.tree()), (t) => t.name),
    (root) =>
      Client.events(address, Routes.events).pipe(
        Effect.tap(() => following(address, "the tree's events")),
        Stream.unwrapScoped,
        Stream.runForEach((event) => Console.log(asJson ? event.data : describeEvent(event.data, root)))
      )
  )

/** The `cluster` table: one row per started agent, its runner's state coloured (green running, red lost). */
export const clusterTable = (placements: ReadonlyArray<PlacementView>, now: number, withColour: boolean): string =>
  render(
    ["AGENT", "RUNNER", "SHARD", "SINCE", "STATE"],
    placements.map((row): ReadonlyArray<Cell | string> => [
      row.agent,
      row.runner,
      row.shard,
      `${duration(now - row.since)} ago`,
      row.state === undefined
        ? "-"
        : { text: row.state, colour: row.state === "running" ? "green" as const : "red" as const }
    ]),
    withColour
  )

/** `cluster`: where each started agent of the cluster runs. */
export const cluster = (address: Address, asJson: boolean): Effect.Effect<void, CliError> =>
  Effect.flatMap(
    Client.call(address, (client) => client.cluster.placements()),
    (placements) =>
      asJson
        ? json(placements)
        : Console.log(
          placements.length === 0
            ? "No agent of the cluster is started (each starts at its first message)."
            : clusterTable(placements, Date.now(), colour())
        )
  )

/**
 * Finds a child of the tree by its path below the root (`workers/echo`), through the public `Supervisor` API.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Supervisor from "../../Supervisor.js"
import { atMost } from "../atMost.js"
import { closest } from "../suggest.js"
import { BadRequest, ChildNotFound } from "./api.js"

/** A child found: its path, the supervisor it belongs to, and that supervisor's view of it. */
export interface Located {
  readonly path: string
  readonly parent: Supervisor.Supervisor
  readonly info: Supervisor.ChildInfo
}

/** The path of `id` below the supervisor at `prefix` ("" for the root). */
export const childPath = (prefix: string, id: string): string => prefix === "" ? id : `${prefix}/${id}`

const notFound = (root: Supervisor.Supervisor, path: string, why: string) =>
  new ChildNotFound({
    message: `No child "${path}" in the tree "${root.name}": ${why} (a path is ids joined by "/", as ` +
      `agent-supervisor status and GET /api/tree list them)`
  })

/** A path through a nested supervisor (at `through`) that does not run now: its children are not there to find. */
const notRunning = (root: Supervisor.Supervisor, path: string, through: string) =>
  new ChildNotFound({
    message: `Cannot reach "${path}" in the tree "${root.name}": the supervisor "${through}" on its way is not ` +
      `running (start it first: agent-supervisor start ${through}, or POST /api/children/` +
      `${encodeURIComponent(through)}/start)`
  })

/** At most this many of a supervisor's children are named when a path below it names none of them. */
const NAMED_CHILDREN = 10

/**
 * Why `rest` names no child of the supervisor at `prefix` (`""` the root), naming what is there: its children (their
 * `ids` in start order; at most `NAMED_CHILDREN` named), an agent that `rest` goes below, or the root itself given by name (with
 * the path below it, `below`, when that names a child), and the path `meant` when there is one (`suggestion`).
 */
const noSuchChild = (
  root: Supervisor.Supervisor,
  children: ReadonlyArray<Supervisor.ChildInfo>,
  ids: ReadonlyArray<string>,
  prefix: string,
  rest: string,
  below: string | undefined,
  meant: string | undefined
): string => {
  const where = prefix === "" ? "the root" : `"${prefix}"`
  const agent = children.find((child) => child.kind === "worker" && rest.startsWith(`${child.id}/`))
  if (agent !== undefined) return `"${childPath(prefix, agent.id)}" is an agent: nothing is below it`
  const paths = ids.map((id) => `"${childPath(prefix, id)}"`)
  const named = paths.length === 0
    ? `${where} has no children`
    : `${rest === "" ? `nothing follows "${prefix}/"` : `${where} has no child "${rest}"`}${
      meant === undefined ? "" : ` (did you mean "${meant}"?)`
    }; its children: ${atMost(paths, NAMED_CHILDREN, (count) => `and ${count} more`).join(", ")}`
  const ownName = prefix === "" && (rest === root.name || rest.startsWith(`${root.name}/`))
  return ownName
    ? `${named}; "${root.name}" is the tree's root, not a child of it: a path starts below the root` +
      (below === undefined ? "" : ` ("${below}")`)
    : named
}

/**
 * The children `rest` may name among `children`: the one whose id is all of it, then each nested supervisor whose id
 * (with a "/") starts it, the longest first (an id may itself hold a "/": a way that ends nowhere is left for the
 * next).
 */
const steps = (
  children: ReadonlyArray<Supervisor.ChildInfo>,
  rest: string
): ReadonlyArray<{ readonly info: Supervisor.ChildInfo; readonly last: boolean }> => [
  ...children.filter((child) => child.id === rest).map((info) => ({ info, last: true })),
  ...children
    .filter((child) => child.kind === "supervisor" && rest.startsWith(`${child.id}/`))
    .sort((a, b) => b.id.length - a.id.length)
    .map((info) => ({ info, last: false }))
]

/**
 * The path meant by `rest`, which names no child of the supervisor at `prefix` among `ids`, when one is close and
 * names a child: without a leading "/", or with its first step a typo of one of `ids` (`classifer`, `Workers/echo`;
 * not a step of fewer than 3 characters, nor a number: `p/5` of a pool of 3 means no other member).
 */
const suggestion = (
  root: Supervisor.Supervisor,
  ids: ReadonlyArray<string>,
  prefix: string,
  rest: string
): Effect.Effect<string | undefined> =>
  Effect.gen(function*() {
    const stripped = rest.replace(/^\/+/, "")
    const first = stripped.split("/")[0]
    const near = first.length >= 3 && !/^\d+$/.test(first) ? closest(first, ids) : undefined
    const candidates = [
      ...(stripped !== rest && stripped !== "" ? [childPath(prefix, stripped)] : []),
      ...(near === undefined ? [] : [childPath(prefix, near + stripped.slice(first.length))])
    ]
    for (const candidate of candidates) {
      if (yield* Effect.isSuccess(find(root, candidate, false))) return candidate
    }
    return undefined
  })

/** The child at `path` below `root`; `ChildNotFound` when there is none (or a supervisor on the way is not running). */
export const locate = (root: Supervisor.Supervisor, path: string): Effect.Effect<Located, ChildNotFound> =>
  find(root, path, true)

/** {@link locate}; with `suggest`, a failure says which path was meant where one is close (a check of it does not). */
const find = (root: Supervisor.Supervisor, path: string, suggest: boolean): Effect.Effect<Located, ChildNotFound> =>
  path === "" ? Effect.fail(notFound(root, path, "the path is empty")) : walk(root, path, root, path, suggest)

/**
 * The child at `rest`, the end of `path`, below `parent`; each way the path may go tried in turn, the failure of the
 * first told when none leads anywhere.
 */
const walk = (
  root: Supervisor.Supervisor,
  path: string,
  parent: Supervisor.Supervisor,
  rest: string,
  suggest: boolean
): Effect.Effect<Located, ChildNotFound> =>
  Effect.gen(function*() {
    const children = yield* parent.whichChildren
    const ways = steps(children, rest)
    if (ways.length === 0) {
      if (!suggest) return yield* Effect.fail(notFound(root, path, "no such child"))
      const prefix = path.slice(0, path.length - rest.length).replace(/\/$/, "")
      // The root's own name before a path: the path below it, if that names a child
      const stripped = prefix === "" && rest.startsWith(`${root.name}/`) ? rest.slice(root.name.length + 1) : ""
      const below = stripped !== "" && (yield* Effect.isSuccess(find(root, stripped, false))) ? stripped : undefined
      const ids = [...children].reverse().map((child) => child.id)
      const meant = below === undefined ? yield* suggestion(root, ids, prefix, rest) : undefined
      return yield* Effect.fail(notFound(root, path, noSuchChild(root, children, ids, prefix, rest, below, meant)))
    }
    let first: ChildNotFound | undefined
    for (const { info, last } of ways) {
      if (last) return { path, parent, info }
      const through = yield* parent.childSupervisor(info.id).pipe(
        Effect.mapError(() => notRunning(root, path, `${path.slice(0, path.length - rest.length)}${info.id}`)),
        Effect.flatMap((nested) => walk(root, path, nested, rest.slice(info.id.length + 1), suggest)),
        Effect.either
      )
      if (through._tag === "Right") return through.right
      first ??= through.left
    }
    return yield* Effect.fail(first!)
  })

/**
 * The path of the first agent below the supervisor `sup` (at `prefix`), in start order, depth first; with `pools`,
 * the first agent or pool (what takes a call).
 */
const firstAgent = (
  sup: Supervisor.Supervisor,
  prefix: string,
  pools = false
): Effect.Effect<string | undefined> =>
  Effect.gen(function*() {
    // `whichChildren` is newest first.
    for (const info of [...(yield* sup.whichChildren)].reverse()) {
      const path = childPath(prefix, info.id)
      if (info.kind === "worker") return path
      if (pools && Option.isSome(yield* Effect.option(sup.poolInfo(info.id)))) return path
      const below = yield* sup.childSupervisor(info.id).pipe(
        Effect.flatMap((nested) => firstAgent(nested, path, pools)),
        Effect.orElseSucceed(() => undefined)
      )
      if (below !== undefined) return below
    }
    return undefined
  })

/** Why the supervisor or pool at `located` has no stderr of its own, with the path of an agent that has. */
const notAnAgent = ({ info, parent, path }: Located): Effect.Effect<BadRequest> =>
  Effect.gen(function*() {
    const pool = yield* Effect.option(parent.poolInfo(info.id))
    if (Option.isSome(pool)) {
      const member = pool.value.members[0]
      return new BadRequest({
        message: member === undefined
          ? `"${path}" is a pool with no members now: only its members have stderr (agent-supervisor scale ` +
            `${path} N adds some)`
          : `"${path}" is a pool: only an agent has stderr; give one of its members, e.g. "${
            childPath(path, member.id)
          }"`
      })
    }
    const agent = yield* parent.childSupervisor(info.id).pipe(
      Effect.flatMap((sup) => firstAgent(sup, path)),
      Effect.orElseSucceed(() => undefined)
    )
    return new BadRequest({
      message: `"${path}" is a supervisor: only an agent has stderr` +
        (agent === undefined ? ", and it has no agent below it" : `; give one of its agents, e.g. "${agent}"`)
    })
  })

/**
 * The agent at `path` below `root`, for what only an agent has (its stderr): `ChildNotFound` when there is none,
 * `BadRequest` for a supervisor or a pool, naming an agent below it to ask instead.
 */
export const locateAgent = (
  root: Supervisor.Supervisor,
  path: string
): Effect.Effect<Located, ChildNotFound | BadRequest> =>
  Effect.flatMap(
    locate(root, path),
    (located) => located.info.kind === "worker" ? Effect.succeed(located) : Effect.flip(notAnAgent(located))
  )

/**
 * The path of the first agent or pool below the supervisor at `path` (what takes a call in its place), in start
 * order, depth first; `undefined` when it has none or is not there.
 */
export const callableBelow = (root: Supervisor.Supervisor, path: string): Effect.Effect<string | undefined> =>
  locate(root, path).pipe(
    Effect.flatMap(({ info, parent }) => parent.childSupervisor(info.id)),
    Effect.flatMap((sup) => firstAgent(sup, path, true)),
    Effect.orElseSucceed(() => undefined)
  )

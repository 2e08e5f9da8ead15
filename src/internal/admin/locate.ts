/**
 * Finds a child of the tree by its path below the root (`workers/echo`), through the public `Supervisor` API.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Supervisor from "../../Supervisor.js"
import { ChildNotFound } from "./api.js"

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
    message: `No child "${path}" in the tree "${root.name}": ${why} (a child below the root is addressed by its ` +
      `ids joined with "/", such as "workers/echo"; GET /api/tree lists them)`
  })

/**
 * Which child `rest` names among `children`: the one whose id is all of it, else the nested supervisor whose id
 * (with a "/") starts it, the longest such (an id may itself hold a "/").
 */
const step = (
  children: ReadonlyArray<Supervisor.ChildInfo>,
  rest: string
): { readonly info: Supervisor.ChildInfo; readonly last: boolean } | undefined => {
  const exact = children.find((child) => child.id === rest)
  if (exact !== undefined) return { info: exact, last: true }
  let best: Supervisor.ChildInfo | undefined
  for (const child of children) {
    if (child.kind === "supervisor" && rest.startsWith(`${child.id}/`)) {
      if (best === undefined || child.id.length > best.id.length) best = child
    }
  }
  return best === undefined ? undefined : { info: best, last: false }
}

/** The child at `path` below `root`; `ChildNotFound` when there is none (or a supervisor on the way is not running). */
export const locate = (root: Supervisor.Supervisor, path: string): Effect.Effect<Located, ChildNotFound> =>
  Effect.gen(function*() {
    if (path === "") return yield* Effect.fail(notFound(root, path, "the path is empty"))
    let parent = root
    let rest = path
    while (true) {
      const found = step(yield* parent.whichChildren, rest)
      if (found === undefined) return yield* Effect.fail(notFound(root, path, "no such child"))
      if (found.last) return { path, parent, info: found.info }
      const { id } = found.info
      parent = yield* parent.childSupervisor(id).pipe(
        Effect.mapError(() => notFound(root, path, `the supervisor "${id}" on its way is not running`))
      )
      rest = rest.slice(id.length + 1)
    }
  })
